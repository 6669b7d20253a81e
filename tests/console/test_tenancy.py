"""Tenancy everywhere: every route of the app, as every role, aimed at another enterprise's ids.

The routes come from `app.url_map`, so a route added later is walked too (and fails here until the
walk knows how to fill its arguments).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web.auth import PUBLIC, UNSAFE_METHODS
from tests.console.conftest import USERS, close_app, login, make_app
from tests.store import sample_data as sd

# ids that belong to each enterprise, and strings that only its documents contain
IDS = {
    "acme": {"alert_id": "al-acme-004", "asset_id": f"acme:{sd.PLC}", "username": "acme-user", "event_id": "ev-acme-4-req"},
    "globex": {"alert_id": "al-globex-000", "asset_id": "globex:192.168.7.1", "username": "globex-user",
               "event_id": "ev-globex-0-req"},
}
MARKERS = {
    "acme": ("al-acme-", sd.ROGUE, "Modbus write from unapproved host", "Acme 某石化", "acme-plant"),
    "globex": ("GLOBEX-ONLY", "al-globex-", "192.168.7.", "Globex 某水务", "globex-plant"),
}
OTHER_ARGS = {"code": "en", "filename": "console.css", "rest": "alerts", "_rest": "nothing", "sha256": "0" * 64,
              "notice_id": "1", "file_id": "1"}  # 通报: a notice and file id (test_notices walks real foreign ones)


@pytest.fixture
def open_app(db_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(db_path, ORGANIZATION=None)  # not pinned: every enterprise is in reach
    yield app
    close_app(app)


def urls(app: Flask, foreign: str) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule, with the foreign enterprise's ids in its arguments."""
    out = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            args = {}
            for name in rule.arguments:
                value = IDS[foreign].get(name, OTHER_ARGS.get(name))
                assert value is not None, f"the walk does not know how to fill <{name}> of {rule.rule}"
                args[name] = value
            if rule.defaults:
                args = {k: v for k, v in args.items() if k not in rule.defaults}
            from flask import url_for

            url = url_for(rule.endpoint, **args)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                out.append((rule.endpoint, method, url))
    return out


def call(c: FlaskClient, method: str, url: str, token: str, org: str) -> tuple[int, str]:
    if method == "GET":
        resp = c.get(url, query_string={"org": org, "size": 500})
    else:
        resp = c.open(url, method=method, data={"csrf_token": token, "username": "x", "password": "y",
                                                "role": "analyst"}, headers={"X-CSRF-Token": token})
    try:
        return resp.status_code, resp.get_data().decode("utf-8", "replace")  # evidence zips are binary
    finally:
        resp.close()  # static files are streamed from an open file


@pytest.mark.parametrize("username", list(USERS))
def test_every_route_as_every_role_against_a_foreign_enterprise(open_app: Flask, username: str) -> None:
    role, own = USERS[username]
    foreign = "globex" if own != "globex" else "acme"
    walked = 0
    for endpoint, method, url in urls(open_app, foreign):
        c = login(open_app.test_client(), username)
        token = c.get("/api/v1/session").get_json()["csrf_token"]
        status, body = call(c, method, url, token, foreign)
        walked += 1
        where = f"{username} {method} {url} -> {status}"
        assert status < 500, where
        if role == "enterprise":
            body = body.replace(url, "")  # the language links echo the address asked for
            for marker in MARKERS[foreign]:
                assert marker not in body, f"{where}: shows {marker!r}"
            if endpoint in ("alerts.detail", "assets.detail", "api_v1.alert", "api_v1.evidence", "api_v1.asset",
                            "events.detail", "events_api.api_event", "events_api.api_event_alerts"):
                assert status == 404, where
        if role == "auditor" and endpoint in ("alerts.index", "alerts.detail", "assets.index", "assets.detail", "api_v1.alerts",
                                 "api_v1.alert", "api_v1.evidence", "api_v1.assets", "api_v1.asset", "api_v1.overview",
                                 "events.index", "events.detail", "events_api.api_list", "events_api.api_event",
                                 "events_api.api_event_alerts", "dashboard_api.api_dashboard", "risk_api.api_risk",
                                 "risk_api.api_map", "risk_api.api_findings", "risk_api.api_assessments",
                                 "risk_api.api_assessment", "risk_api.api_assessment_draft",
                                 "risk_api.api_assessment_submit"):
            assert status == 403, where
        if role == "auditor" and endpoint == "dashboard.index":
            assert status == 302, where  # to their own start page
    assert walked >= 25


