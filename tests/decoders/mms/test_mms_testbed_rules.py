"""qn-mms-0007 (browse from an unknown host) and qn-mms-0008 (IEC 61850 control from a non-engineering
host) on the libiec61850 testbed capture: each fires on the attacker's requests it is about and on
nothing the HMI (10.10.1.10, a listed MMS client) or the engineering station (10.10.1.20) sends,
although both browse, identify, write a setting and operate a switch (select-before-operate)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event
from sensors.engine import decode_file

REPO = Path(__file__).resolve().parents[3]
CAPTURE = REPO / "pcaps" / "mms" / "mms_plant_attack.pcap"
ATTACKER = "10.10.1.66"


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(decode_file(CAPTURE))


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(REPO / "rules" / "mms")


def _alerts(pack: RuleSet, events: list[Event], rule_id: str) -> list[Event]:
    engine = DetectionEngine(pack, organization_id="test")
    return [a for a in engine.process_many(events) + engine.finish() if a.rule is not None and a.rule.id == rule_id]


def _req_frames(events: list[Event], src: str | None, services: set[str], item_suffix: str = "") -> set[int]:
    return {
        e.evidence.frame  # type: ignore[union-attr,misc]
        for e in events
        if e.mms is not None and e.anomaly is None and e.mms.pdu_type == "confirmed-RequestPDU" and e.mms.service in services
        and (src is None or e.source.ip == src) and (e.mms.item_id or "").endswith(item_suffix)  # type: ignore[union-attr]
    }


def test_browse_rule_fires_on_the_unknown_host_only(pack: RuleSet, events: list[Event]) -> None:
    browse = {"getNameList", "getVariableAccessAttributes", "identify"}
    alerts = _alerts(pack, events, "qn-mms-0007")
    assert alerts, "qn-mms-0007 did not fire"
    assert {a.source.ip for a in alerts} == {ATTACKER}  # type: ignore[union-attr]
    # one alert per (attacker, IED): the recon of plc1 and the GVAA libiec61850 sends before operating on plc2
    assert {a.destination.ip for a in alerts} == {"10.10.1.101", "10.10.1.102"}  # type: ignore[union-attr]
    fired = {f for a in alerts for f in (a.evidence.frames or [])}  # type: ignore[union-attr]
    assert fired <= _req_frames(events, ATTACKER, browse)
    legit = _req_frames(events, "10.10.1.10", browse) | _req_frames(events, "10.10.1.20", browse)
    assert legit, "the HMI / engineering station browse too: the capture must contain that"
    assert not fired & legit


def test_control_rule_fires_on_the_attackers_operate_only(pack: RuleSet, events: list[Event]) -> None:
    alerts = _alerts(pack, events, "qn-mms-0008")
    oper = _req_frames(events, ATTACKER, {"write"}, "$CO$Pos$Oper")
    assert len(oper) == 1
    assert [a.evidence.frames for a in alerts] == [sorted(oper)]  # type: ignore[union-attr]
    assert "XCBR1$CO$Pos$Oper" in (alerts[0].message or "")
    eng_oper = _req_frames(events, "10.10.1.20", {"write"}, "$CO$Pos$Oper")
    assert eng_oper, "the engineering station's SBO operate must be in the capture (a write it must not flag)"


def test_browse_rule_on_a_corpus_trace(pack: RuleSet, decoded: Callable[[str], list[Event]]) -> None:
    """The corpus's getNameList session (a client that is not in the default $mms_clients): one alert, on a getNameList request."""
    events = decoded("iti-ics-security-tools/IEC61850/MMS_-_Specific_Commands/iec61850_get_name_list.pcap")
    alerts = _alerts(pack, events, "qn-mms-0007")
    assert len(alerts) == 1
    assert set(alerts[0].evidence.frames or []) <= _req_frames(events, None, {"getNameList"})  # type: ignore[union-attr]
