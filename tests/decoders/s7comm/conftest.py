"""Fixtures for the S7comm decoder tests: frame metadata, a flow driver, the S7 corpus traces decoded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.s7comm import S7commFlow

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared").resolve()
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 102, "tcp", "1:test")

# Every S7 capture of the shared corpus (relative to shared/corpus): the one list the tshark,
# baseline and decode-without-exception tests read.
S7_TRACES: tuple[str, ...] = (
    "icsnpp-s7comm/traces/s7comm_plus.pcap",
    "icsnpp-s7comm/traces/s7ident.pcap",
    "icsnpp-s7comm/traces/snap7.pcap",
    "gymgit-s7-pcaps/snap7_s300_everything.pcapng",
    "gymgit-s7-pcaps/snap7_s300_readVar.pcapng",
    "gymgit-s7-pcaps/snap7_s300_setupCommunication.pcapng",
    "gymgit-s7-pcaps/snap7_s300_stop.pcapng",
    "gymgit-s7-pcaps/step7_s300_AuthPassword.pcapng",
    "gymgit-s7-pcaps/step7_s300_copyRamToRom.pcapng",
    "gymgit-s7-pcaps/step7_s300_download.pcapng",
    "gymgit-s7-pcaps/step7_s300_readDiagData.pcapng",
    "gymgit-s7-pcaps/step7_s300_readVarTab.pcapng",
    "gymgit-s7-pcaps/step7_s300_rwVarTab.pcapng",
    "gymgit-s7-pcaps/step7_s300_stop.pcapng",
    "gymgit-s7-pcaps/tia_s300_downloadHwConfig.pcapng",
    "gymgit-s7-pcaps/tia_s300_downloadOb1.pcapng",
    "gymgit-s7-pcaps/tia_s300_flashLed.pcapng",
    "gymgit-s7-pcaps/tia_s300_goOnline.pcapng",
    "gymgit-s7-pcaps/wincc_s300_setup-alarm-read-write.pcapng",
    "gymgit-s7-pcaps/wincc_s300_setup-alarm-read.pcapng",
    "gymgit-s7-pcaps/wincc_s300_setup-alarm-read_2.pcapng",
    "gymgit-s7-pcaps/wincc_s400_production.pcapng",
    "iti-ics-security-tools/s7/S7-1200-Uploading-OB1-TIAV12.pcap",
    "iti-ics-security-tools/s7/S7-1511-opc-request-all-types.pcap",
    "iti-ics-security-tools/s7/S7-1511_db2_var1_HMI.pcap",
    "iti-ics-security-tools/s7/S7-1511_db3_var1_HMI.pcap",
    "iti-ics-security-tools/s7/S7-1511_db6w0_HMI.pcap",
    "iti-ics-security-tools/s7/S7Comm/s7comm_clean.pcap",
    "iti-ics-security-tools/s7/V13_1200_TP1200sim_MW100_Int_SPS_5s_MW102_Int_SPS_10s_MW102_ab_1000_Timer_sync.pcapng",
    "iti-ics-security-tools/s7/V13_1200_TP1200sim_MW100_Int_SPS_5s_MW102_Int_SPS_10s_MW102_ab_1000_Timer_sync_FehlerbeiMW100.pcapng",
    "iti-ics-security-tools/s7/s7-1200-hmi.pcap",
    "iti-ics-security-tools/s7/s7comm_downloading_block_db1.pcap",
    "iti-ics-security-tools/s7/s7comm_program_blocklist_onlineview.pcap",
    "iti-ics-security-tools/s7/s7comm_reading_plc_status.pcap",
    "iti-ics-security-tools/s7/s7comm_reading_setting_plc_time.pcap",
    "iti-ics-security-tools/s7/s7comm_varservice_libnodavedemo.pcap",
    "quickdraw-snort/traces/s7_test.pcap",
)


def meta_at(frame: int, ms: int = 0) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


class Driver:
    """Feeds one S7commFlow with numbered frames, 1 ms apart."""

    def __init__(self) -> None:
        self.flow = S7commFlow()
        self.frame = 0

    def req(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_SERVER)

    def resp(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_CLIENT)

    def send(self, data: bytes, direction: Direction) -> list[Event]:
        self.frame += 1
        return self.flow.feed(memoryview(data), direction, meta_at(self.frame, self.frame))

    def close(self) -> list[Event]:
        return self.flow.close(meta_at(self.frame + 1, self.frame + 1))


@pytest.fixture
def driver() -> Driver:
    return Driver()


@pytest.fixture
def meta() -> Callable[..., FrameMeta]:
    return meta_at


@pytest.fixture(scope="session")
def s7_corpus() -> Path:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED / "corpus"


_DECODED: dict[str, list[Event]] = {}


@pytest.fixture(scope="session")
def decoded(s7_corpus: Path) -> Callable[[str], list[Event]]:
    """decoded(relative trace path) -> every event of the capture (decoded once per session)."""
    from sensors.engine import decode_file

    def get(rel: str) -> list[Event]:
        if rel not in _DECODED:
            path = s7_corpus / rel
            if not path.is_file():
                pytest.skip(f"{path} not present")
            _DECODED[rel] = list(decode_file(path))
        return _DECODED[rel]

    return get


def tpkt(payload: bytes) -> bytes:
    """TPKT + COTP DT (EOT) around an S7 PDU."""
    return bytes([3, 0]) + (len(payload) + 7).to_bytes(2, "big") + bytes([2, 0xF0, 0x80]) + payload


@pytest.fixture
def wrap() -> Callable[[bytes], bytes]:
    return tpkt
