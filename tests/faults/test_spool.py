"""The live sensor's disk spool (pipeline.spool) on a real disk: order, bound, restart, torn writes.

The fault test with a real broker kept away for 60 s is tests/faults/test_faults.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipeline.bus import EmbeddedBus, Producer
from pipeline.exceptions import BusError
from pipeline.spool import Spool, SpooledProducer


def _recs(n: int, start: int = 0) -> list[tuple[str, bytes | None, bytes]]:
    return [("events", None if i % 3 == 0 else b"k%d" % (i % 5), b"value-%06d" % i) for i in range(start, start + n)]


def _read_all(sp: Spool) -> list[tuple[str, bytes | None, bytes]]:
    out = []
    while True:
        recs, pos = sp.read(7)
        if not recs:
            return out
        out.extend(recs)
        sp.ack(pos)


def test_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=256)
    assert sum(sp.append(_recs(10, i)) for i in range(0, 100, 10)) == 100
    assert len(list(tmp_path.glob("*.seg"))) > 5
    assert _read_all(sp) == _recs(100)
    assert sp.stats.pending == sp.stats.pending_bytes == 0 and sp.stats.delivered == 100
    assert len(list(tmp_path.glob("*.seg"))) == 1, "acknowledged segments are deleted"


def test_over_the_bound_the_newest_are_dropped_and_counted(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000, segment_bytes=1024)
    accepted = sum(sp.append(_recs(1, i)) for i in range(1000))
    assert 0 < accepted < 1000
    assert sp.stats.dropped == 1000 - accepted and sp.stats.appended == accepted
    assert sp.stats.pending_bytes <= 10_000
    assert _read_all(sp) == _recs(accepted), "what is kept is the oldest stretch, gap-free"
    assert sp.append(_recs(1, 5000)) == 1, "room again once delivered"
    assert "DROPPED" in sp.stats.summary(tmp_path) and f"{1000 - accepted} record(s)" in sp.stats.summary(tmp_path)


def test_a_spool_left_by_a_stopped_sensor_is_sent_first(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=300)
    sp.append(_recs(50))
    recs, pos = sp.read(10)
    sp.ack(pos)
    sp.close()  # stopped during an outage: 40 not delivered
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=300)
    assert again.stats.recovered == 40
    again.append(_recs(5, 50))
    assert _read_all(again) == _recs(45, 10)


def test_a_torn_last_record_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=1 << 20)
    sp.append(_recs(10))
    sp.close()
    seg = next(tmp_path.glob("*.seg"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-5])  # the process died in the middle of a write
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.stats.recovered == 9
    assert _read_all(again) == _recs(9)


class _Unreachable(Producer):
    """A bus producer whose broker is away until `back` is set (then it hands records to `inner`)."""

    def __init__(self, inner: Producer, back: threading.Event) -> None:
        self.inner, self.back, self.buf = inner, back, []  # type: ignore[var-annotated]

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.buf.append((topic, value, key))

    def flush(self) -> None:
        if not self.back.is_set():
            self.buf.clear()
            raise BusError("no broker answered")
        for t, v, k in self.buf:
            self.inner.send(t, v, key=k)
        self.buf.clear()
        self.inner.flush()

    def close(self) -> None:
        pass


def test_spooled_producer_buffers_while_the_bus_refuses_then_drains_in_order(tmp_path: Path) -> None:
    bus, back = EmbeddedBus(), threading.Event()
    consumer = bus.consumer(["events"], group="check")
    p = SpooledProducer(Spool(tmp_path, max_bytes=1 << 20), lambda: _Unreachable(bus.producer(), back), retry=0.05)
    for i in range(300):
        p.send("events", b"%05d" % i, key=b"plc")
    p.flush()
    assert not p.drain(0.5) and p.stats.pending == 300 and p.stats.failures >= 1
    back.set()
    stats = p.close(timeout=10)
    assert stats.pending == 0 and stats.delivered == 300 and stats.dropped == 0
    got = [r.value for r in consumer.poll(1000)]
    assert got == [b"%05d" % i for i in range(300)]
    assert stats.resent >= 300, "a refused batch is counted as sent again"
