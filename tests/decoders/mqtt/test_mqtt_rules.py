"""The MQTT rule pack on a plant capture built with scapy: each rule fires on its attack frame, never on normal traffic."""

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
BROKER = "10.10.1.200"
HMI, ENG, DEVICE, GUESSER, OUTSIDER = "10.10.1.10", "10.10.1.20", "10.10.1.30", "10.10.1.40", "192.168.5.5"


def s(text: str) -> bytes:
    b = text.encode()
    return len(b).to_bytes(2, "big") + b


def pkt(first: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes([first, len(body)]) + body


def connect(client_id: str, user: str | None = None) -> bytes:
    flags = 0x02 | (0xC0 if user else 0)
    return pkt(0x10, s("MQTT") + bytes([4, flags, 0, 60]) + s(client_id) + (s(user) + s("pw") if user else b""))


OK, REFUSED = bytes([0x20, 2, 0, 0]), bytes([0x20, 2, 0, 5])
DISC = bytes([0xE0, 0])


def publish(topic: str, payload: bytes) -> bytes:
    return pkt(0x30, s(topic) + payload)


def subscribe(topic: str) -> bytes:
    return pkt(0x82, bytes([0, 1]) + s(topic) + bytes([0]))


SUBACK = bytes([0x90, 3, 0, 1, 0])

# (label, client, client port, bytes from the client, bytes from the broker)
SCRIPT: list[tuple[str, str, int, bytes, bytes]] = [
    ("normal", HMI, 41000, connect("hmi", "hmi"), OK),
    ("normal", HMI, 41000, subscribe("plant/line1/temp"), SUBACK),
    ("normal", DEVICE, 41001, connect("dev", "dev"), OK),
    ("normal", DEVICE, 41001, publish("plant/line1/temp", b"21.5"), b""),
    ("normal", ENG, 41002, connect("eng", "eng"), OK),
    ("normal", ENG, 41002, publish("plant/line1/valve/cmd", b"OPEN"), b""),
    ("normal", HMI, 41000, b"", publish("plant/line1/temp", b"21.5")),  # broker delivery
    ("qn-mqtt-0001", DEVICE, 41003, connect("anon"), OK),
    ("qn-mqtt-0003", DEVICE, 41003, subscribe("#"), SUBACK),
    ("qn-mqtt-0004", DEVICE, 41003, publish("plant/line1/valve/cmd", b"CLOSE"), b""),
    ("qn-mqtt-0005", DEVICE, 41003, bytes([0x36, 3]) + s("x")[:3], b""),
    ("qn-mqtt-0002", OUTSIDER, 41004, connect("ext", "ext"), OK),
    *[("attempt", GUESSER, 42000 + i, connect("g", f"admin{i}"), b"") for i in range(6)],
    *[("qn-mqtt-0006", GUESSER, 42000 + i, b"", REFUSED) for i in range(6)],
]


def build(path: Path) -> dict[int, str]:
    frames: list[bytes] = []
    labels: dict[int, str] = {}
    seq: dict[tuple[str, int], list[int]] = {}

    def seg(key: tuple[str, int], to_server: bool, flags: str, payload: bytes = b"") -> bytes:
        ip, port = key
        c, srv = seq[key]
        if to_server:
            p = IP(src=ip, dst=BROKER) / TCP(sport=port, dport=1883, seq=c, ack=srv, flags=flags)
            seq[key][0] += len(payload) + (1 if "S" in flags else 0)
        else:
            p = IP(src=BROKER, dst=ip) / TCP(sport=1883, dport=port, seq=srv, ack=c, flags=flags)
            seq[key][1] += len(payload) + (1 if "S" in flags else 0)
        return bytes(Ether() / p / Raw(payload)) if payload else bytes(Ether() / p)

    for label, client, port, req, resp in SCRIPT:
        key = (client, port)
        if key not in seq:
            seq[key] = [1000, 9000]
            frames += [seg(key, True, "S"), seg(key, False, "SA"), seg(key, True, "A")]
        for to_server, data in ((True, req), (False, resp)):
            if data:
                frames.append(seg(key, to_server, "PA", data))
                labels[len(frames)] = label
    wrpcap(str(path), [Ether(f) for f in frames])
    return labels


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], dict[int, str], list[Event]]:
    path = tmp_path_factory.mktemp("mqtt") / "plant.pcap"
    labels = build(path)
    events = list(decode_file(path))
    pack = load_rules([REPO / "rules" / "mqtt"])
    return DetectionEngine(pack, organization_id="testbed").process_many(events), labels, events


def test_each_rule_fires_on_its_attack_and_not_on_normal_frames(run: tuple[list[Event], dict[int, str], list[Event]]) -> None:
    alerts, labels, events = run
    assert [e for e in events if e.event.dataset == "mqtt"], "capture did not decode as mqtt"
    fired: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        assert a.rule is not None and a.evidence is not None
        for f in a.evidence.frames or []:
            fired[labels.get(f, "?")].add(a.rule.id)
    assert not fired.get("normal"), f"normal traffic raised {fired.get('normal')}"
    expected = {label for label, *_ in SCRIPT if label.startswith("qn-")}
    for label in expected:
        assert label in fired.get(label, set()), f"{label} did not fire on its frame (fired there: {sorted(fired.get(label, set()))})"
    assert len(list((REPO / "rules" / "mqtt").glob("*.yml"))) == len(expected)
    storm = [a for a in alerts if a.rule and a.rule.id == "qn-mqtt-0006"]
    assert len(storm) == 1
