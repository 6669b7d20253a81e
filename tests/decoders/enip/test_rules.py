"""The rules/enip pack on traffic: each rule fires on its dangerous message (corpus captures named by
action, or small captures built here with scapy) and not on the benign traffic around it."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event
from tests.decoders.enip.conftest import REPO

OPENICS = "iti-ics-security-tools/openics"
ETHIP = "iti-ics-security-tools/EthernetIP"


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    rs = load_rules([REPO / "rules" / "enip"])
    assert len(rs.rules) == 12
    return rs


@pytest.fixture(scope="module")
def alerts(pack: RuleSet, decoded: Any) -> Callable[[Path], list[Event]]:
    def run(path: Path) -> list[Event]:
        if not path.is_file():
            pytest.skip(f"{path} not present")
        return DetectionEngine(pack, organization_id="test").process_many(list(decoded(path)))

    return run


def _fired(alerts: list[Event], rule: str) -> list[Event]:
    return [a for a in alerts if a.rule is not None and a.rule.id == rule]


def _frames(events: tuple[Event, ...], pred: Callable[[Event], bool]) -> set[int]:
    return {e.evidence.frame for e in events if e.evidence is not None and e.evidence.frame is not None and pred(e)}


def _alert_frames(alerts: list[Event]) -> set[int]:
    return {f for a in alerts if a.evidence is not None for f in (a.evidence.frames or [])}


# ---------------------------------------------------------------- captures built here

def _encap(cmd: int, body: bytes = b"", ctx: bytes = b"\0" * 8) -> bytes:
    return struct.pack("<HHII8sI", cmd, len(body), 0x1234, 0, ctx, 0) + body


def _rr(cip: bytes) -> bytes:
    return struct.pack("<IHH", 0, 5, 2) + b"\0\0\0\0" + struct.pack("<HH", 0xB2, len(cip)) + cip


def _tcp_capture(path: Path, client: str, server: str, exchanges: list[tuple[bytes, bytes | None]]) -> Path:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    sport, cseq, sseq = 50000, 1000, 5000
    pkts: list[Any] = []
    t = 1_700_000_000.0

    def add(p: Any) -> None:
        nonlocal t
        t += 0.01
        p.time = t
        pkts.append(p)

    c2s = Ether() / IP(src=client, dst=server)
    s2c = Ether() / IP(src=server, dst=client)
    add(c2s / TCP(sport=sport, dport=44818, flags="S", seq=cseq - 1))
    add(s2c / TCP(sport=44818, dport=sport, flags="SA", seq=sseq - 1, ack=cseq))
    add(c2s / TCP(sport=sport, dport=44818, flags="A", seq=cseq, ack=sseq))
    for req, rsp in exchanges:
        add(c2s / TCP(sport=sport, dport=44818, flags="PA", seq=cseq, ack=sseq) / req)
        cseq += len(req)
        if rsp is not None:
            add(s2c / TCP(sport=44818, dport=sport, flags="PA", seq=sseq, ack=cseq) / rsp)
            sseq += len(rsp)
    wrpcap(str(path), pkts)
    return path


GET_IDENTITY = bytes([0x01, 0x02, 0x20, 0x01, 0x24, 0x01])
RESET_IDENTITY = bytes([0x05, 0x02, 0x20, 0x01, 0x24, 0x01, 0x00])  # reset type 0


def test_reset_identity(tmp_path: Path, alerts: Any, decoded: Any) -> None:
    pcap = _tcp_capture(tmp_path / "reset.pcap", "10.10.1.20", "10.10.1.101", [
        (_encap(0x6F, _rr(GET_IDENTITY), b"ctx00001"), _encap(0x6F, _rr(bytes([0x81, 0, 0, 0, 1, 0])), b"ctx00001")),
        (_encap(0x6F, _rr(RESET_IDENTITY), b"ctx00002"), _encap(0x6F, _rr(bytes([0x85, 0, 0, 0])), b"ctx00002")),
    ])
    got = alerts(pcap)
    assert [a.rule.id for a in got] == ["qn-enip-0001"]
    assert _alert_frames(got) == _frames(decoded(pcap), lambda e: e.cip is not None and e.cip.service_name == "reset" and e.cip.message_type == "request")


@pytest.mark.parametrize("trace", [f"{ETHIP}/cip_stop_plc.pcap", f"{ETHIP}/cip_start_plc.pcap", f"{OPENICS}/EIP-RebootorRestart.pcap"])
def test_mode_change(corpus: Path, alerts: Any, decoded: Any, trace: str) -> None:
    got = _fired(alerts(corpus / trace), "qn-enip-0002")
    assert got
    assert _alert_frames(got) == _frames(decoded(corpus / trace), lambda e: e.cip is not None and e.cip.message_type == "request" and e.cip.service_name in ("stop", "start"))


def test_program_download(corpus: Path, alerts: Any, decoded: Any) -> None:
    path = corpus / OPENICS / "EIP-SoftwareDownload.pcap"
    got = _fired(alerts(path), "qn-enip-0003")
    assert len(got) == 1  # suppressed per pair of hosts
    assert _alert_frames(got) <= _frames(decoded(path), lambda e: e.event.action == "program_download")
    assert not _fired(alerts(corpus / OPENICS / "EIP-SoftwareUpload.pcap"), "qn-enip-0003")


def test_program_upload(corpus: Path, alerts: Any, decoded: Any) -> None:
    path = corpus / OPENICS / "EIP-SoftwareUpload.pcap"
    got = _fired(alerts(path), "qn-enip-0004")
    assert len(got) == 1
    assert _alert_frames(got) <= _frames(decoded(path), lambda e: e.event.action == "program_upload")
    assert not _fired(alerts(corpus / OPENICS / "EIP-SoftwareDownload.pcap"), "qn-enip-0004")


def test_firmware_update(corpus: Path, alerts: Any) -> None:
    assert len(_fired(alerts(corpus / OPENICS / "EIP-FirmwareChangeFailure.pcap"), "qn-enip-0005")) == 1
    assert not _fired(alerts(corpus / OPENICS / "EIP-SoftwareDownload.pcap"), "qn-enip-0005")


def test_write_from_unapproved_host(corpus: Path, alerts: Any) -> None:
    got = _fired(alerts(corpus / "icsnpp-enip/traces/set_attribute_single_service_cip.pcapng"), "qn-enip-0006")
    assert len(got) == 1 and "set_attribute_single" in (got[0].message or "")
    # 1158 reads (and one clock set) from a host that is not an engineering station: no write alert
    assert not _fired(alerts(corpus / "icsnpp-enip/traces/enip_cip_example.pcap"), "qn-enip-0006")


def test_clock_change(corpus: Path, alerts: Any, decoded: Any) -> None:
    path = corpus / OPENICS / "EIP-ChangeDateAttempt.pcap"
    got = _fired(alerts(path), "qn-enip-0007")
    sets = _frames(decoded(path), lambda e: e.cip is not None and e.cip.class_id == 0x8B and e.cip.message_type == "request" and e.cip.service_name == "set_attribute_list")
    reads = _frames(decoded(path), lambda e: e.cip is not None and e.cip.class_id == 0x8B and e.cip.service_name == "get_attribute_list")
    assert len(sets) == 1 and len(reads) > 20
    assert _alert_frames(got) == sets


def test_list_identity_scan(tmp_path: Path, alerts: Any) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    pkts = []
    for k in range(8):
        p = Ether() / IP(src="10.10.1.66", dst=f"10.10.1.{101 + k}") / UDP(sport=40000, dport=44818) / _encap(0x63)
        p.time = 1_700_000_000 + k
        pkts.append(p)
    hmi = Ether() / IP(src="10.10.1.10", dst="10.10.1.101") / UDP(sport=40001, dport=44818) / _encap(0x63)
    hmi.time = 1_700_000_010
    wrpcap(str(tmp_path / "scan.pcap"), [hmi, *pkts])
    got = alerts(tmp_path / "scan.pcap")
    assert [(a.rule.id, a.source.ip if a.source else None) for a in got] == [("qn-enip-0008", "10.10.1.66")]


def test_list_identity_broadcast_from_unknown_host(tmp_path: Path, alerts: Any) -> None:
    """One broadcast reaches every device (pycomm3 discover()): qn-enip-0012, not the threshold rule."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    pkts = []
    for k, (src, dst) in enumerate([("10.10.1.10", "255.255.255.255"), ("10.10.1.66", "255.255.255.255"),
                                    ("10.10.1.66", "10.10.1.255"), ("10.10.1.67", "10.10.1.101")]):
        p = Ether() / IP(src=src, dst=dst) / UDP(sport=40000 + k, dport=44818) / _encap(0x63)
        p.time = 1_700_000_000 + k
        pkts.append(p)
    wrpcap(str(tmp_path / "bcast.pcap"), pkts)
    got = alerts(tmp_path / "bcast.pcap")
    # the HMI (a CIP client) and a unicast request are not flagged; the attacker's second broadcast is suppressed
    assert [(a.rule.id, a.source.ip if a.source else None) for a in got] == [("qn-enip-0012", "10.10.1.66")]


