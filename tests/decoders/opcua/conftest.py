"""Fixtures for the OPC UA decoder tests: a flow driver, the corpus traces, decoding with the right port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.base import Conn, DecoderSpec, Direction, FrameMeta
from sensors.decoders.opcua import SPEC, OpcuaFlow

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared").resolve()
TRACES = SHARED / "corpus" / "icsnpp-opcua-binary" / "traces"
BASELINES = SHARED / "corpus" / "icsnpp-opcua-binary" / "baseline"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 4840, "tcp", "1:test")
# Traces whose server listens elsewhere than 4840: the engine picks decoders by port only.
OTHER_PORTS = {"open62541_client-server_mainloop-not-localhost-non-standard-port.pcap": 48010}


def _meta(frame: int) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=frame), conn=CONN, file_sha256="0" * 64, file="unit.pcap")


class UaDriver:
    def __init__(self) -> None:
        self.flow = OpcuaFlow()
        self.frame = 0

    def req(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_SERVER)

    def resp(self, data: bytes) -> list[Event]:
        return self.send(data, Direction.TO_CLIENT)

    def send(self, data: bytes, direction: Direction) -> list[Event]:
        self.frame += 1
        return self.flow.feed(memoryview(data), direction, _meta(self.frame))


@pytest.fixture
def ua() -> UaDriver:
    return UaDriver()


@pytest.fixture(scope="session")
def ua_traces() -> list[Path]:
    if not TRACES.is_dir():
        pytest.skip(f"shared corpus not found at {TRACES}")
    return sorted(TRACES.glob("*.pcap"))


@pytest.fixture(scope="session")
def ua_baselines() -> Path:
    if not BASELINES.is_dir():
        pytest.skip(f"baselines not found at {BASELINES}")
    return BASELINES


def registry_for(path: Path) -> dict[str, DecoderSpec]:
    port = OTHER_PORTS.get(path.name, 4840)
    return {"opcua": DecoderSpec("opcua", (port,), "tcp", SPEC.flow)}


@pytest.fixture(scope="session")
def ua_registry() -> Callable[[Path], dict[str, DecoderSpec]]:
    return registry_for


@pytest.fixture(scope="session")
def ua_decode() -> Callable[[Path], list[Event]]:
    """Every event of a trace, the decoder registered on the trace's server port; cached per session."""
    from sensors.engine import decode_file

    cache: dict[Path, list[Event]] = {}

    def run(path: Path) -> list[Event]:
        if path not in cache:
            cache[path] = list(decode_file(path, registry=registry_for(path)))
        return cache[path]

    return run

