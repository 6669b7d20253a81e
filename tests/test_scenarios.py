"""Every bundled testbed scenario: an alert for each labeled attack step, none on labeled normal traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.jobs import replay
from pipeline import schema
from pipeline.bus import EmbeddedBus
from pipeline.settings import Settings
from pipeline.stages import ListSink

from detection.anomaly.rules import IDS as ANOMALY_IDS
from tests.scenarios import all_label_files, load

LABELS = all_label_files()


def test_there_are_bundled_scenarios() -> None:
    assert LABELS, "pcaps/ holds no *.labels.yml: the testbed captures are missing"


def _alerts(capture: Path) -> list[schema.Event]:
    import io

    buf = io.BytesIO()
    summary = replay([capture], Settings(organization_id="test"), out=buf, bus=EmbeddedBus())
    alerts = [schema.decode_event(line) for line in buf.getvalue().splitlines() if line]
    assert summary.alerts == len(alerts)
    return alerts


@pytest.mark.parametrize("labels", LABELS, ids=[p.stem for p in LABELS])
def test_scenario_alerts_match_labels(labels: Path) -> None:
    sc = load(labels)
    alerts = _alerts(sc.capture)
    normal = sc.normal_frames
    # A normal step may list posture rules its plant's configuration raises (an OPC UA plant run with
    # security policy None on purpose): those are expected there, and each listed one must fire.
    posture = {r for st in sc.steps if st.kind == "normal" for r in st.expect_rules}
    on_normal = [a for a in alerts if normal & set(a.evidence.frames or ())]  # type: ignore[union-attr]
    unexpected = [a for a in on_normal if not (a.rule and a.rule.id in posture)]
    assert not unexpected, "alerts on labeled normal traffic: " + "; ".join(
        f"{a.rule.id} frames {a.evidence.frames}" for a in unexpected  # type: ignore[union-attr]
    )
    assert posture <= {a.rule.id for a in on_normal if a.rule}, f"posture rules listed but not raised: {sorted(posture)}"
    missed = []
    for step in sc.steps:
        if step.kind != "attack":
            continue
        # This replay runs the rule pack only: steps meant for the anomaly detectors are scored by
        # tests/anomaly/test_accuracy.py (and `qinling evaluate`); their rule-pack ids still count here.
        expect = [r for r in step.expect_rules if r not in ANOMALY_IDS]
        if step.expect_rules and not expect:
            continue
        hits = [a for a in alerts if step.frames & set(a.evidence.frames or ())]  # type: ignore[union-attr]
        fired = {a.rule.id for a in hits if a.rule}
        if not hits or not set(expect) <= fired:
            missed.append(f"{step.name}: expected {expect or 'any alert'}, got {sorted(fired)}")
    assert not missed, "attack steps without their alert:\n" + "\n".join(missed)


def test_replay_is_deterministic() -> None:
    attacks = [p for p in LABELS if any(s.kind == "attack" and set(s.expect_rules) - ANOMALY_IDS for s in load(p).steps)]
    assert attacks, "no bundled scenario has attack steps for the rule pack"
    capture = load(attacks[0]).capture
    first, second = _alerts(capture), _alerts(capture)
    assert [a.event.id for a in first] == [a.event.id for a in second]
    assert first  # the attack scenario raises alerts at all
