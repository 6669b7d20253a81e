"""Fixtures for detection tests: hand-built Modbus events, rule files written to tmp_path."""

from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detection.rules import RuleSet, load_rules
from pipeline.schema import Endpoint, Event, EventInfo, Evidence, Modbus, Network, Organization

T0 = dt.datetime(2026, 1, 1, 8, 0, 0, tzinfo=dt.timezone.utc)

EventFactory = Callable[..., Event]


def modbus_event(
    t: float,
    src: str,
    dst: str,
    *,
    fc: int = 3,
    action: str = "read",
    message_type: str = "request",
    unit: int = 1,
    address: int | None = 0,
    quantity: int | None = None,
    values: list[int] | None = None,
    sub: int | None = None,
    exception: int | None = None,
    frame: int = 1,
    dataset: str = "modbus",
    event_id: str | None = None,
    file: str = "test.pcap",
    **modbus: Any,
) -> Event:
    """A decoded Modbus message as the sensor would emit it (source = true sender)."""
    request = message_type == "request"
    return Event(
        timestamp=T0 + dt.timedelta(seconds=t),
        event=EventInfo(kind="event", dataset=dataset, action=action, id=event_id or f"abcd-{frame}-0"),
        source=Endpoint(ip=src, port=40001 if request else 502, mac="02:00:00:00:00:01"),
        destination=Endpoint(ip=dst, port=502 if request else 40001),
        network=Network(transport="tcp", protocol="modbus", direction=message_type, is_orig=request),
        organization=Organization(id="plant"),
        evidence=Evidence(file_sha256="ab" * 32, file=file, frame=frame),
        modbus=Modbus(
            transaction_id=frame,
            unit_id=unit,
            function_code=fc,
            function_name=str(modbus.pop("function_name", f"fc{fc}")),
            message_type=message_type,  # type: ignore[arg-type]
            address=address,
            quantity=quantity,
            values=values,
            subfunction_code=sub,
            exception_code=exception,
            **modbus,
        ),
    )


@pytest.fixture(scope="session")
def make_event() -> EventFactory:
    """`make_event(t, src, dst, ...)`: the plain factory (frame defaults to 1)."""
    return modbus_event


@pytest.fixture(scope="session")
def t0() -> dt.datetime:
    """Time zero of every hand-built event (`t` is seconds after it)."""
    return T0


@pytest.fixture
def ev() -> EventFactory:
    """`ev(t, src, dst, ...)`: a Modbus event; frames numbered automatically unless given."""
    counter = itertools.count(1)

    def make(t: float, src: str, dst: str, **kw: Any) -> Event:
        kw.setdefault("frame", next(counter))
        return modbus_event(t, src, dst, **kw)

    return make


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """`write(name, yaml_text)`: a dedented file under tmp_path (folders created)."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return p

    return _write


@pytest.fixture
def rule_from(write: Callable[[str, str], Path], tmp_path: Path) -> Callable[..., RuleSet]:
    """`rule_from(yaml_text, lists=None)`: load one rule file (with an optional lists file)."""

    def _load(text: str, lists: str | None = None) -> RuleSet:
        lists_path = write("lists.yml", lists) if lists is not None else None
        path = write("rules/rule.yml", text)
        return load_rules([path], default_lists=lists_path)

    return _load


@pytest.fixture(scope="session")
def pack() -> RuleSet:
    """The bundled rule pack with its default lists."""
    return load_rules()
