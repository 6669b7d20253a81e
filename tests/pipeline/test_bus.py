"""The embedded bus keeps the Kafka bus's contract: batches, keys, per-group commits, replay after a crash."""

from __future__ import annotations

import threading

from pipeline.bus import TOPIC_EVENTS, EmbeddedBus
from pipeline.stages import ListSink, Sink, drain


def test_batches_respect_max_records_and_keep_keys() -> None:
    bus = EmbeddedBus()
    p = bus.producer()
    for i in range(25):
        p.send(TOPIC_EVENTS, f"v{i}".encode(), key=b"k%d" % (i % 3))
    p.flush()
    c = bus.consumer([TOPIC_EVENTS], group="g")
    first = c.poll(max_records=10)
    assert [r.value for r in first] == [f"v{i}".encode() for i in range(10)]
    assert [r.offset for r in first] == list(range(10))
    assert first[4].key == b"k1"
    assert len(c.poll(max_records=100)) == 15
    assert c.poll(max_records=100) == []


def test_uncommitted_records_are_replayed_to_a_new_consumer_of_the_group() -> None:
    bus = EmbeddedBus()
    p = bus.producer()
    for i in range(6):
        p.send(TOPIC_EVENTS, bytes([i]))
    other = bus.consumer([TOPIC_EVENTS], group="other")  # a group that exists keeps its records
    c1 = bus.consumer([TOPIC_EVENTS], group="store")
    c1.poll(max_records=4)
    c1.commit()
    c1.poll(max_records=2)  # read but never committed: the process "crashes" here
    c2 = bus.consumer([TOPIC_EVENTS], group="store")
    assert [r.value for r in c2.poll(max_records=10)] == [bytes([4]), bytes([5])]
    # another group sees everything
    assert len(other.poll(max_records=10)) == 6


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


def test_drain_commits_only_after_the_sink_flushed() -> None:
    bus = EmbeddedBus()
    p = bus.producer()
    for i in range(5):
        p.send(TOPIC_EVENTS, bytes([i]))
    sink = FailingSink()
    c = bus.consumer([TOPIC_EVENTS], group="store")
    try:
        drain(c, lambda vs: vs, [sink])
    except OSError:
        pass
    else:  # pragma: no cover - the sink must have raised
        raise AssertionError("flush failure was swallowed")
    sink.fail = False
    drained = drain(bus.consumer([TOPIC_EVENTS], group="store"), lambda vs: vs, [sink])
    assert drained == 5
    assert sink.flushed == [bytes([i]) for i in range(5)]


def test_poll_waits_for_a_record_from_another_thread() -> None:
    bus = EmbeddedBus()
    c = bus.consumer([TOPIC_EVENTS], group="g")
    t = threading.Timer(0.05, lambda: bus.producer().send(TOPIC_EVENTS, b"late"))
    t.start()
    got = c.poll(max_records=1, timeout=5)
    t.join()
    assert [r.value for r in got] == [b"late"]


def test_an_append_wakes_every_consumer_blocked_in_poll_at_once() -> None:
    """Appends notify only while someone waits: each waiting poll must still wake on the record, not at its timeout."""
    import time

    bus = EmbeddedBus()
    consumers = [bus.consumer([TOPIC_EVENTS], group=g) for g in ("a", "b")]
    got: dict[int, tuple[list[bytes], float]] = {}

    def wait(i: int) -> None:
        t0 = time.monotonic()
        got[i] = ([r.value for r in consumers[i].poll(max_records=5, timeout=30)], time.monotonic() - t0)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while bus._waiting < 2 and time.monotonic() < deadline:  # both blocked in wait()
        time.sleep(0.01)
    bus.producer().send(TOPIC_EVENTS, b"x")
    for t in threads:
        t.join(timeout=30)
    assert bus._waiting == 0
    assert [got[i][0] for i in range(2)] == [[b"x"], [b"x"]]
    assert max(got[i][1] for i in range(2)) < 10  # woken by the append, far before the 30 s timeout


def test_list_sink_exposes_only_flushed_items() -> None:
    s: ListSink[int] = ListSink()
    s.add(1)
    assert s.items == []
    s.flush()
    assert s.items == [1]


def test_records_every_group_committed_are_dropped() -> None:
    """A long replay holds only what is in flight, not the whole capture's events."""
    bus = EmbeddedBus()
    p = bus.producer()
    fast = bus.consumer([TOPIC_EVENTS], group="detect")
    slow = bus.consumer([TOPIC_EVENTS], group="sink")
    for i in range(10):
        p.send(TOPIC_EVENTS, bytes([i]))
    assert len(fast.poll(max_records=10)) == 10
    fast.commit()
    assert bus.retained(TOPIC_EVENTS) == 10  # the sink group has not committed yet
    assert [r.value for r in slow.poll(max_records=4)] == [bytes([i]) for i in range(4)]
    slow.commit()
    assert bus.retained(TOPIC_EVENTS) == 6
    assert [r.offset for r in slow.poll(max_records=10)] == list(range(4, 10))  # offsets stay absolute
    slow.commit()
    assert bus.retained(TOPIC_EVENTS) == 0 and bus.size(TOPIC_EVENTS) == 10
    p.send(TOPIC_EVENTS, b"next")
    assert [(r.offset, r.value) for r in fast.poll(max_records=5)] == [(10, b"next")]
    # a crash after trimming replays only what was not committed
    again = bus.consumer([TOPIC_EVENTS], group="sink")
    assert [r.value for r in again.poll(max_records=5)] == [b"next"]
