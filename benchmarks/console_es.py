"""Console latency with one million alerts in Elasticsearch: alert list and search, p50/p95.

Alerts raised by the rule packs on the benchmark's mixed capture are copied (new ids, times spread
over 30 days, so 30 daily indices) until QINLING_BENCH_CONSOLE_ALERTS (default 1,000,000) are in a
dedicated index prefix on the shared Elasticsearch node; the console app (Flask test client, an
analyst signed in) then asks for the alert list and searches, each QINLING_BENCH_CONSOLE_REPEAT
(default 20) times. Latency is wall time of the whole request (routing, store query, rendering).
The indices are deleted afterwards (see PREFIX/KEEP below to reuse one loaded index across runs;
COLD=1 clears Elasticsearch's request and query caches of those indices before every request).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from . import Row
from .kafka_throughput import _pct, _service

ALERTS = int(os.environ.get("QINLING_BENCH_CONSOLE_ALERTS", "1000000"))
REPEAT = int(os.environ.get("QINLING_BENCH_CONSOLE_REPEAT", "20"))
# Reuse across runs: QINLING_BENCH_CONSOLE_PREFIX=name loads the alerts only if that prefix holds none
# yet, and QINLING_BENCH_CONSOLE_KEEP=1 leaves the indices in place (delete them with KEEP unset).
PREFIX = os.environ.get("QINLING_BENCH_CONSOLE_PREFIX", "")
KEEP = os.environ.get("QINLING_BENCH_CONSOLE_KEEP", "") == "1"
# QINLING_BENCH_CONSOLE_COLD=1: clear the benchmark indices' request and query caches before every request,
# as continuous ingestion does for the day being written (each refresh drops that index's request cache).
COLD = os.environ.get("QINLING_BENCH_CONSOLE_COLD", "") == "1"
TARGET_MS = 300.0


def _base_alerts() -> list[Any]:
    from console.jobs import Summary, decode_files, load_engine
    from pipeline.settings import Settings

    from .capture import ensure

    settings = Settings(organization_id="acme")
    engine, _ = load_engine(settings)
    out: list[Any] = []
    for ev in decode_files([ensure(20000)], settings, Summary()):
        out.extend(engine.process(ev))
    out.extend(engine.finish())
    return out


def _load(store: Any, base: list[Any], n: int) -> float:
    """Write n copies-of-base alerts; returns the wall seconds it took."""
    import msgspec

    from pipeline import schema

    t0 = time.perf_counter()
    first = min(a.timestamp for a in base)
    rounds = -(-n // len(base))
    step = dt.timedelta(days=30) / rounds  # copy r lives r steps later: 30 days in all
    batch: list[bytes] = []
    for i in range(n):
        r, j = divmod(i, len(base))
        a = base[j]
        batch.append(schema.encode(msgspec.structs.replace(
            a, timestamp=first + step * r + (a.timestamp - first) / rounds,
            event=msgspec.structs.replace(a.event, id=f"{a.event.id}-{r}"))))
        if len(batch) == 5000:
            store.write_encoded(batch)
            batch = []
    if batch:
        store.write_encoded(batch)
    store.flush()
    return time.perf_counter() - t0


def _app(es_store: Any, tmp: Path) -> Any:
    from argon2 import PasswordHasher

    from console.web import create_app
    from console.web.accounts import ConsoleDB

    fast = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
    with ConsoleDB(tmp / "accounts.sqlite", hasher=PasswordHasher(**fast)) as db:
        db.add_user("analyst", "bench password 1", "analyst", None)
    app = create_app({"TESTING": True, "STORE_URL": "http://unused", "ORGANIZATION": "acme",
                      "CONSOLE_DB": str(tmp / "accounts.sqlite"), "ARGON2": fast})
    app.extensions["qinling.store"].store = es_store  # the benchmark's index prefix, opened already
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = (re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html))
    assert token, "no CSRF token on the login page"
    resp = client.post("/login", data={"username": "analyst", "password": "bench password 1", "csrf_token": token.group(1), "next": "/"})
    assert resp.status_code == 303, resp.status_code
    return client


def _time(client: Any, url: str, before: Any = None) -> list[float]:
    out = []
    for _ in range(REPEAT):
        if before is not None:
            before()
        t = time.perf_counter()
        resp = client.get(url)
        out.append(time.perf_counter() - t)
        if resp.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
    return out


def run() -> list[Row]:
    es_url = _service("QINLING_TEST_ES")
    if not es_url:
        return [Row("console", "alert list, 1M alerts", 0.0, "ms", note="no Elasticsearch: python -m pipeline.services up elasticsearch")]
    from pipeline.store.elastic import ElasticStore

    base = _base_alerts()
    prefix = PREFIX or "bench-console-" + uuid.uuid4().hex[:8]
    store = ElasticStore(es_url, prefix=prefix, timeout=120)
    rows: list[Row] = []
    try:
        have = store.stats()["alerts"]
        took = _load(store, base, ALERTS) if not have else 0.0
        total = store.es.count(index=store.pattern("alerts"))["count"]
        rule = base[0].rule.id
        ip = next((a.related.ip[0] for a in base if a.related and a.related.ip), "10.0.0.1")
        word = next(w for w in (base[0].message or "write").split() if len(w) > 3)
        with tempfile.TemporaryDirectory() as d:
            client = _app(store, Path(d))
            queries = [
                ("alert list, page 1 (HTML)", "/alerts/"),
                ("alert list, page 100 (HTML)", "/alerts/?page=100"),
                ("alert list (API, 50 per page)", "/api/v1/alerts?size=50"),
                (f"search q={word} (HTML)", f"/alerts/?q={word}"),
                ("filter rule + severity (HTML)", f"/alerts/?rule={rule}&severity=high"),
                ("filter asset ip (API)", f"/api/v1/alerts?asset={ip}"),
            ]
            cold = (lambda: store.es.indices.clear_cache(index=store.pattern("alerts"), request=True, query=True)) if COLD else None
            for name, url in queries:
                xs = _time(client, url, cold)
                p95 = _pct(xs, 95) * 1000
                rows.append(Row("console", f"{name} p95", p95, "ms", "target 300 ms", p95 / TARGET_MS,
                                note=f"p50 {_pct(xs, 50) * 1000:.0f} ms, {REPEAT} requests{', caches cleared before each' if COLD else ''}"))
        loaded = f"loaded in {took:.0f}s ({total / took:,.0f}/s)" if took else "loaded by an earlier run"
        rows.insert(0, Row("console", "alerts in Elasticsearch", float(total), "alerts",
                           note=f"{loaded}, 30 daily indices, prefix {prefix}"))
    finally:
        if KEEP:
            print(f"[bench] kept {prefix}-* (QINLING_BENCH_CONSOLE_KEEP=1); rerun without it to delete", file=sys.stderr)
        else:
            try:
                store.drop()
            except Exception as e:  # noqa: BLE001 - best effort
                print(f"[bench] could not delete {prefix}-*: {e}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
