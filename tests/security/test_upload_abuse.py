"""Capture upload abuse: oversize, truncated, not a capture, compressed (bombs included), path-like and hostile
file names. Each gets a clear error (or is stored under its hash alone), nothing is written outside the upload
folder, and a refused upload leaves nothing behind."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web import captures
from tests.console.conftest import login
from tests.fuzz.targets import capture_seeds

SEED = capture_seeds()[0][1]


def upload(c: FlaskClient, data: bytes, name: str = "x.pcap"):  # type: ignore[no-untyped-def]
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    return c.post("/api/v1/captures", data={"capture": (io.BytesIO(data), name), "org": "acme"},
                  headers={"X-CSRF-Token": token}, content_type="multipart/form-data")


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def site(open_app: Flask, db_path: Path) -> tuple[Flask, FlaskClient, Path]:
    open_app.config["MAX_UPLOAD_BYTES"] = 64 * 1024
    c = open_app.test_client()
    c.set_cookie("lang", "en")
    return open_app, login(c, "auditor"), db_path.parent


def refused(site: tuple[Flask, FlaskClient, Path], data: bytes, status: int, words: tuple[str, ...], name: str = "x.pcap") -> None:
    app, c, root = site
    before = tree(root)
    resp = upload(c, data, name)
    body = resp.get_json()
    assert resp.status_code == status, (resp.status_code, body)
    assert body["error"] and any(w in body["message"].lower() for w in words), body
    assert tree(root) - before <= {"accounts.sqlite-wal", "accounts.sqlite-shm"}, tree(root) - before
    folder = captures.upload_dir(app)
    assert not folder.exists() or not [p for p in folder.iterdir() if p.is_file()]


def test_oversize_is_413_and_nothing_is_kept(site) -> None:  # type: ignore[no-untyped-def]
    refused(site, SEED[:24] + b"\0" * (64 * 1024), 413, ("larger than the limit of 65536 b",))


def test_truncated_header_is_400(site) -> None:  # type: ignore[no-untyped-def]
    refused(site, SEED[:12], 400, ("cannot be read", "nothing was stored"))


def test_not_a_capture_is_400(site) -> None:  # type: ignore[no-untyped-def]
    for data in (b"%PDF-1.7\n", b"<html><script>alert(1)</script>", b"\x7fELF\x02\x01", b"PK\x03\x04zip"):
        refused(site, data, 400, ("not a pcap or pcapng capture",))


def test_compressed_uploads_are_refused_without_being_inflated(site) -> None:  # type: ignore[no-untyped-def]
    """The upload accepts pcap/pcapng only; gzip (which the command line reads) is refused by its magic, so a
    decompression bomb is never inflated: 64 KiB of gzip that would expand to 64 MiB."""
    bomb = gzip.compress(SEED[:24] + b"\0" * (64 << 20), compresslevel=9)
    assert len(bomb) < 64 * 1024
    refused(site, bomb, 400, ("starts with 1f 8b",), name="bomb.pcap.gz")
    refused(site, gzip.compress(SEED), 400, ("starts with 1f 8b",), name="ok.pcap.gz")


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\boot.ini", "/etc/cron.d/x.pcap", "a\x00b.pcap", "..",
                                  "\u202egnp.exe.pcap", "<img src=x onerror=alert(1)>.pcap", "名字" * 100, ""])
def test_path_like_names_only_name_nothing(site, name: str) -> None:  # type: ignore[no-untyped-def]
    app, c, root = site
    before = tree(root)
    resp = upload(c, SEED, name)
    assert resp.status_code in (200, 202), resp.get_json()
    cap = resp.get_json()
    stored = captures.uploaded_path(app, cap["sha256"])
    assert stored is not None and stored.parent == captures.upload_dir(app) and stored.read_bytes() == SEED
    assert {p.name for p in stored.parent.iterdir()} == {stored.name}
    assert not set(cap["name"]) & {"/", "\\", "\x00", "\u202e"} and 0 < len(cap["name"]) <= 120
    new = tree(root) - before
    assert all(n.startswith(("uploads/", "accounts.sqlite", "console.sqlite")) for n in new), new
    assert captures.state(app).worker.wait(60)
    page = c.get(f"/captures/{cap['sha256']}?org=acme").get_data(as_text=True)
    assert "<img src=x" not in page  # the shown name is escaped


def test_an_upload_needs_a_file_and_an_enterprise(site) -> None:  # type: ignore[no-untyped-def]
    app, c, _root = site
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    no_file = c.post("/api/v1/captures", data={"org": "acme"}, headers={"X-CSRF-Token": token}, content_type="multipart/form-data")
    assert no_file.status_code == 400 and no_file.get_json()["message"]
    other = c.post("/api/v1/captures", data={"capture": (io.BytesIO(SEED), "x.pcap"), "org": "../globex"},
                   headers={"X-CSRF-Token": token}, content_type="multipart/form-data")
    assert other.status_code == 400 and other.get_json()["message"]
    enterprise = login(app.test_client(), "acme-user")
    token = enterprise.get("/api/v1/session").get_json()["csrf_token"]
    forced = enterprise.post("/api/v1/captures", data={"capture": (io.BytesIO(SEED), "x.pcap"), "org": "globex"},
                             headers={"X-CSRF-Token": token}, content_type="multipart/form-data")
    assert forced.status_code in (200, 202) and forced.get_json()["organization"] == "acme"  # always their own


def test_a_replay_error_never_shows_the_servers_folders(tmp_path: Path) -> None:
    """A capture that turns out unreadable at replay time (here: a file swapped under the upload folder)
    fails with a message naming the capture, not the server path where uploads live."""
    from console.web.captures import replay_capture
    from pipeline.store import open_store

    folder = tmp_path / "srv" / "qinling" / "uploads"
    folder.mkdir(parents=True)
    path = folder / ("ab" * 32 + ".pcap")
    path.write_bytes(b"GIF89a this is not a capture" * 4)
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        result = replay_capture(path, "ent-a", store, None)
    finally:
        store.close()
    assert result.error.startswith("capture: not a pcap or pcapng capture")
    assert str(folder) not in result.error and "uploads" not in result.error
