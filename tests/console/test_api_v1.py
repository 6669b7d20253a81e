"""API v1: the contract (shapes, statuses, errors), the OpenAPI document's validity and coverage, and
schemathesis calling every documented operation against the app in-process (WSGI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from console.web.auth import get_db
from tests.console.conftest import close_app, login, make_app
from tests.store import sample_data as sd


@pytest.fixture
def open_app(db_path: Path) -> Iterator[Flask]:
    app = make_app(db_path, ORGANIZATION=None)
    yield app
    close_app(app)


def bearer(app: Flask, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_db(app).create_token(username, 'tests')}"}


# ---------------------------------------------------------------- contract


def test_alerts_page_shape_with_organization(open_app: Flask) -> None:
    c = open_app.test_client()
    data = c.get("/api/v1/alerts?size=7&page=2", headers=bearer(open_app, "analyst")).get_json()
    assert set(data) == {"items", "total", "page", "size", "pages"}
    assert (data["total"], data["page"], data["size"], len(data["items"])) == (sd.N_ACME + 3, 2, 7, 7)
    assert all(a["organization"]["id"] in ("acme", "globex") and a["event"]["kind"] == "alert" for a in data["items"])
    acme = c.get("/api/v1/alerts?size=100", headers=bearer(open_app, "acme-user")).get_json()
    assert acme["total"] == sd.N_ACME and {a["organization"]["id"] for a in acme["items"]} == {"acme"}


def test_session_round_trip(open_app: Flask) -> None:
    c = open_app.test_client()
    opened = c.post("/api/v1/session", json={"username": "acme-user", "password": "correct horse battery"})
    assert opened.status_code == 200
    me = opened.get_json()
    assert me["user"]["organization"] == "acme" and me["user"]["role"] == "enterprise" and me["csrf_token"]
    assert "password" not in str(me) and "hash" not in str(me)
    assert c.get("/api/v1/session").get_json()["user"]["username"] == "acme-user"
    assert c.delete("/api/v1/session", headers={"X-CSRF-Token": me["csrf_token"]}).status_code == 204
    assert c.get("/api/v1/session").status_code == 401


def test_admin_lists(open_app: Flask) -> None:
    c = login(open_app.test_client(), "admin")
    users = c.get("/api/v1/users").get_json()
    assert users["total"] == 6 and {u["role"] for u in users["items"]} == {"admin", "regulator", "analyst", "auditor", "enterprise"}
    assert all("password" not in u and "password_hash" not in u for u in users["items"])
    audit = c.get("/api/v1/audit?size=1").get_json()
    assert audit["total"] >= 1 and audit["items"][0]["action"] == "login" and audit["items"][0]["actor"] == "admin"
    ents = c.get("/api/v1/enterprises").get_json()
    assert [(e["id"], e["city"], e["industry"]) for e in ents["items"]] == [("acme", "榆林市", "petrochemical"),
                                                                           ("globex", "宝鸡市", "water")]


def test_legacy_api_redirects_to_v1(client: FlaskClient) -> None:
    resp = client.get("/api/alerts?severity=high&size=5")
    assert resp.status_code == 308 and resp.headers["Location"] == "/api/v1/alerts?severity=high&size=5"
    followed = client.get("/api/alerts/al-acme-004/evidence", follow_redirects=True)
    assert followed.status_code == 200 and len(followed.get_json()["events"]) == 2


@pytest.mark.parametrize("method, url, status, error", [
    ("GET", "/api/v1/nothing", 404, "not_found"),
    ("GET", "/api/v1/alerts/al-globex-000", 404, "not_found"),
    ("GET", "/api/v1/alerts?page=0", 400, "bad_request"),
    ("POST", "/api/v1/alerts", 405, "method_not_allowed"),
    ("GET", "/api/v1/users", 403, "forbidden"),
])
def test_errors_are_json_with_the_real_status(client: FlaskClient, method: str, url: str, status: int, error: str) -> None:
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    resp = client.open(url, method=method, headers={"X-CSRF-Token": token})
    assert resp.status_code == status and resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error", "message"} and body["error"] == error and body["message"]


# ---------------------------------------------------------------- the OpenAPI document


def test_openapi_document_is_valid_and_public(anonymous: FlaskClient) -> None:
    resp = anonymous.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    schemathesis.openapi.from_dict(doc).validate()  # against the OpenAPI 3.1 meta-schema
    broken = {**doc, "paths": {"/x": {"get": {"responses": {"200": {"content": 5}}}}}}
    with pytest.raises(Exception):
        schemathesis.openapi.from_dict(broken).validate()  # the check does check
    assert doc["openapi"].startswith("3.1") and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_openapi_paths_are_exactly_the_routes(open_app: Flask) -> None:
    doc = open_app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops}
    routed = set()
    for rule in open_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api_v1.not_found":
            continue
        path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        routed |= {(path, m) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert documented == routed


def test_responses_validate_against_the_document(open_app: Flask) -> None:
    doc = open_app.test_client().get("/api/v1/openapi.json").get_json()
    c = login(open_app.test_client(), "admin")
    for path, concrete in (("/api/v1/alerts", "/api/v1/alerts?size=3"), ("/api/v1/assets", "/api/v1/assets"),
                           ("/api/v1/alerts/{alert_id}", "/api/v1/alerts/al-acme-004"),
                           ("/api/v1/alerts/{alert_id}/evidence", "/api/v1/alerts/al-acme-004/evidence"),
                           ("/api/v1/assets/{asset_id}", f"/api/v1/assets/acme:{sd.HMI}"),
                           ("/api/v1/overview", "/api/v1/overview"), ("/api/v1/enterprises", "/api/v1/enterprises"),
                           ("/api/v1/users", "/api/v1/users"), ("/api/v1/audit", "/api/v1/audit"),
                           ("/api/v1/session", "/api/v1/session")):
        schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        resp = c.get(concrete)
        assert resp.status_code == 200, concrete
        jsonschema.validate(resp.get_json(), {**schema, "components": doc["components"]})
    err = c.get("/api/v1/alerts/nope")
    jsonschema.validate(err.get_json(), {**doc["components"]["schemas"]["ApiError"]})


# ---------------------------------------------------------------- schemathesis


# schemathesis.pytest.from_fixture does not run under this pytest (it writes Function._nodeid), so the
# test drives each operation's hypothesis strategy itself: same generation, same checks.
def test_schemathesis_finds_no_server_error(open_app: Flask) -> None:
    from hypothesis import given
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    headers = bearer(open_app, "admin")
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", open_app)
    operations = [result.ok() for result in api.get_all_operations()]
    doc = open_app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert {op.label for op in operations} == documented - {"GET /api/v1/openapi.json"}  # it skips the document itself
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance,
                                                            status_code_conformance])

        run()