def test_enterprise_users_see_their_own_and_only_their_own(open_app: Flask) -> None:
    for username, org in (("acme-user", "acme"), ("globex-user", "globex")):
        c = login(open_app.test_client(), username)
        for url in ("/api/v1/alerts?size=500", f"/api/v1/alerts?size=500&org={'globex' if org == 'acme' else 'acme'}"):
            data = c.get(url).get_json()
            assert data["total"] == (sd.N_ACME if org == "acme" else 3)
            assert {a["organization"]["id"] for a in data["items"]} == {org}
        assert [e["id"] for e in c.get("/api/v1/enterprises").get_json()["items"]] == [org]
        own = IDS[org]
        assert c.get(f"/api/v1/alerts/{own['alert_id']}").status_code == 200
        assert c.get(f"/assets/{own['asset_id']}").status_code == 200


def test_all_enterprise_roles_may_narrow_to_one(open_app: Flask) -> None:
    c = login(open_app.test_client(), "regulator")
    assert c.get("/api/v1/alerts").get_json()["total"] == sd.N_ACME + 3
    only = c.get("/api/v1/alerts?org=globex&size=500").get_json()
    assert only["total"] == 3 and {a["organization"]["id"] for a in only["items"]} == {"globex"}
    body = c.get("/alerts/?org=globex").get_data(as_text=True)
    assert '<option value="globex" selected>' in body and "al-acme-" not in body
    assert c.get("/api/v1/overview?org=acme").get_json()["alerts"] == sd.N_ACME
    ents = {e["id"]: e for e in c.get("/api/v1/enterprises").get_json()["items"]}
    assert (ents["acme"]["alerts"], ents["globex"]["alerts"], ents["globex"]["assets"]) == (sd.N_ACME, 3, 1)
    auditor = login(open_app.test_client(), "auditor")
    assert {e["alerts"] for e in auditor.get("/api/v1/enterprises").get_json()["items"]} == {None}


def test_events_and_dashboard_stay_within_the_enterprise(open_app: Flask) -> None:
    for username, own, other in (("acme-user", "acme", "globex"), ("globex-user", "globex", "acme")):
        c = login(open_app.test_client(), username)
        listed = c.get(f"/api/v1/events?org={other}&size=500").get_json()
        assert listed["total"] == (120 if own == "acme" else 6) and {e["organization"]["id"] for e in listed["items"]} == {own}
        assert "org" not in listed["facets"]  # an enterprise user cannot choose another enterprise
        assert listed["facets"]["src"]["buckets"] and all(not b["value"].startswith(("192.168.7." if own == "acme" else "10.0.0."))
                                                          for b in listed["facets"]["src"]["buckets"])
        cidr = c.get("/api/v1/events?ip=0.0.0.0/0&size=1").get_json()
        assert cidr["total"] == listed["total"]  # a network that holds every address still holds only our events
        assert c.get(f"/api/v1/events/{IDS[other]['event_id']}").status_code == 404
        assert c.get(f"/api/v1/events/{IDS[own]['event_id']}/alerts").get_json()["total"] == 1
        dash = c.get(f"/api/v1/dashboard?org={other}").get_json()
        assert dash["organization"]["id"] == own
    regulator = login(open_app.test_client(), "regulator")
    both = regulator.get("/api/v1/events?size=1").get_json()
    assert both["total"] == 126 and {b["value"]: b["count"] for b in both["facets"]["org"]["buckets"]} == {"acme": 120, "globex": 6}
    assert regulator.get("/api/v1/dashboard?org=globex").get_json()["alerts"]["total"] == 3


def test_every_view_declares_who_may_call_it(open_app: Flask) -> None:
    undeclared = [name for name, view in open_app.view_functions.items()
                  if name != "static" and not hasattr(view, "_qinling_permission")]
    assert undeclared == []
    public = sorted(name for name, view in open_app.view_functions.items()
                    if getattr(view, "_qinling_permission", None) == PUBLIC)
    assert public == ["api.moved", "api_v1.not_found", "api_v1.open_session", "api_v1.openapi_document",
                      "auth.login", "switch_language"]


def test_a_view_without_a_declaration_is_refused(open_app: Flask) -> None:
    @open_app.get("/forgotten")
    def forgotten() -> str:
        return "secret"

    c = login(open_app.test_client(), "admin")
    assert c.get("/forgotten").status_code == 403
    assert UNSAFE_METHODS == {"POST", "PUT", "PATCH", "DELETE"}
