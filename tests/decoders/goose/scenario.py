"""A labelled GOOSE capture for the rule tests: publishers' normal retransmissions and state changes
(untagged and in VLAN 10), then one attack step per rule. Built with scapy (Ether/Dot1Q around GOOSE
PDUs encoded here); deterministic, so `python -m tests.decoders.goose.scenario pcaps/goose` rewrites
pcaps/goose/goose_plant_attack.{pcap,labels.yml} byte for byte.

No IEC 61850 stack installs from PyPI here (libiec61850 has no wheel), so this is crafted traffic,
not a testbed recording; the labels file says so."""

from __future__ import annotations

import sys
from pathlib import Path

from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from tests.decoders.crafted import write_capture

NAME = "goose_plant_attack"
T0 = 1_700_000_000.0
DST = "01:0c:cd:01:00:01"
IED1, IED2, IED3 = "02:00:0a:0a:01:c9", "02:00:0a:0a:01:ca", "02:00:0a:0a:01:cb"
ROGUE = "02:00:0a:0a:01:42"  # the attacker's laptop


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    return bytes([tag]) + (bytes([n]) if n < 0x80 else bytes([0x81, n])) + value


def goose(gcb: str, st: int, sq: int, data: tuple[bool, int], *, sim: bool = False, nds: bool = False, appid: int = 0x3001,
          t: int = 1_700_000_000) -> bytes:
    """The frame body after the ethertype: header and goosePdu with a boolean and an integer member."""
    all_data = _tlv(0x83, b"\x01" if data[0] else b"\x00") + _tlv(0x85, data[1].to_bytes(2, "big", signed=True))
    body = (_tlv(0x80, f"{gcb.split('/')[0]}/LLN0$GO${gcb.split('/')[1]}".encode()) + _tlv(0x81, (2000).to_bytes(2, "big"))
            + _tlv(0x82, f"{gcb.split('/')[0]}/LLN0$DS1".encode()) + _tlv(0x83, gcb.encode())
            + _tlv(0x84, t.to_bytes(4, "big") + b"\x00\x00\x00\x0a") + _tlv(0x85, st.to_bytes(4, "big").lstrip(b"\x00") or b"\x00")
            + _tlv(0x86, sq.to_bytes(4, "big").lstrip(b"\x00") or b"\x00") + _tlv(0x87, b"\x01" if sim else b"\x00")
            + _tlv(0x88, b"\x01") + _tlv(0x89, b"\x01" if nds else b"\x00") + _tlv(0x8A, b"\x02") + _tlv(0xAB, all_data))
    pdu = _tlv(0x61, body)
    return appid.to_bytes(2, "big") + (8 + len(pdu)).to_bytes(2, "big") + b"\x00\x00\x00\x00" + pdu


# (label, publisher MAC, VLAN or None, frame body); label "normal" or the rule the step must raise.
def script() -> list[tuple[str, str, int | None, bytes]]:
    s: list[tuple[str, str, int | None, bytes]] = []
    for sq in range(4):  # IED1 breaker status, retransmissions, then a trip (state change), untagged
        s.append(("normal", IED1, None, goose("IED1/gcb01", 1, sq, (False, 0))))
    for sq in range(3):
        s.append(("normal", IED1, None, goose("IED1/gcb01", 2, sq, (True, 0), t=1_700_000_005)))
    for st, sq in ((7, 0), (7, 1), (8, 0), (8, 1)):  # IED2 in VLAN 10 (802.1Q priority 4)
        s.append(("normal", IED2, 10, goose("IED2/gcb01", st, sq, (st == 8, 5))))
    s.append(("normal", IED3, None, goose("IED3/gcbT", 3, 0, (False, 1))))
    s.append(("qn-goose-0001", IED3, None, goose("IED3/gcbT", 3, 1, (False, 1), sim=True)))
    s.append(("normal", IED3, None, goose("IED3/gcbJ", 10, 0, (False, 2))))
    s.append(("qn-goose-0002", IED3, None, goose("IED3/gcbJ", 4000, 0, (True, 2))))  # poisoning: a huge stNum wins
    for sq in range(3):
        s.append(("normal", IED3, None, goose("IED3/gcbR", 5, sq, (False, 3))))
    s.append(("qn-goose-0003", IED3, None, goose("IED3/gcbR", 5, 1, (False, 3))))  # a replayed retransmission
    s.append(("normal", IED3, None, goose("IED3/gcbD", 6, 0, (False, 4))))
    s.append(("qn-goose-0003", IED3, None, goose("IED3/gcbD", 6, 1, (True, 4))))  # data changed, same stNum: injected
    s.append(("qn-goose-0003", ROGUE, None, goose("IED1/gcb01", 3, 0, (False, 0))))  # IED1's breaker "closed" again, from elsewhere
    s.append(("qn-goose-0004", IED3, None, goose("IED3/gcbN", 1, 0, (False, 5), nds=True)))
    s.append(("qn-goose-0005", IED3, None, goose("IED3/gcbM", 1, 0, (False, 6))[:40]))  # cut inside the PDU
    return s


# attack label (the rule it must raise) -> step name and description, in the testbed's label format
STEPS: dict[str, tuple[str, str]] = {
    "qn-goose-0001": ("simulation_flag", "IED3 publishes gcbT with the test/simulation flag set."),
    "qn-goose-0002": ("st_num_jump", "A frame for gcbJ with stNum 4000 after 10: GOOSE poisoning (the highest stNum wins)."),
    "qn-goose-0003": ("replay_and_injection", "gcbR: a retransmission replayed (sqNum back to 1); gcbD: new data under the same stNum; IED1's gcb01 published from the attacker's MAC."),
    "qn-goose-0004": ("needs_commissioning", "gcbN published with ndsCom set."),
    "qn-goose-0005": ("truncated_pdu", "A GOOSE frame cut inside its goosePdu."),
}


def build(out: Path) -> tuple[Path, Path]:
    labelled = []
    for label, mac, vlan, body in script():
        p = Ether(src=mac, dst=DST, type=0x8100 if vlan is not None else 0x88B8)
        if vlan is not None:
            p = p / Dot1Q(prio=4, vlan=vlan, type=0x88B8)
        labelled.append((label, p / Raw(body)))
    return write_capture(
        out, NAME, labelled, STEPS, T0,
        description="IEC 61850 GOOSE publishers (untagged and VLAN 10): retransmissions and state changes, then a "
                    "simulation-flag frame, an stNum jump (poisoning), a replayed retransmission, new data under the same "
                    "stNum, a control block published from a second MAC, a needs-commissioning publisher and a truncated PDU.",
        generated_by="python -m tests.decoders.goose.scenario pcaps/goose (crafted with scapy: no IEC 61850 stack installs here)")

if __name__ == "__main__":
    for p in build(Path(sys.argv[1] if len(sys.argv) > 1 else "pcaps/goose")):
        print(p)
