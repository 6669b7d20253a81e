"""Hypothesis: random, truncated and split input through the parser and the flows; nothing raises."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.decoders.base import Conn, Direction
from sensors.decoders.enip import CipIoFlow, EnipFlow, parse, parse_cip, parse_io, parse_path

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _encap(cmd: int, body: bytes) -> bytes:
    return struct.pack("<HHII8sI", cmd, len(body), 1, 0, b"\0" * 8, 0) + body


# Plausible messages: a real header around random CPF/CIP bodies reaches the deep parsers.
commands = st.sampled_from([0x00, 0x04, 0x63, 0x64, 0x65, 0x66, 0x6F, 0x70, 0x72, 0x73, 0x99])
cpf_bodies = st.builds(
    lambda h, items: h + struct.pack("<H", len(items)) + b"".join(struct.pack("<HH", t, len(d)) + d for t, d in items),
    st.binary(min_size=6, max_size=6),
    st.lists(st.tuples(st.sampled_from([0x0, 0xC, 0xA1, 0xB1, 0xB2, 0x100, 0x8000, 0x8002]), st.binary(max_size=80)), max_size=4),
)
messages = st.builds(_encap, commands, st.one_of(cpf_bodies, st.binary(max_size=120)))


@FAST
@given(st.binary(max_size=300), st.sampled_from(list(Direction)))
def test_parse_never_raises(data: bytes, direction: Direction) -> None:
    parse(memoryview(data), direction)
    parse_cip(data)
    parse_path(data)
    parse_io(data)


@FAST
@given(st.binary(min_size=1, max_size=200))
def test_cip_never_raises(data: bytes) -> None:
    for first in (0x0A, 0x52, 0x54, 0x4C, 0x8A, 0xD4):
        parse_cip(bytes([first]) + data)
        parse_cip(bytes([first, 0x02, 0x20, 0x06, 0x24, 0x01]) + data)


@FAST
@given(st.lists(st.tuples(messages, st.booleans()), max_size=8), st.lists(st.integers(1, 40), min_size=1, max_size=8), st.sampled_from(["tcp", "udp"]), st.data())
def test_flow_split_and_truncated(msgs: list[tuple[bytes, bool]], cuts: list[int], transport: str, data: st.DataObject) -> None:
    from tests.decoders.enip.conftest import meta_at

    conn = Conn("10.0.0.1", 40000, "10.0.0.2", 44818, transport, "1:fuzz")
    flow = EnipFlow()
    frame = 0
    for m, to_client in msgs:
        if data.draw(st.booleans()):
            m = m[: data.draw(st.integers(0, len(m)))]
        off = 0
        k = 0
        while off < len(m):
            n = cuts[k % len(cuts)]
            frame += 1
            flow.feed(memoryview(m[off : off + n]), Direction.TO_CLIENT if to_client else Direction.TO_SERVER, meta_at(frame, conn=conn))
            off += n
            k += 1
        if data.draw(st.booleans()):
            flow.gap(Direction.TO_SERVER, 3, meta_at(frame + 1, conn=conn))
    flow.close(None)
    CipIoFlow().feed(memoryview(b"".join(m for m, _ in msgs)[:200]), Direction.TO_SERVER, meta_at(1, conn=conn))
