"""The Modbus rule pack on testbed captures: every labelled attack step raises its expected rules, normal frames none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from detection.anomaly.rules import IDS as ANOMALY_IDS
from detection.engine import DetectionEngine
from detection.labels import load as load_scenario
from detection.rules import RuleSet
from pipeline.schema import Event

PCAPS = Path(__file__).resolve().parents[2] / "pcaps" / "modbus"
LABELLED = sorted(PCAPS.glob("*.labels.yml"))

decode_file = pytest.importorskip("sensors.engine").decode_file


def _frames(text: Any) -> set[int]:
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text or "").split(","))):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _alerts(pack: RuleSet, pcap: Path) -> list[Event]:
    engine = DetectionEngine(pack, organization_id="testbed")
    return engine.process_many(decode_file(pcap))


@pytest.mark.parametrize("labels_path", LABELLED, ids=[p.name for p in LABELLED])
def test_labelled_steps_raise_their_rules(pack: RuleSet, labels_path: Path) -> None:
    labels = yaml.safe_load(labels_path.read_text(encoding="utf-8"))
    pcap = load_scenario(labels_path).capture  # the label's capture, or its committed .gz
    assert pcap.is_file(), f"{labels_path.name}: its capture {pcap.name} is missing"
    alerts = _alerts(pack, pcap)
    known = {r.id for r in pack.rules}
    problems: list[str] = []
    for step in labels["steps"]:
        frames = _frames(step["frames"])
        hits = [a for a in alerts if a.evidence is not None and frames.intersection(a.evidence.frames or [])]
        fired = {a.rule.id for a in hits if a.rule is not None}
        if step["kind"] == "normal":
            problems += [f"normal frames raised {a.rule.id if a.rule else '?'}: {a.message}" for a in hits]
            continue
        for rule_id in step.get("expect_rules") or []:
            if rule_id in ANOMALY_IDS:  # learned-baseline detectors: tests/anomaly scores those
                continue
            assert rule_id in known, f"{labels_path.name}: step {step['name']} expects unknown rule {rule_id}"
            if rule_id not in fired:
                problems.append(f"step {step['name']}: expected {rule_id}, got {sorted(fired)}")
    assert not problems, "\n".join(problems)


def test_same_capture_same_alert_ids(pack: RuleSet) -> None:
    pcaps = [p for p in sorted(PCAPS.glob("*.pcap")) if p.with_suffix(".labels.yml").is_file()]
    if not pcaps:
        pytest.skip("no labelled captures in pcaps/modbus")
    runs = {p.name: [a.event.id for a in _alerts(pack, p)] for p in pcaps}
    assert any(runs.values()), "no capture raised any alert"
    for p in pcaps:
        assert runs[p.name] == [a.event.id for a in _alerts(pack, p)], p.name


def test_normal_only_capture_raises_nothing(pack: RuleSet) -> None:
    pcap = PCAPS / "modbus_normal_only.pcap"
    if not pcap.is_file():
        pytest.skip(f"{pcap} not present")
    assert [a.message for a in _alerts(pack, pcap)] == []
