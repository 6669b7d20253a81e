"""The shared stream-decoder base, on a toy protocol: 1-byte length + body; length 0 is a bad header."""

from __future__ import annotations

import datetime as dt

from pipeline.schema import Event
from sensors.decoders.base import Conn, Direction, FrameMeta, Parsed
from sensors.decoders.stream import EventNumbering, Pending, StreamFlow

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


def test_pending_replace_keeps_one_request_per_key_and_peek_leaves_it_pending() -> None:
    p: Pending[int, str] = Pending(limit=4)
    p.add(1, "a")
    p.add(1, "b", replace=True)  # a reused id: the newer request is the one answered
    assert len(p) == 1 and p.peek(1) == "b" and len(p) == 1
    assert p.match(1) == "b" and p.match(1) is None and p.peek(1) is None
    assert [p.add(k, str(k), replace=True) for k in (1, 2, 3, 4, 4, 5)] == [False] * 5 + [True]
    assert p.match(1) is None and p.match(2) == "2"  # 1 was the oldest, dropped by the flood


class Worded(Toy):
    """A protocol with its own texts, a corrupted-but-recognisable frame (0xFF) and reassembly state."""

    UNIT, HEADER = "frame", "toy"
    GAP_MESSAGE = "{nbytes} lost: {held} buffered byte(s) dropped"
    STOP_MESSAGE = "{bad} stretches of non-toy bytes"
    DATAGRAMS = True

    def __init__(self) -> None:
        super().__init__()
        self.frag = bytearray(b"xyz")

    def held(self, direction: Direction) -> int:
        return super().held(direction) + len(self.frag)

    def drop(self, direction: Direction) -> None:
        super().drop(direction)
        self.frag.clear()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool | None:
        if p.pdu == b"\xff":
            out.append(self.anomaly(meta, direction, "bad_crc", None))
            return None
        return super().handle(p, direction, meta, out)


def test_texts_hooks_neutral_frames_and_datagrams() -> None:
    t = Worded()
    out = t.feed(memoryview(b"\x00\x00\x01\xff\x00\x00"), Direction.TO_SERVER, meta(1))  # 0xFF neither resets nor counts
    assert [e.anomaly.message for e in out if e.anomaly][-1] == "4 stretches of non-toy bytes"
    out = t.feed(memoryview(b"\x01a\x05ab"), Direction.TO_CLIENT, meta(2))  # a datagram: the cut PDU is not kept
    assert [(e.message, e.anomaly and e.anomaly.message) for e in out] == [("a", None), (None, "datagram ends inside a frame (3 byte(s) left)")]
    t = Worded()
    (ev,) = t.gap(Direction.TO_SERVER, 7, meta(3))  # held() counts the reassembly state, drop() forgets it
    assert ev.anomaly is not None and ev.anomaly.message == "7 lost: 3 buffered byte(s) dropped" and not t.frag
    assert t.close(meta(4)) == []


def test_a_tcp_flow_buffers_and_a_udp_flow_reports_the_cut_pdu() -> None:
    udp = FrameMeta(frame=1, time=T0, conn=Conn("10.0.0.1", 40000, "10.0.0.2", 9999, "udp", "1:toy"), file_sha256="f" * 64)
    (ev,) = Toy().feed(memoryview(b"\x05ab"), Direction.TO_SERVER, udp)
    assert ev.anomaly is not None and (ev.anomaly.code, ev.anomaly.message) == ("truncated_pdu", "datagram ends inside a PDU (3 byte(s) left)")
    assert Toy().feed(memoryview(b"\x05ab"), Direction.TO_SERVER, meta(1)) == []


def test_event_numbering_alone_for_a_datagram_decoder() -> None:
    class Dgram(EventNumbering):
        DATASET = "toy"
        ERROR = "decoder_error"

    d = Dgram()
    a, b = d.emit(meta(5), Direction.TO_SERVER), d.error(meta(5), Direction.TO_SERVER, ValueError("x"))
    assert [a.event.id, b.event.id] == ["ffffffffffffffff-5-0", "ffffffffffffffff-5-1"]
    assert b.anomaly is not None and (b.anomaly.code, b.anomaly.message) == ("decoder_error", "decoder error: ValueError: x")
