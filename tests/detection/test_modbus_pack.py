"""The Modbus rule pack on hand-built plant traffic: each rule fires on its attack, normal traffic on none."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet
from pipeline.schema import Anomaly, Event

HMI, ENG, PLC1, PLC2, ATK = "10.10.1.10", "10.10.1.20", "10.10.1.101", "10.10.1.102", "10.10.1.66"
OUTSIDE = "192.168.7.7"
EventFactory = Callable[..., Event]


def exchange(ev: EventFactory, t: float, src: str, dst: str, **kw: Any) -> list[Event]:
    """A request and its response (the PLC's answer echoes the function and unit)."""
    req = ev(t, src, dst, **kw)
    rsp_kw = {k: v for k, v in kw.items() if k not in ("values", "exception")}
    exc = kw.get("exception")
    rsp = ev(t + 0.005, dst, src, message_type="response", exception=exc, **rsp_kw)
    return [req, rsp]


def normal_traffic(ev: EventFactory, seconds: int = 60) -> Iterator[Event]:
    """The test plant's normal day: HMI polls both PLCs every second, the engineering station tunes reg 110."""
    for s in range(seconds):
        for plc in (PLC1, PLC2):
            yield from exchange(ev, s, HMI, plc, fc=3, action="read", address=0, quantity=20)
            yield from exchange(ev, s + 0.1, HMI, plc, fc=1, action="read", address=0, quantity=16)
        if s in (5, 11, 40):
            yield from exchange(ev, s + 0.5, ENG, PLC1, fc=6, action="write", address=110, values=[1500 + s])


def attack_cases(ev: EventFactory, t: float) -> dict[str, list[Event]]:
    """Rule id -> the attack traffic that must raise it (from time t on)."""
    sweep = [e for i in range(40) for e in exchange(ev, t + i * 0.02, ATK, PLC2, fc=3, address=i, quantity=1)]
    return {
        "qn-modbus-0001": exchange(ev, t, ENG, PLC1, fc=16, action="write", address=100, quantity=2, values=[9, 9]),
        "qn-modbus-0002": exchange(ev, t, ENG, PLC1, fc=5, action="write", address=0, values=[0]),
        "qn-modbus-0003": exchange(ev, t, ATK, PLC1, fc=6, action="write", address=5, values=[4242]),
        "qn-modbus-0004": exchange(ev, t, ATK, PLC1, fc=8, action="mode_change", sub=4, address=None),
        "qn-modbus-0005": exchange(ev, t, ATK, PLC1, fc=8, action="restart", sub=1, address=None),
        "qn-modbus-0006": exchange(ev, t, ATK, PLC1, fc=8, action="clear_counters", sub=10, address=None),
        "qn-modbus-0007": exchange(ev, t, HMI, PLC1, fc=43, action="identify", sub=14, address=None),
        "qn-modbus-0008": sweep,
        "qn-modbus-0009": [
            e for i in range(12) for e in exchange(ev, t + i * 0.05, HMI, PLC1, fc=3, address=200 + i, exception=2)
        ],
        "qn-modbus-0010": [ev(t, ENG, PLC2, fc=6, action="write", unit=0, address=110, values=[1])],
        "qn-modbus-0011": exchange(ev, t, ENG, PLC1, fc=90, action="unknown", address=None),
        "qn-modbus-0012": exchange(ev, t, "10.10.1.70", PLC2, fc=3, address=0, quantity=20),
        "qn-modbus-0013": [ev(t, ATK, PLC1, action="anomaly", address=None, anomaly=Anomaly(code="invalid_protocol_id"))],
        "qn-modbus-0014": [e for u in range(1, 8) for e in exchange(ev, t + u * 0.1, HMI, PLC1, unit=u)],
        "qn-modbus-0015": exchange(ev, t, OUTSIDE, PLC1, fc=3, address=0, quantity=20),
    }



@pytest.fixture
def plant_ev(ev: EventFactory) -> EventFactory:
    """Events with `anomaly=` support (anomaly events carry no modbus fields of interest)."""

    def make(t: float, src: str, dst: str, **kw: Any) -> Event:
        anomaly = kw.pop("anomaly", None)
        e = ev(t, src, dst, **kw)
        if anomaly is not None:
            e = msgspec.structs.replace(e, anomaly=anomaly)
        return e

    return make


def test_normal_plant_traffic_raises_nothing(pack: RuleSet, plant_ev: EventFactory) -> None:
    engine = DetectionEngine(pack)
    events = list(normal_traffic(plant_ev, 120))
    assert len(events) > 900
    assert engine.process_many(events) == []


def test_every_rule_has_a_case(pack: RuleSet, plant_ev: EventFactory) -> None:
    assert sorted(attack_cases(plant_ev, 0)) == sorted(r.id for r in pack.rules if r.id.startswith("qn-modbus-"))


@pytest.mark.parametrize("rule_id", [f"qn-modbus-{i:04d}" for i in range(1, 16)])
def test_rule_fires_on_its_attack(pack: RuleSet, plant_ev: EventFactory, rule_id: str) -> None:
    engine = DetectionEngine(pack)
    assert engine.process_many(list(normal_traffic(plant_ev, 30))) == []
    attack = attack_cases(plant_ev, 31)[rule_id]
    alerts = [a for e in attack for a in engine.process(e)]
    fired = {a.rule.id for a in alerts if a.rule}
    assert rule_id in fired, (rule_id, fired)
    mine = [a for a in alerts if a.rule and a.rule.id == rule_id]
    assert len(mine) == 1, [a.message for a in mine]  # thresholds and suppression keep it to one
    alert = mine[0]
    assert alert.threat is not None and alert.threat.technique.id and len(alert.threat.technique.name) == len(alert.threat.technique.id)
    assert alert.message and "?" not in alert.message.replace("(?)", ""), alert.message
    assert alert.evidence is not None and alert.evidence.frames


def test_pack_attack_ids_match_technique_table(pack: RuleSet) -> None:
    expected = {
        "qn-modbus-0001": ["T0836", "T0831"],
        "qn-modbus-0002": ["T0831", "T0855"],
        "qn-modbus-0003": ["T0855", "T0836"],
        "qn-modbus-0004": ["T0814"],
        "qn-modbus-0005": ["T0816"],
        "qn-modbus-0006": ["T0872"],
        "qn-modbus-0007": ["T0888"],
        "qn-modbus-0008": ["T0861", "T0801"],
        "qn-modbus-0009": ["T0888", "T0814"],
        "qn-modbus-0010": ["T0855"],
        "qn-modbus-0011": ["T0843"],
        "qn-modbus-0012": ["T0848"],
        "qn-modbus-0013": ["T0866", "T0814"],
        "qn-modbus-0014": ["T0846"],
        "qn-modbus-0015": ["T0883"],
    }
    modbus = [r for r in pack.rules if r.id.startswith("qn-modbus-")]
    assert {r.id: list(r.attack) for r in modbus} == expected
    names = {t: n for r in modbus for t, n in zip(r.attack, r.attack_names)}
    assert names["T0872"] == "Indicator Removal on Host" and names["T0843"] == "Program Download"
    assert all(n != t for t, n in names.items())
