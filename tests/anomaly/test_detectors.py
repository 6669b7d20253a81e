"""Each anomaly detector on testbed traffic: learn the first 120 s of a capture, then protect the rest."""

from __future__ import annotations

import msgspec
import pytest

from detection.anomaly import rules as R
from detection.anomaly.baseline import Learner, distance_outside, merge_intervals
from detection.anomaly.engine import AnomalyEngine
from detection.anomaly.model import train
from pipeline import schema

from .conftest import LEARN, SITE, events_of, scenario, split


def _on_step(alerts: list[schema.Event], scenario_name: str, step: str, rule: str) -> list[schema.Event]:
    sc = scenario(scenario_name)
    frames = next(s for s in sc.steps if s.name == step).frames
    return [a for a in alerts if a.rule and a.rule.id == rule and frames & set(a.evidence.frames or ())]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("scenario_name", "step", "rule"),
    [
        ("anomaly_setpoint", "setpoint_out_of_range", R.VALUE.id),
        ("anomaly_setpoint", "new_function_known_master", R.NEW_FUNCTION.id),
        ("anomaly_setpoint", "slow_recon", R.NEW_ADDRESS.id),
        ("anomaly_timing", "poll_burst", R.POLL_RATE.id),
        ("anomaly_timing", "poll_burst", R.POLL_JITTER.id),
        ("anomaly_timing", "coil_write_new_link", R.NEW_LINK.id),
        ("anomaly_timing", "silence_plc2", R.NEW_NODE.id),
        ("anomaly_timing", "poll_burst", R.MULTIVARIATE.id),
    ],
)
def test_detector_fires_on_its_step(dev_runs, scenario_name: str, step: str, rule: str) -> None:
    _, alerts = dev_runs[scenario_name]
    hits = _on_step(alerts, scenario_name, step, rule)
    assert hits, f"{rule} raised nothing on {scenario_name}/{step}; got {sorted({a.rule.id for a in alerts})}"
    a = hits[0]
    # Anomaly alerts look like rule alerts: ruleset, severity, deterministic id, evidence, explanation.
    assert a.event.kind == "alert" and a.rule.ruleset == "qinling-anomaly" and a.event.severity
    assert a.evidence.event_ids and a.evidence.frames and a.evidence.file_sha256
    assert a.labels and {"feature", "observed", "baseline"} <= set(a.labels) and a.event.reason
    schema.decode_event(schema.encode(a))  # serializes and validates against the schema


def test_value_alert_explains_value_and_envelope(dev_runs) -> None:
    _, alerts = dev_runs["anomaly_setpoint"]
    (a,) = _on_step(alerts, "anomaly_setpoint", "setpoint_out_of_range", R.VALUE.id)
    assert "9000" in a.labels["observed"] and "[1480, 1540]" in a.labels["baseline"]
    assert a.labels["feature"] == "holding 110"


def test_poll_stopped_when_the_cycle_stops(dev_runs) -> None:
    events, alerts = dev_runs["anomaly_timing"]
    stops = [a for a in alerts if a.rule.id == R.POLL_STOPPED.id]
    assert len(stops) == 1
    a = stops[0]
    assert a.source.ip == "10.10.1.10" and a.destination.ip == "10.10.1.102"
    # Raised on a later event's clock tick: about 5 periods (1.5 s) after the last request it names.
    last = next(e for e in events if e.event.id == a.evidence.event_ids[0])
    gap = (a.timestamp - last.timestamp).total_seconds()
    assert 7.0 < gap < 9.0, gap


def test_poll_stopped_at_finish() -> None:
    """A capture that ends while a cycle is overdue: finish() checks the clock one last time."""
    events = events_of("anomaly_timing")
    learn, rest = split(events)
    model = train(SITE, learn)
    t_cut = rest[0].timestamp.timestamp() + 20
    hmi_plc1 = ("10.10.1.10", "10.10.1.101")

    def keep(e: schema.Event) -> bool:  # PLC1's polling vanishes after t_cut; the rest goes on 10 s more
        pair = (e.source.ip, e.destination.ip) if e.source and e.destination else None
        t = e.timestamp.timestamp()
        if pair in (hmi_plc1, hmi_plc1[::-1]):
            return t < t_cut
        return t < t_cut + 10
    eng = AnomalyEngine(SITE, model, enabled=[R.POLL_STOPPED.id])
    alerts = [a for e in rest if keep(e) for a in eng.process(e)] + eng.finish()
    assert [a.destination.ip for a in alerts] == ["10.10.1.101"]
    assert float(alerts[0].labels["observed"].split()[3].rstrip("s")) > 3.5


