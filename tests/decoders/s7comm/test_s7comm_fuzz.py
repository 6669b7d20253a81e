"""Hypothesis: random, truncated and arbitrarily split input never makes the S7comm decoder raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.decoders.base import Direction
from sensors.decoders.s7comm import S7commFlow, parse_cotp, parse_s7, parse_s7plus, parse_tpkt

from .conftest import meta_at

SEEDS = [
    bytes.fromhex("0300001611e00000000100c0010ac1020100c2020102"),
    bytes.fromhex("0300001902f08032010000000000080000f0000001000101e0"),
    bytes.fromhex("0300001f02f080320100000100000e00000401120a10020001000082000008"),
    bytes.fromhex("0300001a02f0803203000001000002000500000401ff04000800"),
    bytes.fromhex("0300002102f080320700000100000800080001120411440100ff09000400110000"),
    bytes.fromhex("0300002102f0803201000000020010000029000000000009505f50524f4752414d"),
    bytes.fromhex("0300001902f080320700000000000800000100101000000000"),
]


def _tpkt(payload: bytes) -> bytes:
    return bytes([3, 0]) + (len(payload) + 7).to_bytes(2, "big") + bytes([2, 0xF0, 0x80]) + payload


inner = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda h, rest: bytes([0x32, h]) + rest, st.sampled_from([1, 2, 3, 7]), st.binary(max_size=200)),
    st.builds(lambda rest: b"\x72" + rest, st.binary(max_size=200)),
    st.sampled_from([s[7:] for s in SEEDS]),
)
stream = st.lists(st.one_of(st.builds(_tpkt, inner), st.sampled_from(SEEDS), st.binary(max_size=40)), max_size=8).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parsers_never_raise(data: bytes) -> None:
    parse_tpkt(data)
    parse_cotp(data)
    parse_s7(data)
    parse_s7(b"\x32" + data)
    parse_s7plus(b"\x72" + data)
    parse_s7plus(data, continuation=True)


@settings(max_examples=200, deadline=None)
@given(stream, st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20), st.lists(st.booleans(), min_size=1, max_size=20))
def test_flow_never_raises_on_split_streams(data: bytes, cuts: list[int], dirs: list[bool]) -> None:
    flow = S7commFlow()
    off = frame = 0
    while off < len(data):
        n = cuts[frame % len(cuts)]
        frame += 1
        d = Direction.TO_CLIENT if dirs[frame % len(dirs)] else Direction.TO_SERVER
        evs = flow.feed(memoryview(data[off : off + n]), d, meta_at(frame, frame))
        assert all(e.event.dataset in ("s7comm", "mms") for e in evs)  # port 102 carries MMS too: the flow dispatches by payload
        assert not [e for e in evs if e.anomaly is not None and e.anomaly.message and e.anomaly.message.startswith("decoder error")]
        off += n
    flow.gap(Direction.TO_SERVER, 10, meta_at(frame + 1))
    flow.close(None)


def test_mutated_seeds() -> None:
    flow = S7commFlow()
    frame = 0
    for seed in SEEDS:
        for i in range(len(seed)):
            for b in (0x00, 0xFF, seed[i] ^ 0x80):
                frame += 1
                m = seed[:i] + bytes([b]) + seed[i + 1 :]
                evs = flow.feed(memoryview(m), Direction(frame % 2), meta_at(frame))
                assert not [e for e in evs if e.anomaly is not None and (e.anomaly.message or "").startswith("decoder error")], m.hex()