def test_forward_open_from_unknown_host(corpus: Path, alerts: Any, decoded: Any) -> None:
    path = corpus / OPENICS / "EIP-SoftwareDownload.pcap"
    got = _fired(alerts(path), "qn-enip-0009")
    assert len(got) == 1
    assert _alert_frames(got) <= _frames(decoded(path), lambda e: e.cip is not None and e.cip.service_name == "forward_open" and e.cip.message_type == "request")


def test_error_storm_and_malformed(tmp_path: Path, alerts: Any) -> None:
    probe = [(_encap(0x6F, _rr(bytes([0x0E, 0x03, 0x20, 0x01, 0x24, 0x01, 0x30, a])), b"p%07d" % a),
              _encap(0x6F, _rr(bytes([0x8E, 0, 0x14, 0])), b"p%07d" % a)) for a in range(30)]
    got = alerts(_tcp_capture(tmp_path / "storm.pcap", "10.10.1.66", "10.10.1.101", probe))
    assert [a.rule.id for a in got] == ["qn-enip-0010"]
    junk = [(_encap(0x63), None), (b"\x16\x03\x01\x02\x00" + b"\xff" * 40, None)]
    got = alerts(_tcp_capture(tmp_path / "junk.pcap", "10.10.1.66", "10.10.1.101", junk))
    assert {a.rule.id for a in got} == {"qn-enip-0011"}


def test_benign_capture_raises_nothing(corpus: Path, alerts: Any) -> None:
    """The ICSNPP example (an HMI polling identity, tags and status over connected messaging; one
    controller clock set) raises only the clock rule."""
    got = alerts(corpus / "icsnpp-enip/traces/enip_cip_example.pcap")
    assert {a.rule.id for a in got} == {"qn-enip-0007"}
