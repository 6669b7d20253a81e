"""Console fixtures: an app over a SQLite store in tmp_path holding two enterprises' data, and a console
database with one user per role (enterprise users for both acme and globex).

`client` is signed in as an analyst on a console pinned to acme (ORGANIZATION="acme"), which is what
the page tests before accounts existed assumed; `login(client, name)` signs any test client in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web import create_app
from console.web.accounts import ConsoleDB
from console.web.auth import close_db
from console.web.store import close_store
from pipeline.store.sqlite import SQLiteStore
from tests.store import sample_data

PASSWORD = "correct horse battery"
# argon2id at its cheapest: the tests hash and verify hundreds of times (production uses the defaults)
FAST_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
# username -> (role, organization)
USERS: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "regulator": ("regulator", None),
    "analyst": ("analyst", None),
    "auditor": ("auditor", None),
    "acme-user": ("enterprise", "acme"),
    "globex-user": ("enterprise", "globex"),
}


def seed_accounts(path: Path) -> None:
    from argon2 import PasswordHasher

    with ConsoleDB(path, hasher=PasswordHasher(**FAST_ARGON2)) as db:
        db.put_enterprise("acme", "Acme 某石化", "榆林市", "petrochemical")
        db.put_enterprise("globex", "Globex 某水务", "宝鸡市", "water")
        for name, (role, org) in USERS.items():
            db.add_user(name, PASSWORD, role, org)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "console.sqlite"
    with SQLiteStore(path) as store:
        sample_data.fill(store)
    seed_accounts(tmp_path / "accounts.sqlite")
    return path


def make_app(db_path: Path, **config: object) -> Flask:
    return create_app({"TESTING": True, "STORE_URL": f"sqlite:///{db_path}", "ORGANIZATION": "acme",
                       "CONSOLE_DB": str(db_path.parent / "accounts.sqlite"), "ARGON2": FAST_ARGON2, **config})


def close_app(app: Flask) -> None:
    close_store(app)
    close_db(app)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> FlaskClient:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/"})
    assert resp.status_code == 303, (username, resp.status_code, resp.get_data(as_text=True)[:500])
    return client


@pytest.fixture
def app(db_path: Path) -> Iterator[Flask]:
    app = make_app(db_path)
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return login(app.test_client(), "analyst")


@pytest.fixture
def client_en(app: Flask) -> FlaskClient:
    c = app.test_client()
    c.set_cookie("lang", "en")
    return login(c, "analyst")


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()
