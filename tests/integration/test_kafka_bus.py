"""The Kafka bus keeps the contract tests/pipeline/test_bus.py asserts for the embedded bus."""

from __future__ import annotations

import gc
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator

import pytest

from pipeline.bus import Record
from pipeline.exceptions import BusError
from pipeline.kafka_bus import KafkaBus
from pipeline.stages import Sink, drain

pytestmark = pytest.mark.kafka


@pytest.fixture(autouse=True)
def _collect_kafka_python_sockets() -> Iterator[None]:
    """kafka-python 3.0.12 drops a socket it opened for a connection attempt still in flight when a
    client closes (ResourceWarning from its network thread). Collect those here, where they are
    known, instead of letting them surface as an unraisable error in whichever test runs next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def topic(unique: str) -> str:
    return unique


def _bus(bootstrap: str, topic: str, partitions: int = 6) -> KafkaBus:
    return KafkaBus(bootstrap, partitions=partitions, topics=[topic], client_id="qinling-test")


def _drain_all(consumer, want: int, max_records: int, timeout: float = 30.0) -> list[list[Record]]:  # type: ignore[no-untyped-def]
    batches: list[list[Record]] = []
    deadline = time.monotonic() + timeout
    while sum(map(len, batches)) < want and time.monotonic() < deadline:
        b = consumer.poll(max_records=max_records, timeout=1.0)
        if b:
            batches.append(b)
    return batches


def test_topics_are_created_with_the_requested_partitions(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic, partitions=4)
    try:
        assert bus.partition_count(topic) == 4
        # a second bus on an existing topic keeps it as it is
        again = KafkaBus(kafka_bootstrap, partitions=6, topics=[topic])
        assert again.partition_count(topic) == 4
        again.close()
    finally:
        bus.close()


def test_batches_respect_max_records_and_keep_keys(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic)
    try:
        p = bus.producer()
        for i in range(25):
            p.send(topic, f"v{i}".encode(), key=b"k%d" % (i % 3))
        p.flush()
        c = bus.consumer([topic], group=f"{topic}-g")
        batches = _drain_all(c, 25, max_records=10)
        assert all(1 <= len(b) <= 10 for b in batches)
        records = [r for b in batches for r in b]
        assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(25))
        by_key: dict[bytes | None, list[Record]] = defaultdict(list)
        for r in records:
            assert r.topic == topic
            assert r.key == b"k%d" % (int(r.value[1:]) % 3)
            by_key[r.key].append(r)
        for recs in by_key.values():
            # one key, one partition, in the order sent, consecutive offsets
            assert len({r.partition for r in recs}) == 1
            assert [int(r.value[1:]) for r in recs] == sorted(int(r.value[1:]) for r in recs)
        by_part: dict[int, list[int]] = defaultdict(list)
        for r in records:
            by_part[r.partition].append(r.offset)
        for offsets in by_part.values():
            assert offsets == list(range(len(offsets)))
        assert c.poll(max_records=100, timeout=1.0) == []
    finally:
        bus.close()


def test_uncommitted_records_are_replayed_to_a_new_consumer_of_the_group(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic, partitions=1)
    try:
        p = bus.producer()
        for i in range(6):
            p.send(topic, bytes([i]))
        p.flush()
        c1 = bus.consumer([topic], group=f"{topic}-store")
        first = _drain_all(c1, 4, max_records=4)
        assert [r.value for b in first for r in b] == [bytes([i]) for i in range(4)]
        c1.commit()
        assert [r.value for r in c1.poll(max_records=2, timeout=5)] == [bytes([4]), bytes([5])]
        c1.close()  # read but never committed: the process "crashes" here
        c2 = bus.consumer([topic], group=f"{topic}-store")
        assert [r.value for r in c2.poll(max_records=10, timeout=5)] == [bytes([4]), bytes([5])]
        c2.close()
        other = bus.consumer([topic], group=f"{topic}-other")  # another group sees everything
        assert len([r for b in _drain_all(other, 6, max_records=10) for r in b]) == 6
    finally:
        bus.close()


def test_commit_is_per_group(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic, partitions=1)
    try:
        p = bus.producer()
        for i in range(3):
            p.send(topic, bytes([i]))
        p.flush()
        a = bus.consumer([topic], group=f"{topic}-a")
        assert len(a.poll(max_records=10, timeout=5)) == 3
        a.commit()
        a.close()
        b = bus.consumer([topic], group=f"{topic}-b")
        assert len(b.poll(max_records=10, timeout=5)) == 3  # b never committed anything
        b.close()
        a2 = bus.consumer([topic], group=f"{topic}-a")
        assert a2.poll(max_records=10, timeout=1.0) == []  # a did
        a2.close()
    finally:
        bus.close()


def test_two_consumers_of_one_group_split_the_partitions_and_see_every_record_once(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic, partitions=6)
    seen: dict[str, list[Record]] = {"c1": [], "c2": []}
    consumers = {name: bus.consumer([topic], group=f"{topic}-split") for name in seen}
    assigned: dict[str, set[tuple[str, int]]] = {name: set() for name in seen}
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(name: str) -> None:
        c = consumers[name]  # used by this thread only: kafka-python consumers are not thread-safe
        try:
            while not stop.is_set():
                batch = c.poll(max_records=50, timeout=0.2)
                seen[name].extend(batch)
                c.commit()
                assigned[name] = c.assignment()  # type: ignore[attr-defined]
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in seen]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while True:  # wait for a stable split of the six partitions
            a1, a2 = assigned["c1"], assigned["c2"]
            if a1 and a2 and not (a1 & a2) and len(a1 | a2) == 6:
                break
            assert not errors, errors
            assert time.monotonic() < deadline, f"no split: {a1} / {a2}"
            time.sleep(0.2)
        p = bus.producer()
        for i in range(120):
            p.send(topic, b"%d" % i, key=b"key-%d" % i)
        p.flush()
        deadline = time.monotonic() + 60
        while len(seen["c1"]) + len(seen["c2"]) < 120 and time.monotonic() < deadline and not errors:
            time.sleep(0.1)
        time.sleep(1.0)  # anything extra (a duplicate) would arrive now
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        bus.close()
    assert not errors, errors
    values = [r.value for r in seen["c1"] + seen["c2"]]
    assert sorted(values) == sorted(b"%d" % i for i in range(120))  # every record, exactly once
    assert seen["c1"] and seen["c2"]
    p1 = {r.partition for r in seen["c1"]}
    p2 = {r.partition for r in seen["c2"]}
    assert not (p1 & p2)


class FailingSink(Sink[bytes]):
    def __init__(self) -> None:
        self.flushed: list[bytes] = []
        self.pending: list[bytes] = []
        self.fail = True

    def add(self, item: bytes) -> None:
        self.pending.append(item)

    def flush(self) -> None:
        if self.fail:
            self.pending.clear()
            raise OSError("disk full")
        self.flushed.extend(self.pending)
        self.pending.clear()


def test_drain_commits_only_after_the_sink_flushed(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic, partitions=1)
    try:
        p = bus.producer()
        for i in range(5):
            p.send(topic, bytes([i]))
        p.flush()
        sink = FailingSink()
        c = bus.consumer([topic], group=f"{topic}-store")
        with pytest.raises(OSError):
            drain(c, lambda vs: vs, [sink], timeout=2.0)
        c.close()
        sink.fail = False
        c2 = bus.consumer([topic], group=f"{topic}-store")
        assert drain(c2, lambda vs: vs, [sink], timeout=2.0) == 5
        assert sink.flushed == [bytes([i]) for i in range(5)]
    finally:
        bus.close()


def test_poll_waits_for_a_record_from_another_thread(kafka_bootstrap: str, topic: str) -> None:
    bus = _bus(kafka_bootstrap, topic, partitions=1)
    try:
        c = bus.consumer([topic], group=f"{topic}-g")
        c.wait_for_assignment()  # type: ignore[attr-defined]
        p = bus.producer()

        def late() -> None:
            p.send(topic, b"late")
            p.flush()

        t = threading.Timer(0.3, late)
        t.start()
        got = c.poll(max_records=1, timeout=10)
        t.join()
        assert [r.value for r in got] == [b"late"]
    finally:
        bus.close()


def test_unreachable_broker_is_a_clear_bus_error() -> None:
    t0 = time.monotonic()
    with pytest.raises(BusError, match=r"no Kafka broker answered at 127\.0\.0\.1:1 .*pipeline\.services up kafka"):
        KafkaBus("127.0.0.1:1", connect_timeout=2)
    assert time.monotonic() - t0 < 15
