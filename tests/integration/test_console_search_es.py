"""事件检索 and 企业看板 on Elasticsearch: the same API calls answer the same JSON over ElasticStore as over
SQLiteStore holding the same data (facets, CIDR filters, sort, pages, tenancy, dashboard counts)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from console.web.store import EXTENSION
from pipeline.store.elastic import ElasticStore
from tests.console.conftest import close_app, login, make_app, seed_accounts
from tests.store import sample_data as sd

pytestmark = pytest.mark.elasticsearch

CALLS = [
    "/api/v1/events?size=20",
    "/api/v1/events?size=500&top=50",
    "/api/v1/events?src=10.0.0.64/28&sort=dst&order=asc&size=7&page=3",
    "/api/v1/events?ip=192.168.0.0/16&top=3",
    f"/api/v1/events?dst={sd.PLC}&action=write&org=acme&size=5",
    "/api/v1/events?outcome=failure&sort=src&top=2",
    "/api/v1/events?q=10.0.0.2&from=2024-05-01T09:00&to=2024-05-01T10:30",
    "/api/v1/events/ev-acme-7-resp",
    "/api/v1/events/ev-acme-7-resp/alerts",
]


@pytest.fixture(scope="module")
def apps(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Flask]]:
    from pipeline.store.sqlite import SQLiteStore

    root = tmp_path_factory.mktemp("console-es")
    db = root / "console.sqlite"
    with SQLiteStore(db) as sq:
        sd.fill(sq)
    seed_accounts(root / "accounts.sqlite")
    es = ElasticStore(es_url, prefix="it-console-" + uuid.uuid4().hex[:10])
    sd.fill(es)
    es.flush()
    sqlite_app = make_app(db, ORGANIZATION=None)
    es_app = make_app(db, ORGANIZATION=None)
    es_app.extensions[EXTENSION].store = es  # the same console, reading Elasticsearch
    try:
        yield sqlite_app, es_app
    finally:
        close_app(sqlite_app)
        close_app(es_app)  # closes `es`; its indices are dropped below
        ElasticStore(es_url, prefix=es.prefix).drop()


def answer(app: Flask, username: str, url: str) -> tuple[int, Any]:
    resp = login(app.test_client(), username).get(url)
    return resp.status_code, resp.get_json()


@pytest.mark.parametrize("url", CALLS)
@pytest.mark.parametrize("username", ["analyst", "acme-user"])
def test_event_search_answers_alike_on_both_stores(apps: tuple[Flask, Flask], username: str, url: str) -> None:
    sqlite_app, es_app = apps
    assert isinstance(es_app.extensions[EXTENSION].store, ElasticStore)
    got = answer(es_app, username, url)
    assert got == answer(sqlite_app, username, url)
    assert got[0] == 200


@pytest.mark.parametrize("username,url", [("acme-user", "/api/v1/dashboard"), ("regulator", "/api/v1/dashboard?org=globex")])
def test_dashboard_counts_alike_on_both_stores(apps: tuple[Flask, Flask], username: str, url: str) -> None:
    sqlite_app, es_app = apps
    (s1, a), (s2, b) = answer(sqlite_app, username, url), answer(es_app, username, url)
    assert s1 == s2 == 200
    assert a["alerts"] == b["alerts"] and a["assets"] == b["assets"]
    assert a["risk"]["score"] == b["risk"]["score"]
