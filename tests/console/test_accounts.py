"""Accounts: sign-in and out, wrong passwords, throttling, CSRF, session fixation, cookies, roles, the audit log, `qinling users`."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from console.commands import users as users_cmd
from console.web import accounts
from console.web.accounts import MAX_FAILURES, AccountError, ConsoleDB
from console.web.auth import COOKIE, get_db
from tests.console.conftest import FAST_ARGON2, PASSWORD, close_app, csrf_of, login, make_app


def text(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


def session_cookie(client: FlaskClient) -> str | None:
    c = client.get_cookie(COOKIE)
    return c.value if c else None


def post_login(client: FlaskClient, username: str, password: str, **kw: object):  # type: ignore[no-untyped-def]
    token = csrf_of(text(client.get("/login", **kw)))  # type: ignore[arg-type]
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token}, **kw)  # type: ignore[arg-type]


def audit_actions(app: Flask) -> list[tuple[str, str, str, str]]:
    entries, _n = get_db(app).audit_log(size=500)
    return [(e.actor, e.action, e.target, e.outcome) for e in reversed(entries)]


# ---------------------------------------------------------------- signing in and out


def test_signed_out_html_goes_to_the_sign_in_page_and_api_is_401(anonymous: FlaskClient) -> None:
    resp = anonymous.get("/alerts/?severity=high")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=")
    assert "/alerts/?severity%3Dhigh" in resp.headers["Location"] or "severity" in resp.headers["Location"]
    page = anonymous.get("/login")
    assert page.status_code == 200 and "登录" in text(page) and 'name="csrf_token"' in text(page)
    api = anonymous.get("/api/v1/alerts")
    assert api.status_code == 401 and api.get_json()["error"] == "unauthorized"
    assert api.headers["WWW-Authenticate"].startswith("Bearer")


def test_login_then_logout(app: Flask, anonymous: FlaskClient) -> None:
    resp = post_login(anonymous, "Admin", PASSWORD)  # usernames are case-insensitive
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    body = text(anonymous.get("/"))
    assert "系统管理员" in body and 'action="/logout"' in body
    sid = session_cookie(anonymous)
    out = anonymous.post("/logout", data={"csrf_token": csrf_of(body)})
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert session_cookie(anonymous) is None
    assert get_db(app).session(sid or "") is None  # ended on the server, not only in the browser
    anonymous.set_cookie(COOKIE, sid or "")
    assert anonymous.get("/api/v1/alerts").status_code == 401  # a replayed old cookie opens nothing
    assert [a[1:] for a in audit_actions(app)] == [("login", "admin", "success"), ("logout", "admin", "success")]


def test_login_redirects_only_within_the_site(anonymous: FlaskClient) -> None:
    token = csrf_of(text(anonymous.get("/login")))
    resp = anonymous.post("/login", data={"username": "analyst", "password": PASSWORD, "csrf_token": token,
                                          "next": "//evil.example/"})
    assert resp.headers["Location"] == "/"


def test_wrong_password_and_unknown_user(app: Flask, anonymous: FlaskClient) -> None:
    for name in ("analyst", "nobody"):
        resp = post_login(anonymous, name, "wrong password")
        assert resp.status_code == 401 and "用户名或密码错误" in text(resp) and session_cookie(anonymous) is None
    assert ("analyst", "login", "analyst", "failure") in audit_actions(app)
    assert ("nobody", "login", "nobody", "failure") in audit_actions(app)


def test_disabled_user_cannot_sign_in_and_loses_sessions(app: Flask) -> None:
    c = login(app.test_client(), "regulator")
    get_db(app).set_disabled("regulator")
    assert c.get("/api/v1/alerts").status_code == 401
    assert post_login(app.test_client(), "regulator", PASSWORD).status_code == 401


# ---------------------------------------------------------------- throttling


def test_five_failures_lock_the_user_at_that_address(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    c = app.test_client()
    for i in range(MAX_FAILURES - 1):
        assert post_login(c, "analyst", f"wrong {i}").status_code == 401
    locked = post_login(c, "analyst", "wrong again")
    assert locked.status_code == 429 and "15 分钟" in text(locked)
    assert post_login(c, "analyst", PASSWORD).status_code == 429  # even the right password, for now
    api = c.post("/api/v1/session", json={"username": "analyst", "password": PASSWORD})
    assert api.status_code == 429 and api.get_json()["error"] == "too_many_requests"
    # another address, or another user from this one, is not locked
    other = post_login(app.test_client(), "analyst", PASSWORD, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 303
    assert post_login(app.test_client(), "regulator", PASSWORD).status_code == 303
    later = accounts.now() + dt.timedelta(minutes=16)
    monkeypatch.setattr(accounts, "now", lambda: later)
    assert post_login(c, "analyst", PASSWORD).status_code == 303
    outcomes = [a[3] for a in audit_actions(app) if a[2] == "analyst"]
    assert outcomes.count("failure") == MAX_FAILURES and outcomes.count("locked") == 2


def test_a_success_resets_the_failure_count(app: Flask) -> None:
    c = app.test_client()
    for _ in range(MAX_FAILURES - 1):
        post_login(c, "analyst", "wrong")
    assert post_login(c, "analyst", PASSWORD).status_code == 303
    for _ in range(MAX_FAILURES - 1):
        assert post_login(app.test_client(), "analyst", "wrong").status_code == 401


# ---------------------------------------------------------------- sessions and cookies


def test_session_id_changes_at_login(app: Flask) -> None:
    c = app.test_client()
    c.set_cookie(COOKIE, "attacker-chosen-id")
    post_login(c, "analyst", PASSWORD)
    first = session_cookie(c)
    assert first and first != "attacker-chosen-id"
    token = c.get("/api/v1/session").get_json()["csrf_token"]  # signed in, /login redirects home
    again = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert again.status_code == 303  # signing in again, even as someone else, starts a new session
    second = session_cookie(c)
    assert second and second != first
    assert get_db(app).session(first) is None and get_db(app).session(second) is not None


def test_secure_cookie_setting(db_path: Path) -> None:
    forced = make_app(db_path, SESSION_COOKIE_SECURE=True)
    assert "Secure" in post_login(forced.test_client(), "analyst", PASSWORD).headers["Set-Cookie"]
    close_app(forced)
    auto = make_app(db_path)  # None: Secure exactly when the request came over HTTPS
    https = auto.test_client()
    resp = post_login(https, "analyst", PASSWORD, base_url="https://localhost")
    assert "Secure" in resp.headers["Set-Cookie"]
    close_app(auto)


def test_pages_are_not_cached_and_framing_is_refused(client: FlaskClient) -> None:
    resp = client.get("/alerts/")
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Frame-Options"] == "DENY"


# ---------------------------------------------------------------- CSRF


@pytest.mark.parametrize("url, data", [
    ("/logout", {}),
    ("/admin/users", {"username": "mallory", "password": "long enough 1", "role": "admin"}),
    ("/admin/users/analyst/disable", {}),
    ("/admin/users/analyst/password", {"password": "new password 1"}),
])
def test_state_changing_forms_without_the_token_are_403(app: Flask, url: str, data: dict[str, str]) -> None:
    c = login(app.test_client(), "admin")
    for token in (None, "wrong-token"):
        form = dict(data, csrf_token=token) if token else data
        resp = c.post(url, data=form)
        assert resp.status_code == 403 and "CSRF" in text(resp), url
    assert get_db(app).user("mallory") is None and not get_db(app).user("analyst").disabled  # type: ignore[union-attr]
    assert c.get("/api/v1/session").status_code == 200  # still signed in


def test_login_form_needs_the_token_too(anonymous: FlaskClient) -> None:
    resp = anonymous.post("/login", data={"username": "analyst", "password": PASSWORD})
    assert resp.status_code == 403 and session_cookie(anonymous) is None


def test_api_with_a_cookie_session_needs_the_csrf_header(app: Flask) -> None:
    c = app.test_client()
    opened = c.post("/api/v1/session", json={"username": "analyst", "password": PASSWORD})
    assert opened.status_code == 200 and opened.get_json()["user"]["role"] == "analyst"
    assert c.delete("/api/v1/session").status_code == 403
    assert c.delete("/api/v1/session", headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert c.delete("/api/v1/session", headers={"X-CSRF-Token": opened.get_json()["csrf_token"]}).status_code == 204
    assert c.get("/api/v1/session").status_code == 401


def test_api_session_endpoint_accepts_json_only(anonymous: FlaskClient) -> None:
    form = anonymous.post("/api/v1/session", data={"username": "analyst", "password": PASSWORD})
    assert form.status_code == 415 and form.get_json()["error"] == "unsupported_media_type"
    assert anonymous.post("/api/v1/session", json=["analyst"]).status_code == 400
    wrong = anonymous.post("/api/v1/session", json={"username": "analyst", "password": "x"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "unauthorized"


def test_bearer_tokens_need_no_csrf_and_bad_tokens_are_401(app: Flask, anonymous: FlaskClient) -> None:
    token = get_db(app).create_token("analyst", "script")
    auth = {"Authorization": f"Bearer {token}"}
    assert anonymous.get("/api/v1/alerts", headers=auth).get_json()["total"] == 60
    assert anonymous.delete("/api/v1/session", headers=auth).status_code == 204
    assert anonymous.get("/api/v1/alerts", headers={"Authorization": "Bearer qn_forged"}).status_code == 401
    get_db(app).set_disabled("analyst")
    assert anonymous.get("/api/v1/alerts", headers=auth).status_code == 401


# ---------------------------------------------------------------- roles


ROLE_MATRIX = {
    # url: roles that get 200 (the others 403); enterprise users are bound to acme here
    "/": {"admin", "regulator", "analyst", "acme-user"},
    "/alerts/": {"admin", "regulator", "analyst", "acme-user"},
    "/assets/": {"admin", "regulator", "analyst", "acme-user"},
    "/events/": {"admin", "regulator", "analyst", "acme-user"},
    "/api/v1/events": {"admin", "regulator", "analyst", "acme-user"},
    "/enterprises/": {"admin", "regulator", "analyst", "acme-user", "auditor"},
    "/admin/users": {"admin", "auditor"},
    "/admin/audit": {"admin", "auditor"},
    "/api/v1/alerts": {"admin", "regulator", "analyst", "acme-user"},
    "/api/v1/overview": {"admin", "regulator", "analyst", "acme-user"},
    "/api/v1/enterprises": {"admin", "regulator", "analyst", "acme-user", "auditor"},
    "/api/v1/users": {"admin", "auditor"},
    "/api/v1/audit": {"admin", "auditor"},
    "/api/v1/session": {"admin", "regulator", "analyst", "acme-user", "auditor"},
}


@pytest.mark.parametrize("username", ["admin", "regulator", "analyst", "auditor", "acme-user"])
def test_roles_matrix(app: Flask, username: str) -> None:
    c = login(app.test_client(), username)
    for url, allowed in ROLE_MATRIX.items():
        resp = c.get(url)
        if url == "/" and username == "auditor":
            assert resp.status_code == 302 and resp.headers["Location"] == "/admin/audit"
            continue
        if url == "/" and username == "acme-user":  # an enterprise starts at its dashboard (企业看板)
            assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard/"
            continue
        assert resp.status_code == (200 if username in allowed else 403), (username, url, resp.status_code)
    nav = text(c.get("/enterprises/"))
    assert ('href="/admin/users"' in nav) == (username in ("admin", "auditor"))
    assert ('href="/alerts/"' in nav) == (username != "auditor")


def test_only_admins_manage_users(app: Flask) -> None:
    for username in ("regulator", "analyst", "auditor", "acme-user"):
        c = login(app.test_client(), username)
        token = csrf_of(text(c.get("/api/v1/session")) if False else text(c.get("/enterprises/")))
        resp = c.post("/admin/users", data={"username": "x1", "password": "long enough 1", "role": "admin",
                                            "csrf_token": token})
        assert resp.status_code == 403, username
    assert get_db(app).user("x1") is None


def test_admin_adds_disables_and_resets_with_an_audit_trail(app: Flask) -> None:
    admin = login(app.test_client(), "admin")
    token = csrf_of(text(admin.get("/admin/users")))
    added = admin.post("/admin/users", data={"username": "newbie", "password": "long enough 1", "role": "enterprise",
                                             "organization": "globex", "display_name": "N", "csrf_token": token})
    assert added.status_code == 303
    assert "已添加用户 newbie" in text(admin.get("/admin/users"))
    bad = admin.post("/admin/users", data={"username": "x2", "password": "short", "role": "analyst", "csrf_token": token})
    assert bad.status_code == 400 and "too short" in text(bad)
    newbie = login(app.test_client(), "newbie", "long enough 1")
    assert newbie.get("/api/v1/alerts").get_json()["total"] == 0  # globex user on the acme-pinned console
    assert admin.post("/admin/users/newbie/disable", data={"csrf_token": token}).status_code == 303
    assert newbie.get("/api/v1/session").status_code == 401  # the session ended with the account
    assert admin.post("/admin/users/newbie/enable", data={"csrf_token": token}).status_code == 303
    assert admin.post("/admin/users/newbie/password", data={"password": "another pw 2", "csrf_token": token}).status_code == 303
    assert admin.post("/admin/users/admin/disable", data={"csrf_token": token}).status_code == 400  # not yourself
    assert admin.post("/admin/users/ghost/disable", data={"csrf_token": token}).status_code == 404
    login(app.test_client(), "newbie", "another pw 2")
    trail = [a for a in audit_actions(app) if a[0] == "admin" and a[1].startswith("user.")]
    assert trail == [("admin", "user.add", "newbie", "success"), ("admin", "user.add", "x2", "failure"),
                     ("admin", "user.disable", "newbie", "success"), ("admin", "user.enable", "newbie", "success"),
                     ("admin", "user.passwd", "newbie", "success"), ("admin", "user.disable", "admin", "failure")]
    page = text(admin.get("/admin/audit?action=user.add&lang=en"))
    assert len(re.findall(r'<tr class="audit-row">', page)) == 2 and "127.0.0.1" in page and "Failure" in page
    api = admin.get("/api/v1/audit?actor=newbie").get_json()
    assert api["total"] == 2 and {e["action"] for e in api["items"]} == {"login"}


# ---------------------------------------------------------------- the console database and `qinling users`


def test_account_rules(tmp_path: Path) -> None:
    with ConsoleDB(tmp_path / "a.sqlite", hasher=PasswordHasher(**FAST_ARGON2)) as db:
        db.put_enterprise("e1", "E1", "西安市", "power")
        with pytest.raises(AccountError, match="bound to one enterprise"):
            db.add_user("u", "long enough", "enterprise")
        with pytest.raises(AccountError, match="no enterprise"):
            db.add_user("u", "long enough", "enterprise", "e2")
        with pytest.raises(AccountError, match="only enterprise users"):
            db.add_user("u", "long enough", "analyst", "e1")
        with pytest.raises(AccountError, match="role"):
            db.add_user("u", "long enough", "root")
        with pytest.raises(AccountError, match="username"):
            db.add_user("u s", "long enough", "analyst")
        db.add_user("u", "long enough", "enterprise", "e1")
        with pytest.raises(AccountError, match="exists"):
            db.add_user("U", "long enough", "analyst")
        row = db._one("SELECT password_hash FROM users")
        assert row is not None and row["password_hash"].startswith("$argon2id$") and "long enough" not in row["password_hash"]
        sid, _s = db.open_session(db.user("u"))  # type: ignore[arg-type]
        assert db._one("SELECT count(*) AS n FROM sessions WHERE id_hash = ?", (sid,))["n"] == 0  # type: ignore[index]


def run_users(db: Path, *argv: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch) -> int:
    parser = argparse.ArgumentParser(prog="qinling")
    users_cmd.register(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    args = parser.parse_args(["users", "--db", str(db), *argv])
    return int(args.func(args))


def test_users_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.sqlite"
    assert run_users(db, "enterprise", "ent-a", "--name", "某石化", "--city", "榆林市", "--industry", "petrochemical",
                     monkeypatch=monkeypatch) == 0
    assert run_users(db, "add", "ea", "--role", "enterprise", "--org", "ent-a", "--password-stdin",
                     stdin="first password\n", monkeypatch=monkeypatch) == 0
    assert run_users(db, "add", "ea", "--role", "analyst", "--password-stdin", stdin="another one\n",
                     monkeypatch=monkeypatch) == 2
    assert "exists already" in capsys.readouterr().err
    assert run_users(db, "add", "x", "--role", "analyst", monkeypatch=monkeypatch) == 2  # no terminal, no stdin flag
    assert "--password-stdin" in capsys.readouterr().err
    assert run_users(db, "passwd", "ea", "--password-stdin", stdin="second password\n", monkeypatch=monkeypatch) == 0
    assert run_users(db, "token", "ea", "--label", "export", monkeypatch=monkeypatch) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert run_users(db, "list", monkeypatch=monkeypatch) == 0
    listing = capsys.readouterr().out
    assert "ea" in listing and "ent-a" in listing and "active" in listing
    with ConsoleDB(db) as cdb:
        user = cdb.token_user(token)
        assert user is not None and user.organization == "ent-a"
        assert cdb.verify("ea", "second password") is not None and cdb.verify("ea", "first password") is None
    assert run_users(db, "disable", "ea", monkeypatch=monkeypatch) == 0
    with ConsoleDB(db) as cdb:
        assert cdb.token_user(token) is None and cdb.verify("ea", "second password") is None
        actions = [(e.action, e.target, e.outcome) for e in reversed(cdb.audit_log()[0])]
        assert all(e.actor.startswith("cli") for e in cdb.audit_log()[0])
    assert actions == [("enterprise.put", "ent-a", "success"), ("user.add", "ea", "success"),
                       ("user.add", "ea", "failure"), ("user.add", "x", "failure"), ("user.passwd", "ea", "success"),
                       ("token.create", "ea", "success"), ("user.disable", "ea", "success")]
