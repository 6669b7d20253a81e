"""Hypothesis: random, truncated and arbitrarily split input never makes the FINS decoder raise."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.fins import FinsTcpFlow, FinsUdpFlow, parse_frame, parse_tcp

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
UDP = Conn("10.0.0.1", 40000, "10.0.0.2", 9600, "udp", "1:u")
TCP = Conn("10.0.0.1", 40000, "10.0.0.2", 9600, "tcp", "1:t")
SEEDS = [
    bytes.fromhex("8000020000000000007a0101820064000001"),
    bytes.fromhex("c000020000000000007a01010000abcd"),
    bytes.fromhex("8000020000000000007a2301000100010000640000"),
    bytes.fromhex("8000020000000000007a22050000000166696c656e616d652e6f6e65"),
]
frames = st.one_of(st.binary(max_size=80), st.sampled_from(SEEDS), st.builds(lambda s, n: s[:n], st.sampled_from(SEEDS), st.integers(0, 30)),
                   st.builds(lambda c, rest: bytes([0x80, 0, 2, 0, 0, 0, 0, 0, 0, 0x7A]) + c.to_bytes(2, "big") + rest, st.sampled_from([0x0101, 0x0102, 0x0104, 0x0105, 0x0201, 0x0306, 0x0307, 0x0401, 0x2202, 0x2203, 0x2205, 0x2207, 0x2208, 0x220A, 0x220C, 0x2301]), st.binary(max_size=60)))  # fmt: skip


def _tcp(frame: bytes, cmd: int) -> bytes:
    return b"FINS" + (len(frame) + 8).to_bytes(4, "big") + cmd.to_bytes(4, "big") + bytes(4) + frame


def _meta(conn: Conn, n: int) -> FrameMeta:
    return FrameMeta(frame=n, time=T0 + dt.timedelta(milliseconds=n), conn=conn, file_sha256="0" * 64)


@settings(max_examples=400, deadline=None)
@given(frames)
def test_parsers_never_raise(data: bytes) -> None:
    parse_frame(data)
    parse_tcp(data)
    parse_tcp(_tcp(data, 2))


@settings(max_examples=200, deadline=None)
@given(st.lists(frames, max_size=8), st.lists(st.booleans(), min_size=1, max_size=8))
def test_udp_flow_never_raises(datagrams: list[bytes], dirs: list[bool]) -> None:
    flow = FinsUdpFlow()
    for i, d in enumerate(datagrams):
        for e in flow.feed(memoryview(d), Direction.TO_CLIENT if dirs[i % len(dirs)] else Direction.TO_SERVER, _meta(UDP, i + 1)):
            assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), e.anomaly
    flow.close(None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.builds(_tcp, frames, st.sampled_from([0, 1, 2, 3, 6, 9])), st.binary(max_size=30)), max_size=6).map(b"".join), st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_tcp_flow_never_raises_on_split_streams(data: bytes, cuts: list[int]) -> None:
    flow = FinsTcpFlow()
    off = i = 0
    while off < len(data):
        n = cuts[i % len(cuts)]
        i += 1
        for e in flow.feed(memoryview(data[off : off + n]), Direction(i % 2), _meta(TCP, i)):
            assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), e.anomaly
        off += n
    flow.close(_meta(TCP, i + 1))
