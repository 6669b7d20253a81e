"""Fixtures for the DNP3 decoder tests: frame builders, a flow driver, the DNP3 corpus traces."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.dnp3 import Dnp3Flow, crc16

REPO = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CONN = Conn("10.0.0.1", 40000, "10.0.0.2", 20000, "tcp", "1:test")
MASTER, OUTSTATION = 1, 10

# Corpus folders holding DNP3 traces (relative to shared/corpus). Every non-empty .pcap under them
# is a trace; identical files (the same capture shipped by two projects) are kept once, under the
# first name in this order.
DNP3_DIRS = ("zeek/traces/dnp3", "icsnpp-dnp3/traces", "suricata-verify/tests/dnp3", "iti-ics-security-tools/dnp3", "quickdraw-snort/traces")
# The opendnp3 conformance run has 140 non-empty dumps of the same two stacks. The tshark comparison
# batches traces through mergecap so all of them fit in ~10 s; raise the stride to sample them if a
# slower machine needs it (decoding and schema validation always read them all).
CONFORMANCE_STRIDE = 1


def dnp3_traces(corpus: Path) -> list[tuple[str, Path]]:
    seen: set[str] = set()
    out: list[tuple[str, Path]] = []
    for d in DNP3_DIRS:
        root = corpus / d
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*.pcap")):
            if "quickdraw" in d and "dnp3" not in p.name:
                continue
            if p.stat().st_size <= 24:  # header only: 19 opendnp3 dumps hold no packets
                continue
            h = hashlib.sha256(p.read_bytes()).hexdigest()
            if h in seen:
                continue
            seen.add(h)
            out.append((str(p.relative_to(corpus)), p))
    return out


def sampled(traces: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    conf = [t for t in traces if "/conformance/" in t[0]]
    keep = set(t[0] for t in conf[::CONFORMANCE_STRIDE])
    return [t for t in traces if "/conformance/" not in t[0] or t[0] in keep]


def link_frame(user_data: bytes, src: int = MASTER, dst: int = OUTSTATION, control: int = 0xC4) -> bytes:
    """One link frame with its header and block CRCs."""
    hdr = bytes([0x05, 0x64, 5 + len(user_data), control]) + dst.to_bytes(2, "little") + src.to_bytes(2, "little")
    out = bytearray(hdr + crc16(hdr).to_bytes(2, "little"))
    for i in range(0, len(user_data), 16):
        blk = user_data[i : i + 16]
        out += blk + crc16(blk).to_bytes(2, "little")
    return bytes(out)


def message(app: bytes, src: int = MASTER, dst: int = OUTSTATION, control: int | None = None, tseq: int = 0) -> bytes:
    """An application fragment as link frames (transport segments of up to 249 bytes)."""
    if control is None:
        control = 0xC4 if src == MASTER else 0x44
    chunks = [app[i : i + 249] for i in range(0, len(app), 249)] or [b""]
    out = b""
    for i, c in enumerate(chunks):
        th = (0x40 if i == 0 else 0) | (0x80 if i == len(chunks) - 1 else 0) | ((tseq + i) & 0x3F)
        out += link_frame(bytes([th]) + c, src, dst, control)
    return out


def meta_at(frame: int, ms: int = 0, conn: Conn = CONN) -> FrameMeta:
    return FrameMeta(frame=frame, time=T0 + dt.timedelta(milliseconds=ms), conn=conn, file_sha256="0" * 64, file="unit.pcap")


class Driver:
    """Feeds one Dnp3Flow with numbered frames, 1 ms apart unless told otherwise."""

    def __init__(self, flow: Dnp3Flow | None = None) -> None:
        self.flow = flow or Dnp3Flow()
        self.frame = 0

    def req(self, data: bytes, ms: int | None = None) -> list[Event]:
        return self.send(data, Direction.TO_SERVER, ms)

    def resp(self, data: bytes, ms: int | None = None) -> list[Event]:
        return self.send(data, Direction.TO_CLIENT, ms)

    def send(self, data: bytes, direction: Direction, ms: int | None = None) -> list[Event]:
        self.frame += 1
        return self.flow.feed(memoryview(data), direction, meta_at(self.frame, self.frame if ms is None else ms))

    def close(self) -> list[Event]:
        return self.flow.close(meta_at(self.frame + 1, self.frame + 1))


@pytest.fixture
def dnp3_driver() -> Driver:
    return Driver()


@pytest.fixture
def build() -> Callable[..., bytes]:
    """build(app, src=1, dst=10, control=None, tseq=0) -> link frames carrying the fragment."""
    return message


@pytest.fixture
def link() -> Callable[..., bytes]:
    """link(user_data, src=1, dst=10, control=0xC4) -> one link frame."""
    return link_frame


@pytest.fixture(scope="session")
def traces(corpus: Path) -> list[tuple[str, Path]]:
    found = dnp3_traces(corpus)
    if not found:
        pytest.skip("no DNP3 traces in the shared corpus")
    return found
