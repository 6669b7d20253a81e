"""Hypothesis: random, mutated, truncated and split bytes never make the DNP3 parsers or flows raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.schema import encode
from sensors.decoders.base import Direction
from sensors.decoders.dnp3 import Dnp3Flow, Dnp3UdpFlow, parse_application, parse_frame
from tests.decoders.dnp3.conftest import meta_at, message

directions = st.sampled_from([Direction.TO_SERVER, Direction.TO_CLIENT])
GROUPS = [1, 2, 10, 12, 20, 30, 32, 40, 41, 50, 51, 52, 60, 70, 80, 110, 120, 0, 99]


@st.composite
def fragments(draw: st.DrawFn) -> bytes:
    """Application fragments with plausible object headers and arbitrary data (reaches every object decoder)."""
    fc = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 13, 20, 25, 26, 129, 130, 131, 77]))
    out = bytes([draw(st.integers(0, 255)), fc])
    if fc >= 129:
        out += draw(st.binary(min_size=2, max_size=2))
    for _ in range(draw(st.integers(0, 4))):
        out += bytes([draw(st.sampled_from(GROUPS)), draw(st.integers(0, 9)), draw(st.sampled_from([0x00, 0x01, 0x06, 0x07, 0x17, 0x28, 0x5B, 0x39, 0x0D]))])
        out += draw(st.binary(max_size=40))
    return out


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_parse_frame_random(data: bytes) -> None:
    p = parse_frame(memoryview(data))
    assert 0 <= p.consumed <= len(data)
    assert p.consumed > 0 or p.needed > 0


@settings(max_examples=600, deadline=None)
@given(fragments())
def test_parse_application_never_raises(frag: bytes) -> None:
    parse_application(frag)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(fragments().map(message), st.binary(max_size=60)), directions, st.integers(1, 50)), max_size=10))
def test_flow_feed_never_raises(chunks: list[tuple[bytes, Direction, int]]) -> None:
    for flow in (Dnp3Flow(), Dnp3UdpFlow()):
        frame = 0
        for data, direction, step in chunks:
            for i in range(0, len(data), step):
                frame += 1
                for e in flow.feed(memoryview(data[i : i + step]), direction, meta_at(frame, frame)):
                    assert e.event.dataset == "dnp3"
                    assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), e.anomaly
                    encode(e)
        flow.close(meta_at(frame + 1))
