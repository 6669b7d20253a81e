"""Security test fixtures: the console test site (two enterprises, one user per role) on an unpinned console."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from console.web import captures
from tests.console.conftest import close_app, db_path, make_app  # noqa: F401  (db_path is a fixture)


@pytest.fixture
def open_app(db_path: Path) -> Iterator[Flask]:  # noqa: F811
    app = make_app(db_path, ORGANIZATION=None)  # not pinned: every enterprise is in reach of the all-enterprise roles
    yield app
    captures.close(app)
    close_app(app)
