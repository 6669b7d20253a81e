"""Fixtures for decoder tests: frame metadata, a Modbus flow driver, the Modbus corpus traces."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from sensors.decoders.base import Conn, FrameMeta
from sensors.decoders.modbus import ModbusFlow
from tests.decoders.driving import FlowDriver

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 502, "tcp", "1:test")

# Every Modbus trace of the shared corpus, relative to shared/corpus: the one list the
# tshark and baseline comparisons read.
MODBUS_TRACES: tuple[str, ...] = (
    "icsnpp-modbus/traces/modbus_example.pcap",
    "zeek/traces/modbus/4SICS-GeekLounge-151022-min.pcap",
    "zeek/traces/modbus/fuzz-1011.pcap",
    "zeek/traces/modbus/fuzz-72.pcap",
    "zeek/traces/modbus/modbus-and-non-modbus-p502.pcap",
    "zeek/traces/modbus/modbus-eit.pcap",
    "zeek/traces/modbus/modbusBig.pcap",
    "zeek/traces/modbus/modbusSmall.pcap",
    "suricata-verify/tests/modbus/modbus.pcap",
    "quickdraw-snort/traces/modbus_test_data_part1.pcap",
    "quickdraw-snort/traces/modbus_test_data_part2.pcap",
    "quickdraw-snort/traces/modicon_test.pcap",
    "iti-ics-security-tools/ModbusTCP/Modbus/modbus_test.pcap",
    "iti-ics-security-tools/ModbusTCP/Modbus/modbus_test_2.pcap",
)


def meta_at(frame: int, ms: int = 0) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


@pytest.fixture
def meta() -> Callable[..., FrameMeta]:
    """meta(frame, ms=0) -> FrameMeta at T0 + ms."""
    return meta_at


class Driver(FlowDriver):
    """Feeds one ModbusFlow with numbered frames, 1 ms apart unless told otherwise."""

    def __init__(self) -> None:
        super().__init__(ModbusFlow(), meta_at)

    req = FlowDriver.to_server
    resp = FlowDriver.to_client


@pytest.fixture
def driver() -> Driver:
    return Driver()


