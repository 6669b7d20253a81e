"""The GOOSE rule pack on the labelled capture pcaps/goose/goose_plant_attack.pcap (each rule fires on
its attack frames, none on normal traffic) and on corpus traces; the capture is what scenario.py builds."""

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
from tests.decoders.goose.scenario import NAME, build

REPO = Path(__file__).resolve().parents[3]
PCAPS = REPO / "pcaps" / "goose"


def _alerts(path: Path) -> tuple[list[Event], list[Event]]:
    events = list(decode_file(path))
    pack = load_rules([REPO / "rules" / "goose"])
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
    goose = [e for e in events if e.event.dataset == "goose"]
    assert len(goose) == doc["frames_total"]
    assert any(e.network is not None and e.network.vlan_id == [10] for e in goose), "VLAN-tagged GOOSE not decoded"
    fired: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        assert a.rule is not None and a.evidence is not None
        for f in a.evidence.frames or []:
            fired[label_of.get(f, "?")].add(a.rule.id)
    assert not fired.get("normal"), f"normal traffic raised {fired.get('normal')}"
    expected = {r for step in sc.attacks for r in step.expect_rules}
    for label in expected:
        assert label in fired.get(label, set()), f"{label} did not fire (fired there: {sorted(fired.get(label, set()))})"
    assert expected == {f"qn-goose-{n:04d}" for n in range(1, 6)} == {yaml.safe_load(p.read_text())["id"] for p in (REPO / "rules" / "goose").glob("*.yml")}


@pytest.mark.parametrize(("trace", "rule", "count"), [
    ("icsnpp-iec61850-goose/traces/GOOSE_truncated.pcap", "qn-goose-0005", 1),
    ("icsnpp-iec61850-goose/traces/GOOSE_malformed_asn1.pcap", "qn-goose-0005", 1),
    ("icsnpp-iec61850-goose/traces/GOOSE.pcap", None, 0),  # a publisher restart (stNum 1, sqNum 1 again) is not an attack
    ("iti-ics-security-tools/IEC61850/GOOSE/Sample_File_GOOSE.pcap", "qn-goose-0003", 3),  # data changes without a new stNum, 3 control blocks
])
def test_on_corpus(corpus: Path, trace: str, rule: str | None, count: int) -> None:
    path = corpus / trace
    if not path.is_file():
        pytest.skip(f"{trace} not in the corpus")
    alerts, _ = _alerts(path)
    ids = [a.rule.id for a in alerts if a.rule is not None]
    assert ids.count(rule) == count if rule else not ids, ids
