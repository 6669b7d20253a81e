"""Hypothesis: random and truncated datagrams through the BACnet/IP parser and flow never raise."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.decoders.bacnet import BacnetFlow, parse
from sensors.decoders.bacnet.constants import MAX_SEGMENTED
from sensors.decoders.base import Conn, Direction, FrameMeta

META = FrameMeta(frame=1, time=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), conn=Conn("10.0.0.1", 47808, "10.0.0.2", 47808, "udp", "1:f"))


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=120))
    func = draw(st.sampled_from([0x00, 0x04, 0x09, 0x0A, 0x0B, 0x0C, draw(st.integers(0, 255))]))
    npdu = bytes([1, draw(st.sampled_from([0x00, 0x04, 0x08, 0x20, 0x28, 0x80, draw(st.integers(0, 255))]))])
    apdu_head = bytes([draw(st.integers(0, 255)) for _ in range(draw(st.integers(0, 6)))])
    payload = (b"\xc0\xa8\x00\x01\xba\xc0" if func == 0x04 else b"") + npdu + apdu_head + body
    return bytes([0x81, func]) + (4 + len(payload)).to_bytes(2, "big") + payload


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    parse(data)


@settings(max_examples=400, deadline=None)
@given(st.lists(datagrams(), min_size=1, max_size=10), st.integers(0, 200), st.lists(st.booleans(), min_size=1, max_size=10))
def test_flow(ds: list[bytes], cut: int, dirs: list[bool]) -> None:
    flow = BacnetFlow()
    for i, d in enumerate(ds):
        direction = Direction.TO_CLIENT if dirs[i % len(dirs)] else Direction.TO_SERVER
        for e in flow.feed(memoryview(d[: max(cut, 1)] if i % 2 else d), direction, META):
            assert e.event.dataset == "bacnet"
    flow.close(None)


@st.composite
def segments(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A segment of a segmented confirmed request or ComplexACK: few invoke ids, sequence numbers
    near one another, any flags, random parameter bytes (tags cut anywhere)."""
    ack = draw(st.booleans())
    more = draw(st.booleans())
    head = bytes([0x38 | (0x04 if more else 0)]) if ack else bytes([0x08 | (0x04 if more else 0), 0x05])
    invoke = draw(st.integers(0, 3))
    seq = draw(st.sampled_from([0, 1, 2, 3, 255, draw(st.integers(0, 255))]))
    service = draw(st.sampled_from([12, 14, 15, 16, 26, 6, 10, draw(st.integers(0, 40))]))
    apdu = head + bytes([invoke, seq, draw(st.integers(0, 8)), service]) + draw(st.binary(max_size=60))
    payload = bytes([1, 0]) + apdu
    return bytes([0x81, 0x0A]) + (4 + len(payload)).to_bytes(2, "big") + payload, ack


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(segments(), st.integers(0, 90)), min_size=1, max_size=30))
def test_segmented_messages(ds: list[tuple[tuple[bytes, bool], int]]) -> None:
    flow = BacnetFlow()
    t = 0
    for (d, ack), dt_s in ds:
        t += dt_s
        meta = FrameMeta(frame=1, time=META.time + dt.timedelta(seconds=t), conn=META.conn)
        for e in flow.feed(memoryview(d), Direction.TO_CLIENT if ack else Direction.TO_SERVER, meta):
            assert e.event.dataset == "bacnet"
            assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), e.anomaly
        assert len(flow._segments) <= MAX_SEGMENTED
    flow.close(None)
