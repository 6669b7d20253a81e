"""Random and truncated bytes never make the PROFINET decoders (DCP/RT, IO CM) or the UDP probe raise."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings, strategies as st

from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.ether import EtherFrame
from sensors.decoders.profinet import ProfinetCmFlow, ProfinetRtDecoder, looks_like_pnio
from sensors.decoders.profinet.dcp import parse_rt
from sensors.decoders.profinet.rpc import parse as parse_rpc

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 49153, "10.0.0.2", 34964, "udp", "1:test")
# DCP Set request: name of station "plc-1" (permanent), then a Signal control block.
DCP_SET = bytes.fromhex("fefd" "04" "00" "00000001" "0000" "0012" "0202" "0007" "0001") + b"plc-1" + b"\x00" + bytes.fromhex("0503" "0004" "0000" "0100")
# DCE/RPC CL request header (big endian), PNIO device interface, opnum 4 (control), empty body.
RPC = (bytes([4, 0, 0x20, 0, 0, 0, 0, 0]) + bytes.fromhex("dea000006c9711d1827100010003015a") + bytes.fromhex("dea000016c9711d1827100a02442df7d")
       + bytes(16) + bytes(12) + (4).to_bytes(2, "big") + b"\xff\xff\xff\xff" + bytes(2) + bytes(4))


def test_seeds_decode() -> None:
    p = parse_rt(DCP_SET)
    assert p is not None and p.station_name == "plc-1" and p.permanent is True and p.control == "signal"
    assert looks_like_pnio(RPC)
    r = parse_rpc(RPC)
    assert r is not None and r.operation_name == "control" and r.interface_name == "device"


def _ef(n: int) -> EtherFrame:
    return EtherFrame(frame=n, time=T0, src_mac="00:01:02:03:04:05", dst_mac="01:0e:cf:00:00:00", vlan=(0,), ethertype=0x8892)


def _meta(n: int) -> FrameMeta:
    return FrameMeta(frame=n, time=T0, conn=CONN, file_sha256="0" * 64, file="unit.pcap")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    ProfinetRtDecoder().feed(memoryview(data), _ef(1))
    ProfinetRtDecoder().feed(memoryview(b"\xfe\xfd" + data), _ef(1))
    ProfinetCmFlow().feed(memoryview(data), Direction.TO_SERVER, _meta(1))
    ProfinetCmFlow().feed(memoryview(RPC[:8] + data), Direction.TO_CLIENT, _meta(1))
    looks_like_pnio(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(RPC)), st.integers(min_value=0, max_value=len(DCP_SET) - 1), st.integers(min_value=0, max_value=255))
def test_truncated_and_mutated(cut: int, pos: int, byte: int) -> None:
    flow = ProfinetCmFlow()
    flow.feed(memoryview(RPC[:cut]), Direction.TO_SERVER, _meta(1))
    mutated = bytearray(DCP_SET)
    mutated[pos] = byte
    ProfinetRtDecoder().feed(memoryview(bytes(mutated)), _ef(2))
    ProfinetRtDecoder().feed(memoryview(DCP_SET[: pos + 1]), _ef(3))
