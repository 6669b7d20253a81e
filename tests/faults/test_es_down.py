"""FAULT (60 s): Elasticsearch killed (SIGKILL) for 60 s while the detect and index workers run, then
restarted with its data: every event and every alert is in the store exactly once."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from pipeline.store import Query, Store
from tests.integration.test_kafka_pipeline import (  # noqa: F401 - fixtures settings, store
    ATTACK,
    Workers,
    embedded_alerts,
    events_of,
    publish,
    settings,
    store,
    stored_alerts,
    wait_for_alerts,
)
from tests.scenarios import load

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.elasticsearch]
OUTAGE = 60.0


def test_elasticsearch_killed_60s_while_indexing_nothing_lost_nothing_twice(services: Any, settings: Any, store: Store,  # noqa: F811
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    capture = load(ATTACK).capture
    events, want = events_of(capture), embedded_alerts(capture)
    half = len(events) // 2
    caplog.set_level(logging.WARNING, logger="pipeline.indexer")
    with Workers(settings, store):
        publish(settings, events[:half])
        time.sleep(0.5)  # the index stage is writing the first half
        services.kill("elasticsearch")
        t0 = time.monotonic()
        try:
            publish(settings, events[half:])  # detection goes on; the index stage cannot write
            time.sleep(OUTAGE)
        finally:
            services.restart("elasticsearch")
        outage = time.monotonic() - t0
        got = wait_for_alerts(store, want, timeout=180)
        deadline = time.monotonic() + 120
        while store.search("events", Query(size=1)).total < len(events) and time.monotonic() < deadline:
            time.sleep(0.5)
    felt = [r.getMessage() for r in caplog.records if "not stored yet" in r.getMessage()]
    print(f"\nElasticsearch away {outage:.0f}s; {len(felt)} failed write(s) retried; {len(events)} events, {len(want)} alerts")
    assert outage >= OUTAGE and felt, "the index stage never saw the outage"
    assert got == want  # every alert once (sorted, so a duplicate would show)
    assert store.search("events", Query(size=1)).total == len(events)
    assert stored_alerts(store) == want
