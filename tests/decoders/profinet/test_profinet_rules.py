"""The PROFINET rule pack on the labelled capture pcaps/profinet/profinet_plant_attack.pcap (each rule
fires on its attack frames, none on normal traffic) and on corpus traces; the capture is what scenario.py builds."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from detection.engine import DetectionEngine
from detection.labels import load
from detection.rules import load_rules
from pipeline.schema import Event
from sensors.engine import decode_file
from tests.decoders.profinet.scenario import NAME, build

REPO = Path(__file__).resolve().parents[3]
PCAPS = REPO / "pcaps" / "profinet"


def _alerts(path: Path) -> tuple[list[Event], list[Event]]:
    events = list(decode_file(path))
    pack = load_rules([REPO / "rules" / "profinet"])
    return DetectionEngine(pack, organization_id="testbed").process_many(events), events


def test_capture_is_what_the_scenario_builds(tmp_path: Path) -> None:
    pcap, labels = build(tmp_path)
    assert pcap.read_bytes() == (PCAPS / f"{NAME}.pcap").read_bytes()
    assert labels.read_text() == (PCAPS / f"{NAME}.labels.yml").read_text()


def test_each_rule_fires_on_its_attack_and_not_on_normal_frames() -> None:
    doc = yaml.safe_load((PCAPS / f"{NAME}.labels.yml").read_text())
    sc = load(PCAPS / f"{NAME}.labels.yml")
    label_of = {f: (step.expect_rules[0] if step.kind == "attack" else "normal") for step in sc.steps for f in step.frames}
    alerts, events = _alerts(sc.capture)
    pn = [e for e in events if e.event.dataset == "profinet"]
    assert len(pn) == doc["frames_total"]
    by_frame = {e.evidence.frame: e for e in pn if e.evidence is not None}
    assert by_frame[3].profinet is not None and by_frame[3].profinet.station_name == "plc1"
    assert by_frame[9].profinet is not None and by_frame[9].profinet.control_command == "application_ready"
    assert by_frame[19].event.action == "restart" and by_frame[17].event.action == "write"
    fired: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        assert a.rule is not None and a.evidence is not None
        for f in a.evidence.frames or []:
            fired[label_of.get(f, "?")].add(a.rule.id)
    assert not fired.get("normal"), f"normal traffic raised {fired.get('normal')}"
    expected = {r for step in sc.attacks for r in step.expect_rules}
    for label in expected:
        assert label in fired.get(label, set()), f"{label} did not fire (fired there: {sorted(fired.get(label, set()))})"
    assert expected == {yaml.safe_load(p.read_text())["id"] for p in (REPO / "rules" / "profinet").glob("*.yml")}


@pytest.mark.parametrize(("trace", "rule"), [
    ("iti-ics-security-tools/profinet/PROFINET-RT-DCP/ChangeIPUsingDCP.pcap", "qn-profinet-0001"),  # DCP Set IP from an unlisted MAC
    ("iti-ics-security-tools/profinet/profinet-wireshark-bug.pcap", "qn-profinet-0001"),  # DCP Set name of station
    ("icsnpp-profinet-io-cm/traces/profinet_io_cm_control.pcapng", "qn-profinet-0003"),  # controllers outside the test plant's list
    ("icsnpp-profinet-io-cm/traces/profinet_io_cm_write.pcapng", "qn-profinet-0003"),
])
def test_on_corpus(corpus: Path, trace: str, rule: str) -> None:
    path = corpus / trace
    if not path.is_file():
        pytest.skip(f"{trace} not in the corpus")
    alerts, _ = _alerts(path)
    assert rule in {a.rule.id for a in alerts if a.rule is not None}


def test_plant_controllers_raise_nothing_on_corpus_reads(corpus: Path) -> None:
    """A read implicit (profinet.pcap) is not a control operation: no alert, whoever sends it."""
    path = corpus / "iti-ics-security-tools/profinet/profinet.pcap"
    if not path.is_file():
        pytest.skip("not in the corpus")
    alerts, events = _alerts(path)
    assert [e.profinet.operation_name for e in events if e.profinet is not None] == ["read_implicit", "read_implicit"]
    assert not alerts
