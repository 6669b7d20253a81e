"""Fixtures for the store tests: a file-backed SQLite store in tmp_path, empty or with sample data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.store.sqlite import SQLiteStore
from tests.store import sample_data


@pytest.fixture
def empty_store(tmp_path) -> Iterator[SQLiteStore]:  # type: ignore[no-untyped-def]
    store = SQLiteStore(tmp_path / "qinling.sqlite")
    yield store
    store.close()


@pytest.fixture
def store(empty_store: SQLiteStore) -> SQLiteStore:
    sample_data.fill(empty_store)
    return empty_store
