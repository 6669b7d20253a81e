"""The FINS rule pack on corpus captures: each rule fires on its dangerous command and on nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event

REPO = Path(__file__).resolve().parents[3]
OMRON = "icsnpp-omron-fins/traces/omron.pcap"
OMRON_TCP = "icsnpp-omron-fins/traces/omron_fins_tcp_commands_responses.pcap"
QUICKDRAW = "quickdraw-snort/traces/omron_test.pcap"


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(REPO / "rules" / "fins")


def _fired(pack: RuleSet, events: list[Event], rule_id: str) -> list[Event]:
    engine = DetectionEngine(pack, organization_id="test")
    return [a for a in engine.process_many(events) + engine.finish() if a.rule is not None and a.rule.id == rule_id]


def _cmd(*codes: int) -> Callable[[Event], bool]:
    return lambda e: e.fins is not None and e.anomaly is None and e.fins.message_type == "command" and e.fins.command_code in codes


@pytest.mark.parametrize(
    ("rule_id", "trace", "dangerous"),
    [
        ("qn-fins-0001", OMRON, _cmd(0x0401, 0x0402)),
        ("qn-fins-0001", OMRON_TCP, _cmd(0x0401, 0x0402)),
        ("qn-fins-0002", OMRON, _cmd(0x0307, 0x0308, 0x220C)),
        ("qn-fins-0003", OMRON, _cmd(0x0306)),
        ("qn-fins-0004", OMRON, _cmd(0x2301, 0x2302)),
        ("qn-fins-0005", OMRON, _cmd(0x2204, 0x2205)),
        ("qn-fins-0006", OMRON, _cmd(0x0102, 0x0103, 0x0105, 0x0202, 0x0203)),
        ("qn-fins-0007", QUICKDRAW, _cmd(0x0501)),
        ("qn-fins-0007", OMRON_TCP, _cmd(0x0501)),
        ("qn-fins-0008", OMRON, _cmd(0x0702)),
        ("qn-fins-0008", OMRON_TCP, _cmd(0x0702)),
    ],
)
def test_rule_fires_on_dangerous_command_only(pack: RuleSet, decoded: Callable[[str], list[Event]], rule_id: str, trace: str, dangerous: Callable[[Event], bool]) -> None:
    events = decoded(trace)
    mine = _fired(pack, events, rule_id)
    assert mine, f"{rule_id} did not fire on {trace}"
    got = {f for a in mine if a.evidence is not None for f in (a.evidence.frames or [])}
    want = {e.evidence.frame for e in events if e.evidence is not None and e.evidence.frame is not None and dangerous(e)}
    assert got and got <= want, f"{rule_id} on {trace}: alert frames {sorted(got)} outside {sorted(want)}"


def test_identify_from_an_engineering_station_is_quiet(pack: RuleSet, decoded: Callable[[str], list[Event]]) -> None:
    # The same reconnaissance capture, with its client taken as the engineering station: no alert.
    import msgspec

    from pipeline.schema import Endpoint

    events = [msgspec.structs.replace(e, source=Endpoint(ip="10.10.1.20", port=e.source.port)) if e.source is not None and e.fins is not None and e.fins.message_type == "command" else e for e in decoded(QUICKDRAW)]
    assert _fired(pack, events, "qn-fins-0007") == []


def test_identity_from_controller_data_read(decoded: Callable[[str], list[Event]]) -> None:
    answers = [e for e in decoded(QUICKDRAW) if e.fins is not None and e.fins.message_type == "response" and e.anomaly is None]
    assert answers and all(e.event.action == "identify" for e in answers)
    assert any(e.fins is not None and e.fins.controller_model for e in answers)


def test_controller_data_read_feeds_the_asset_inventory(decoded: Callable[[str], list[Event]]) -> None:
    from detection.inventory.identity import claims

    events = decoded(QUICKDRAW)
    got = [(c.attr, c.value, e.source.ip if e.source else None) for e in events for c in claims(e) if c.path.startswith("fins.")]
    plc = {e.source.ip for e in events if e.fins is not None and e.fins.message_type == "response" and e.source is not None}
    assert got and {ip for _, _, ip in got} == plc
    assert {a for a, _, _ in got} >= {"model", "vendor"} and ("vendor", "Omron") in {(a, v) for a, v, _ in got}
