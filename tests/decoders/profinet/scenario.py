"""A labelled PROFINET capture for the rule tests: the IO controller (PLC1) identifies its device by
name, connects, writes parameters, ends parametrisation, the device signals ApplicationReady; the
engineering station names a device by DCP Set and identifies all; then one attack step per rule.
Built with scapy (Ether/Dot1Q/IP/UDP around DCP and DCE/RPC PDUs encoded here); deterministic, so
`python -m tests.decoders.profinet.scenario pcaps/profinet` rewrites the capture byte for byte.

No PROFINET stack installs from PyPI here (p-net and the Siemens stacks are C), so this is crafted
traffic, not a testbed recording; the labels file says so."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from tests.decoders.crafted import write_capture

NAME = "profinet_plant_attack"
T0 = 1_700_000_000.0
MCAST = "01:0e:cf:00:00:00"
PLC1 = ("10.10.1.101", "02:00:0a:0a:01:65")
ENG = ("10.10.1.20", "02:00:0a:0a:01:14")
ATK = ("10.10.1.66", "02:00:0a:0a:01:42")
DEV = ("10.10.1.201", "00:0e:8c:00:00:c9")
OBJ = uuid.UUID("dea00000-6c97-11d1-8271-0001010e002a")  # instance 1, device 0x010e, vendor 0x002a (Siemens)
IF_DEVICE = uuid.UUID("dea00001-6c97-11d1-8271-00a02442df7d")
IF_CONTROLLER = uuid.UUID("dea00002-6c97-11d1-8271-00a02442df7d")
AR = uuid.UUID("7c74224e-166c-4a58-bf6b-6c25a75870f0")


def dcp(frame_id: int, sid: int, stype: int, xid: int, blocks: bytes) -> bytes:
    return frame_id.to_bytes(2, "big") + bytes([sid, stype]) + xid.to_bytes(4, "big") + (1 if stype == 0 and sid == 5 else 0).to_bytes(2, "big") \
        + len(blocks).to_bytes(2, "big") + blocks


def block(opt: int, sub: int, data: bytes, qualifier: int | None = None) -> bytes:
    body = (qualifier.to_bytes(2, "big") if qualifier is not None else b"") + data
    return bytes([opt, sub]) + len(body).to_bytes(2, "big") + body + (b"\x00" if len(body) & 1 else b"")


def pn_block(btype: int, body: bytes) -> bytes:
    return btype.to_bytes(2, "big") + (len(body) + 2).to_bytes(2, "big") + b"\x01\x00" + body


def rpc(ptype: int, iface: uuid.UUID, act: int, seq: int, opnum: int, blocks: bytes, response: bool = False) -> bytes:
    ndr = ((b"\x00\x00\x00\x00" if response else (4096).to_bytes(4, "big")) + len(blocks).to_bytes(4, "big")
           + (4096 if not response else len(blocks)).to_bytes(4, "big") + bytes(4) + len(blocks).to_bytes(4, "big"))
    body = ndr + blocks
    flags1 = 0x20 if ptype == 0 else 0x0A
    act_uuid = uuid.UUID(int=(0x13142F90_0000_1000_A994_D2106890CA00 + act))
    return (bytes([4, ptype, flags1, 0, 0, 0, 0, 0]) + OBJ.bytes + iface.bytes + act_uuid.bytes + (0 if ptype == 0 else 7).to_bytes(4, "big")
            + (1).to_bytes(4, "big") + seq.to_bytes(4, "big") + opnum.to_bytes(2, "big") + b"\xff\xff\xff\xff" + len(body).to_bytes(2, "big")
            + bytes(4) + body)


def ar_req(station: str, mac: str) -> bytes:
    name = station.encode()
    return pn_block(0x0101, (1).to_bytes(2, "big") + AR.bytes + (1).to_bytes(2, "big") + bytes.fromhex(mac.replace(":", "")) + OBJ.bytes
                    + (0x11).to_bytes(4, "big") + (100).to_bytes(2, "big") + (0x8892).to_bytes(2, "big") + len(name).to_bytes(2, "big") + name)


def write_req(index: int, data: bytes) -> bytes:
    return pn_block(0x0008, (1).to_bytes(2, "big") + AR.bytes + bytes(4) + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + bytes(2)
                    + index.to_bytes(2, "big") + len(data).to_bytes(4, "big") + bytes(24)) + data


def write_res(index: int) -> bytes:
    return pn_block(0x8008, (1).to_bytes(2, "big") + AR.bytes + bytes(4) + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + bytes(2)
                    + index.to_bytes(2, "big") + (4).to_bytes(4, "big") + bytes(24))


def control(btype: int, command: int) -> bytes:
    return pn_block(btype, bytes(2) + AR.bytes + (1).to_bytes(2, "big") + bytes(2) + command.to_bytes(2, "big") + bytes(2))


def _l2(src: tuple[str, str], dst_mac: str, body: bytes, vlan: bool = True) -> Packet:
    if vlan:  # PROFINET RT travels priority-tagged (VLAN 0, priority 6)
        return Ether(src=src[1], dst=dst_mac, type=0x8100) / Dot1Q(prio=6, vlan=0, type=0x8892) / Raw(body)
    return Ether(src=src[1], dst=dst_mac, type=0x8892) / Raw(body)


def _udp(src: tuple[str, str], dst: tuple[str, str], sport: int, dport: int, body: bytes) -> Packet:
    return Ether(src=src[1], dst=dst[1]) / IP(src=src[0], dst=dst[0], id=0) / UDP(sport=sport, dport=dport) / Raw(body)


def script() -> list[tuple[str, Packet]]:
    name_blk = block(2, 2, b"io-dev-1")
    ident_res = block(2, 1, b"ET200SP", 0) + block(2, 2, b"io-dev-1", 0) + block(2, 3, bytes.fromhex("002a010e"), 0) \
        + block(1, 2, bytes([10, 10, 1, 201, 255, 255, 255, 0, 10, 10, 1, 1]), 1)
    ok = lambda o, s: block(5, 4, bytes([o, s, 0]))  # noqa: E731  control response: option answered, no error
    s: list[tuple[str, Packet]] = [
        ("normal", _l2(PLC1, MCAST, dcp(0xFEFE, 5, 0, 0x100, name_blk))),
        ("normal", _l2(DEV, PLC1[1], dcp(0xFEFF, 5, 1, 0x100, ident_res))),
        ("normal", _udp(PLC1, DEV, 49153, 34964, rpc(0, IF_DEVICE, 1, 0, 0, ar_req("plc1", PLC1[1])))),
        ("normal", _udp(DEV, PLC1, 49152, 49153, rpc(2, IF_DEVICE, 1, 0, 0, pn_block(0x8101, (1).to_bytes(2, "big") + AR.bytes + (1).to_bytes(2, "big")
                                                                                   + bytes.fromhex(DEV[1].replace(":", "")) + (0x8892).to_bytes(2, "big")), True))),
        ("normal", _udp(PLC1, DEV, 49153, 34964, rpc(0, IF_DEVICE, 1, 1, 3, write_req(0x8000, b"\x00\x01\x00\x02")))),
        ("normal", _udp(DEV, PLC1, 49152, 49153, rpc(2, IF_DEVICE, 1, 1, 3, write_res(0x8000), True))),
        ("normal", _udp(PLC1, DEV, 49153, 34964, rpc(0, IF_DEVICE, 1, 2, 4, control(0x0110, 0x0001)))),
        ("normal", _udp(DEV, PLC1, 49152, 49153, rpc(2, IF_DEVICE, 1, 2, 4, control(0x8110, 0x0008), True))),
        ("normal", _udp(DEV, PLC1, 49154, 34964, rpc(0, IF_CONTROLLER, 2, 0, 4, control(0x0112, 0x0002)))),
        ("normal", _udp(PLC1, DEV, 49155, 49154, rpc(2, IF_CONTROLLER, 2, 0, 4, control(0x8112, 0x0008), True))),
        ("normal", _l2(ENG, DEV[1], dcp(0xFEFD, 4, 0, 0x200, block(2, 2, b"io-dev-1", 1)))),
        ("normal", _l2(DEV, ENG[1], dcp(0xFEFD, 4, 1, 0x200, ok(2, 2)))),
        ("normal", _l2(ENG, MCAST, dcp(0xFEFE, 5, 0, 0x201, block(0xFF, 0xFF, b"")))),
        ("normal", _l2(DEV, ENG[1], dcp(0xFEFF, 5, 1, 0x201, ident_res))),
        ("qn-profinet-0004", _l2(ATK, MCAST, dcp(0xFEFE, 5, 0, 0x300, block(0xFF, 0xFF, b"")))),
        ("qn-profinet-0004", _l2(DEV, ATK[1], dcp(0xFEFF, 5, 1, 0x300, ident_res))),
        ("qn-profinet-0001", _l2(ATK, DEV[1], dcp(0xFEFD, 4, 0, 0x301, block(1, 2, bytes([10, 10, 1, 250, 255, 255, 255, 0, 10, 10, 1, 66]), 1)))),
        ("qn-profinet-0001", _l2(DEV, ATK[1], dcp(0xFEFD, 4, 1, 0x301, ok(1, 2)))),
        ("qn-profinet-0002", _l2(ATK, DEV[1], dcp(0xFEFD, 4, 0, 0x302, block(5, 6, b"", 1)), vlan=False)),
        ("qn-profinet-0002", _l2(DEV, ATK[1], dcp(0xFEFD, 4, 1, 0x302, ok(5, 6)), vlan=False)),
        ("qn-profinet-0003", _udp(ATK, DEV, 50000, 34964, rpc(0, IF_DEVICE, 3, 0, 3, write_req(0x8001, b"\xff\xff\xff\xff")))),
        ("qn-profinet-0003", _udp(DEV, ATK, 49152, 50000, rpc(2, IF_DEVICE, 3, 0, 3, write_res(0x8001), True))),
    ]
    return s


# attack label (the rule it must raise) -> step name and description, in the testbed's label format
STEPS: dict[str, tuple[str, str]] = {
    "qn-profinet-0001": ("dcp_set_ip", "The attacker re-addresses io-dev-1 by DCP Set IP (and the device's answer)."),
    "qn-profinet-0002": ("dcp_reset_to_factory", "The attacker resets io-dev-1 to factory settings by DCP Set (untagged)."),
    "qn-profinet-0003": ("io_cm_write", "The attacker writes a record to io-dev-1 over IO CM (Write request and response)."),
    "qn-profinet-0004": ("dcp_identify_all", "The attacker identifies every device by DCP Identify All."),
}


def build(out: Path) -> tuple[Path, Path]:
    return write_capture(
        out, NAME, script(), STEPS, T0,
        description="PROFINET: IO controller PLC1 identifies io-dev-1 by DCP, connects (IO CM), writes a record, PrmEnd, the device's "
                    "ApplicationReady; the engineering station names the device and identifies all. Attacker: DCP Identify All, "
                    "DCP Set IP, DCP reset to factory, IO CM Write to the device.",
        generated_by="python -m tests.decoders.profinet.scenario pcaps/profinet (crafted with scapy: no PROFINET stack installs here)",
        hosts={"plc1": {"ip": PLC1[0], "mac": PLC1[1]}, "eng": {"ip": ENG[0], "mac": ENG[1]}, "atk": {"ip": ATK[0], "mac": ATK[1]},
               "io-dev-1": {"ip": DEV[0], "mac": DEV[1]}})

if __name__ == "__main__":
    for p in build(Path(sys.argv[1] if len(sys.argv) > 1 else "pcaps/profinet")):
        print(p)
