"""PROFINET DCP and IO CM parsing on annotated bytes; the UDP probe; IO CM responses from ephemeral ports."""

from __future__ import annotations

import uuid
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from sensors.decoders.profinet import looks_like_pnio
from sensors.decoders.profinet.dcp import action_of, parse_rt
from sensors.decoders.profinet.rpc import parse as parse_rpc
from sensors.engine import decode_file

DCP_SET_RESET = bytes([
    0xFE, 0xFD,              # frame id: DCP Get/Set
    0x04, 0x00,              # service Set, type request
    0x00, 0x00, 0x00, 0x2A,  # xid 42
    0x00, 0x00,              # reserved
    0x00, 0x0E,              # DCP data length 14
    0x05, 0x06, 0x00, 0x02,  # option Control, suboption ResetToFactory, block length 2
    0x00, 0x01,              # block qualifier
    0x02, 0x02, 0x00, 0x04,  # option Device properties, NameOfStation, block length 4
    0x00, 0x01, *b"ab",      # qualifier 1 (permanent), "ab"
])
IDENT_RES_IP = bytes([
    0xFE, 0xFF, 0x05, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x1C,  # Identify response ok, xid 7, 28 octets
    0x02, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x2A, 0x01, 0x0E,  # DeviceID: block info 0, vendor 0x002a, device 0x010e
    0x01, 0x02, 0x00, 0x0E, 0x00, 0x01, 10, 0, 0, 5, 255, 255, 255, 0, 10, 0, 0, 1,  # IP 10.0.0.5/255.255.255.0 gw 10.0.0.1
])


def test_dcp_set_reset_to_factory() -> None:
    p = parse_rt(DCP_SET_RESET)
    assert p is not None and (p.dcp_service_name, p.dcp_service_type_name, p.xid) == ("set", "request", 42)
    assert (p.control, p.station_name, p.permanent) == ("reset_to_factory", "ab", True)
    assert [b.name for b in p.dcp_blocks or []] == ["control_reset_to_factory", "name_of_station"]
    assert action_of(p) == "restart"


def test_dcp_identify_response() -> None:
    p = parse_rt(IDENT_RES_IP)
    assert p is not None and (p.vendor_id, p.device_id, p.ip, p.netmask, p.gateway) == (0x2A, 0x10E, "10.0.0.5", "255.255.255.0", "10.0.0.1")
    assert action_of(p) == "identify"
    assert parse_rt(b"\x80\x00" + bytes(40)) is None  # cyclic IO data: not an event


def _rpc(little: bool, ptype: int = 0, opnum: int = 1) -> bytes:
    def u(x: str) -> bytes:
        return uuid.UUID(x).bytes_le if little else uuid.UUID(x).bytes

    e = "little" if little else "big"
    return (bytes([4, ptype, 0x20, 0, 0x10 if little else 0x00, 0, 0, 0]) + u("dea00000-6c97-11d1-8271-0001010e002a")
            + u("dea00001-6c97-11d1-8271-00a02442df7d") + u("12345678-1234-1234-1234-123456789abc") + bytes(4) + (1).to_bytes(4, e)
            + (9).to_bytes(4, e) + opnum.to_bytes(2, e) + b"\xff\xff\xff\xff" + bytes(2) + bytes(4))


def test_rpc_header_both_byte_orders() -> None:
    for little in (False, True):
        p = parse_rpc(_rpc(little))
        assert p is not None and p.little_endian is little
        assert (p.object_uuid, p.interface_name, p.activity_uuid) == ("dea00000-6c97-11d1-8271-0001010e002a", "device", "12345678-1234-1234-1234-123456789abc")
        assert (p.sequence_number, p.operation_name, p.vendor_id, p.device_id, p.instance) == (9, "release", 0x2A, 0x10E, 1)
        assert looks_like_pnio(_rpc(little))
    assert not looks_like_pnio(b"\x04\x00" + bytes(78))  # DCE/RPC, but not PNIO
    assert not looks_like_pnio(bytes(100))


def test_responses_from_ephemeral_ports_are_decoded(tmp_path: Path) -> None:
    a, b = ("10.0.0.1", "00:00:00:00:00:01"), ("10.0.0.2", "00:00:00:00:00:02")
    frames = [Ether(src=a[1], dst=b[1]) / IP(src=a[0], dst=b[0]) / UDP(sport=50000, dport=34964) / Raw(_rpc(False)),
              Ether(src=b[1], dst=a[1]) / IP(src=b[0], dst=a[0]) / UDP(sport=49152, dport=50000) / Raw(_rpc(True, ptype=2)),
              Ether(src=b[1], dst=a[1]) / IP(src=b[0], dst=a[0]) / UDP(sport=49153, dport=50001) / Raw(b"\x04" + bytes(90))]  # not PNIO
    path = tmp_path / "cm.pcap"
    wrpcap(str(path), frames)
    events = [e for e in decode_file(path) if e.event.dataset == "profinet"]
    assert [(e.evidence.frame, e.source.port, e.event.action, e.profinet.rpc_packet_type_name) for e in events] == [  # type: ignore[union-attr]
        (1, 50000, "release", "request"), (2, 49152, "release", "response")]
