"""Fixtures for the IEC 104 decoder tests: frame metadata, a flow driver, the corpus traces."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from sensors.decoders.base import Conn, FrameMeta
from sensors.decoders.iec104 import Iec104Flow
from tests.decoders.driving import FlowDriver

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 2404, "tcp", "1:test")

# Every IEC 104 capture of the shared corpus, relative to shared/corpus.
IEC104_TRACES: tuple[str, ...] = (
    "zeek-iec104/traces/iec104.pcap",
    "iti-ics-security-tools/IEC60870-5-104/090813_diverse.pcap",
    "iti-ics-security-tools/IEC60870-5-104/JavaRMI_and_IEC_Misc.pcap",
    "iti-ics-security-tools/IEC60870-5-104/TestDissectIec104.pcap",
)


def meta_at(frame: int, ms: int = 0) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


class Driver(FlowDriver):
    """Feeds one Iec104Flow with numbered frames, 1 ms apart unless told otherwise."""

    def __init__(self) -> None:
        super().__init__(Iec104Flow(), meta_at)

    master = FlowDriver.to_server
    outstation = FlowDriver.to_client


@pytest.fixture
def meta() -> Callable[..., FrameMeta]:
    return meta_at


@pytest.fixture
def driver() -> Driver:
    return Driver()


@pytest.fixture(scope="session")
def iec104_traces(corpus: Path) -> list[tuple[str, Path]]:
    return [(name, corpus / name) for name in IEC104_TRACES if (corpus / name).is_file()]


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
def accepted_apdu_hex(expected_differences: dict[str, list[dict[str, object]]]) -> dict[str, dict[str, str]]:
    return {str(e["file"]): {k: str(v) for k, v in e.items()} for e in expected_differences.get("apdu_hex", [])}
