"""Engine semantics: every modifier, threshold/distinct windows, suppression, new_terms, alert shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datetime as dt

import pytest

from detection.engine import ALERT_DATASET, DETECTORS, DetectionEngine, alert_id
from detection.exceptions import EngineError
from detection.rules import Condition, ListRef, RuleSet
from detection.predicates import compile_condition
from pipeline import schema
from pipeline.schema import Event

HMI, ENG, PLC1, PLC2, ATK = "10.10.1.10", "10.10.1.20", "10.10.1.101", "10.10.1.102", "10.10.1.66"
T0 = dt.datetime(2026, 1, 1, 8, 0, 0, tzinfo=dt.timezone.utc)  # conftest's t0
EventFactory = Callable[..., Event]

LISTS = {
    "eng": ("10.10.1.20",),
    "net": ("10.10.1.0/24", "fd00::/8"),
    "regs": (100, 101, 102),
}


def holds(field: str, modifier: str, value: Any, event: Event) -> bool:
    return compile_condition(Condition(field, modifier, value), LISTS)(event)


@pytest.mark.parametrize(
    ("field", "modifier", "value", "expected"),
    [
        ("source.ip", "eq", ATK, True),
        ("source.ip", "eq", HMI, False),
        ("source.ip", "eq", (HMI, ATK), True),
        ("modbus.function_code", "eq", 6, True),
        ("source.ip", "in", (HMI, ENG), False),
        ("source.ip", "in", ListRef("eng"), False),
        ("source.ip", "not_in", ListRef("eng"), True),
        ("source.ip", "not_in", (ATK,), False),
        ("modbus.address", "gt", 100, True),
        ("modbus.address", "gt", 101, False),
        ("modbus.address", "gte", 101, True),
        ("modbus.address", "lt", 102, True),
        ("modbus.address", "lt", 101, False),
        ("modbus.address", "lte", 101, True),
        ("modbus.address", "range", (100, 101), True),
        ("modbus.address", "range", (102, 109), False),
        ("modbus.function_name", "re", r"^write_", True),
        ("modbus.function_name", "re", r"coil", False),
        ("source.ip", "cidr", ("10.10.1.64/28",), True),
        ("source.ip", "cidr", ListRef("net"), True),
        ("source.ip", "cidr", ("192.168.0.0/16",), False),
        ("source.ip", "not_cidr", ListRef("net"), False),
        ("source.ip", "not_cidr", ("192.168.0.0/16", "fd00::/8"), True),
        ("modbus.values", "contains", 4242, True),
        ("modbus.values", "contains", (1, 2), False),
        ("modbus.function_name", "contains", "register", True),
        ("modbus.exception_code", "exists", False, True),
        ("modbus.exception_code", "exists", True, False),
        ("modbus.address", "exists", True, True),
        ("modbus.address", "in", ListRef("regs"), True),
    ],
)
def test_modifier(field: str, modifier: str, value: Any, expected: bool, make_event: EventFactory) -> None:
    e = make_event(0, ATK, PLC1, fc=6, action="write", address=101, values=[4242], function_name="write_single_register")
    assert holds(field, modifier, value, e) is expected


def test_missing_field_satisfies_only_exists_false(make_event: EventFactory) -> None:
    e = make_event(0, ATK, PLC1)  # no exception_code
    for mod, value in [("eq", 1), ("in", (1,)), ("not_in", (1,)), ("gt", 0), ("re", "."), ("cidr", ("0.0.0.0/0",)),
                       ("not_cidr", ("10.0.0.0/8",)), ("contains", 1), ("range", (0, 9))]:
        assert holds("modbus.exception_code", mod, value, e) is False, mod
    assert holds("modbus.exception_code", "exists", False, e) is True


def test_ipv6_cidr_and_list_valued_fields(make_event: EventFactory) -> None:
    e = make_event(0, "fd00::66", PLC1)
    assert holds("source.ip", "cidr", ListRef("net"), e)
    assert not holds("source.ip", "cidr", ("10.0.0.0/8",), e)
    related = Event(timestamp=T0, event=schema.EventInfo(kind="event", dataset="modbus"), related=schema.Related(ip=[HMI, ATK]))
    assert holds("related.ip", "eq", ATK, related)  # any element
    assert not holds("related.ip", "not_in", (ATK,), related)  # no element may be in the list
    assert holds("related.ip", "not_cidr", ("192.168.0.0/16",), related)


def test_undefined_list_at_compile_time() -> None:
    with pytest.raises(EngineError, match=r"\$nope is not defined"):
        compile_condition(Condition("source.ip", "in", ListRef("nope")), LISTS)


# ---------------------------------------------------------------- whole rules


Load = Callable[..., RuleSet]


def test_match_rule_alert_shape(rule_from: Load, ev: EventFactory) -> None:
    rs = rule_from(
        """
        id: qn-modbus-9100
        title: Write from elsewhere
        description: why
        level: high
        attack: [T0855, T0836]
        match:
          event.dataset: modbus
          event.action: write
          source.ip|not_in: $eng
        message: "Write to {destination.ip} unit {modbus.unit_id} from {source.ip} values {modbus.values} {modbus.quantity}"
        """,
        lists="eng: [10.10.1.20]\n",
    )
    engine = DetectionEngine(rs, organization_id="fallback")
    assert engine.process(ev(0, ENG, PLC1, fc=6, action="write")) == []
    assert engine.process(ev(1, HMI, PLC1)) == []
    (alert,) = engine.process(ev(2, ATK, PLC1, fc=6, action="write", address=5, values=[1, 2], frame=77, event_id="cap-77-0"))
    assert alert.event.kind == "alert" and alert.event.dataset == ALERT_DATASET
    assert alert.event.action == "write" and alert.event.severity == schema.SEVERITY["high"] == 73
    assert alert.event.id == alert_id("qn-modbus-9100", ["cap-77-0"]) and len(alert.event.id) == 20
    assert alert.timestamp == T0.replace(second=2)
    assert alert.rule is not None and (alert.rule.id, alert.rule.name, alert.rule.description, alert.rule.ruleset) == (
        "qn-modbus-9100", "Write from elsewhere", "why", "qinling-modbus")
    assert alert.threat is not None and alert.threat.technique.id == ["T0855", "T0836"]
    assert alert.threat.technique.name == ["Unauthorized Command Message", "Modify Parameter"]
    assert alert.source is not None and alert.source.ip == ATK and alert.destination is not None and alert.destination.ip == PLC1
    assert alert.network is not None and alert.network.protocol == "modbus"
    assert alert.organization is not None and alert.organization.id == "plant"  # the event's, not the fallback
    assert alert.related is not None and alert.related.ip == [ATK, PLC1]  # numeric order
    assert alert.message == f"Write to {PLC1} unit 1 from {ATK} values 1,2 ?"
    assert alert.evidence is not None
    assert (alert.evidence.frames, alert.evidence.event_ids, alert.evidence.file) == ([77], ["cap-77-0"], "test.pcap")
    assert alert.evidence.file_sha256 == "ab" * 32
    # The alert is a valid serialized Event, and alerts are never matched again.
    assert schema.decode_event(schema.encode(alert)) == alert
    assert engine.process(alert) == []


def test_threshold_counts_events_in_event_time_and_resets(rule_from: Load, ev: EventFactory) -> None:
    rs = rule_from(
        """
        id: r-th
        title: burst
        level: low
        match: {event.dataset: modbus}
        threshold: {count: 3, window: 10s, by: [source.ip]}
        message: "{count} from {source.ip}"
        """
    )
    engine = DetectionEngine(rs)
    # 3 events within 10 s is not "more than 3"; the 4th is, but the first has aged out by then.
    assert [engine.process(ev(t, ATK, PLC1)) for t in (0, 4, 8)] == [[], [], []]
    assert engine.process(ev(10.5, ATK, PLC1)) == []  # t=0 left the window (10.5 - 10 > 0)
    (alert,) = engine.process(ev(11, ATK, PLC1))  # 4, 8, 10.5, 11
    assert alert.message == f"4 from {ATK}"
    assert alert.evidence is not None and alert.evidence.frames == [2, 3, 4, 5]
    assert alert.event.start == T0.replace(second=4) and alert.event.end == T0.replace(second=11)
    assert alert.event.reason == "4 matching events within 10s per source.ip (threshold 3)"
    # The key's window was emptied: the next three events do not fire again.
    assert [engine.process(ev(t, ATK, PLC1)) for t in (12, 13, 14)] == [[], [], []]
    assert len(engine.process(ev(15, ATK, PLC1))) == 1
    # Window edge is inclusive: entries exactly `window` old still count.
    for t in (20, 25, 30):
        assert engine.process(ev(t, HMI, PLC1)) == []
    assert len(engine.process(ev(30, HMI, PLC1))) == 1  # 20, 25, 30, 30: the t=20 entry is exactly 10 s old


def test_threshold_keys_are_separate(rule_from: Load, ev: EventFactory) -> None:
    rs = rule_from("id: r-th\ntitle: t\nlevel: low\nmatch: {event.dataset: modbus}\nthreshold: {count: 2, window: 10s, by: source.ip}\n")
    engine = DetectionEngine(rs)
    out = [a for i in range(3) for src in (HMI, ATK) for a in engine.process(ev(i, src, PLC1))]
    assert sorted(a.source.ip for a in out if a.source) == [HMI, ATK]


def test_threshold_distinct_sweep_gives_few_alerts(rule_from: Load, ev: EventFactory) -> None:
    rs = rule_from(
        """
        id: r-sweep
        title: sweep
        level: medium
        match: {event.dataset: modbus, modbus.message_type: request}
        threshold: {count: 30, window: 10s, by: [source.ip], distinct: modbus.address}
        """
    )
    engine = DetectionEngine(rs)
    # A poller re-reading the same two blocks never fires however often it polls.
    poll = [a for i in range(200) for a in engine.process(ev(i * 0.05, HMI, PLC1, address=(i % 2) * 16))]
    assert poll == []
    # A 100-address sweep at 20 ms per read: one alert per 31 distinct addresses, not one per packet.
    sweep = [a for i in range(100) for a in engine.process(ev(20 + i * 0.02, ATK, PLC2, address=i))]
    assert len(sweep) == 3
    assert sweep[0].evidence is not None and len(sweep[0].evidence.frames or []) == 31
    assert sweep[0].event.reason == "31 distinct modbus.address values within 10s per source.ip (threshold 30)"
    # Repeats of one address count once.
    engine2 = DetectionEngine(rs)
    assert [a for i in range(100) for a in engine2.process(ev(i * 0.01, ATK, PLC2, address=i % 30))] == []
    # Events without the distinct field are ignored.
    assert [a for i in range(100) for a in engine2.process(ev(5 + i * 0.01, ATK, PLC2, address=None))] == []


def test_suppression_per_key_per_window(rule_from: Load, ev: EventFactory) -> None:
    rs = rule_from(
        """
        id: r-sup
        title: write
        level: low
        match: {event.action: write}
        suppress: {window: 60s, by: [source.ip, destination.ip]}
        """
    )
    engine = DetectionEngine(rs)
    got = []
    for t, src, dst in [(0, ATK, PLC1), (10, ATK, PLC1), (20, ATK, PLC2), (59.9, ATK, PLC1), (60, ATK, PLC1), (61, ATK, PLC1)]:
        got += [(t, dst) for _ in engine.process(ev(t, src, dst, action="write"))]
    assert got == [(0, PLC1), (20, PLC2), (60, PLC1)]
    assert engine.suppressed["r-sup"] == 3 and engine.alerts["r-sup"] == 3


def test_new_terms_learns_then_alerts_once_per_combination(rule_from: Load, ev: EventFactory) -> None:
    rs = rule_from(
        """
        id: r-new
        title: new pair
        level: high
        match: {event.dataset: modbus, modbus.message_type: request}
        new_terms: {fields: [source.ip, destination.ip], learn: 60s}
        """
    )
    engine = DetectionEngine(rs)
    # The learning period starts at the first event the engine sees, whatever its kind.
    assert engine.process(ev(0, PLC1, HMI, message_type="response")) == []
    assert engine.process(ev(1, HMI, PLC1)) == []
    assert engine.process(ev(59.9, ENG, PLC1)) == []  # learned just before the end
    assert engine.process(ev(61, HMI, PLC1)) == []
    assert engine.process(ev(62, ENG, PLC1)) == []
    (alert,) = engine.process(ev(60, ATK, PLC1))  # at the very end of learning: new
    assert alert.event.reason == f"first seen after the learning period: source.ip={ATK}, destination.ip={PLC1}"
    assert engine.process(ev(70, ATK, PLC1)) == []  # once per combination
    assert len(engine.process(ev(71, ATK, PLC2))) == 1
    assert engine.process(ev(72, HMI, PLC2, message_type="response")) == []  # not a request


def _run(rs: RuleSet, events: list[Event]) -> list[Event]:
    engine = DetectionEngine(rs)
    return engine.process_many(events)


def test_alert_ids_deterministic(pack: RuleSet, make_event: EventFactory) -> None:
    def events() -> list[Event]:
        out = [make_event(i * 0.02, ATK, PLC2, address=i, frame=i + 1, event_id=f"cap-{i + 1}-0") for i in range(70)]
        out.append(make_event(3, ATK, PLC1, fc=6, action="write", address=100, frame=500, event_id="cap-500-0"))
        return out

    first = _run(pack, events())
    second = _run(pack, events())
    assert first and [a.event.id for a in first] == [a.event.id for a in second]
    assert first == second
    assert len({a.event.id for a in first}) == len(first)
    # An id depends on the rule and the set of triggering events, not their order.
    assert alert_id("r", ["b", "a"]) == alert_id("r", ["a", "b"]) != alert_id("r2", ["a", "b"])


def test_detectors_registered_explicitly() -> None:
    assert set(DETECTORS) == {"match", "threshold", "new_terms"}


def test_engine_accepts_plain_rules_and_lists(pack: RuleSet, make_event: EventFactory) -> None:
    engine = DetectionEngine(list(pack.rules), pack.list_values())
    assert engine.process(make_event(0, ATK, PLC1, fc=8, action="mode_change", sub=4, address=None))
    assert engine.finish() == []


def test_new_terms_judges_events_older_than_the_first_one() -> None:
    """Replaying a newer capture before an older one must not learn the older one's attacks silently."""
    from pipeline import schema as s
    from detection.engine import DetectionEngine
    from detection.rules.loader import load_rules

    rules = [r for r in load_rules().rules if r.new_terms is not None]
    assert rules, "the bundled pack has a new_terms rule"
    engine = DetectionEngine(rules, load_rules().lists)

    def req(src: str, when: dt.datetime, n: int) -> s.Event:
        return s.Event(
            timestamp=when,
            event=s.EventInfo(kind="event", dataset="modbus", action="read", id=f"nt-{n}"),
            source=s.Endpoint(ip=src, port=40000 + n),
            destination=s.Endpoint(ip="10.10.1.101", port=502),
            network=s.Network(transport="tcp", protocol="modbus", direction="request", is_orig=True),
            evidence=s.Evidence(frame=n),
            modbus=s.Modbus(transaction_id=n, unit_id=1, function_code=3, function_name="read_holding_registers", message_type="request"),
        )

    later = dt.datetime(2026, 5, 2, tzinfo=dt.timezone.utc)
    assert engine.process(req("10.10.1.10", later, 1)) == []  # the HMI, a known master
    earlier = later - dt.timedelta(days=1)
    alerts = engine.process(req("10.10.1.66", earlier, 2))
    assert [a.rule.id for a in alerts if a.rule] == [rules[0].id]
