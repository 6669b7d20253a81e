"""The MMS rule pack on corpus captures: each rule fires on its dangerous request and on nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event

from .conftest import cotp_dt

REPO = Path(__file__).resolve().parents[3]
CMDS = "iti-ics-security-tools/IEC61850/MMS_-_Specific_Commands"
# fileDelete request of the ICSNPP PDU corpus (pdus.der PDU 460): invoke id 42, file "TEST GraphicString/TEST GraphicString"
FILE_DELETE = bytes.fromhex("a03402012abf4c281912544553542047726170686963537472696e671912544553542047726170686963537472696e67bf4f0302012a")


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(REPO / "rules" / "mms")


def _fired(pack: RuleSet, events: list[Event], rule_id: str) -> list[Event]:
    engine = DetectionEngine(pack, organization_id="test")
    return [a for a in engine.process_many(events) + engine.finish() if a.rule is not None and a.rule.id == rule_id]


def _frames(events: list[Event], pred: Callable[[Event], bool]) -> set[int]:
    return {e.evidence.frame for e in events if e.evidence is not None and e.evidence.frame is not None and pred(e)}


def _req(*services: str) -> Callable[[Event], bool]:
    return lambda e: e.mms is not None and e.anomaly is None and e.mms.pdu_type == "confirmed-RequestPDU" and e.mms.service in services


@pytest.mark.parametrize(
    ("rule_id", "trace", "dangerous"),
    [
        ("qn-mms-0001", f"{CMDS}/mms-startRequest.pcap", _req("start", "stop")),
        ("qn-mms-0001", f"{CMDS}/mms-stopRequest.pcap", _req("start", "stop")),
        ("qn-mms-0001", f"{CMDS}/mms-killRequest.pcap", _req("kill")),
        ("qn-mms-0001", f"{CMDS}/mms-resetRequest.pcap", _req("reset")),
        ("qn-mms-0002", f"{CMDS}/mms-initiateDownloadSequence.pcap", _req("initiateDownloadSequence")),
        ("qn-mms-0003", f"{CMDS}/mms-initiateUploadSequence.pcap", _req("initiateUploadSequence", "uploadSegment", "terminateUploadSequence")),
        ("qn-mms-0003", f"{CMDS}/mms-terminateUploadSequence.pcap", _req("initiateUploadSequence", "uploadSegment", "terminateUploadSequence")),
        ("qn-mms-0004", f"{CMDS}/mms-deleteProgramInvocation.pcap", _req("deleteProgramInvocation")),
        ("qn-mms-0006", f"{CMDS}/iec61850_write.pcap", _req("write")),
        ("qn-mms-0006", "iti-ics-security-tools/IEC61850/8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap", _req("write")),
    ],
)
def test_rule_fires_on_dangerous_request_only(pack: RuleSet, decoded: Callable[[str], list[Event]], rule_id: str, trace: str, dangerous: Callable[[Event], bool]) -> None:
    events = decoded(trace)
    mine = _fired(pack, events, rule_id)
    assert mine, f"{rule_id} did not fire on {trace}"
    got = {f for a in mine if a.evidence is not None for f in (a.evidence.frames or [])}
    want = _frames(events, dangerous)
    assert got and got <= want, f"{rule_id} on {trace}: alert frames {sorted(got)} outside {sorted(want)}"


def test_no_alert_on_read_only_sessions(decoded: Callable[[str], list[Event]], tmp_path: Path) -> None:
    for trace in (f"{CMDS}/iec61850_read.pcap", f"{CMDS}/iec61850_get_name_list.pcap", "iti-ics-security-tools/IEC61850/piccolo.pcap", f"{CMDS}/mms-getDomainAttributes.pcap"):
        # the traces' clients are the site's MMS clients: their browsing (qn-mms-0007 from an unknown host) is legitimate
        clients = sorted({e.source.ip for e in decoded(trace) if e.mms is not None and e.source is not None and e.mms.pdu_type == "confirmed-RequestPDU"})
        site = tmp_path / "site_lists.yml"
        site.write_text(yaml.safe_dump({"mms_clients": clients}), encoding="utf-8")
        pack = load_rules(REPO / "rules" / "mms", site_lists=site)
        engine = DetectionEngine(pack, organization_id="test")
        alerts = engine.process_many(decoded(trace)) + engine.finish()
        assert alerts == [], (trace, [a.message for a in alerts])


def test_file_delete_rule_on_a_capture(pack: RuleSet, tmp_path: Path) -> None:
    """qn-mms-0005 on a capture of the ICSNPP corpus's fileDelete request, sent over TPKT/COTP."""
    from scapy.all import IP, TCP, wrpcap  # type: ignore[import-untyped]

    from sensors.engine import decode_file

    c, s = "10.10.1.66", "10.10.1.101"
    data = cotp_dt(FILE_DELETE)
    pkts = [
        IP(src=c, dst=s) / TCP(sport=40001, dport=102, flags="S", seq=100),
        IP(src=s, dst=c) / TCP(sport=102, dport=40001, flags="SA", seq=500, ack=101),
        IP(src=c, dst=s) / TCP(sport=40001, dport=102, flags="A", seq=101, ack=501),
        IP(src=c, dst=s) / TCP(sport=40001, dport=102, flags="PA", seq=101, ack=501) / data,
        IP(src=s, dst=c) / TCP(sport=102, dport=40001, flags="A", seq=501, ack=101 + len(data)),
    ]
    path = tmp_path / "mms_file_delete.pcap"
    wrpcap(str(path), pkts)
    events = list(decode_file(path))
    (req,) = [e for e in events if e.mms is not None and e.anomaly is None]
    assert req.event.action == "file_delete" and req.mms is not None and req.mms.file_name == "TEST GraphicString/TEST GraphicString"
    alerts = _fired(pack, events, "qn-mms-0005")
    assert len(alerts) == 1 and alerts[0].evidence is not None and alerts[0].evidence.frames == [4]
