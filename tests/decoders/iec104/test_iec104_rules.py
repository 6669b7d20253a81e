"""The IEC 104 rule pack on a plant capture built with scapy: each rule fires on its attack frame, never on normal traffic."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from detection.engine import DetectionEngine
from detection.rules import load_rules
from pipeline.schema import Event
from sensors.engine import decode_file

REPO = Path(__file__).resolve().parents[3]
RTU = "10.10.1.101"
HMI, ENG, ROGUE = "10.10.1.10", "10.10.1.20", "10.10.1.66"


def asdu(ns: int, tid: int, cot: int, ioa: int, element: bytes, ca: int = 1, nr: int = 0) -> bytes:
    body = bytes([tid, 1, cot, 0]) + ca.to_bytes(2, "little") + ioa.to_bytes(3, "little") + element
    return bytes([0x68, 4 + len(body)]) + (ns << 1).to_bytes(2, "little") + (nr << 1).to_bytes(2, "little") + body


def u(code: int) -> bytes:
    return bytes([0x68, 4, code, 0, 0, 0])


CP56 = bytes([0x10, 0x27, 0x1E, 0x0D, 0x05, 0x0C, 0x17])
# (label, client, bytes from the client, bytes from the RTU); label "normal" or the rule expected.
SCRIPT: list[tuple[str, str, bytes, bytes]] = [
    ("normal", HMI, u(0x07), u(0x0B)),
    ("normal", HMI, asdu(0, 100, 6, 0, b"\x14"), asdu(0, 100, 7, 0, b"\x14") + asdu(1, 1, 20, 1001, b"\x01") + asdu(2, 100, 10, 0, b"\x14")),
    ("normal", HMI, asdu(1, 45, 6, 5000, b"\x81"), asdu(3, 45, 7, 5000, b"\x81")),  # select
    ("normal", HMI, asdu(2, 45, 6, 5000, b"\x01"), asdu(4, 45, 7, 5000, b"\x01") + asdu(5, 45, 10, 5000, b"\x01")),  # execute
    ("normal", HMI, asdu(3, 103, 6, 0, CP56), asdu(6, 103, 7, 0, CP56)),
    ("normal", HMI, u(0x43), u(0x83)),
    ("normal", ENG, u(0x07), u(0x0B)),
    ("normal", ENG, asdu(0, 50, 6, 6000, b"\x00\x00\x48\x42\x00"), asdu(0, 50, 7, 6000, b"\x00\x00\x48\x42\x00")),
    ("qn-iec104-0001", ROGUE, u(0x07) + asdu(0, 46, 6, 5001, b"\x02"), u(0x0B) + asdu(0, 46, 7, 5001, b"\x02")),
    ("qn-iec104-0002", ROGUE, asdu(1, 105, 6, 0, b"\x01"), asdu(1, 105, 7, 0, b"\x01")),
    ("qn-iec104-0003", ROGUE, asdu(2, 103, 6, 0, CP56), asdu(2, 103, 7, 0, CP56)),
    ("qn-iec104-0004", HMI, asdu(4, 49, 6, 6001, b"\x10\x00\x00"), asdu(7, 49, 7, 6001, b"\x10\x00\x00")),
    ("qn-iec104-0005", ROGUE, asdu(3, 101, 6, 0, b"\x05"), asdu(3, 101, 7, 0, b"\x05")),
    ("qn-iec104-0006", HMI, u(0x13), u(0x23)),
    ("qn-iec104-0007", ROGUE, asdu(4, 200, 6, 0, b""), b""),
    ("qn-iec104-0008", ROGUE, b"\x00\x01\x02" + u(0x43), u(0x83)),
    ("qn-iec104-0009", ENG, asdu(1, 112, 6, 6000, b"\x00\x00\x80\x3F\x01"), asdu(1, 112, 7, 6000, b"\x00\x00\x80\x3F\x01")),
]


def build(path: Path) -> dict[int, str]:
    """Write the script as a pcap (one TCP connection per client); returns frame number -> label."""
    frames: list[bytes] = []
    labels: dict[int, str] = {}
    seq: dict[str, list[int]] = {}
    ports = {HMI: 40001, ENG: 40002, ROGUE: 40003}

    def pkt(client: str, to_server: bool, flags: str, payload: bytes = b"") -> bytes:
        c, s = seq[client]
        sport = ports[client]
        if to_server:
            p = IP(src=client, dst=RTU) / TCP(sport=sport, dport=2404, seq=c, ack=s, flags=flags)
            seq[client][0] += len(payload) + (1 if "S" in flags else 0)
        else:
            p = IP(src=RTU, dst=client) / TCP(sport=2404, dport=sport, seq=s, ack=c, flags=flags)
            seq[client][1] += len(payload) + (1 if "S" in flags else 0)
        return bytes(Ether() / p / Raw(payload)) if payload else bytes(Ether() / p)

    for label, client, req, resp in SCRIPT:
        if client not in seq:
            seq[client] = [1000, 5000]
            frames.append(pkt(client, True, "S"))
            frames.append(pkt(client, False, "SA"))
            frames.append(pkt(client, True, "A"))
        for to_server, data in ((True, req), (False, resp)):
            if data:
                frames.append(pkt(client, to_server, "PA", data))
                labels[len(frames)] = label
    wrpcap(str(path), [Ether(f) for f in frames])
    return labels


@pytest.fixture(scope="module")
def alerts_and_labels(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], dict[int, str], list[Event]]:
    path = tmp_path_factory.mktemp("iec104") / "plant.pcap"
    labels = build(path)
    events = list(decode_file(path))
    pack = load_rules([REPO / "rules" / "iec104"])
    return DetectionEngine(pack, organization_id="testbed").process_many(events), labels, events


def test_each_rule_fires_on_its_attack_and_not_on_normal_frames(alerts_and_labels: tuple[list[Event], dict[int, str], list[Event]]) -> None:
    alerts, labels, events = alerts_and_labels
    assert [e for e in events if e.event.dataset == "iec104"], "capture did not decode as iec104"
    fired: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        assert a.rule is not None and a.evidence is not None
        for f in a.evidence.frames or []:
            fired[labels.get(f, "?")].add(a.rule.id)
    assert not fired.get("normal"), f"normal traffic raised {fired.get('normal')}"
    expected = {label for label, *_ in SCRIPT if label != "normal"}
    for label in expected:
        assert label in fired.get(label, set()), f"{label} did not fire on its frame (fired there: {sorted(fired.get(label, set()))})"
    rule_ids = {p.stem for p in (REPO / "rules" / "iec104").glob("*.yml")}
    assert len(rule_ids) == len(expected)
