"""Console fixtures: an app over a SQLite store in tmp_path holding two enterprises' data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web import create_app
from console.web.store import close_store
from pipeline.store.sqlite import SQLiteStore
from tests.store import sample_data


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "console.sqlite"
    with SQLiteStore(path) as store:
        sample_data.fill(store)
    return path


def make_app(db_path: Path, **config: object) -> Flask:
    return create_app({"TESTING": True, "STORE_URL": f"sqlite:///{db_path}", "ORGANIZATION": "acme", **config})


@pytest.fixture
def app(db_path: Path) -> Iterator[Flask]:
    app = make_app(db_path)
    yield app
    close_store(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def client_en(app: Flask) -> FlaskClient:
    c = app.test_client()
    c.set_cookie("lang", "en")
    return c


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()
