"""Shared fixtures: the testbed captures decoded once per session, models learned once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from detection.labels import Scenario, load
from pipeline.schema import Event

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "pcaps" / "modbus"
LEARN = dt.timedelta(seconds=120)
SITE = "plant-a"

_cache: dict[str, list[Event]] = {}


def events_of(name: str, site: str = SITE) -> list[Event]:
    from sensors.engine import decode_file

    key = f"{site}/{name}"
    if key not in _cache:
        _cache[key] = list(decode_file(CAPTURES / f"{name}.pcap", organization_id=site))
    return _cache[key]


def scenario(name: str) -> Scenario:
    return load(CAPTURES / f"{name}.labels.yml")


def split(events: list[Event], learn: dt.timedelta = LEARN) -> tuple[list[Event], list[Event]]:
    t0 = min(e.timestamp for e in events)
    return [e for e in events if e.timestamp < t0 + learn], [e for e in events if e.timestamp >= t0 + learn]


@pytest.fixture(scope="session")
def dev_runs() -> dict[str, tuple[list[Event], list[Event]]]:
    """Per development scenario: (events, anomaly alerts) with --learn-first 120s."""
    from detection.anomaly.engine import AnomalyEngine

    out = {}
    for name in ("anomaly_setpoint", "anomaly_timing"):
        evs = events_of(name)
        out[name] = (evs, AnomalyEngine(SITE, learn_first=LEARN).process_many(evs))
    return out
