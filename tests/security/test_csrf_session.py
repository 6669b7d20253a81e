"""CSRF on every state-changing route (walked from app.url_map) and the session's life: a fresh id at login,
nothing usable after logout, the pre-login cookie worth nothing."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from console.web.auth import COOKIE, UNSAFE_METHODS
from tests.console.conftest import PASSWORD, csrf_of, login
from tests.console.test_tenancy import urls

# The one route that takes no CSRF token: JSON sign-in, which a cross-site form cannot send (see api.open_session).
EXEMPT = {("api_v1.open_session", "POST")}


def unsafe_routes(app: Flask) -> list[tuple[str, str, str]]:
    return [(e, m, u) for e, m, u in urls(app, "acme") if m in UNSAFE_METHODS and (e, m) not in EXEMPT]


def audit_count(app: Flask) -> int:
    c = login(app.test_client(), "admin")
    return int(c.get("/api/v1/audit?size=1").get_json()["total"])


def test_every_state_changing_route_refuses_a_missing_or_wrong_token(open_app: Flask) -> None:
    routes = unsafe_routes(open_app)
    assert len(routes) >= 15, routes
    other = login(open_app.test_client(), "analyst")
    foreign_token = other.get("/api/v1/session").get_json()["csrf_token"]  # valid, but another session's
    before = audit_count(open_app)
    for username in ("admin", "acme-user"):
        c = login(open_app.test_client(), username)
        for endpoint, method, url in routes:
            for headers, form in (({}, {}), ({"X-CSRF-Token": "forged"}, {"csrf_token": "forged"}),
                                  ({"X-CSRF-Token": foreign_token}, {}), ({}, {"csrf_token": ""})):
                resp = c.open(url, method=method, data={**form, "username": "x", "password": "y", "role": "analyst"},
                              headers=headers)
                assert resp.status_code == 403, f"{username} {method} {url} {headers} {form} -> {resp.status_code}"
                resp.close()
        assert c.get("/api/v1/session").status_code == 200  # still signed in: the refusals logged nobody out
    # nothing happened: the audit log only grew by the sign-ins of this test (admin twice, acme-user, analyst)
    assert audit_count(open_app) - before <= 4


def test_json_sign_in_is_exempt_only_because_it_takes_json(open_app: Flask) -> None:
    c = open_app.test_client()
    form = c.post("/api/v1/session", data={"username": "admin", "password": PASSWORD})  # what a cross-site form can send
    assert form.status_code == 415 and COOKIE not in (form.headers.get("Set-Cookie") or "")
    text = c.post("/api/v1/session", data='{"username": "admin", "password": "%s"}' % PASSWORD, content_type="text/plain")
    assert text.status_code == 415


def session_cookie(c: FlaskClient) -> str | None:
    cookie = c.get_cookie(COOKIE)
    return cookie.value if cookie else None


def test_login_issues_a_new_session_id_and_ignores_a_planted_one(open_app: Flask) -> None:
    c = open_app.test_client()
    c.set_cookie(COOKIE, "planted-by-the-attacker")
    page = c.get("/login").get_data(as_text=True)
    resp = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page), "next": "/"})
    assert resp.status_code == 303
    sid = session_cookie(c)
    assert sid and sid != "planted-by-the-attacker" and len(sid) >= 32
    # the attacker's browser, holding the planted id, is not signed in
    attacker = open_app.test_client()
    attacker.set_cookie(COOKIE, "planted-by-the-attacker")
    assert attacker.get("/api/v1/session").status_code == 401
    # signing in again (same browser) rotates the id and ends the old session
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    assert c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "/"}).status_code == 303
    second = session_cookie(c)
    assert second and second != sid
    replay = open_app.test_client()
    replay.set_cookie(COOKIE, sid)
    assert replay.get("/api/v1/session").status_code == 401


def test_logout_invalidates_the_session_server_side(open_app: Flask) -> None:
    c = login(open_app.test_client(), "analyst")
    sid = session_cookie(c)
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    assert session_cookie(c) is None
    stolen = open_app.test_client()
    stolen.set_cookie(COOKIE, sid or "")
    assert stolen.get("/api/v1/session").status_code == 401
    assert stolen.get("/alerts/").status_code == 302  # to the sign-in page
    # and over the API
    c = login(open_app.test_client(), "analyst")
    sid = session_cookie(c)
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    assert c.delete("/api/v1/session", headers={"X-CSRF-Token": token}).status_code == 204
    stolen = open_app.test_client()
    stolen.set_cookie(COOKIE, sid or "")
    assert stolen.get("/api/v1/alerts").status_code == 401


def test_session_cookie_flags(open_app: Flask) -> None:
    c = open_app.test_client()
    page = c.get("/login").get_data(as_text=True)
    resp = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page), "next": "/"})
    cookie = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    https = open_app.test_client()
    page = https.get("/login", base_url="https://localhost").get_data(as_text=True)
    resp = https.post("/login", base_url="https://localhost",
                      data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page), "next": "/"})
    cookie = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")][0]
    assert "Secure" in cookie  # over HTTPS the cookie never travels in clear


def test_a_pre_login_token_is_not_a_session(open_app: Flask) -> None:
    c = open_app.test_client()
    token = csrf_of(c.get("/login").get_data(as_text=True))  # signed-out token kept in Flask's cookie
    resp = c.post("/logout", data={"csrf_token": token})
    assert resp.status_code in (302, 401)  # passes CSRF but not authentication
    assert c.get("/api/v1/session").status_code == 401
