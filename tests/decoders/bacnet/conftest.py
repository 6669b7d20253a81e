"""Fixtures for the BACnet/IP decoder tests: a flow driver, the corpus traces, cached decoding."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.bacnet import SPEC, BacnetFlow
from sensors.decoders.base import Conn, Direction, FrameMeta

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared").resolve()
CORPUS = SHARED / "corpus"
TRACES = (
    "icsnpp-bacnet/traces/bacnet_error_reject_abort.pcap",
    "icsnpp-bacnet/traces/bacnet_example.pcap",
    "icsnpp-bacnet/traces/bacnet_segmented_data.pcap",
    "icsnpp-bacnet/traces/bacnet_services.pcap",
    "quickdraw-snort/traces/bacnet_test.pcap",
)
BASELINES = {  # baseline folder -> trace (BASELINE_NOTES.md)
    "analyzer.basic": "bacnet_example.pcap",
    "analyzer.error-reject-abort": "bacnet_error_reject_abort.pcap",
    "analyzer.segmented_data": "bacnet_segmented_data.pcap",
    "analyzer.services": "bacnet_services.pcap",
}
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 47808, "10.0.0.2", 47808, "udp", "1:test")


def _meta(frame: int) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=frame), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


class BacDriver:
    def __init__(self) -> None:
        self.flow = BacnetFlow()
        self.frame = 0

    def req(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_SERVER)

    def resp(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_CLIENT)

    def send(self, data: bytes, direction: Direction) -> list[Event]:
        self.frame += 1
        return self.flow.feed(memoryview(data), direction, _meta(self.frame))


@pytest.fixture
def bac() -> BacDriver:
    return BacDriver()


@pytest.fixture(scope="session")
def bac_traces() -> list[Path]:
    paths = [CORPUS / t for t in TRACES]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"BACnet corpus traces not found under {CORPUS}")
    return paths


@pytest.fixture(scope="session")
def bac_baselines() -> dict[str, Path]:
    base = CORPUS / "icsnpp-bacnet" / "baseline"
    if not base.is_dir():
        pytest.skip(f"baselines not found at {base}")
    return {trace: base / folder for folder, trace in BASELINES.items()}


@pytest.fixture(scope="session")
def bac_decode() -> Callable[[Path], list[Event]]:
    from sensors.engine import decode_file

    cache: dict[Path, list[Event]] = {}

    def run(path: Path) -> list[Event]:
        if path not in cache:
            cache[path] = list(decode_file(path, registry={"bacnet": SPEC}))
        return cache[path]

    return run

