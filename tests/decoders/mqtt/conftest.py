"""Fixtures for the MQTT decoder tests: frame metadata, a flow driver, the corpus traces."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.base import Conn, FrameMeta
from sensors.decoders.mqtt import MqttFlow
from tests.decoders.driving import FlowDriver

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 1883, "tcp", "1:test")

SUITES = "suricata-verify/tests"
ZEEK_MQTT = "zeek/traces/mqtt.pcap"


def mqtt_traces(corpus: Path) -> list[tuple[str, Path]]:
    """The Zeek trace plus every pcap of the suricata-verify mqtt* tests (each file once)."""
    out = [(ZEEK_MQTT, corpus / ZEEK_MQTT)] if (corpus / ZEEK_MQTT).is_file() else []
    for p in sorted((corpus / SUITES).glob("mqtt*/*.pcap")):
        out.append((str(p.relative_to(corpus)), p))
    return out


def meta_at(frame: int, ms: int = 0) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


class Driver(FlowDriver):
    """Feeds one MqttFlow with numbered frames, 1 ms apart unless told otherwise."""

    def __init__(self) -> None:
        super().__init__(MqttFlow(), meta_at)

    client = FlowDriver.to_server
    broker = FlowDriver.to_client


@pytest.fixture
def meta() -> Callable[..., FrameMeta]:
    return meta_at


@pytest.fixture
def driver() -> Driver:
    return Driver()


@pytest.fixture(scope="session")
def traces(corpus: Path) -> list[tuple[str, Path]]:
    return mqtt_traces(corpus)


EXPECTED_DIFFERENCES = Path(__file__).parent / "expected_differences.yml"


@pytest.fixture(scope="session")
def expected_differences() -> dict[str, list[dict[str, object]]]:
    import yaml

    doc = yaml.safe_load(EXPECTED_DIFFERENCES.read_text(encoding="utf-8")) or {}
    for section, entries in doc.items():
        for e in entries:
            assert e.get("why"), f"{EXPECTED_DIFFERENCES}: an entry of {section} has no reason: {e}"
    return doc


@pytest.fixture(scope="session")
def decoded(traces: list[tuple[str, Path]]) -> dict[str, list[Event]]:
    """Every MQTT capture decoded once by the sensor engine (shared by the conformance tests)."""
    from sensors.engine import decode_file

    return {name: list(decode_file(path)) for name, path in traces}
