"""Hypothesis: random, truncated and split input through the OPC UA parser and flow never raises."""

from __future__ import annotations

import datetime as dt
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.opcua import OpcuaFlow, parse
from sensors.decoders.opcua.parser import decode_service

CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 4840, "tcp", "1:fuzz")
META = FrameMeta(frame=1, time=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), conn=CONN)
TYPES = st.sampled_from([b"HEL", b"ACK", b"OPN", b"MSG", b"CLO", b"ERR", b"RHE"])
CHUNKS = st.sampled_from([b"F", b"C", b"A"])


@st.composite
def chunks(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):  # a plausible service body: four-byte NodeId of a known service
        body = struct.pack("<IIII", 1, 1, 1, 1) + b"\x01\x00" + struct.pack("<H", draw(st.sampled_from([446, 449, 428, 431, 461, 467, 631, 673, 712, 527, 397]))) + body
    return draw(TYPES) + draw(CHUNKS) + struct.pack("<I", 8 + len(body)) + body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_and_decode_random(data: bytes) -> None:
    parse(data)
    decode_service(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(chunks(), min_size=1, max_size=8), st.lists(st.integers(1, 64), max_size=10), st.lists(st.booleans(), max_size=20))
def test_flow_split_streams(msgs: list[bytes], cuts: list[int], dirs: list[bool]) -> None:
    flow = OpcuaFlow()
    stream = b"".join(msgs)
    pos = 0
    i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)] if cuts else len(stream)
        d = Direction.TO_CLIENT if (dirs and dirs[i % len(dirs)]) else Direction.TO_SERVER
        for e in flow.feed(memoryview(stream[pos : pos + n]), d, META):
            assert e.event.dataset == "opcua"
        pos += n
        i += 1
    flow.gap(Direction.TO_SERVER, 10, META)
    flow.close(META)


@settings(max_examples=100, deadline=None)
@given(chunks(), st.integers(0, 300))
def test_truncated_messages(msg: bytes, cut: int) -> None:
    flow = OpcuaFlow()
    flow.feed(memoryview(msg[:cut]), Direction.TO_SERVER, META)
    flow.close(None)


_READS = {0: "build_info", 1: "namespace_uris", 2: "server_status", 3: "manufacturer_name"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 3))
def test_identity_read_response_random(tail: bytes, nresults: int) -> None:
    """A ReadResponse (encoding 634) with random results, decoded as answering a request for identity nodes."""
    body = b"\x01\x00" + struct.pack("<H", 634) + bytes(8) + struct.pack("<I", 1) + bytes(4) + b"\x00" + struct.pack("<i", -1) \
        + b"\x00\x00\x00" + struct.pack("<i", nresults) + tail
    fields, _ = decode_service(body, _READS)
    assert fields.get("service_name") == "ReadResponse"
