"""The shared stream-decoder base, on a toy protocol: 1-byte length + body; length 0 is a bad header."""

from __future__ import annotations

import datetime as dt

from pipeline.schema import Event
from sensors.decoders.base import Conn, Direction, FrameMeta, Parsed
from sensors.decoders.stream import Pending, StreamFlow

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 9999, "tcp", "1:toy")


def meta(frame: int) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(seconds=frame), conn=CONN, file_sha256="f" * 64)


class Toy(StreamFlow):
    DATASET = "toy"

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        n = data[0]
        if n == 0:
            return Parsed(consumed=1, anomaly="invalid_length")
        if len(data) < 1 + n:
            return Parsed(consumed=0, needed=1 + n - len(data))
        return Parsed(consumed=1 + n, pdu=bytes(data[1 : 1 + n]))

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        if p.pdu is None:
            out.append(self.anomaly(meta, direction, p.anomaly or "?", "zero length"))
            return False
        out.append(self.emit(meta, direction, action="read", message=p.pdu.decode()))
        return True


def test_split_and_packed_pdus_are_framed_once_each_with_per_frame_ids() -> None:
    t = Toy()
    assert t.feed(memoryview(b"\x03ab"), Direction.TO_SERVER, meta(1)) == []
    out = t.feed(memoryview(b"c\x01x\x02y"), Direction.TO_SERVER, meta(2))
    assert [e.message for e in out] == ["abc", "x"]
    assert [e.event.id for e in out] == ["ffffffffffffffff-2-0", "ffffffffffffffff-2-1"]
    out = t.close(meta(3))
    assert [(e.anomaly.code, e.event.id) for e in out if e.anomaly] == [("truncated_pdu", "ffffffffffffffff-3-900")]


def test_bad_headers_in_a_row_stop_the_direction_once() -> None:
    t = Toy()
    out = t.feed(memoryview(b"\x00\x00\x01z\x00\x00\x00\x00\x05hello"), Direction.TO_CLIENT, meta(1))
    codes = [e.anomaly.code if e.anomaly else e.message for e in out]
    assert codes == ["invalid_length", "invalid_length", "z", "invalid_length", "invalid_length", "invalid_length",
                     "invalid_length", "not_protocol"]
    assert t.feed(memoryview(b"\x01q"), Direction.TO_CLIENT, meta(2)) == []  # stopped for good
    assert [e.message for e in t.feed(memoryview(b"\x01q"), Direction.TO_SERVER, meta(2))] == ["q"]  # the other side goes on


def test_gap_drops_the_cut_pdu_and_resyncs() -> None:
    t = Toy()
    t.feed(memoryview(b"\x05he"), Direction.TO_SERVER, meta(1))
    out = t.gap(Direction.TO_SERVER, 10, meta(2))
    assert [e.anomaly.code for e in out if e.anomaly] == ["truncated_pdu"]
    assert [e.message for e in t.feed(memoryview(b"\x02ok"), Direction.TO_SERVER, meta(3))] == ["ok"]


def test_a_bug_in_a_subclass_becomes_an_anomaly_not_a_crash() -> None:
    class Buggy(Toy):
        def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
            raise RuntimeError("boom")

    (ev,) = Buggy().feed(memoryview(b"\x01a"), Direction.TO_SERVER, meta(1))
    assert ev.anomaly is not None and ev.anomaly.code == "invalid_pdu" and "boom" in (ev.anomaly.message or "")


def test_pending_pairs_fifo_per_key_and_signals_one_flood_per_episode() -> None:
    p: Pending[int, str] = Pending(limit=4)
    assert [p.add(k % 2, f"r{k}") for k in range(4)] == [False] * 4
    assert p.add(9, "r4") is True  # over the limit: oldest (r0) dropped, episode starts
    assert p.add(9, "r5") is False  # same episode: r1 dropped too, but no second signal
    assert len(p) == 4
    assert p.match(0) == "r2"  # r0 was dropped
    assert p.match(1) == "r3" and p.match(9) == "r4"  # FIFO within a key
    assert len(p) == 1  # below half the limit: the episode is over
    assert [p.add(7, str(i)) for i in range(4)] == [False, False, False, True]
    assert p.match(42) is None
