"""BACnet/IP per-flow state: one event per datagram, confirmed requests paired with their acks by invoke id."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.protocols.bacnet import Bacnet
from pipeline.schema import Event

from ..base import Direction, FrameMeta
from ..stream import EventNumbering, Pending, time_ns
from .constants import MAX_PENDING, AnomalyCode, action_of
from .parser import parse

__all__ = ["BacnetFlow"]

DATASET = "bacnet"
_FAILURES = frozenset({5, 6, 7})  # error, reject, abort


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str
    service: int | None


class BacnetFlow(EventNumbering):
    """The datagrams between two BACnet/IP endpoints. `feed` one datagram at a time."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    INVALID = AnomalyCode.INVALID_APDU.value

    def __init__(self) -> None:
        # (direction of the requester, invoke id) -> request; a reused invoke id replaces the request
        self._pending: Pending[tuple[int, int], _Request] = Pending(self.MAX_PENDING)

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises
            return [self.error(meta, direction, exc)]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        self._pending.clear()
        return []

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        if not len(data):
            return []
        p = parse(data)
        pdu = p.pdu
        out: list[Event] = []
        if not isinstance(pdu, Bacnet):
            out.append(self.anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_BVLC.value, p.anomaly_message))
            return out
        action = action_of(pdu.service_name) if pdu.apdu_type in (0, 1) else "unknown"
        if pdu.network_message_type is not None:
            action = "identify" if pdu.network_message_type in (0x00, 0x01, 0x02, 0x12, 0x13) else "unknown"
        elif pdu.apdu_type is None:
            action = "unknown"
        outcome = None
        duration = None
        unsolicited = False
        if pdu.apdu_type == 0 and pdu.invoke_id is not None and not pdu.sequence_number:
            if self._pending.add((int(direction), pdu.invoke_id), _Request(meta.frame, time_ns(meta), action, pdu.service), replace=True):
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} confirmed requests without an answer: oldest dropped"))
        elif pdu.apdu_type in (2, 3, 5, 6, 7) and pdu.invoke_id is not None:
            key = (1 - int(direction), pdu.invoke_id)
            final = not pdu.more_follows
            req = self._pending.match(key) if final else self._pending.peek(key)
            if pdu.apdu_type == 7 and not pdu.from_server:
                req = self._pending.match((int(direction), pdu.invoke_id))  # client aborted its own request
            if req is not None:
                action = req.action
                duration = max(time_ns(meta) - req.time_ns, 0)
                pdu = msgspec.structs.replace(pdu, request_frame=req.frame)
            else:
                action = action_of(pdu.service_name) if pdu.service_name else "unknown"
                unsolicited = pdu.apdu_type != 7 and not pdu.sequence_number
            outcome = "failure" if pdu.apdu_type in _FAILURES else "success"
        out.append(self.emit(meta, direction, action=action, outcome=outcome, duration=duration, bacnet=pdu))
        if p.anomaly:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, bacnet=_header(pdu)))
        if unsolicited:
            out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending confirmed request with invoke id {pdu.invoke_id}", bacnet=_header(pdu)))
        return out


def _header(pdu: Bacnet) -> Bacnet:
    return Bacnet(bvlc_function=pdu.bvlc_function, bvlc_function_name=pdu.bvlc_function_name, apdu_type=pdu.apdu_type,
                  apdu_type_name=pdu.apdu_type_name, invoke_id=pdu.invoke_id, service=pdu.service, service_name=pdu.service_name)
