"""Against a real Kafka broker and Elasticsearch node: a record on the province's own events topic
that is not an event, and an event the strict mapping refuses, go to the dead letters with their
reasons; every other record of the batch is stored once and the batch is committed (the stage does
not retry them forever, which used to stall it)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from console.jobs import Summary, decode_files, open_bus, open_store_for, run_index
from pipeline import schema
from pipeline.bus import TOPIC_EVENTS
from pipeline.settings import Settings
from pipeline.store import Query

pytestmark = [pytest.mark.kafka, pytest.mark.elasticsearch]
CAPTURE = Path(__file__).resolve().parents[2] / "pcaps" / "modbus" / "anomaly_timing.pcap"


def test_records_es_refuses_are_set_aside_and_the_rest_indexed_and_committed(kafka_bootstrap: str, es_url: str, unique: str,
                                                                             tmp_path: Path) -> None:
    settings = Settings(bus=f"kafka://{kafka_bootstrap}", store=es_url, es_index_prefix=unique, kafka_topic_prefix=f"{unique}-",
                        index_group=f"{unique}-index", organization_id="dl", dead_letter_dir=str(tmp_path / "dead"))
    events = list(decode_files([CAPTURE], settings, Summary()))[:400]
    good = [schema.encode(e) for e in events]
    unknown_field = b'{"qinling_unknown_field":1,' + good[7][1:]  # a field the schema (and the strict mapping) does not know
    junk = b"\x00\x01 not an event"
    values = good[:150] + [junk] + good[150:300] + [unknown_field] + good[300:]
    bus = open_bus(settings, client_id="dl-publisher")
    try:
        p = bus.producer()
        for v in values:
            p.send(settings.topic(TOPIC_EVENTS), v)
        p.flush()
    finally:
        bus.close()
    store = open_store_for(settings)
    try:
        deadline = time.monotonic() + 120
        stats = run_index(settings, threading.Event(), store, max_records=500,
                          until=lambda st: st.records >= len(values) or time.monotonic() > deadline)
        store.flush()
        stored = store.search("events", Query(size=1000)).items
        settle = time.monotonic() + 10
        again = run_index(settings, threading.Event(), store, until=lambda st: time.monotonic() > settle)
    finally:
        store.drop()  # type: ignore[attr-defined]
        store.close()
    assert stats.records == len(values) and stats.rejected == 2 and stats.dead_letters == 2 and stats.unstored == 0
    assert sorted(e.event.id for e in stored) == sorted(e.event.id for e in events)  # each good one once (event 7 included)
    (path,) = (tmp_path / "dead").glob("index-*.ndjson")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    by_kind = {("junk" if x["value"] == junk.decode() else "unknown"): x for x in lines}
    assert len(lines) == 2 and set(by_kind) == {"junk", "unknown"}
    assert "not an encoded event" in by_kind["junk"]["reason"]
    assert "strict_dynamic_mapping_exception" in by_kind["unknown"]["reason"] and "qinling_unknown_field" in by_kind["unknown"]["reason"]
    assert by_kind["unknown"]["value"].encode() == unknown_field
    assert all(x["topic"] == settings.topic(TOPIC_EVENTS) for x in lines)
    assert again.records == 0  # committed: nothing is delivered again
