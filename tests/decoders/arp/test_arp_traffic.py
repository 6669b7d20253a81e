"""ARP decoder and rules/arp on the held-out testbed capture pcaps/modbus/anomaly_aitm.pcap: the Linux hosts'
own ARP (requests, replies, unicast probes) decodes as answered requests, the attacker's poisoning replies as
unsolicited and its cache restores as sent from another NIC; the rules fire on the AitM step only."""

from __future__ import annotations

from pathlib import Path

import yaml
from scapy.layers.l2 import ARP
from scapy.utils import PcapReader

from detection.engine import DetectionEngine
from detection.labels import load
from detection.rules import load_rules
from sensors.engine import decode_file

REPO = Path(__file__).resolve().parents[3]
LABELS = REPO / "pcaps" / "modbus" / "anomaly_aitm.labels.yml"
STEP = "aitm_hmi_plc1"


def test_every_arp_frame_is_one_event_and_only_the_attacker_is_flagged() -> None:
    sc = load(LABELS)
    step = next(s for s in sc.steps if s.name == STEP)
    (attacker,) = next(s for s in yaml.safe_load(LABELS.read_text())["steps"] if s["name"] == STEP)["macs"]
    with PcapReader(str(sc.capture)) as reader:
        arp_frames = {n for n, pkt in enumerate(reader, start=1) if ARP in pkt}
    evs = [e for e in decode_file(sc.capture) if e.event.dataset == "arp"]
    assert {e.evidence.frame for e in evs} == arp_frames and len(evs) == len(arp_frames)  # type: ignore[union-attr]
    assert all(e.anomaly is None or e.anomaly.code == "ethernet_mismatch" for e in evs)
    flagged = [e for e in evs if e.arp.unsolicited or e.arp.ethernet_mismatch]  # type: ignore[union-attr]
    assert flagged and all(e.evidence.frame in step.frames and e.source.mac == attacker for e in flagged)  # type: ignore[union-attr]
    spoofed = [e for e in flagged if e.arp.sender_mac == attacker]  # type: ignore[union-attr]
    assert {e.arp.sender_ip for e in spoofed} == {"10.10.1.10", "10.10.1.101"}  # type: ignore[union-attr]
    assert all(e.arp.unsolicited and e.event.action == "reply" for e in spoofed)  # type: ignore[union-attr]
    restores = [e for e in flagged if e.arp.ethernet_mismatch]  # type: ignore[union-attr]
    assert restores and all(e.arp.sender_mac != attacker for e in restores)  # type: ignore[union-attr]
    normal_replies = [e for e in evs if e.event.action == "reply" and e.evidence.frame not in step.frames]  # type: ignore[union-attr]
    assert normal_replies and all(e.arp.request_frame is not None for e in normal_replies)  # type: ignore[union-attr]


def test_arp_rules_fire_on_the_aitm_step_only() -> None:
    sc = load(LABELS)
    step = next(s for s in sc.steps if s.name == STEP)
    alerts = DetectionEngine(load_rules([REPO / "rules" / "arp"]), organization_id="testbed").process_many(list(decode_file(sc.capture)))
    assert {a.rule.id for a in alerts} == {"qn-arp-0001", "qn-arp-0002"}  # type: ignore[union-attr]
    assert all(set(a.evidence.frames or ()) <= step.frames for a in alerts)  # type: ignore[union-attr]
