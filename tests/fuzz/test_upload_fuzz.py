"""The console's capture upload (console/web/captures.py, page and /api/v1) fed random and mutated real captures
under hostile file names: a clear 4xx with a message or an accepted capture stored under its hash; never a 500,
never a file outside the upload folder, never a temporary file left behind. Accepted uploads are replayed and
every replay ends done or failed with a message."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from console.web import captures
from tests.console.conftest import close_app, login, make_app, seed_accounts
from tests.fuzz import targets
from tests.fuzz.strategies import budget, mutated
from pipeline.store.sqlite import SQLiteStore

LIMIT = 16 * 1024
SEEDS = [b for _name, b in targets.capture_seeds() if len(b) < LIMIT]
STORED = re.compile(r"[0-9a-f]{64}\.(pcap|pcapng)")
NAMES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", "a\x00.pcap", "....//x.pcap",
                     "\u202egnp.pcap", "con.pcap", "", ".", "..", ".hidden.pcap", "x" * 5000, "🐍.pcap", "ca\u0301p.pcap",
                     "%2e%2e%2fetc%2fpasswd", "<script>alert(1)</script>.pcap"]),
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Path]]:
    root = tmp_path_factory.mktemp("upload-fuzz")
    db_path = root / "console.sqlite"
    with SQLiteStore(db_path):
        pass
    seed_accounts(root / "accounts.sqlite")
    app = make_app(db_path, ORGANIZATION=None, MAX_UPLOAD_BYTES=LIMIT, CAPTURE_QUEUE=100_000)
    yield app, root
    assert captures.state(app).worker.wait(120)
    captures.close(app)
    close_app(app)


@pytest.fixture(scope="module")
def auditor(site: tuple[Flask, Path]) -> FlaskClient:
    return login(site[0].test_client(), "auditor")


def check_tree(app: Flask, root: Path) -> None:
    """Only hash-named captures in the upload folder; nothing else written anywhere under the site's folder."""
    folder = captures.upload_dir(app)
    for p in root.rglob("*"):
        if p.is_file() and p.parent == folder:
            assert STORED.fullmatch(p.name), f"unexpected file in the upload folder: {p.name!r}"
        elif p.is_file():
            assert p.parent == root and p.name.startswith(("console.sqlite", "accounts.sqlite")), f"file written outside the upload folder: {p}"


def post(c: FlaskClient, data: bytes, name: str, api: bool) -> tuple[int, dict | str]:  # type: ignore[type-arg]
    targets.count("upload")
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    resp = c.post("/api/v1/captures" if api else "/captures/", data={"capture": (io.BytesIO(data), name), "org": "acme"},
                  headers={"X-CSRF-Token": token}, content_type="multipart/form-data")
    return resp.status_code, resp.get_json() if resp.is_json else resp.get_data(as_text=True)


def check(site: tuple[Flask, Path], c: FlaskClient, data: bytes, name: str, api: bool) -> None:
    app, root = site
    status, body = post(c, data, name, api)
    assert status in (200, 202, 303, 400, 413), (status, body)
    if status in (400, 413) and api:
        assert isinstance(body, dict) and body.get("error") and body.get("message"), body
    if status in (200, 202):
        assert isinstance(body, dict)
        stored = captures.uploaded_path(app, body["sha256"])
        assert stored is not None and stored.read_bytes() == data
        assert body["name"] and not set(body["name"]) & {"/", "\\", "\x00"} and len(body["name"]) <= 120
    if len(data) > LIMIT:
        assert status == 413
    check_tree(app, root)


@budget(120)
@given(mutated(SEEDS, max_size=LIMIT + 200), NAMES, st.booleans())
def test_mutated_captures_and_hostile_names(site, auditor, data: bytes, name: str, api: bool) -> None:  # type: ignore[no-untyped-def]
    check(site, auditor, data, name, api)


@budget(60)
@given(st.binary(max_size=300), NAMES)
def test_random_bytes(site, auditor, data: bytes, name: str) -> None:  # type: ignore[no-untyped-def]
    check(site, auditor, data, name, True)


def test_every_replay_ends_with_a_status_and_no_server_path(site, auditor) -> None:  # type: ignore[no-untyped-def]
    app, root = site
    for data in SEEDS[:4]:
        check(site, auditor, data, "seed.pcap", True)
        check(site, auditor, data[: len(data) // 2], "half.pcap", True)
    assert captures.state(app).worker.wait(120)
    rows = auditor.get("/api/v1/captures?org=acme").get_json()["items"]
    assert rows
    for cap in rows:
        assert cap["status"] in ("done", "failed"), cap
        assert cap["status"] == "done" or cap["error"], cap
        for text in [cap["error"], *cap["warnings"]]:
            assert str(root) not in text, f"the server's folder leaks into what the user sees: {text}"
