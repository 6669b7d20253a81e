"""Shared paths and cached decodes for the inventory tests (shared data read from <repo>/../shared, never copied)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from detection.assets import AssetTracker
from detection.commap import CommMap
from detection.inventory.oui import OuiTable, parse_manuf
from pipeline.schema import Asset, Event

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
CSAF = SHARED / "data" / "csaf-ics"
PCAPS = REPO / "pcaps" / "modbus"
ATTACK = PCAPS / "modbus_plant_attack.pcap"
NORMAL = PCAPS / "modbus_normal_only.pcap"
HMI, ENG, PLC1, PLC2, ATK = "10.10.1.10", "10.10.1.20", "10.10.1.101", "10.10.1.102", "10.10.1.66"
EMPTY_OUI: OuiTable = parse_manuf("00:00:01\tX\tX\n")


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@functools.lru_cache(maxsize=16)
def events(path: str) -> tuple[Event, ...]:
    from sensors.engine import decode_file

    return tuple(decode_file(path))


def inventory(*paths: Path, oui: OuiTable | None | bool = None) -> dict[str, Asset]:
    t = AssetTracker(oui=oui)
    for p in paths:
        for e in events(str(need(p))):
            t.observe(e)
    return {a.ip: a for a in t.snapshot()}


def commap(*paths: Path) -> dict:
    t, cm = AssetTracker(oui=False), CommMap()
    for p in paths:
        for e in events(str(need(p))):
            t.observe(e)
            cm.observe(e)
    return cm.graph(t.snapshot())
