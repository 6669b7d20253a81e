"""Fixtures for the MMS decoder tests: the MMS corpus traces decoded once, a flow driver on port 102."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.base import Conn, FrameMeta
from sensors.decoders.s7comm import S7commFlow
from tests.decoders.driving import FlowDriver

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 102, "tcp", "1:test")

# Every MMS capture of the shared corpus (relative to shared/corpus).
MMS_TRACES: tuple[str, ...] = tuple(
    f"iti-ics-security-tools/IEC61850/{p}"
    for p in (
        "8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap",
        "Sample_File_MMS_and_GOOSE.pcap",
        "iec",
        "piccolo.pcap",
        *(
            f"MMS_-_Specific_Commands/{n}.pcap"
            for n in (
                "iec61850_get_name_list", "iec61850_get_variable_access_attributes", "iec61850_read", "iec61850_release",
                "iec61850_write", "mms-cancelRequest", "mms-confirmedRequestPDU", "mms-deleteProgramInvocation",
                "mms-getAlarmSummary", "mms-getDomainAttributes", "mms-initiateDownloadSequence", "mms-initiateUploadSequence",
                "mms-killRequest", "mms-readRequest", "mms-relinquishControl", "mms-resetRequest", "mms-resumeRequest",
                "mms-startRequest", "mms-stopRequest", "mms-takeControl", "mms-terminateUploadSequence",
            )
        ),
    )
)  # fmt: skip


def meta_at(frame: int, ms: int = 0) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


class Driver(FlowDriver):
    """Feeds one ISO transport flow (the port-102 dispatcher) with numbered frames."""

    def __init__(self) -> None:
        super().__init__(S7commFlow(), meta_at)

    req = FlowDriver.to_server
    resp = FlowDriver.to_client


@pytest.fixture
def driver() -> Driver:
    return Driver()


_DECODED: dict[str, list[Event]] = {}


@pytest.fixture(scope="session")
def decoded(corpus: Path) -> Callable[[str], list[Event]]:
    from sensors.engine import decode_file

    def get(rel: str) -> list[Event]:
        if rel not in _DECODED:
            path = corpus / rel
            if not path.is_file():
                pytest.skip(f"{path} not present")
            _DECODED[rel] = list(decode_file(path))
        return _DECODED[rel]

    return get


def cotp_dt(payload: bytes) -> bytes:
    """TPKT + COTP DT (EOT) around a payload."""
    return bytes([3, 0]) + (len(payload) + 7).to_bytes(2, "big") + bytes([2, 0xF0, 0x80]) + payload
