"""Records the index stage will never store go to the dead letters with their reason; the rest of
their batch is stored and committed, so one bad record on the province's own events topic neither
stalls the stage nor disappears. Embedded bus + SQLite here; Kafka + Elasticsearch in
tests/integration/test_dead_letters_es.py."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest

from console.jobs import Summary, decode_files
from pipeline import schema
from pipeline.bus import TOPIC_EVENTS, EmbeddedBus, Record
from pipeline.deadletter import DeadLetters
from pipeline.exceptions import StoreError
from pipeline.indexer import run_indexer
from pipeline.settings import Settings
from pipeline.store import Query
from pipeline.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "pcaps" / "modbus" / "anomaly_timing.pcap"


@pytest.fixture(scope="module")
def events() -> list[schema.Event]:
    return list(decode_files([CAPTURE], Settings(organization_id="dl"), Summary()))[:300]


def _publish(bus: EmbeddedBus, values: list[bytes]) -> None:
    p = bus.producer()
    for v in values:
        p.send(TOPIC_EVENTS, v)
    p.flush()


def test_junk_on_the_events_topic_is_set_aside_and_the_rest_stored_and_committed(events: list[schema.Event], tmp_path: Path) -> None:
    junk = [b"\xff\xfe not json", b'{"@timestamp": "yesterday"}', b"[1, 2, 3]"]
    values = [schema.encode(e) for e in events[:100]] + junk[:1] + [schema.encode(e) for e in events[100:200]] + junk[1:] \
        + [schema.encode(e) for e in events[200:]]
    bus = EmbeddedBus()
    _publish(bus, values)
    store = SQLiteStore(tmp_path / "q.sqlite")
    dead = DeadLetters(tmp_path / "dead", "index")
    stats = run_indexer(bus.consumer([TOPIC_EVENTS], group="index"), store, stop=threading.Event(), max_records=64,
                        until=lambda st: st.records >= len(values), dead_letter=dead.put)
    assert stats.records == len(values) and stats.rejected == 3 and stats.dead_letters == 3 and stats.unstored == 0
    assert stats.events == len(events)
    stored = store.search("events", Query(size=1000)).items
    assert sorted(e.event.id for e in stored) == sorted(e.event.id for e in events)
    lines = [json.loads(x) for x in dead.path().read_text().splitlines()]
    assert [x["offset"] for x in lines] == [100, 201, 202]
    assert base64.b64decode(lines[0]["value_b64"]) == junk[0]  # not UTF-8: kept byte for byte
    assert [x["value"] for x in lines[1:]] == [v.decode() for v in junk[1:]]
    assert all("not an encoded event" in x["reason"] and x["topic"] == TOPIC_EVENTS for x in lines)
    # committed: the group has nothing left to read
    assert bus.consumer([TOPIC_EVENTS], group="index").poll(max_records=10) == []
    store.close()


def test_dead_letters_that_cannot_be_written_commit_nothing(events: list[schema.Event], tmp_path: Path) -> None:
    bus = EmbeddedBus()
    values = [schema.encode(e) for e in events[:20]] + [b"junk"]
    _publish(bus, values)
    store = SQLiteStore(tmp_path / "q.sqlite")
    stop = threading.Event()
    tries: list[str] = []

    def broken(r: Record, why: str) -> None:
        tries.append(why)
        if len(tries) >= 2:
            stop.set()  # the operator stops the stage while the dead letters are failing
        raise StoreError("dead letters: cannot append to /nowhere (read-only file system)")

    stats = run_indexer(bus.consumer([TOPIC_EVENTS], group="index"), store, stop=stop, dead_letter=broken, backoff=0.01)
    assert stats.unstored == len(values) and stats.dead_letters == 0
    # nothing committed: the whole batch comes again to the next worker
    assert len(bus.consumer([TOPIC_EVENTS], group="index").poll(max_records=100)) == len(values)
    store.close()


def test_a_dead_letter_file_that_cannot_be_created_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    dead = DeadLetters(blocker / "sub", "index")
    with pytest.raises(StoreError, match=r"cannot append to .*file/sub/index-"):
        dead.put(Record(TOPIC_EVENTS, None, b"x", 0), "test")
