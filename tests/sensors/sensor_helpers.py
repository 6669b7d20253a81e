"""Helpers for sensor-core tests: corpus location, frame builders and recording decoders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pipeline.schema import Event
from sensors.decoders.base import DecoderSpec, Direction, FrameMeta, make_event

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CORPUS = SHARED / "corpus"

CLIENT = ("10.0.0.2", 40000, "02:00:00:00:00:02")
SERVER = ("10.0.0.1", 5020, "02:00:00:00:00:01")


def tcp_frame(payload: bytes = b"", *, seq: int, ack: int = 0, flags: str = "PA", to_server: bool = True, sport: int | None = None) -> bytes:
    """One Ethernet/IPv4/TCP frame between CLIENT and SERVER, built by scapy."""
    c, s = CLIENT, SERVER
    cport = sport if sport is not None else c[1]
    if to_server:
        pkt = Ether(src=c[2], dst=s[2]) / IP(src=c[0], dst=s[0]) / TCP(sport=cport, dport=s[1], seq=seq, ack=ack, flags=flags)
    else:
        pkt = Ether(src=s[2], dst=c[2]) / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=cport, seq=seq, ack=ack, flags=flags)
    if payload:
        pkt = pkt / Raw(payload)
    return bytes(pkt)


def udp_frame(payload: bytes, *, to_server: bool = True, dport: int = 5020) -> bytes:
    c, s = CLIENT, SERVER
    if to_server:
        pkt = Ether(src=c[2], dst=s[2]) / IP(src=c[0], dst=s[0]) / UDP(sport=c[1], dport=dport) / Raw(payload)
    else:
        pkt = Ether(src=s[2], dst=c[2]) / IP(src=s[0], dst=c[0]) / UDP(sport=dport, dport=c[1]) / Raw(payload)
    return bytes(pkt)


@dataclass
class Recording:
    """What every instance of a recording decoder was fed, in order."""

    feeds: list[tuple[Direction, bytes, int]] = field(default_factory=list)  # (direction, bytes, frame)
    gaps: list[tuple[Direction, int, int]] = field(default_factory=list)
    closed: int = 0
    instances: int = 0

    def stream(self, direction: Direction) -> bytes:
        return b"".join(d for dr, d, _ in self.feeds if dr is direction)


def recording_spec(port: int = 5020, transport: str = "tcp", *, name: str = "rec", with_gap: bool = True, raise_on: bytes | None = None) -> tuple[DecoderSpec, Recording]:
    """A decoder that records its input; `raise_on` makes it raise when a feed contains those bytes."""
    rec = Recording()

    class Recorder:
        def __init__(self) -> None:
            rec.instances += 1

        def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
            chunk = bytes(data)
            if raise_on is not None and raise_on in chunk:
                raise ValueError("boom")
            rec.feeds.append((direction, chunk, meta.frame))
            return []

        def close(self, meta: FrameMeta | None) -> list[Event]:
            rec.closed += 1
            return []

    if with_gap:

        def gap(self: Any, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
            rec.gaps.append((direction, nbytes, meta.frame))
            return []

        Recorder.gap = gap  # type: ignore[attr-defined]

    return DecoderSpec(name=name, default_ports=(port,), transport=transport, flow=Recorder), rec


class LengthPrefixed:
    """A toy decoder for `2-byte big-endian length + body` PDUs: one event per complete PDU."""

    def __init__(self) -> None:
        self.buf = {Direction.TO_SERVER: bytearray(), Direction.TO_CLIENT: bytearray()}
        self.seq = 0

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        buf = self.buf[direction]
        buf += data
        out = []
        while len(buf) >= 2:
            n = int.from_bytes(buf[:2], "big")
            if len(buf) < 2 + n:
                break
            body = bytes(buf[2 : 2 + n])
            del buf[: 2 + n]
            out.append(make_event(meta, direction, dataset="lp", seq=self.seq, message=body.decode()))
            self.seq += 1
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        return []


LP_SPEC = DecoderSpec(name="lp", default_ports=(5020,), transport="tcp", flow=LengthPrefixed)
