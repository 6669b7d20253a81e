"""Captures (检查评估): upload limits and type checks, safe names, dedup, CSRF, tenancy, and the replay's
progress states through queued → replaying → done/failed, as pages and as /api/v1."""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web import captures
from tests.console.conftest import close_app, csrf_of, login, make_app

ROOT = Path(__file__).resolve().parents[2]
ATTACK = ROOT / "pcaps" / "modbus" / "modbus_plant_attack.pcap"


@pytest.fixture
def open_app(db_path: Path) -> Iterator[Flask]:
    app = make_app(db_path, ORGANIZATION=None)
    yield app
    captures.close(app)
    close_app(app)


def token(c: FlaskClient) -> str:
    return str(c.get("/api/v1/session").get_json()["csrf_token"])


def upload(c: FlaskClient, data: bytes, name: str = "plant.pcap", org: str | None = "acme", *, api: bool = True,
           csrf: bool = True):  # type: ignore[no-untyped-def]
    form: dict[str, object] = {"capture": (io.BytesIO(data), name)}
    if org is not None:
        form["org"] = org
    headers = {"X-CSRF-Token": token(c)} if csrf else {}
    return c.post("/api/v1/captures" if api else "/captures/", data=form, headers=headers,
                  content_type="multipart/form-data")


def wait(app: Flask) -> None:
    assert captures.state(app).worker.wait(60), "the replay worker did not finish"


def stored(app: Flask) -> list[str]:
    folder = captures.upload_dir(app)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def pcap_header(magic: bytes, endian: str = "<") -> bytes:
    return magic + struct.pack(endian + "HHiIII", 2, 4, 0, 0, 65535, 1)


# ---------------------------------------------------------------- upload → replay → alerts


def test_auditor_uploads_and_the_replay_raises_alerts(open_app: Flask) -> None:
    c = login(open_app.test_client(), "auditor")
    page = c.get("/captures/").get_data(as_text=True)
    form = c.post("/captures/", data={"capture": (io.BytesIO(ATTACK.read_bytes()), "modbus_plant_attack.pcap"),
                                      "org": "acme", "csrf_token": csrf_of(page)}, content_type="multipart/form-data")
    assert form.status_code == 303
    sha = form.headers["Location"].split("/captures/")[1].split("?")[0]
    wait(open_app)
    cap = c.get(f"/api/v1/captures/{sha}").get_json()
    assert (cap["status"], cap["progress"], cap["organization"], cap["name"], cap["uploader"]) == \
        ("done", 100, "acme", "modbus_plant_attack.pcap", "auditor")
    assert cap["packets"] > 1000 and cap["events"] > 0 and cap["alerts"] > 0 and cap["error"] == ""
    body = c.get(f"/captures/{sha}?org=acme").get_data(as_text=True)
    assert 'id="replay-progress" value="100"' in body and "evidence.zip" in body
    assert body.count('class="alert-link"') == cap["alerts"]
    assert "http-equiv=\"refresh\"" not in body  # finished: no more refreshing
    assert stored(open_app) == [f"{sha}.pcap"]
    listed = c.get("/api/v1/captures").get_json()
    assert [x["sha256"] for x in listed["items"]] == [sha]
    audit = login(open_app.test_client(), "admin").get("/api/v1/audit?action=capture.upload").get_json()
    assert audit["total"] == 1 and audit["items"][0]["target"] == sha and audit["items"][0]["actor"] == "auditor"


