"""Suite-wide fixtures: where the shared corpus is, and the repo root."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def corpus(shared_dir: Path) -> Path:
    """The shared corpus of other people's captures and their ground truth."""
    return shared_dir / "corpus"


@pytest.fixture(scope="session")
def tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark not on PATH")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def modbus_server() -> Iterator[int]:
    """A pymodbus 3 TCP server on 127.0.0.1:<free port>, in its own thread and event loop."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    port = free_port()
    device = SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[False] * 32, datatype=DataType.BITS)],
            [SimData(0, values=[True] * 32, datatype=DataType.BITS)],
            [SimData(0, values=list(range(100)), datatype=DataType.REGISTERS)],
            [SimData(0, values=list(range(100)), datatype=DataType.REGISTERS)],
        ),
    )
    ready = threading.Event()
    stop = threading.Event()

    def run() -> None:
        async def main() -> None:
            server = ModbusTcpServer(device, address=("127.0.0.1", port))
            task = asyncio.create_task(server.serve_forever())
            while server.transport is None and not task.done():
                await asyncio.sleep(0.01)
            ready.set()
            while not stop.is_set() and not task.done():
                await asyncio.sleep(0.05)
            await server.shutdown()

        asyncio.run(main())

    t = threading.Thread(target=run, name="modbus-server", daemon=True)
    t.start()
    assert ready.wait(10), "pymodbus server did not start"
    yield port
    stop.set()
    t.join(10)


