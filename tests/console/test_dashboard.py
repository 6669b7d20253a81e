"""企业看板: the numbers on an enterprise's dashboard are the API's, the risk score is risk_report's, triage and
notices move them, and other roles choose an enterprise (auditors are sent to their own start page)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from console.web.auth import get_db
from tests.console.analysis_data import analysis_app, expected_report
from tests.console.conftest import close_app, login
from tests.store import sample_data as sd


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Iterator[Flask]:
    app = analysis_app(db_path, tmp_path)
    yield app
    close_app(app)


def client(app: Flask, username: str, lang: str = "en"):  # type: ignore[no-untyped-def]
    c = app.test_client()
    c.set_cookie("lang", lang)
    return login(c, username)


def bearer(app: Flask, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_db(app).create_token(username, 'tests')}"}


def metrics(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([^"]+)">([^<]*)<', html))


def dig(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def shown_equals_api(html: str, api: dict[str, Any]) -> dict[str, str]:
    shown = metrics(html)
    assert {"alerts.open", "assets.total", "risk.score", "notices.open", "assessment.status"} <= set(shown)
    for path, text in shown.items():
        want = dig(api, path)
        if path == "risk.score":
            assert float(text) == pytest.approx(want, abs=0.05), path
        elif path == "assessment.status":
            assert text.strip(), path
        else:
            assert str(want) == text.strip(), path
    return shown


def test_enterprise_user_lands_on_its_dashboard_and_page_equals_api_equals_risk_report(app: Flask, db_path: Path) -> None:
    c = client(app, "acme-user")
    landing = c.get("/")
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/dashboard/")
    html = c.get("/dashboard/?org=globex").get_data(as_text=True)  # ?org= cannot reach another enterprise
    api = c.get("/api/v1/dashboard?org=globex").get_json()
    assert api["organization"]["id"] == "acme" and "Globex" not in html and "192.168.7." not in html
    shown_equals_api(html, api)
    a = api["alerts"]
    assert a["total"] == sd.N_ACME and a["by_severity"] == {"critical": 15, "high": 15, "medium": 15, "low": 15}
    assert a["open_by_severity"] == a["by_severity"] and a["open"] == sd.N_ACME
    assert [x["id"] for x in a["latest"]] == [f"al-acme-{i:03d}" for i in range(59, 54, -1)]
    assert len(a["trend"]) == 14 and a["trend"][-1] == {"day": "2024-05-01", "count": sd.N_ACME}
    assert sum(p["count"] for p in a["trend"]) == sd.N_ACME
    assert re.findall(r'data-day="([^"]+)" data-count="(\d+)"', html) == [(p["day"], str(p["count"])) for p in a["trend"]]
    # risk: the enterprise score and breakdown are risk_report's over the same inputs
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]), org="acme")
    acme = next(e for e in want["enterprises"] if e["subject"] == "acme")
    assert api["risk"]["score"] == acme["score"] and api["risk"]["breakdown"] == acme["breakdown"]
    top = [x for x in want["assets"] if x["subject"].startswith("acme:")][:3]
    assert [(x["subject"], x["score"]) for x in api["risk"]["top_assets"]] == [(x["subject"], x["score"]) for x in top]
    assert re.findall(r'class="risk-asset" data-subject="([^"]+)" data-score="([^"]+)"', html) == \
        [(x["subject"], str(x["score"])) for x in top]
    for comp in acme["breakdown"]:
        assert f'data-key="{comp["key"]}"' in html and comp["reason_en"] in html
    # assets: by identified role, the rest unidentified; newest first
    assets = api["assets"]
    assert assets["total"] == 4 and assets["by_role"] == [{"role": "plc", "count": 1}] and assets["unidentified"] == 3
    assert assets["newest"][0]["first_seen"] >= assets["newest"][-1]["first_seen"]
    assert api["assessment"] == {"status": "none", "draft": False, "submitted": None, "score": None, "areas": {}, "gaps": None}
    assert api["notices"] == {"open": 0, "overdue": 0, "next_deadline": None, "items": []}
    assert sd.HOSTILE not in html  # the newest alert's message is hostile; escaped or not shown


def test_triage_notices_and_self_assessment_move_the_numbers(app: Flask) -> None:
    analyst, regulator = bearer(app, "analyst"), bearer(app, "regulator")
    for alert_id, action in (("al-acme-000", "close_tp"), ("al-acme-004", "close_fp"), ("al-acme-001", "acknowledge")):
        r = app.test_client().post(f"/api/v1/alerts/{alert_id}/triage", json={"action": action}, headers=analyst)
        assert r.status_code == 200, r.get_json()
    for title, deadline in (("逾期通报", "2020-01-01T00:00:00+00:00"), ("未到期通报", "2099-01-01T00:00:00+00:00")):
        r = app.test_client().post("/api/v1/notices", headers=regulator, json={
            "organization": "acme", "title": title, "deadline": deadline, "alert_ids": ["al-acme-008"], "severity": "high"})
        assert r.status_code == 201, r.get_json()
    closed = app.test_client().post("/api/v1/notices", headers=regulator, json={
        "organization": "globex", "title": "GLOBEX-ONLY notice", "deadline": "2020-01-01T00:00:00+00:00",
        "alert_ids": ["al-globex-000"]})
    assert closed.status_code == 201
    c = client(app, "acme-user")
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    r = c.post("/assessment/", data={"csrf_token": token, "action": "submit", "answer-M1": "yes", "answer-M2": "no"})
    assert r.status_code == 303
    api = c.get("/api/v1/dashboard").get_json()
    html = c.get("/dashboard/").get_data(as_text=True)
    shown_equals_api(html, api)
    # al-acme-000 is critical (i % 4 == 0), al-acme-004 critical too: two closed; acknowledged stays open
    assert api["alerts"]["open_by_severity"] == {"critical": 13, "high": 15, "medium": 15, "low": 15}
    assert api["alerts"]["open"] == sd.N_ACME - 2
    n = api["notices"]
    assert (n["open"], n["overdue"]) == (2, 1) and n["next_deadline"].startswith("2020-01-01")
    assert [x["title"] for x in n["items"]] == ["逾期通报", "未到期通报"] and "GLOBEX-ONLY" not in html
    assert html.count('class="notice-row overdue-row"') == 1 and 'data-metric="notices.overdue">1<' in html
    sa = api["assessment"]
    with sqlite3.connect(app.config["CONSOLE_DB"]) as db:
        (result,) = db.execute("SELECT result FROM assessments WHERE organization = 'acme' AND status = 'submitted'").fetchone()
    import json

    assert sa["status"] == "submitted" and sa["score"] == json.loads(result)["total"] and sa["submitted"]
    assert set(sa["areas"]) == {"management", "technical", "operations", "responsibility"} and sa["gaps"] >= 1
    assert f'data-metric="assessment.score">{sa["score"]}<' in html


def test_other_roles_choose_an_enterprise_and_auditors_go_home(app: Flask) -> None:
    for username in ("regulator", "analyst", "admin"):
        c = client(app, username)
        choose = c.get("/dashboard/").get_data(as_text=True)
        assert "/dashboard/?org=acme" in choose and "/dashboard/?org=globex" in choose
        assert c.get("/api/v1/dashboard").status_code == 400
        api = c.get("/api/v1/dashboard?org=globex").get_json()
        assert api["organization"]["id"] == "globex" and api["alerts"]["total"] == 3 and api["assets"]["total"] == 1
        shown_equals_api(c.get("/dashboard/?org=globex").get_data(as_text=True), api)
    auditor = client(app, "auditor")
    assert auditor.get("/dashboard/").status_code == 302
    assert auditor.get("/api/v1/dashboard?org=acme").status_code == 403


def test_dashboard_in_both_languages(app: Flask) -> None:
    zh = client(app, "acme-user", "zh-CN").get("/dashboard/").get_data(as_text=True)
    for word in ("企业看板", "未处置告警", "监管通报", "风险评估", "检查评估"):
        assert word in zh, word
    en = client(app, "acme-user", "en").get("/dashboard/").get_data(as_text=True)
    assert "Enterprise dashboard" in en and "Open alerts" in en
    nav = re.search(r'<nav class="nav">(.*?)</nav>', zh, re.S).group(1)  # type: ignore[union-attr]
    assert "企业看板" in nav and "事件检索" in nav and "态势感知" not in nav  # the enterprise's start is its dashboard
