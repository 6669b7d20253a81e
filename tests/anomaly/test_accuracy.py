"""Final figures on the held-out scenarios (labels `holdout: true`): rules + anomaly detection with --learn-first 120s.

Every attack step must be detected (by a rule or an anomaly detector) and there must be at most one
false alert per hour of protected normal traffic. The held-out captures are never used for tuning.
"""

from __future__ import annotations

import pytest

from detection.anomaly.evaluate import evaluate
from detection.labels import label_files, load

from .conftest import CAPTURES, LEARN, SITE

HOLDOUT = [p for p in label_files(CAPTURES) if load(p).holdout]


def test_there_is_a_holdout_set() -> None:
    assert HOLDOUT, "no labels file with holdout: true under pcaps/modbus"


@pytest.mark.parametrize("labels", HOLDOUT, ids=[p.stem for p in HOLDOUT])
def test_holdout_accuracy(labels) -> None:
    from console.commands.anomaly import run_scenario

    sc = load(labels)
    events, alerts, protect_from = run_scenario(sc.capture, SITE, learn_first=LEARN)
    rep = evaluate(sc, events, alerts, protect_from=protect_from)
    print(rep.table())
    missed = [s.name for s in rep.steps if not s.detected]
    assert not missed, rep.table()
    assert not [s for s in rep.steps if s.in_learning]
    assert rep.false_per_hour <= 1.0, rep.table()
    # Each step is caught by what its label says should catch it.
    for s in rep.steps:
        assert set(s.expect) <= s.rules, (s.name, s.expect, s.rules)
