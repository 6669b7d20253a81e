"""Final figures on the held-out scenarios (labels `holdout: true`): rules + anomaly detection.

Every attack step must be detected (by a rule or an anomaly detector) and there must be at most one
false alert per hour of protected normal traffic, except where a measured miss or false alert is
listed below (kept as measured, not tuned away). The held-out captures are never used for tuning.
Learning: each capture's first 120 s, except the long `anomaly_long_normal`, `anomaly_mms_long(2)` (first 600 s),
as its scenario file said before it was recorded. The development captures of the other protocols
are checked for recall here; their false alerts are reported in docs/accuracy.md.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from detection.anomaly.evaluate import evaluate
from detection.labels import label_files, load

from .conftest import LEARN, REPO, SITE

ANOMALY = [p for p in label_files(REPO / "pcaps") if p.name.startswith("anomaly_")]
HOLDOUT = [p for p in ANOMALY if load(p).holdout]
DEVELOPMENT = [p for p in ANOMALY if not load(p).holdout]
LEARN_FOR = {name: dt.timedelta(seconds=600) for name in ("anomaly_long_normal", "anomaly_mms_long", "anomaly_mms_long2")}
# Held-out steps measured as missed, kept as measured (never tuned on: a fix needs a new held-out
# scenario).  None since MMS requests name their variables: anomaly_mms/hmi_poll_burst, missed
# before that (the HMI's two reads per round were one exchange with a ~0.014 s learned period), is
# caught now, but anomaly_mms is no longer a clean held-out for that fix; anomaly_mms_holdout2 is.
KNOWN_MISSES: dict[str, set[str]] = {}
# Held-out false alerts measured above the 1/h target, kept as measured (rule id -> count).
# anomaly_mms_holdout2 (evaluated once after the MMS targets/values change, docs/accuracy.md):
# - qn-anomaly-multivariate on eng -> IED2: a routine association's conclude + release fell into
#   the 5 s window after its read + write (a window of one request, no variable named).
# Its second false alert, qn-anomaly-poll-jitter on the HMI's regular TotW read of IED1 (the poll
# burst, a second HMI association reading the same variable, broke that exchange's gap sequence),
# cited only the HMI's last normal request; since speed-up and jitter alerts cite every request of
# the gaps they judge, its evidence holds the burst's requests and it counts for the attack step.
# That change was motivated by this capture, so it is not a clean held-out figure for it
# (anomaly_mms_long, recorded before the change and evaluated once after it, is).
KNOWN_FALSE = {"anomaly_mms_holdout2": {"qn-anomaly-multivariate": 1}}


def capture_of(labels):  # type: ignore[no-untyped-def]
    sc = load(labels)
    gz = sc.capture.with_name(sc.capture.name + ".gz")
    return sc, (sc.capture if sc.capture.exists() else gz)


def test_a_third_is_held_out() -> None:
    assert HOLDOUT, "no labels file with holdout: true under pcaps/"
    assert 3 * len(HOLDOUT) >= len(ANOMALY), (len(HOLDOUT), len(ANOMALY))
    protocols = {p.parent.name for p in ANOMALY}
    assert {"modbus", "iec104", "s7comm", "bacnet", "enip", "dnp3", "mms"} <= protocols
    assert {"dnp3", "mms"} <= {p.parent.name for p in HOLDOUT}


def _run(labels):  # type: ignore[no-untyped-def]
    from console.commands.anomaly import run_scenario

    sc, cap = capture_of(labels)
    events, alerts, protect_from = run_scenario(cap, SITE, learn_first=LEARN_FOR.get(sc.name, LEARN))
    rep = evaluate(sc, events, alerts, protect_from=protect_from)
    print(rep.table())
    return rep


@pytest.mark.parametrize("labels", HOLDOUT, ids=[p.stem for p in HOLDOUT])
def test_holdout_accuracy(labels) -> None:  # type: ignore[no-untyped-def]
    rep = _run(labels)
    missed = {s.name for s in rep.steps if not s.detected}
    assert missed == KNOWN_MISSES.get(rep.scenario, set()), rep.table()
    assert not [s for s in rep.steps if s.in_learning]
    if rep.scenario in KNOWN_FALSE:
        false = Counter(a.rule.id for a in rep.false_alerts if a.rule is not None)
        assert false == Counter(KNOWN_FALSE[rep.scenario]), rep.table()
    else:
        assert rep.false_per_hour <= 1.0, rep.table()
    # Each detected step is caught by what its label says should catch it.
    for s in rep.steps:
        if s.detected:
            assert set(s.expect) <= s.rules, (s.name, s.expect, s.rules)


@pytest.mark.parametrize("labels", [p for p in DEVELOPMENT if p.parent.name != "modbus"],
                         ids=[p.stem for p in DEVELOPMENT if p.parent.name != "modbus"])
def test_development_protocol_recall(labels) -> None:  # type: ignore[no-untyped-def]
    rep = _run(labels)
    assert all(s.detected for s in rep.steps), rep.table()
    for s in rep.steps:
        assert set(s.expect) <= s.rules, (s.name, s.expect, s.rules)
