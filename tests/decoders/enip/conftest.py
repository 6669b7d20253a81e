"""Fixtures for the EtherNet/IP + CIP decoder tests: frame metadata, a flow driver, the corpus traces, cached decoding."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.enip import EnipFlow

REPO = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 44818, "tcp", "1:test")

# Every EtherNet/IP capture of the shared corpus (relative to shared/corpus): the one list the
# tshark comparison and the decode-everything test read.
ENIP_TRACES: tuple[str, ...] = (
    "icsnpp-enip/traces/enip_cip_example.pcap",
    "icsnpp-enip/traces/multiple_service_packet_cip.pcapng",
    "icsnpp-enip/traces/set_attribute_single_service_cip.pcapng",
    "suricata-verify/tests/enip-alert/enip_test1.pcap",
    "suricata-verify/tests/enip-keywords/enip_cip_example.pcap",
    "quickdraw-snort/traces/enip_test.pcap",
    "iti-ics-security-tools/EthernetIP/cip-eth-set-2.pcap",
    "iti-ics-security-tools/EthernetIP/cip-multiple-1.pcap",
    "iti-ics-security-tools/EthernetIP/cip-multiple-2.pcap",
    "iti-ics-security-tools/EthernetIP/cip_start_plc.pcap",
    "iti-ics-security-tools/EthernetIP/cip_stop_plc.pcap",
    "iti-ics-security-tools/EthernetIP/cip_unlock_cpu.pcap",
    "iti-ics-security-tools/EthernetIP/enip_test.pcap",
    "iti-ics-security-tools/openics/EIP-ChangeDateAttempt.pcap",
    "iti-ics-security-tools/openics/EIP-ControlProtocolChangeAttempt.pcap",
    "iti-ics-security-tools/openics/EIP-FirmwareChangeFailure.pcap",
    "iti-ics-security-tools/openics/EIP-IPAddressChangeAttempt.pcap",
    "iti-ics-security-tools/openics/EIP-RebootorRestart.pcap",
    "iti-ics-security-tools/openics/EIP-SoftwareDownload.pcap",
    "iti-ics-security-tools/openics/EIP-SoftwareDownloadFailure.pcap",
    "iti-ics-security-tools/openics/EIP-SoftwareUpload.pcap",
    "iti-ics-security-tools/openics/EIP-SoftwareUploadFailure.pcap",
    "iti-ics-security-tools/openics/EIP-ViewDeviceStatus.pcap",
)


@functools.lru_cache(maxsize=None)
def _decode(path: str) -> tuple[Event, ...]:
    from sensors.engine import decode_file

    return tuple(decode_file(Path(path)))


@pytest.fixture(scope="session")
def decoded() -> Callable[[Path], tuple[Event, ...]]:
    """decoded(path) -> every event of the capture (decoded once per session)."""
    return lambda p: _decode(str(p))


def meta_at(frame: int, ms: int = 0, conn: Conn = CONN) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=conn, file_sha256="0" * 64, file="unit.pcap")


class Driver:
    """Feeds one EnipFlow with numbered frames, 1 ms apart."""

    def __init__(self, conn: Conn = CONN) -> None:
        self.flow = EnipFlow()
        self.frame = 0
        self.conn = conn

    def send(self, data: bytes, direction: Direction) -> list[Event]:
        self.frame += 1
        return self.flow.feed(memoryview(data), direction, meta_at(self.frame, self.frame, self.conn))

    def req(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_SERVER)

    def rsp(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_CLIENT)


@pytest.fixture
def driver() -> Driver:
    return Driver()


@pytest.fixture
def meta() -> Callable[..., FrameMeta]:
    return meta_at
