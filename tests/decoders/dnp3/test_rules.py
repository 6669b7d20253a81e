"""The DNP3 rule pack on corpus captures and small scapy-built captures: each rule fires on its
dangerous message and not on the benign traffic of the same capture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event
from sensors.engine import decode_file
from tests.decoders.dnp3.conftest import REPO, link_frame, message

RULES = sorted((REPO / "rules" / "dnp3").glob("*.yml"))
ZEEK = Path("zeek/traces/dnp3")


@pytest.fixture(scope="module")
def pack_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[str]], RuleSet]:
    """pack_with(masters) -> the DNP3 rules with $dnp3_masters set to `masters`."""

    def load(masters: list[str]) -> RuleSet:
        site = tmp_path_factory.mktemp("lists") / "site.yml"
        site.write_text("dnp3_masters: [" + ", ".join(masters or ["192.0.2.254"]) + "]\n")
        return load_rules(RULES, site_lists=site)

    return load


def alerts(pack: RuleSet, pcap: Path) -> dict[str, set[int]]:
    """rule id -> frames of the events that raised it."""
    out: dict[str, set[int]] = {}
    for a in DetectionEngine(pack, organization_id="test").process_many(decode_file(pcap)):
        assert a.rule is not None and a.evidence is not None
        out.setdefault(a.rule.id, set()).update(a.evidence.frames or [])
    return out


def frames_of(pcap: Path, pred: Callable[[Event], bool]) -> set[int]:
    return {e.evidence.frame for e in decode_file(pcap) if e.dnp3 is not None and e.evidence is not None and e.evidence.frame is not None and pred(e)}


def request(*names: str) -> Callable[[Event], bool]:
    return lambda e: e.anomaly is None and e.dnp3 is not None and e.dnp3.message_type == "request" and e.dnp3.function_name in names


def build_pcap(path: Path, messages: list[tuple[bytes, bool]]) -> Path:
    """A TCP DNP3 conversation master 10.10.1.10:40000 <-> outstation 10.10.1.101:20000, mid-stream."""
    from scapy.all import IP, TCP, Ether, wrpcap  # test-only: builds packets, never dissects

    pkts = []
    seq = {True: 1000, False: 5000}
    for i, (payload, from_master) in enumerate(messages):
        a, b = ("10.10.1.10", "10.10.1.101") if from_master else ("10.10.1.101", "10.10.1.10")
        sp, dp = (40000, 20000) if from_master else (20000, 40000)
        p = Ether() / IP(src=a, dst=b) / TCP(sport=sp, dport=dp, flags="PA", seq=seq[from_master], ack=seq[not from_master]) / payload
        p.time = 1_700_000_000 + i * 0.1
        seq[from_master] += len(payload)
        pkts.append(p)
    wrpcap(str(path), pkts)
    return path


def test_restart_and_stop_application(corpus: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    pcap = corpus / ZEEK / "dnp3.pcap"
    got = alerts(pack_with(["10.0.0.8", "10.0.0.9", "192.168.66.33"]), pcap)
    assert got["qn-dnp3-0001"] == frames_of(pcap, request("cold_restart", "warm_restart"))
    assert got["qn-dnp3-0002"] == frames_of(pcap, request("stop_application"))
    assert "qn-dnp3-0007" not in got  # disable_unsolicited from the listed masters
    assert "qn-dnp3-0004" not in got and "qn-dnp3-0003" not in got


def test_disable_unsolicited_broadcast_and_malformed(corpus: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    pcap = corpus / ZEEK / "dnp3.pcap"
    got = alerts(pack_with([]), pcap)
    assert got["qn-dnp3-0007"] == frames_of(pcap, request("disable_unsolicited"))
    broadcast = frames_of(pcap, lambda e: request("disable_unsolicited", "enable_unsolicited", "write", "cold_restart", "warm_restart", "stop_application", "select")(e) and e.dnp3 is not None and e.dnp3.destination >= 0xFFFD)
    assert broadcast and got["qn-dnp3-0010"] == broadcast
    assert 19 in got["qn-dnp3-0011"]  # corrupt start (0x0505); its repeat in frame 21 is suppressed


def test_control_from_unexpected_master(corpus: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    pcap = corpus / ZEEK / "dnp3_select_operate.pcap"
    assert alerts(pack_with([]), pcap)["qn-dnp3-0004"] == frames_of(pcap, request("select", "operate"))
    assert "qn-dnp3-0004" not in alerts(pack_with(["130.126.142.250"]), pcap)


def test_time_sync_from_unexpected_master(corpus: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    pcap = corpus / ZEEK / "dnp3_write.pcap"
    got = alerts(pack_with([]), pcap)
    assert got["qn-dnp3-0003"] == frames_of(pcap, request("write")) != set()
    assert "qn-dnp3-0003" not in alerts(pack_with(["130.126.142.250"]), pcap)


def test_file_transfer(corpus: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    pack = pack_with([])
    for name in ("dnp3_file_write.pcap", "dnp3_file_del.pcap"):
        pcap = corpus / ZEEK / name
        fired = alerts(pack, pcap).get("qn-dnp3-0005", set())
        writes = frames_of(pcap, lambda e: e.dnp3 is not None and e.dnp3.message_type == "request" and e.event.action in ("file_write", "file_delete"))
        assert writes and fired == writes, name
    assert "qn-dnp3-0005" not in alerts(pack, corpus / ZEEK / "dnp3_file_read.pcap")


def test_activate_config_auth_error_and_broadcast_operate(tmp_path: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    auth_err = (5).to_bytes(4, "little") + (1).to_bytes(2, "little") + bytes(2) + bytes([1]) + bytes(6)
    pcap = build_pcap(tmp_path / "crafted.pcap", [
        (message(bytes([0xC1, 0x01, 0x3C, 0x01, 0x06])), True),                                          # 1 read class 0
        (message(bytes([0xC1, 0x81, 0x00, 0x00]), src=10, dst=1), False),                                  # 2 response
        (message(bytes([0xC2, 0x1F, 0x46, 0x08, 0x5B, 0x01, 0x07, 0x00]) + b"new.cfg"), True),              # 3 activate_config g70v8 "new.cfg"
        (message(bytes([0xC2, 0x83, 0x00, 0x00, 0x78, 0x07, 0x5B, 0x01, 15, 0]) + auth_err, src=10, dst=1), False),  # 4 auth error
        (message(bytes([0xC3, 0x05, 0x0C, 0x01, 0x17, 0x01, 0x00, 0x41, 0x01]) + bytes(9), dst=0xFFFF), True),  # 5 broadcast direct operate
    ])  # fmt: skip
    got = alerts(pack_with(["10.10.1.10"]), pcap)
    assert got.get("qn-dnp3-0006") == {3}
    assert got.get("qn-dnp3-0008") == {4}
    assert got.get("qn-dnp3-0010") == {5}
    assert "qn-dnp3-0004" not in got  # the operate came from the listed master
    assert "qn-dnp3-0011" not in got  # well-formed throughout


def test_bad_crc_storm(tmp_path: Path, pack_with: Callable[[list[str]], RuleSet]) -> None:
    good = link_frame(b"", control=0xC9)  # request link status
    bad = bytearray(good)
    bad[8] ^= 0xFF
    pcap = build_pcap(tmp_path / "crc.pcap", [(good, True)] * 3 + [(bytes(bad), True)] * 12)
    got = alerts(pack_with(["10.10.1.10"]), pcap)
    assert got.get("qn-dnp3-0009") and min(got["qn-dnp3-0009"]) >= 4
    assert "qn-dnp3-0011" not in got  # bad CRCs are counted by the storm rule only