def test_progress_states_are_visible_while_replaying(open_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(path, org, store, on_progress):  # type: ignore[no-untyped-def]
        on_progress(50, 100)
        started.set()
        assert release.wait(30)
        return captures.ReplayResult(packets=3, events=2, alerts=0, warnings=[])

    monkeypatch.setattr(captures, "replay_capture", slow)
    monkeypatch.setattr(captures, "PROGRESS_EVERY", 0.0)
    c = login(open_app.test_client(), "admin")
    first = upload(c, pcap_header(b"\xd4\xc3\xb2\xa1"), "a.pcap")
    second = upload(c, pcap_header(b"\xa1\xb2\xc3\xd4", ">"), "b.pcap")  # big-endian: queued behind the first
    assert (first.status_code, second.status_code) == (202, 202)
    assert started.wait(30)
    a, b = first.get_json()["sha256"], second.get_json()["sha256"]
    now = c.get(f"/api/v1/captures/{a}").get_json()
    assert (now["status"], now["progress"]) == ("replaying", 50)
    assert c.get(f"/api/v1/captures/{b}").get_json()["status"] == "queued"
    page = c.get(f"/captures/{a}").get_data(as_text=True)
    assert 'value="50"' in page and '<meta http-equiv="refresh"' in page and "/api/v1/captures/" in page
    release.set()
    wait(open_app)
    assert [c.get(f"/api/v1/captures/{s}").get_json()["status"] for s in (a, b)] == ["done", "done"]


def test_a_failed_replay_shows_its_message(open_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path, org, store, on_progress):  # type: ignore[no-untyped-def]
        raise RuntimeError("decoder exploded at frame 7")

    monkeypatch.setattr(captures, "replay_capture", broken)
    c = login(open_app.test_client(), "auditor")
    sha = upload(c, pcap_header(b"\xa1\xb2\x3c\x4d", ">")).get_json()["sha256"]  # nanosecond, big-endian
    wait(open_app)
    cap = c.get(f"/api/v1/captures/{sha}").get_json()
    assert cap["status"] == "failed" and "frame 7" in cap["error"]
    assert "decoder exploded at frame 7" in c.get(f"/captures/{sha}?org=acme").get_data(as_text=True)
    monkeypatch.undo()
    again = upload(c, pcap_header(b"\xa1\xb2\x3c\x4d", ">"))  # a failed one may be uploaded again
    assert again.status_code == 202
    wait(open_app)
    assert c.get(f"/api/v1/captures/{sha}").get_json()["status"] == "done"


def test_a_truncated_capture_finishes_with_a_warning(open_app: Flask) -> None:
    data = ATTACK.read_bytes()
    c = login(open_app.test_client(), "auditor")
    sha = upload(c, data[: len(data) // 2 + 7], "cut.pcap").get_json()["sha256"]
    wait(open_app)
    cap = c.get(f"/api/v1/captures/{sha}").get_json()
    assert cap["status"] == "done" and cap["warnings"] and cap["packets"] > 0
    assert any("trunc" in w.lower() or "cut" in w.lower() or "end" in w.lower() for w in cap["warnings"]), cap["warnings"]
    body = c.get(f"/captures/{sha}?org=acme").get_data(as_text=True)
    assert 'class="warning"' in body


def test_pcapng_and_nanosecond_little_endian_are_captures(open_app: Flask) -> None:
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20)
    c = login(open_app.test_client(), "admin")
    for data in (shb + idb, pcap_header(b"\x4d\x3c\xb2\xa1")):
        resp = upload(c, data, "x.cap")
        assert resp.status_code == 202, resp.get_json()
    wait(open_app)
    assert sorted(p.rsplit(".", 1)[1] for p in stored(open_app)) == ["pcap", "pcapng"]


# ---------------------------------------------------------------- limits and names


def test_oversize_upload_is_413_and_stores_nothing(db_path: Path) -> None:
    app = make_app(db_path, ORGANIZATION=None, MAX_UPLOAD_BYTES=4096)
    try:
        c = login(app.test_client(), "auditor")
        api = upload(c, ATTACK.read_bytes())
        assert api.status_code == 413 and api.get_json()["error"] == "request_entity_too_large"
        page = upload(c, ATTACK.read_bytes()[:4096 + 100], api=False)  # under the envelope, over the file limit
        assert page.status_code == 413 and "4096 B" in page.get_data(as_text=True)
        c.set_cookie("lang", "en")
        assert "Too large" in upload(c, ATTACK.read_bytes(), api=False).get_data(as_text=True)
        assert stored(app) == [] and c.get("/api/v1/captures").get_json()["total"] == 0
    finally:
        captures.close(app)
        close_app(app)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 a zip, not a capture", b"\x1f\x8b\x08 gzip", b"\xd4\xc3\xb2\xa1 short"])
def test_not_a_capture_is_400_with_a_message_and_stores_nothing(open_app: Flask, data: bytes) -> None:
    c = login(open_app.test_client(), "auditor")
    resp = upload(c, data, "report.pdf")
    assert resp.status_code == 400
    assert "pcap" in resp.get_json()["message"]
    assert stored(open_app) == [] and c.get("/api/v1/captures").get_json()["total"] == 0
    assert upload(c, data, "report.pdf", api=False).status_code == 400


def test_path_like_names_are_only_names(open_app: Flask, tmp_path: Path) -> None:
    c = login(open_app.test_client(), "auditor")
    resp = upload(c, ATTACK.read_bytes(), "../../etc/passwd.pcap")
    assert resp.status_code == 202
    cap = resp.get_json()
    assert cap["name"] == "passwd.pcap"
    assert stored(open_app) == [f"{cap['sha256']}.pcap"]
    assert not (captures.upload_dir(open_app).parent.parent / "etc").exists()
    assert captures.clean_name("..\\..\\windows\\x.pcapng") == "x.pcapng"
    assert captures.clean_name("../..") == "capture" and captures.clean_name("\x00a\nb.pcap") == "ab.pcap"
    wait(open_app)


def test_duplicate_upload_is_stored_and_replayed_once(open_app: Flask) -> None:
    c = login(open_app.test_client(), "auditor")
    first = upload(c, ATTACK.read_bytes(), "one.pcap")
    wait(open_app)
    second = upload(c, ATTACK.read_bytes(), "two.pcap")
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.get_json()["name"] == "one.pcap" and second.get_json()["status"] == "done"
    assert len(stored(open_app)) == 1 and c.get("/api/v1/captures").get_json()["total"] == 1
    page = upload(c, ATTACK.read_bytes(), "three.pcap", api=False)
    assert page.status_code == 303
    # the same file for another enterprise is another replay (its events carry that enterprise)
    other = upload(c, ATTACK.read_bytes(), "one.pcap", org="globex")
    assert other.status_code == 202 and len(stored(open_app)) == 1
    wait(open_app)
    assert c.get("/api/v1/captures").get_json()["total"] == 2


def test_upload_needs_the_csrf_token_and_an_uploading_role(open_app: Flask) -> None:
    c = login(open_app.test_client(), "auditor")
    assert upload(c, ATTACK.read_bytes(), csrf=False).status_code == 403
    assert upload(c, ATTACK.read_bytes(), csrf=False, api=False).status_code == 403
    assert stored(open_app) == []
    for role in ("analyst", "regulator"):
        assert upload(login(open_app.test_client(), role), ATTACK.read_bytes()).status_code == 403
    assert upload(c, ATTACK.read_bytes(), org=None).status_code == 400  # which enterprise?
    assert upload(c, ATTACK.read_bytes(), org="initech").status_code == 400
    assert stored(open_app) == []


# ---------------------------------------------------------------- tenancy


def test_enterprises_see_only_their_own_captures(open_app: Flask) -> None:
    acme = login(open_app.test_client(), "acme-user")
    mine = upload(acme, ATTACK.read_bytes(), "acme.pcap", org="globex")  # the field is ignored for them
    assert mine.status_code == 202 and mine.get_json()["organization"] == "acme"
    sha = mine.get_json()["sha256"]
    wait(open_app)
    globex = login(open_app.test_client(), "globex-user")
    assert globex.get(f"/api/v1/captures/{sha}").status_code == 404
    assert globex.get(f"/api/v1/captures/{sha}?org=acme").status_code == 404
    assert globex.get(f"/captures/{sha}?org=acme").status_code == 404
    assert globex.get("/api/v1/captures?org=acme").get_json()["total"] == 0
    assert "acme.pcap" not in globex.get("/captures/?org=acme").get_data(as_text=True)
    assert acme.get(f"/captures/{sha}").status_code == 200
    assert acme.get("/api/v1/captures").get_json()["total"] == 1
    alert_id = acme.get("/api/v1/alerts?size=1").get_json()["items"][0]["event"]["id"]
    assert globex.get(f"/alerts/{alert_id}/evidence.zip").status_code == 404
    assert globex.get(f"/api/v1/alerts/{alert_id}/evidence.zip").status_code == 404
    assert globex.get(f"/alerts/{alert_id}/export").status_code == 404
    auditor = login(open_app.test_client(), "auditor")
    assert auditor.get(f"/api/v1/captures/{sha}").get_json()["organization"] == "acme"
    assert auditor.get("/api/v1/captures?org=globex").get_json()["total"] == 0


def test_a_pinned_console_uploads_for_its_enterprise_only(db_path: Path) -> None:
    app = make_app(db_path)  # pinned to acme
    try:
        c = login(app.test_client(), "auditor")
        assert upload(c, ATTACK.read_bytes(), org="globex").status_code == 400
        resp = upload(c, pcap_header(b"\xd4\xc3\xb2\xa1"), org=None)
        assert resp.status_code == 202 and resp.get_json()["organization"] == "acme"
        assert c.get(f"/api/v1/captures/{resp.get_json()['sha256']}?org=globex").status_code == 404
    finally:
        captures.close(app)
        close_app(app)
