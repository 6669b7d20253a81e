"""通报应急: issue → acknowledge → answer → (closed | returned → answered …), who may do each, tenancy,
evidence files (type allowlist, size limit, sha256, parties only), overdue, CSRF, audit, the API."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from console.web.auth import get_db
from console.web.notices import MAX_FILE
from tests.console.conftest import close_app, login, make_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PCAP = b"\xd4\xc3\xb2\xa1" + b"\x00" * 20


@pytest.fixture
def open_app(db_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(db_path, ORGANIZATION=None)
    yield app
    close_app(app)


def as_(app: Flask, user: str) -> tuple[FlaskClient, str]:
    c = login(app.test_client(), user)
    return c, c.get("/api/v1/session").get_json()["csrf_token"]


def future(days: int = 7) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).isoformat(timespec="seconds")


def issue(c: FlaskClient, token: str, org: str = "acme", alerts: str = "al-acme-004 al-acme-008", deadline: str | None = None,
          **more: str) -> int:
    resp = c.post("/notices/new", data={"csrf_token": token, "organization": org, "title": "Modbus 写操作未授权",
                                         "body": "请核查并整改", "severity": "high", "deadline": deadline or future(),
                                         "alert_ids": alerts, **more})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:800]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def act(c: FlaskClient, token: str, nid: int, action: str, files: list[tuple[bytes, str]] | None = None, **form: str):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"csrf_token": token, "action": action, **form}
    if files:
        data["files"] = [(io.BytesIO(b), name) for b, name in files]
    return c.post(f"/notices/{nid}", data=data, content_type="multipart/form-data")


def state(c: FlaskClient, nid: int) -> str:
    return str(c.get(f"/api/v1/notices/{nid}").get_json()["state"])


def test_full_workflow_with_return_and_audit(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    ent, et = as_(open_app, "acme-user")
    nid = issue(reg, rt)
    assert state(ent, nid) == "issued"
    assert act(reg, rt, nid, "close").status_code == 409  # not answered yet
    assert act(ent, et, nid, "answer", remediation="done").status_code == 409  # acknowledge first
    assert act(ent, et, nid, "acknowledge").status_code == 303
    assert act(ent, et, nid, "answer").status_code == 400  # remediation text required
    assert act(ent, et, nid, "answer", remediation="已封堵 10.0.0.66", files=[(PNG, "shot.png"), (PCAP, "trace.pcap")]).status_code == 303
    assert state(reg, nid) == "answered"
    assert act(reg, rt, nid, "return").status_code == 400  # a note says why
    assert act(reg, rt, nid, "return", note="缺少配置截图").status_code == 303
    assert state(ent, nid) == "returned"
    assert act(ent, et, nid, "answer", remediation="补充截图").status_code == 303
    assert act(reg, rt, nid, "close", note="核验通过").status_code == 303
    n = reg.get(f"/api/v1/notices/{nid}").get_json()
    assert n["state"] == "closed" and n["remediation"] == "补充截图" and not n["overdue"]
    assert [h["action"] for h in n["history"]] == ["issue", "acknowledge", "answer", "return", "answer", "close"]
    assert [f["sha256"] for f in n["files"]] == [hashlib.sha256(PNG).hexdigest(), hashlib.sha256(PCAP).hexdigest()]
    assert act(ent, et, nid, "answer", remediation="again").status_code == 409
    with open_app.app_context():
        entries = [(e.actor, e.action) for e in get_db().audit_log(size=500)[0] if e.target == f"notice:{nid}"]
    assert [a for _u, a in reversed(entries)] == ["notice.issue", "notice.acknowledge", "notice.answer", "notice.return",
                                                   "notice.answer", "notice.close"]
    page = ent.get(f"/notices/{nid}").get_data(as_text=True)
    assert "缺少配置截图" in page and "shot.png" in page
    alert_page = ent.get("/alerts/al-acme-004").get_data(as_text=True)
    assert f'href="/notices/{nid}"' in alert_page  # the alert links back to its notice


def test_who_may_do_what(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    ent, et = as_(open_app, "acme-user")
    nid = issue(reg, rt)
    assert act(reg, rt, nid, "acknowledge").status_code == 403  # the enterprise acknowledges
    act(ent, et, nid, "acknowledge")
    act(ent, et, nid, "answer", remediation="x")
    assert act(ent, et, nid, "close").status_code == 403  # enterprise cannot verify
    assert act(ent, et, nid, "return", note="x").status_code == 403
    an, at = as_(open_app, "analyst")
    assert an.get(f"/notices/{nid}").status_code == 200  # analysts read
    assert act(an, at, nid, "close").status_code == 403
    assert an.post("/notices/new", data={"csrf_token": at, "organization": "acme"}).status_code == 403
    ent2, et2 = as_(open_app, "acme-user")
    assert ent2.post("/notices/new", data={"csrf_token": et2}).status_code == 403
    aud, _t = as_(open_app, "auditor")
    assert aud.get("/notices/").status_code == 403
    admin, adt = as_(open_app, "admin")
    assert act(admin, adt, nid, "close").status_code == 303


def test_enterprises_see_and_answer_only_their_own(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    a_id = issue(reg, rt, "acme")
    g_id = issue(reg, rt, "globex", alerts="al-globex-000", title="GLOBEX-ONLY notice")
    acme, at = as_(open_app, "acme-user")
    globex, gt = as_(open_app, "globex-user")
    listing = acme.get("/notices/?org=globex").get_data(as_text=True)
    assert f"/notices/{a_id}" in listing and f"/notices/{g_id}" not in listing and "GLOBEX-ONLY" not in listing
    assert [n["id"] for n in acme.get("/api/v1/notices?org=globex").get_json()["items"]] == [a_id]
    for url in (f"/notices/{g_id}", f"/api/v1/notices/{g_id}"):
        assert acme.get(url).status_code == 404
    assert act(acme, at, g_id, "acknowledge").status_code == 404
    assert acme.post(f"/api/v1/notices/{g_id}/actions", json={"action": "acknowledge"}, headers={"X-CSRF-Token": at}).status_code == 404
    assert act(globex, gt, a_id, "acknowledge").status_code == 404
    assert state(reg, a_id) == "issued"
    # regulators see every enterprise's, or one
    assert {n["id"] for n in reg.get("/api/v1/notices").get_json()["items"]} == {a_id, g_id}
    assert [n["id"] for n in reg.get("/api/v1/notices?org=globex").get_json()["items"]] == [g_id]


def test_files_checked_and_served_to_the_parties_only(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    ent, et = as_(open_app, "acme-user")
    nid = issue(reg, rt)
    act(ent, et, nid, "acknowledge")
    assert act(ent, et, nid, "answer", remediation="x", files=[(b"MZ\x90", "tool.exe")]).status_code == 400
    assert act(ent, et, nid, "answer", remediation="x", files=[(b"<html>", "fake.png")]).status_code == 400
    # built by hand so the spooled request body is closed (the test client leaves it open)
    big = EnvironBuilder(path=f"/notices/{nid}", method="POST", data={
        "csrf_token": et, "action": "answer", "remediation": "x", "files": (io.BytesIO(b"%PDF-" + b"0" * MAX_FILE), "big.pdf")})
    try:
        env = big.get_environ()
        assert ent.open(env).status_code == 413
    finally:
        big.close()
        env["wsgi.input"].close()
    assert state(reg, nid) == "acknowledged"  # nothing half-done
    assert act(ent, et, nid, "answer", remediation="x", files=[(b"%PDF-1.7 report", "报告.pdf"), ("日志".encode(), "log.txt")]).status_code == 303
    files = reg.get(f"/api/v1/notices/{nid}").get_json()["files"]
    pdf = files[0]
    for c in (reg, ent):
        r = c.get(f"/notices/{nid}/files/{pdf['id']}")
        assert r.status_code == 200 and r.data == b"%PDF-1.7 report" and r.mimetype == "application/pdf"
        assert r.headers["X-Content-SHA256"] == hashlib.sha256(b"%PDF-1.7 report").hexdigest()
        assert "attachment" in r.headers["Content-Disposition"]
    globex, _t = as_(open_app, "globex-user")
    analyst, _t = as_(open_app, "analyst")
    assert globex.get(f"/notices/{nid}/files/{pdf['id']}").status_code == 404
    assert analyst.get(f"/notices/{nid}/files/{pdf['id']}").status_code == 404
    assert reg.get(f"/notices/{nid}/files/999").status_code == 404


def test_issue_checks_the_alerts_are_the_enterprises(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    r = reg.post("/notices/new", data={"csrf_token": rt, "organization": "acme", "title": "t", "deadline": future(),
                                       "alert_ids": "al-globex-000"})
    assert r.status_code == 400
    r = reg.post("/notices/new", data={"csrf_token": rt, "organization": "nobody", "title": "t", "deadline": future(),
                                       "alert_ids": "al-acme-004"})
    assert r.status_code == 400
    assert reg.get("/api/v1/notices").get_json()["total"] == 0
    form = reg.get("/notices/new?alert=al-acme-004&organization=acme").get_data(as_text=True)
    assert "al-acme-004" in form


def test_csrf_on_every_post(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    nid = issue(reg, rt)
    assert reg.post("/notices/new", data={"organization": "acme", "title": "t", "deadline": future(),
                                          "alert_ids": "al-acme-004"}).status_code == 403
    ent, _et = as_(open_app, "acme-user")
    assert ent.post(f"/notices/{nid}", data={"action": "acknowledge"}).status_code == 403
    assert ent.post(f"/api/v1/notices/{nid}/actions", json={"action": "acknowledge"}).status_code == 403
    assert reg.post("/api/v1/notices", json={"organization": "acme"}).status_code == 403
    assert state(reg, nid) == "issued"


def test_overdue_stands_out(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    late = issue(reg, rt, deadline=(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat(timespec="seconds"))
    ok = issue(reg, rt)
    items = {n["id"]: n for n in reg.get("/api/v1/notices").get_json()["items"]}
    assert items[late]["overdue"] and not items[ok]["overdue"]
    assert [n["id"] for n in reg.get("/api/v1/notices?overdue=1").get_json()["items"]] == [late]
    html = reg.get("/notices/").get_data(as_text=True)
    assert len(re.findall(r'<tr class="overdue"', html)) == 1
    ent, _t = as_(open_app, "acme-user")
    assert "overdue-flag" in ent.get(f"/notices/{late}").get_data(as_text=True)
    assert reg.get("/notices/?state=bogus").status_code == 400


def test_api_workflow(open_app: Flask) -> None:
    reg, rt = as_(open_app, "regulator")
    r = reg.post("/api/v1/notices", json={"organization": "acme", "title": "API notice", "severity": "critical",
                                          "deadline": future(3), "alert_ids": ["al-acme-004"], "finding_ids": ["CVE-2024-0001"]},
                 headers={"X-CSRF-Token": rt})
    assert r.status_code == 201, r.get_json()
    nid = r.get_json()["id"]
    ent, et = as_(open_app, "acme-user")
    h = {"X-CSRF-Token": et}
    assert ent.post(f"/api/v1/notices/{nid}/actions", json={"action": "acknowledge"}, headers=h).get_json()["state"] == "acknowledged"
    assert ent.post(f"/api/v1/notices/{nid}/actions", json={"action": "answer", "remediation": "patched"}, headers=h).status_code == 200
    assert ent.post(f"/api/v1/notices/{nid}/actions", json={"action": "nope"}, headers=h).status_code == 400
    done = reg.post(f"/api/v1/notices/{nid}/actions", json={"action": "close"}, headers={"X-CSRF-Token": rt}).get_json()
    assert done["state"] == "closed" and done["finding_ids"] == ["CVE-2024-0001"]
    assert reg.post("/api/v1/notices", json={"organization": "acme"}, headers={"X-CSRF-Token": rt}).status_code == 400
