"""Hypothesis: random, truncated and arbitrarily split input never makes the MMS decoding raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.decoders.base import Direction
from sensors.decoders.mms import parse_mms, parse_session
from sensors.decoders.s7comm import S7commFlow

from .conftest import cotp_dt, meta_at

SEEDS = [
    bytes.fromhex("0100010061383036020103a031a02f020100a52aa0233021a01f801d4143545345544747494f3830244443244e616d506c742476656e646f72a003850100"),
    bytes.fromhex("0100010061093007020103a0028b00"),
    bytes.fromhex("a021020101bf281b8017523339353032343339374170706c69636174696f6e5f318100"),
    bytes.fromhex("a8268002001f81010382010383020808a416800101810305e800820c03ffffffffffffffffffffff"),
    bytes.fromhex("0100010061" + "2f302d020103a028a126020101a2218009494e464f2054454348810d53363138353020666f722050438205302e302e31"),
    bytes.fromhex("0d2c0506130100160102140200023302000134020001c11631143012a003800101a20b610930070201010a0200"),
]
inner = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda h, rest: bytes([h]) + rest, st.sampled_from([0x01, 0x0D, 0x0E, 0x09, 0x0A, 0x19, 0xA0, 0xA1, 0xA3, 0xA8, 0x8B]), st.binary(max_size=200)),
    st.sampled_from(SEEDS),
    st.builds(lambda s, n: s[:n], st.sampled_from(SEEDS), st.integers(min_value=0, max_value=120)),
)


@settings(max_examples=400, deadline=None)
@given(inner)
def test_parsers_never_raise(data: bytes) -> None:
    parse_session(data)
    parse_mms(data)
    for raw in parse_session(data).mms:
        parse_mms(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.builds(cotp_dt, inner), st.binary(max_size=40)), max_size=8).map(b"".join), st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20), st.lists(st.booleans(), min_size=1, max_size=20))
def test_flow_never_raises_on_split_streams(data: bytes, cuts: list[int], dirs: list[bool]) -> None:
    flow = S7commFlow()
    off = frame = 0
    while off < len(data):
        n = cuts[frame % len(cuts)]
        d = Direction.TO_CLIENT if dirs[frame % len(dirs)] else Direction.TO_SERVER
        frame += 1
        for e in flow.feed(memoryview(data[off : off + n]), d, meta_at(frame, frame)):
            assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), e.anomaly
        off += n
    flow.close(meta_at(frame + 1, frame + 1))
