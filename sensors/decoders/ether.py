"""Layer-2 decoders (GOOSE, PROFINET RT/DCP): what the engine hands them per frame, and their envelope.

They register like the others, with `transport="ethernet"` and ethertypes in `default_ports`.
The engine keeps one decoder instance per protocol per capture (there is no IP flow to hang it
on) and feeds it every frame of its ethertypes, VLAN tags already stepped over.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from pipeline.schema import Anomaly, Event

from .base import Conn, Direction, FrameMeta, make_event

TRANSPORT = "ethernet"
MAX_CONNS = 4096  # cached (sender, receiver, vlan) envelopes per decoder; cleared, never grown past this


@dataclass(frozen=True, slots=True)
class EtherFrame:
    """One non-IP frame: its number, time, link addresses and VLAN ids (outermost first)."""

    frame: int
    time: dt.datetime
    src_mac: str | None
    dst_mac: str | None
    vlan: tuple[int, ...]
    ethertype: int
    file_sha256: str | None = None
    file: str | None = None
    observer_id: str | None = None
    organization_id: str | None = None


class EtherDecoder(Protocol):
    """One instance per protocol per capture; state (per publisher, per request id) lives inside."""

    def feed(self, data: memoryview, frame: EtherFrame) -> list[Event]:
        """Events for the payload after the ethertype. Never raises."""
        ...

    def close(self) -> list[Event]:
        """End of input."""
        ...


class Envelopes:
    """FrameMeta for a frame between two MAC addresses: one shared Conn per pair, so make_event builds its envelope once."""

    def __init__(self) -> None:
        self._conns: dict[tuple[str | None, str | None, tuple[int, ...]], Conn] = {}

    def meta(self, frame: EtherFrame, orig_mac: str | None, resp_mac: str | None) -> FrameMeta:
        key = (orig_mac, resp_mac, frame.vlan)
        conn = self._conns.get(key)
        if conn is None:
            if len(self._conns) >= MAX_CONNS:
                self._conns.clear()
            conn = self._conns[key] = Conn(
                orig_ip="", orig_port=0, resp_ip="", resp_port=0, transport=TRANSPORT, community_id="",
                orig_mac=orig_mac, resp_mac=resp_mac, vlan_id=frame.vlan,
            )
        return FrameMeta(
            frame=frame.frame, time=frame.time, conn=conn, file_sha256=frame.file_sha256, file=frame.file,
            observer_id=frame.observer_id, organization_id=frame.organization_id,
        )

    def decoder_error(self, frame: EtherFrame, dataset: str, exc: Exception) -> Event:
        """The anomaly event a decoder bug on ``frame`` becomes (a layer-2 decoder never raises), sender to receiver."""
        return make_event(self.meta(frame, frame.src_mac, frame.dst_mac), Direction.TO_SERVER, dataset=dataset,
                          action="anomaly",
                          anomaly=Anomaly(code="decoder_error", message=f"{type(exc).__name__}: {exc}"[:500]))
