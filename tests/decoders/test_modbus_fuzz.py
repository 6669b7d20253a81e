"""Hypothesis: random, mutated and truncated bytes never make the Modbus parser or flow raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.schema import encode
from sensors.decoders.base import Direction
from sensors.decoders.modbus import ModbusFlow, parse
from tests.decoders.conftest import meta_at

directions = st.sampled_from([Direction.TO_SERVER, Direction.TO_CLIENT])


@st.composite
def adus(draw: st.DrawFn) -> bytes:
    """Well-framed ADUs with arbitrary bodies: reaches every function decoder, not just the header check."""
    fc = draw(st.one_of(st.integers(0, 255), st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43, 90])))
    body = draw(st.binary(max_size=252))
    if fc == 43 and draw(st.booleans()):
        body = b"\x0e" + body[:251]
    tid = draw(st.integers(0, 0xFFFF))
    unit = draw(st.integers(0, 255))
    length = len(body) + 2
    return tid.to_bytes(2, "big") + b"\x00\x00" + length.to_bytes(2, "big") + bytes([unit, fc]) + body


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), directions)
def test_parse_random_bytes(data: bytes, direction: Direction) -> None:
    p = parse(memoryview(data), direction)
    assert 0 <= p.consumed <= len(data)
    assert p.consumed > 0 or p.needed > 0


@settings(max_examples=600, deadline=None)
@given(adus(), directions, st.integers(0, 300))
def test_parse_framed_and_truncated(adu: bytes, direction: Direction, cut: int) -> None:
    p = parse(memoryview(adu), direction)
    assert p.consumed == len(adu) and p.pdu is not None
    t = adu[: min(cut, len(adu))]
    q = parse(memoryview(t), direction)
    assert 0 <= q.consumed <= len(t)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(adus(), st.binary(max_size=80)), directions, st.integers(1, 40)), max_size=12))
def test_flow_feed_never_raises(chunks: list[tuple[bytes, Direction, int]]) -> None:
    flow = ModbusFlow()
    frame = 0
    for data, direction, step in chunks:
        for i in range(0, len(data), step):  # arbitrary segmentation
            frame += 1
            for e in flow.feed(memoryview(data[i : i + step]), direction, meta_at(frame, frame)):
                assert e.event.dataset == "modbus"
                assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), e.anomaly
                encode(e)
    flow.close(meta_at(frame + 1))