def test_poll_stopped_by_finish_alone() -> None:
    """The last events of a capture: no tick reached the deadline, finish() does."""
    import detection.anomaly.engine as engine_mod

    events = events_of("anomaly_timing")
    learn, rest = split(events)
    model = train(SITE, learn)
    eng = AnomalyEngine(SITE, model, enabled=[R.POLL_STOPPED.id])
    t_cut = rest[0].timestamp.timestamp() + 20
    tail = [e for e in rest if e.timestamp.timestamp() < t_cut or e.destination.ip == "10.10.1.102" and e.timestamp.timestamp() < t_cut + 10]
    saved = engine_mod.TICK_EVERY
    engine_mod.TICK_EVERY = engine_mod.dt.timedelta(hours=1)  # only the first event ticks
    try:
        during = [a for e in tail for a in eng.process(e)]
        assert not during
        assert [a.destination.ip for a in eng.finish()] == ["10.10.1.101"]
    finally:
        engine_mod.TICK_EVERY = saved


def test_binary_state_and_flapping() -> None:
    """Coil read-backs from the capture with coil 2 of PLC1 forced to a state never seen, then flapping."""
    events = events_of("anomaly_setpoint")
    learn, rest = split(events)
    model = train(SITE, learn)
    coil_state = model.baseline.binaries[("10.10.1.101", "modbus", 1, "coil", 2)].states
    assert len(coil_state) == 1
    other = 1 - next(iter(coil_state))
    n = 0
    changed = []
    for e in rest:
        mb = e.modbus
        if mb and mb.function_code == 1 and mb.message_type == "response" and e.source.ip == "10.10.1.101":
            vals = list(mb.values or [])
            vals[2] = other if n % 2 == 0 else 1 - other
            n += 1
            e = msgspec.structs.replace(e, modbus=msgspec.structs.replace(mb, values=vals))
        changed.append(e)
    eng = AnomalyEngine(SITE, model, enabled=[R.BINARY.id])
    alerts = eng.process_many(changed)
    assert alerts and all(a.labels["feature"] == "coil 2" for a in alerts)
    assert alerts[0].labels["observed"] == f"state {other}"


def test_no_alerts_on_normal_traffic() -> None:
    """A model learned on one normal capture protects another run of the same plant without alerting."""
    model = train(SITE, events_of("modbus_normal_only"))
    learn, rest = split(events_of("anomaly_setpoint"))
    eng = AnomalyEngine(SITE, model)
    # Same plant, other polling set-up: the anomaly_setpoint capture's normal traffic is new to this model,
    # so this only checks the engine learned from its own first 120 s stays quiet on the rest's normal frames.
    own = AnomalyEngine(SITE, learn_first=LEARN)
    sc = scenario("anomaly_setpoint")
    alerts = own.process_many(learn + rest)
    normal_only = [a for a in alerts if set(a.evidence.frames or ()) <= sc.normal_frames]
    assert not normal_only, [a.message for a in normal_only]
    assert eng.phase == "protecting"


def test_intervals() -> None:
    assert merge_intervals([(0, 9), (20, 29), (100, 100)]) == [(0, 29), (100, 100)]
    assert distance_outside([(0, 29)], 3, 5) == 0
    assert distance_outside([(0, 29)], 30, 40) == 11
    assert distance_outside([(0, 9), (100, 109)], 5, 105) == 1  # spans a hole


def test_learner_needs_events() -> None:
    from detection.anomaly.exceptions import NotTrainedError

    with pytest.raises(NotTrainedError, match="no protocol events"):
        Learner("x").fit()
