"""监测预警 triage: the state machine, who may do what, CSRF, audit, filters, suppressions, the live stream, the matrix."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web.auth import get_db
from console.web.store import get_store
from console.web.triage import triage_states
from pipeline import schema as s
from tests.console.conftest import close_app, login, make_app
from tests.store import sample_data as sd

ALERT = "al-acme-004"  # rule qn-modbus-0002, source ROGUE, high


@pytest.fixture
def open_app(db_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(db_path, ORGANIZATION=None, ALERT_STREAM_SECONDS=1.5, ALERT_STREAM_POLL=0.1)
    yield app
    close_app(app)


def as_(app: Flask, user: str) -> tuple[FlaskClient, str]:
    c = login(app.test_client(), user)
    return c, c.get("/api/v1/session").get_json()["csrf_token"]


def post(c: FlaskClient, token: str, alert: str, action: str, **form: str):  # type: ignore[no-untyped-def]
    return c.post(f"/alerts/{alert}/triage", data={"csrf_token": token, "action": action, **form})


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [(e.actor, e.action, e.target) for e in get_db().audit_log(size=500)[0]]


def test_state_machine_history_and_audit(open_app: Flask) -> None:
    c, token = as_(open_app, "analyst")
    assert post(c, token, ALERT, "acknowledge", note="looking").status_code == 303
    assert post(c, token, ALERT, "acknowledge").status_code == 409  # only from new
    assert post(c, token, ALERT, "assign", assignee="acme-user").status_code == 400  # not an analyst
    assert post(c, token, ALERT, "assign", assignee="admin").status_code == 303
    assert post(c, token, ALERT, "escalate", note="regulator should know").status_code == 303
    assert post(c, token, ALERT, "close_fp", note="test traffic").status_code == 303
    assert post(c, token, ALERT, "escalate").status_code == 409  # closed
    assert post(c, token, ALERT, "bogus").status_code == 400
    body = c.get(f"/api/v1/alerts/{ALERT}/triage").get_json()
    assert body["state"] == "false_positive" and body["assignee"] == "admin"
    assert [h["action"] for h in body["history"]] == ["acknowledge", "assign", "escalate", "close_fp"]
    assert [h["state"] for h in body["history"]] == ["acknowledged", "in_progress", "escalated", "false_positive"]
    assert body["history"][0]["actor"] == "analyst" and body["history"][0]["note"] == "looking"
    page = c.get(f"/alerts/{ALERT}").get_data(as_text=True)
    assert 'id="triage"' in page and "test traffic" in page
    assert post(c, token, ALERT, "reopen").status_code == 303
    acts = [a for _u, a, t in audit_actions(open_app) if t == ALERT]
    assert acts.count("triage.acknowledge") == 1 and "triage.close_fp" in acts and "triage.reopen" in acts
    with open_app.app_context():
        assert triage_states([ALERT, "al-acme-005"]) == {ALERT: "acknowledged", "al-acme-005": "new"}


def test_csrf_is_required(open_app: Flask) -> None:
    c, _token = as_(open_app, "analyst")
    assert c.post(f"/alerts/{ALERT}/triage", data={"action": "acknowledge"}).status_code == 403
    assert c.post(f"/api/v1/alerts/{ALERT}/triage", json={"action": "acknowledge"}).status_code == 403
    assert c.get(f"/api/v1/alerts/{ALERT}/triage").get_json()["state"] == "new"


def test_enterprise_users_comment_on_their_own_but_do_not_triage(open_app: Flask) -> None:
    c, token = as_(open_app, "acme-user")
    assert post(c, token, ALERT, "comment", note="we are on it").status_code == 303
    assert post(c, token, ALERT, "comment").status_code == 400  # empty comment
    for action in ("acknowledge", "close_tp", "close_fp", "suppress", "escalate"):
        assert post(c, token, ALERT, action).status_code == 403, action
    assert post(c, token, "al-globex-000", "comment", note="peek").status_code == 404
    assert c.get("/api/v1/alerts/al-globex-000/triage").status_code == 404
    hist = c.get(f"/api/v1/alerts/{ALERT}/triage").get_json()["history"]
    assert [(h["actor"], h["action"]) for h in hist] == [("acme-user", "comment")]
    g, gtoken = as_(open_app, "globex-user")
    assert g.post(f"/api/v1/alerts/{ALERT}/triage", json={"action": "comment", "note": "x"},
                  headers={"X-CSRF-Token": gtoken}).status_code == 404
    auditor, atoken = as_(open_app, "auditor")
    assert post(auditor, atoken, ALERT, "comment", note="x").status_code == 403


def test_api_post(open_app: Flask) -> None:
    c, token = as_(open_app, "analyst")
    h = {"X-CSRF-Token": token}
    r = c.post(f"/api/v1/alerts/{ALERT}/triage", json={"action": "close_tp", "note": "real"}, headers=h)
    assert r.status_code == 200 and r.get_json()["state"] == "resolved"
    assert c.post(f"/api/v1/alerts/{ALERT}/triage", json={"action": "close_tp"}, headers=h).status_code == 409
    assert c.post(f"/api/v1/alerts/{ALERT}/triage", json={"note": "no action"}, headers=h).status_code == 400
    assert c.post(f"/api/v1/alerts/{ALERT}/triage", json={"action": "suppress", "days": "x"}, headers=h).status_code == 400


def ids(c: FlaskClient, query: str) -> list[str]:
    html = c.get(f"/alerts/?size=500&{query}").get_data(as_text=True)
    return re.findall(r'href="/alerts/(al-[a-z]+-\d+)"', html)


def test_list_shows_and_filters_by_state(open_app: Flask) -> None:
    c, token = as_(open_app, "analyst")
    post(c, token, "al-acme-004", "close_fp")
    post(c, token, "al-acme-007", "acknowledge")
    assert ids(c, "triage=false_positive") == ["al-acme-004"]
    assert ids(c, "triage=acknowledged") == ["al-acme-007"]
    assert sorted(ids(c, "triage=closed")) == ["al-acme-004"]
    new = ids(c, "triage=new&org=acme")
    assert len(new) == sd.N_ACME - 2 and "al-acme-004" not in new and "al-acme-007" not in new
    assert len(ids(c, "triage=open&org=acme")) == sd.N_ACME - 1
    api = c.get("/alerts/?triage=new&org=acme&size=10&page=2").get_data(as_text=True)
    assert "pager" in api
    assert c.get("/alerts/?triage=nope").status_code == 400
    assert c.get("/alerts/?suppressed=nope").status_code == 400
    html = c.get("/alerts/?size=500&org=acme").get_data(as_text=True)
    assert "triage-false_positive" in html and "triage-acknowledged" in html


def test_suppress_similar(open_app: Flask) -> None:
    c, token = as_(open_app, "analyst")
    assert post(c, token, ALERT, "suppress", days="7", note="maintenance window").status_code == 303
    # same rule (i % 3 == 1), same source (even i: ROGUE), same destination (PLC)
    expected = sorted(f"al-acme-{i:03d}" for i in range(sd.N_ACME) if i % 3 == 1 and i % 2 == 0)
    assert sorted(ids(c, "suppressed=only")) == expected
    shown = ids(c, "suppressed=hide&org=acme")
    assert len(shown) == sd.N_ACME - len(expected) and not set(shown) & set(expected)
    page = c.get("/alerts/suppressions").get_data(as_text=True)
    assert "qn-modbus-0002" in page and "maintenance window" in page and sd.ROGUE in page
    assert post(c, token, ALERT, "suppress", days="999").status_code == 400
    g, _t = as_(open_app, "globex-user")
    assert "qn-modbus-0002" not in g.get("/alerts/suppressions").get_data(as_text=True)
    assert ids(g, "suppressed=only") == []
    assert any(a == "triage.suppress" for _u, a, _t in audit_actions(open_app))


def _new_alert(org: str, i: int, when: dt.datetime) -> s.Event:
    return s.Event(timestamp=when, event=s.EventInfo(kind="alert", dataset="qinling.alert", severity=73, id=f"al-{org}-live-{i}"),
                   message=f"live {org} {i}", organization=s.Organization(id=org),
                   rule=s.RuleInfo(id="qn-live", name=f"Live rule {org}"), source=s.Endpoint(ip="10.9.9.9", port=1),
                   destination=s.Endpoint(ip="10.9.9.10", port=502))


def test_stream_sends_new_alerts_of_the_users_tenancy_only(open_app: Flask) -> None:
    later = sd.BASE + dt.timedelta(days=1)

    def write() -> None:
        time.sleep(0.4)
        with open_app.app_context():
            get_store().write([_new_alert("acme", 1, later), _new_alert("globex", 1, later)])

    for user, mine, theirs in (("acme-user", "al-acme-live-1", "al-globex-live-1"),):
        c, _t = as_(open_app, user)
        t = threading.Thread(target=write)
        t.start()
        started = time.monotonic()
        resp = c.get("/alerts/stream")
        body = resp.get_data(as_text=True)
        t.join()
        assert resp.mimetype == "text/event-stream" and time.monotonic() - started < 10
        assert f'"id": "{mine}"' in body and theirs not in body and "event: alert" in body
        assert "al-acme-059" not in body  # only alerts newer than the connection
    # a regulator reconnecting with Last-Event-ID gets both, and nothing older
    r, _t = as_(open_app, "regulator")
    body = r.get("/alerts/stream", headers={"Last-Event-ID": f"{(later - dt.timedelta(seconds=1)).isoformat()}|x"}).get_data(as_text=True)
    assert "al-acme-live-1" in body and "al-globex-live-1" in body and "al-acme-058" not in body
    auditor, _t = as_(open_app, "auditor")
    assert auditor.get("/alerts/stream").status_code == 403


def test_alert_list_page_carries_the_stream_script(open_app: Flask) -> None:
    c, _t = as_(open_app, "analyst")
    html = c.get("/alerts/").get_data(as_text=True)
    assert 'data-stream="/alerts/stream' in html and "alert-stream.js" in html


def cell_count(html: str, tid: str) -> int:
    m = re.search(rf'data-technique="{tid}"[^>]*>[^<]*<strong class="count">(\d+)</strong>', html, re.S)
    return int(m.group(1)) if m else 0


def test_attack_matrix_counts_per_tenancy(open_app: Flask) -> None:
    c, _t = as_(open_app, "analyst")
    html = c.get("/attack/").get_data(as_text=True)
    # rule 0001 (T0855, T0836) on i % 3 == 0; 0002 (T0814) on 1; 0003 (T0888) on 2; globex: T0843 x3
    assert cell_count(html, "T0855") == 20 and cell_count(html, "T0836") == 20
    assert cell_count(html, "T0814") == 20 and cell_count(html, "T0888") == 20 and cell_count(html, "T0843") == 3
    assert "Impair Process Control" in html and "/alerts/?technique=T0855" in html
    e, _t = as_(open_app, "acme-user")
    mine = e.get("/attack/?org=globex").get_data(as_text=True)
    assert cell_count(mine, "T0855") == 20 and cell_count(mine, "T0843") == 0


def test_matrix_falls_back_to_the_bundled_techniques(db_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(db_path, ORGANIZATION=None, ATTACK_ICS=str(tmp_path / "absent"))
    try:
        c, _t = as_(app, "analyst")
        html = c.get("/attack/").get_data(as_text=True)
        assert "bundled" in html and cell_count(html, "T0855") == 20
    finally:
        close_app(app)
    from console.web.matrix import DEFAULT_PATH, load

    if (DEFAULT_PATH / "techniques.csv").is_file():
        techniques, source = load(None)
        assert len(techniques) == 83 and techniques["T0855"][1] == ("Impair Process Control",)
        stix, _src = load(DEFAULT_PATH / "ics-attack.json")
        assert stix["T0855"] == techniques["T0855"]


def test_api_alert_list_filters_by_triage_and_suppression(open_app: Flask) -> None:
    c, token = as_(open_app, "analyst")
    post(c, token, ALERT, "close_tp")
    assert [a["event"]["id"] for a in c.get("/api/v1/alerts?triage=resolved").get_json()["items"]] == [ALERT]
    assert c.get("/api/v1/alerts?triage=new&org=acme").get_json()["total"] == sd.N_ACME - 1
    post(c, token, ALERT, "suppress", days="1")
    only = c.get("/api/v1/alerts?suppressed=only&size=500").get_json()
    assert ALERT in {a["event"]["id"] for a in only["items"]} and only["total"] == 10
    assert c.get("/api/v1/alerts?triage=bogus").status_code == 400
