"""`/api/v1` risk, map, findings and self-assessment (console/web/api_risk.py): the numbers are the pages' and
risk_report's, tenancy holds, and every response validates against the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from detection.commap import build_commap
from detection.risk import Gap
from detection.vulns.csaf import Index
from detection.vulns.match import match_inventory
from pipeline.store import Query
from pipeline.store.sqlite import SQLiteStore
from tests.console.analysis_data import analysis_app, expected_report
from tests.console.conftest import close_app, login
from tests.console.test_assessment import example_answers


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Iterator[Flask]:
    app = analysis_app(db_path, tmp_path)
    yield app
    close_app(app)


def client(app: Flask, username: str) -> FlaskClient:
    c = app.test_client()
    c.set_cookie("lang", "en")
    return login(c, username)


def get(app: Flask, username: str, url: str, status: int = 200) -> Any:
    resp = client(app, username).get(url)
    assert resp.status_code == status, (username, url, resp.status_code, resp.get_data(as_text=True)[:300])
    return resp.get_json()


def conforms(app: Flask, path: str, method: str, body: Any) -> None:
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]})


def _scores(report: dict[str, Any], kind: str) -> dict[str, float]:
    return {s["subject"]: s["score"] for s in report[kind]}


def test_risk_is_risk_reports_and_the_pages(app: Flask, db_path: Path) -> None:
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]))
    got = get(app, "regulator", "/api/v1/risk")
    conforms(app, "/api/v1/risk", "get", got)
    for kind in ("assets", "enterprises", "cities", "industries"):
        assert got[kind] == want[kind], kind
        assert got[kind], kind
        html = client(app, "regulator").get(f"/risk/?view={kind}").get_data(as_text=True)
        shown = {s: float(v) for s, v in re.findall(r'<tr class="risk-row" data-subject="([^"]+)" data-score="([^"]+)"', html)}
        assert shown == _scores(got, kind), kind
    acme = next(s for s in got["enterprises"] if s["subject"] == "acme")
    assert acme["breakdown"] and sum(c["points"] for c in acme["breakdown"]) == pytest.approx(acme["score"], abs=0.05)
    assert len(acme["trend"]) == 14 or acme["trend"] == []  # a daily trend (asset trends: 14 days)
    assert len(next(s for s in got["assets"])["trend"]) == 14


def test_risk_tenancy(app: Flask, db_path: Path) -> None:
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]), org="acme")
    own = get(app, "acme-user", "/api/v1/risk?org=globex")
    assert _scores(own, "enterprises") == {"acme": _scores(want, "enterprises")["acme"]}
    assert own["assets"] == want["assets"] and own["cities"] == own["industries"] == []
    assert "globex" not in str(own).lower()
    narrowed = get(app, "regulator", "/api/v1/risk?org=globex")
    assert set(_scores(narrowed, "enterprises")) == {"globex"} and narrowed["cities"] == []
    get(app, "auditor", "/api/v1/risk", status=403)


def test_map_is_the_stored_traffics_graph(app: Flask, db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        assets = store.search_assets(Query(organization="acme", sort="last_seen", size=5000)).items
        events = store.search("events", Query(organization="acme", size=10_000)).items
    want = build_commap(events, assets)
    got = get(app, "acme-user", "/api/v1/map")
    conforms(app, "/api/v1/map", "get", got)
    assert got["summary"] == want["summary"] and got["summary"]["edges"] > 0
    assert [e["id"] for e in got["edges"]] == [e["id"] for e in want["edges"]]
    assert [e["flags"] for e in got["edges"]] == [e["flags"] for e in want["edges"]]
    assert {n["organization"] for n in got["nodes"]} == {"acme"}
    html = client(app, "acme-user").get("/inventory/map").get_data(as_text=True)
    for e in got["edges"][:5]:
        assert e["source"].split(":", 1)[1] in html and e["target"].split(":", 1)[1] in html
    both = get(app, "regulator", "/api/v1/map")
    assert {n["organization"] for n in both["nodes"]} == {"acme", "globex"}
    get(app, "auditor", "/api/v1/map", status=403)


def test_findings_are_the_csaf_match(app: Flask, db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        assets = store.search_assets(Query(sort="last_seen", size=5000)).items
    want = match_inventory(assets, Index.load(app.config["CSAF_INDEX"]))
    assert want, "the analysis data's PLC matches the fixture advisory"
    got = get(app, "regulator", "/api/v1/findings")
    conforms(app, "/api/v1/findings", "get", got)
    assert got["total"] == len(want) and got["problem"] is None
    assert [(f["advisory_id"], f["asset_id"], f["max_cvss"]) for f in got["items"]] == \
        sorted([(f.advisory_id, f.asset_id, f.max_cvss) for f in want], key=lambda t: (t[2] or 0.0, t[0]), reverse=True)
    html = client(app, "regulator").get("/inventory/findings").get_data(as_text=True)
    assert all(f["advisory_id"] in html for f in got["items"])
    orgs = {f["organization"] for f in got["items"]}
    for username, org in (("acme-user", "acme"), ("globex-user", "globex")):
        mine = get(app, username, "/api/v1/findings")
        assert {f["organization"] for f in mine["items"]} <= {org}
        assert len(mine["items"]) == sum(1 for f in got["items"] if f["organization"] == org)
    assert orgs  # at least one enterprise has a finding


def test_findings_without_an_index_say_why(db_path: Path) -> None:
    from tests.console.conftest import make_app

    app = make_app(db_path, ORGANIZATION=None, CSAF_INDEX=str(db_path.parent / "none.json"))
    try:
        got = get(app, "regulator", "/api/v1/findings")
        assert got == {"items": [], "total": 0, "problem": "missing"}
    finally:
        close_app(app)


def _send(c: FlaskClient, method: str, url: str, body: Any) -> Any:
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    return c.open(url, method=method, json=body, headers={"X-CSRF-Token": token})


def test_assessment_save_submit_and_read(app: Flask, db_path: Path) -> None:
    c = client(app, "acme-user")
    start = c.get("/api/v1/assessment").get_json()
    conforms(app, "/api/v1/assessment", "get", start)
    assert start["organization"]["id"] == "acme" and start["editable"] and start["draft"] is None
    assert set(start["prefill"]) and all(isinstance(v, dict) for v in start["prefill"].values())
    answers = example_answers()
    answers["M2"]["note"] = "两台 PLC 未冗余"
    saved = _send(c, "PUT", "/api/v1/assessment/draft", {"answers": answers})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    conforms(app, "/api/v1/assessment/draft", "put", saved.get_json())
    draft = saved.get_json()["draft"]
    assert draft["status"] == "draft" and draft["answers"]["M2"] == {"answer": "partly", "note": "两台 PLC 未冗余"}
    html = c.get("/assessment/").get_data(as_text=True)
    assert "两台 PLC 未冗余" in html  # the page shows the draft the API saved
    done = _send(c, "POST", "/api/v1/assessment/submit", {})  # no answers: the saved draft
    assert done.status_code == 200
    state = done.get_json()
    result = state["report"]["result"]
    assert state["latest"]["status"] == "submitted" and state["draft"] is None
    # the pinned arithmetic of test_assessment.py, and the HTML report's number
    assert result["total"] == 84.3
    assert [r["id"] for r in result["remediation"]] == ["T4", "O9", "M1", "R1", "M2"]
    report = c.get("/assessment/report").get_data(as_text=True)
    assert f'<th class="num" id="total-score">{result["total"]}</th>' in report
    # the regulator reads it; globex's user cannot
    reg = get(app, "regulator", "/api/v1/assessment?org=acme")
    assert reg["latest"]["id"] == state["latest"]["id"] and reg["report"]["result"]["total"] == 84.3 and not reg["editable"]
    listed = get(app, "regulator", "/api/v1/assessments")
    conforms(app, "/api/v1/assessments", "get", listed)
    assert {r["organization"]["id"]: (r["latest"] or {}).get("id") for r in listed["items"]} == {
        "acme": state["latest"]["id"], "globex": None}
    other = get(app, "globex-user", "/api/v1/assessment?org=acme")
    assert other["organization"]["id"] == "globex" and other["latest"] is None
    assert get(app, "globex-user", "/api/v1/assessments")["items"] == [{"organization": other["organization"], "latest": None}]
    # and the gaps feed the enterprise's risk score, as on the risk page
    gaps = {"acme": [Gap("T4", 4.0), Gap("O9", 4.0), Gap("M1", 3.0), Gap("R1", 1.5), Gap("M2", 1.0)]}
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]), gaps=gaps)
    def keyed(scores: list[dict[str, Any]]) -> dict[str, tuple[float, list[tuple[str, float]]]]:
        return {s["subject"]: (s["score"], [(c["key"], c["points"]) for c in s["breakdown"]]) for s in scores}

    assert keyed(get(app, "regulator", "/api/v1/risk")["enterprises"]) == keyed(want["enterprises"])


def test_assessment_who_may_write_and_bad_bodies(app: Flask) -> None:
    for username in ("admin", "regulator", "analyst"):
        c = client(app, username)
        assert _send(c, "PUT", "/api/v1/assessment/draft?org=acme", {"answers": {}}).status_code == 403
        assert _send(c, "POST", "/api/v1/assessment/submit?org=acme", {"answers": {}}).status_code == 403
    assert get(app, "regulator", "/api/v1/assessment", status=400)["error"] == "bad_request"
    get(app, "auditor", "/api/v1/assessment", status=403)
    c = client(app, "acme-user")
    assert c.put("/api/v1/assessment/draft", json={"answers": {}}).status_code == 403  # no CSRF token
    for body in ({"answers": {"M1": {"answer": "maybe"}}}, {"answers": {"X9": {"answer": "yes"}}}, {"answers": []}, [], {}):
        resp = _send(c, "PUT", "/api/v1/assessment/draft", body)
        assert resp.status_code == 400, body
    assert _send(c, "POST", "/api/v1/assessment/submit", {}).status_code == 400  # nothing saved to submit
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    assert c.put("/api/v1/assessment/draft", data="x", headers={"X-CSRF-Token": token}).status_code == 415
    assert c.get("/api/v1/assessment").get_json()["draft"] is None  # nothing was saved by the refused calls
