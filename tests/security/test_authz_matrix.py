"""Authorization matrix: every route (from app.url_map) × every role × the user's own and a foreign enterprise,
checked against the permission each view declares: a role without it gets 403 (anonymous: 401 or the sign-in
page), a role with it is let through for its own enterprise. tests/console/test_tenancy.py checks what a foreign
enterprise's ids reveal; this checks the gate itself, including the own-enterprise half of the matrix."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask

from console.web.auth import PERMISSIONS, PUBLIC, LOGGED_IN
from tests.console.conftest import USERS, login
from tests.console.test_tenancy import call, urls

LOGS_OUT = {"auth.logout", "api_v1.close_session"}


def permission_of(app: Flask, endpoint: str) -> str | None:
    if endpoint == "static":
        return PUBLIC
    return getattr(app.view_functions[endpoint], "_qinling_permission", None)


def allowed(role: str | None, permission: str | None) -> bool:
    if permission == PUBLIC:
        return True
    if role is None or permission is None:
        return False
    return permission == LOGGED_IN or role in PERMISSIONS[permission]


@pytest.mark.parametrize("username", [None, *USERS])
def test_every_route_every_role_own_and_foreign(open_app: Flask, username: str | None) -> None:
    role, own = USERS[username] if username else (None, None)
    tally: Counter[str] = Counter()
    for tenant in ("acme", "globex"):
        mine = own is None or own == tenant
        c = open_app.test_client()
        token = ""
        if username:
            login(c, username)
            token = c.get("/api/v1/session").get_json()["csrf_token"]
        for endpoint, method, url in urls(open_app, tenant):
            permission = permission_of(open_app, endpoint)
            status, _body = call(c, method, url, token, tenant)
            where = f"{username or 'anonymous'} ({'own' if mine else 'foreign'} {tenant}) {method} {url} [{permission}] -> {status}"
            assert permission is not None, f"{where}: the view declares no permission"
            assert status < 500, where
            if not allowed(role, permission):
                if role is None:
                    assert status in (401, 302, 403), where  # 403: the CSRF check comes first for a POST
                else:
                    assert status == 403, where
                tally["refused"] += 1
            else:
                assert status != 401 or permission == PUBLIC, where  # public: a sign-in with the walk's bad password
                if status == 403:  # a view may refuse a write of its own accord (wrong state); never an own read
                    assert not mine or method != "GET", where
                tally["let through"] += 1
            if username and endpoint in LOGS_OUT and status < 400:
                login(c, username)
                token = c.get("/api/v1/session").get_json()["csrf_token"]
    assert tally["refused"] + tally["let through"] >= 80, tally
    if role in ("admin",):
        assert tally["refused"] < tally["let through"], tally
