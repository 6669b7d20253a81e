"""ARP decoder on annotated bytes and, through the engine, on frames written to a pcap (VLAN tags,
request/reply matching, unsolicited replies, a sender MAC that is not the Ethernet source)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import wrpcap

from sensors.decoders import REGISTRY
from sensors.decoders.arp import SPEC, parse
from sensors.engine import decode_file

REPLY = bytes([
    0x00, 0x01,                          # hardware type: Ethernet
    0x08, 0x00,                          # protocol type: IPv4
    0x06, 0x04,                          # hardware size 6, protocol size 4
    0x00, 0x02,                          # opcode: reply
    0x02, 0x00, 0x00, 0x00, 0x00, 0x66,  # sender MAC
    0x0A, 0x0A, 0x01, 0x65,              # sender IP 10.10.1.101
    0x02, 0x00, 0x00, 0x00, 0x00, 0x10,  # target MAC
    0x0A, 0x0A, 0x01, 0x0A,              # target IP 10.10.1.10
])

HMI, PLC, ATK = "02:00:00:00:00:10", "02:00:00:00:00:65", "02:00:00:00:00:66"


def test_registered_by_ethertype() -> None:
    assert REGISTRY["arp"] is SPEC and SPEC.transport == "ethernet" and SPEC.default_ports == (0x0806,)


def test_reply_fields() -> None:
    arp, code = parse(REPLY)
    assert code is None and arp is not None
    assert (arp.opcode, arp.opcode_name, arp.sender_mac, arp.sender_ip, arp.target_mac, arp.target_ip) == (
        2, "reply", ATK, "10.10.1.101", HMI, "10.10.1.10")
    assert arp.gratuitous is None and arp.probe is None


def test_gratuitous_probe_truncated_unsupported() -> None:
    grat = REPLY[:24] + bytes([0x0A, 0x0A, 0x01, 0x65])  # target IP = sender IP
    assert parse(grat)[0].gratuitous is True  # type: ignore[union-attr]
    probe = REPLY[:14] + bytes(4) + REPLY[18:]
    assert parse(probe)[0].probe is True  # type: ignore[union-attr]
    assert parse(REPLY[:7]) == (None, "truncated")
    head, code = parse(REPLY[:20])
    assert code == "truncated" and head is not None and head.opcode == 2 and head.sender_ip is None
    ipv6ish = REPLY[:2] + b"\x86\xdd" + REPLY[4:]
    assert parse(ipv6ish)[1] == "unsupported_format"
    assert parse(REPLY[:6] + b"\x00\x07" + REPLY[8:])[1] == "unknown_opcode"


def test_engine_matches_replies_and_flags_poisoning(tmp_path: Path) -> None:
    frames = [
        Ether(src=HMI, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=HMI, psrc="10.10.1.10", pdst="10.10.1.101"),
        Ether(src=PLC, dst=HMI) / ARP(op=2, hwsrc=PLC, psrc="10.10.1.101", hwdst=HMI, pdst="10.10.1.10"),
        # poisoning: an unsolicited reply telling the HMI that the PLC's address is at the attacker
        Ether(src=ATK, dst=HMI) / Dot1Q(vlan=7) / ARP(op=2, hwsrc=ATK, psrc="10.10.1.101", hwdst=HMI, pdst="10.10.1.10"),
        # a reply claiming a binding for another NIC than the one sending it
        Ether(src=ATK, dst=HMI) / ARP(op=2, hwsrc=PLC, psrc="10.10.1.101", hwdst=HMI, pdst="10.10.1.10"),
        Ether(src=PLC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PLC, psrc="10.10.1.101", pdst="10.10.1.101"),
    ]
    t = 1_700_000_000.0
    for i, f in enumerate(frames):
        f.time = t + i
    path = tmp_path / "arp.pcap"
    wrpcap(str(path), frames)
    evs = [e for e in decode_file(path) if e.event.dataset == "arp"]
    assert [e.event.action for e in evs] == ["request", "reply", "reply", "reply", "announce"]
    req, rep, poison, mismatch, announce = evs
    assert rep.arp.request_frame == 1 and rep.arp.unsolicited is None  # type: ignore[union-attr]
    assert rep.source.mac == PLC and rep.destination.mac == HMI and rep.network.is_orig is False  # type: ignore[union-attr]
    assert poison.arp.unsolicited is True and poison.network.vlan_id == [7]  # type: ignore[union-attr]
    assert poison.arp.ethernet_mismatch is None and poison.anomaly is None  # type: ignore[union-attr]
    assert mismatch.arp.ethernet_mismatch is True and mismatch.anomaly.code == "ethernet_mismatch"  # type: ignore[union-attr]
    assert announce.arp.gratuitous is True and announce.arp.unsolicited is None  # type: ignore[union-attr]
    assert all(e.source.ip is None for e in evs)  # type: ignore[union-attr]  # ARP is never a node/link of IP traffic
