"""PROFINET decoders: RT/DCP frames (layer 2, one instance per capture) and IO CM datagrams (one per UDP flow)."""

from __future__ import annotations

import msgspec

from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, make_event
from ..ether import Envelopes, EtherFrame
from ..stream import EventNumbering, Pending
from . import constants as c
from .dcp import action_of, parse_rt
from .rpc import parse as parse_rpc

DATASET = "profinet"


class ProfinetRtDecoder:
    """DCP (identify, hello, get, set) and alarm frames of ethertype 0x8892; cyclic IO data is not an event."""

    def __init__(self) -> None:
        self._env = Envelopes()
        # (requester MAC, xid) -> frame of the request: Identify is multicast, so every answer peeks;
        # a Get/Set has one answer, which takes the request.
        self._pending: Pending[tuple[str | None, int], int] = Pending(c.MAX_PENDING)

    def feed(self, data: memoryview, frame: EtherFrame) -> list[Event]:
        try:
            p = parse_rt(bytes(data[:1500]))
            if p is None:
                return []
            response = p.dcp_service_type not in (None, 0)
            if response:  # the conversation belongs to whoever asked: the requester is its originator
                meta, direction = self._env.meta(frame, frame.dst_mac, frame.src_mac), Direction.TO_CLIENT
            else:
                meta, direction = self._env.meta(frame, frame.src_mac, frame.dst_mac), Direction.TO_SERVER
            if p.service == "dcp" and p.dcp_service_id is None:
                return [make_event(meta, direction, dataset=DATASET, action="anomaly", profinet=p,
                                   anomaly=Anomaly(code=c.AnomalyCode.TRUNCATED, message="DCP frame shorter than its 12-byte header"))]
            outcome = None
            if p.service == "dcp" and p.xid is not None:
                if not response:
                    self._pending.add((frame.src_mac, p.xid), frame.frame, replace=True)
                else:
                    key = (frame.dst_mac, p.xid)
                    req = self._pending.peek(key) if p.dcp_service_id == c.IDENTIFY else self._pending.match(key)
                    if req is not None:
                        p = msgspec.structs.replace(p, request_frame=req)
                    outcome = "failure" if p.dcp_service_type == 5 or any(b.error for b in p.dcp_blocks or ()) else "success"
            return [make_event(meta, direction, dataset=DATASET, action=action_of(p), outcome=outcome, profinet=p)]
        except Exception as exc:  # never raises: a bug becomes an anomaly
            return [self._env.decoder_error(frame, DATASET, exc)]

    def close(self) -> list[Event]:
        self._pending.clear()
        return []


class ProfinetCmFlow(EventNumbering):
    """IO CM datagrams of one UDP flow: one event per DCE/RPC PDU, responses paired with requests."""

    DATASET = DATASET
    INVALID = c.AnomalyCode.INVALID_HEADER

    def __init__(self) -> None:
        self._pending: Pending[tuple[str, int], tuple[int, str | None]] = Pending(c.MAX_PENDING)

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:
            return [self.error(meta, direction, exc)]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        self._pending.clear()
        return []

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        if not len(data):
            return []
        p = parse_rpc(bytes(data))
        if p is None:
            return [self.anomaly(meta, direction, c.AnomalyCode.INVALID_HEADER if len(data) >= 80 else c.AnomalyCode.TRUNCATED,
                                 f"not a DCE/RPC connectionless PDU ({len(data)} bytes)")]
        out: list[Event] = []
        key = (p.activity_uuid or "", p.sequence_number or 0)
        action = c.ACTIONS.get(p.operation_name or "", "unknown")
        outcome = None
        if p.rpc_packet_type == c.REQUEST and not p.fragment_number:
            if self._pending.add(key, (meta.frame, p.operation_name), replace=True):
                out.append(self.anomaly(meta, direction, c.AnomalyCode.FLOODED, f"more than {c.MAX_PENDING} IO CM requests without a response"))
        elif p.rpc_packet_type in (c.RESPONSE, c.FAULT):
            req = self._pending.match(key)
            if req is not None:
                p = msgspec.structs.replace(p, request_frame=req[0])
            outcome = "failure" if p.rpc_packet_type == c.FAULT or (p.pnio_status not in (None, "00000000")) else "success"
        elif p.rpc_packet_type in (1, 4, 5, 7, 9, 10):
            action = "session"  # ping, working, nocall, ack, fack, cancel ack: RPC housekeeping
        out.append(self.emit(meta, direction, action=action, outcome=outcome, profinet=p))
        return out
