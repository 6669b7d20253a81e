"""Against a real Elasticsearch node: an index made by an older Qinling (a mapping without fields the
schema has gained since) takes the new fields when a store opens, so today's index stores the new
events instead of refusing them under `dynamic: strict` until tomorrow. A mapping whose field type
conflicts with the schema is reported, and the store still opens."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.store import Query
from pipeline.store.elastic import ElasticStore, mappings
from sensors.engine import decode_file

pytestmark = [pytest.mark.elasticsearch]
NEW = ("segment_count", "value_count")  # bacnet.* fields added after the first release of the BACnet decoder


def _segmented(corpus: Path) -> list:
    events = [e for e in decode_file(corpus / "icsnpp-bacnet" / "traces" / "bacnet_segmented_data.pcap")
              if e.bacnet is not None and e.bacnet.segment_count]
    assert events, "the segmented object-list ack should reassemble"
    return events


def _old_mapping(conflict: bool = False) -> dict:
    m = copy.deepcopy(mappings("events"))
    bacnet = m["properties"]["bacnet"]["properties"]
    for f in NEW:
        del bacnet[f]
    if conflict:
        bacnet["segment_count"] = {"type": "keyword"}  # the schema says long
    return m


@contextlib.contextmanager
def _older_index(es_url: str, prefix: str, when: dt.datetime, *, conflict: bool = False) -> Iterator[tuple[Elasticsearch, str]]:
    """Today's events index as an older Qinling made it; deleted afterwards, with the store's own indices."""
    es = Elasticsearch(es_url)
    day = f"{prefix}-events-{when.astimezone(dt.timezone.utc):%Y.%m.%d}"
    es.indices.create(index=day, mappings=_old_mapping(conflict), settings={"number_of_shards": 1, "number_of_replicas": 0})
    try:
        yield es, day
    finally:
        es.indices.delete(index=day, ignore_unavailable=True)
        es.close()


def _bacnet_fields(es: Elasticsearch, day: str) -> dict:
    return es.indices.get_mapping(index=day)[day]["mappings"]["properties"]["bacnet"]["properties"]  # type: ignore[no-any-return]


def test_an_older_index_takes_the_new_fields(es_url: str, unique: str, corpus: Path) -> None:
    events = _segmented(corpus)
    with _older_index(es_url, unique, events[0].timestamp) as (es, day):
        assert not set(NEW) & set(_bacnet_fields(es, day))
        store = ElasticStore(es_url, prefix=unique, refresh_on_write=True)
        try:
            after = _bacnet_fields(es, day)
            assert after["segment_count"]["type"] == "long" and after["value_count"]["type"] == "long"
            store.write(events)
            store.flush()
            found = store.search("events", Query(filters={"bacnet.segment_count": events[0].bacnet.segment_count}, size=50))
            assert {e.event.id for e in found.items} >= {events[0].event.id}
            assert found.items[0].bacnet.segment_count == events[0].bacnet.segment_count
        finally:
            store.drop()  # type: ignore[attr-defined]  (its indices and templates)
            store.close()


def test_a_conflicting_older_index_is_reported_and_the_store_opens(es_url: str, unique: str, corpus: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    events = _segmented(corpus)
    with _older_index(es_url, unique, events[0].timestamp, conflict=True):
        with caplog.at_level(logging.WARNING, logger="pipeline.store.elastic"):
            store = ElasticStore(es_url, prefix=unique)
        try:
            assert any("segment_count" in r.getMessage() and "reindexed" in r.getMessage() for r in caplog.records), caplog.text
            assert store.search("events", Query(size=1)).total == 0  # open and answering
        finally:
            store.drop()  # type: ignore[attr-defined]  (its indices and templates)
            store.close()
