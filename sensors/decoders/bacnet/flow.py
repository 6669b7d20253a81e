"""BACnet/IP per-flow state: one event per datagram, confirmed requests paired with their acks by invoke id."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from pipeline.protocols.bacnet import Bacnet
from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, make_event
from .constants import MAX_PENDING, AnomalyCode, action_of
from .parser import parse

__all__ = ["BacnetFlow"]

DATASET = "bacnet"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_US = dt.timedelta(microseconds=1)
_FAILURES = frozenset({5, 6, 7})  # error, reject, abort


def _ns(meta: FrameMeta) -> int:
    t = meta.time if meta.time.tzinfo else meta.time.replace(tzinfo=dt.timezone.utc)
    return ((t - _EPOCH) // _US) * 1000


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str
    service: int | None


class BacnetFlow:
    """The datagrams between two BACnet/IP endpoints. `feed` one datagram at a time."""

    MAX_PENDING = MAX_PENDING

    def __init__(self) -> None:
        # (direction of the requester, invoke id) -> request
        self._pending: OrderedDict[tuple[int, int], _Request] = OrderedDict()
        self._flooded = False
        self._seq_frame = -1
        self._seq = 0

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises
            return [self._anomaly(meta, direction, AnomalyCode.INVALID_APDU, f"decoder error: {type(exc).__name__}: {exc}", None)]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        self._pending.clear()
        return []

    def _next_seq(self, meta: FrameMeta) -> int:
        if meta.frame != self._seq_frame:
            self._seq_frame = meta.frame
            self._seq = 0
        s = self._seq
        self._seq += 1
        return s

    def _anomaly(self, meta: FrameMeta, direction: Direction, code: AnomalyCode | str, message: str | None, pdu: Bacnet | None) -> Event:
        value = code.value if isinstance(code, AnomalyCode) else code
        return make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action="anomaly",
                          anomaly=Anomaly(code=value, message=message), bacnet=pdu)

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        if not len(data):
            return []
        p = parse(data)
        pdu = p.pdu
        out: list[Event] = []
        if not isinstance(pdu, Bacnet):
            out.append(self._anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_BVLC.value, p.anomaly_message, None))
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
            key = (int(direction), pdu.invoke_id)
            self._pending[key] = _Request(meta.frame, _ns(meta), action, pdu.service)
            self._pending.move_to_end(key)
            if len(self._pending) > self.MAX_PENDING:
                self._pending.popitem(last=False)
                if not self._flooded:
                    self._flooded = True
                    out.append(self._anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} confirmed requests without an answer: oldest dropped", None))
        elif pdu.apdu_type in (2, 3, 5, 6, 7) and pdu.invoke_id is not None:
            key = (1 - int(direction), pdu.invoke_id)
            final = not pdu.more_follows
            req = self._pending.pop(key, None) if final else self._pending.get(key)
            if pdu.apdu_type == 7 and not pdu.from_server:
                req = self._pending.pop((int(direction), pdu.invoke_id), None)  # client aborted its own request
            if req is not None:
                action = req.action
                duration = max(_ns(meta) - req.time_ns, 0)
                pdu = msgspec.structs.replace(pdu, request_frame=req.frame)
                if self._flooded and len(self._pending) < self.MAX_PENDING // 2:
                    self._flooded = False
            else:
                action = action_of(pdu.service_name) if pdu.service_name else "unknown"
                unsolicited = pdu.apdu_type != 7 and not pdu.sequence_number
            outcome = "failure" if pdu.apdu_type in _FAILURES else "success"
        out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, outcome=outcome, duration=duration, bacnet=pdu))
        if p.anomaly:
            out.append(self._anomaly(meta, direction, p.anomaly, p.anomaly_message, _header(pdu)))
        if unsolicited:
            out.append(self._anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending confirmed request with invoke id {pdu.invoke_id}", _header(pdu)))
        return out


def _header(pdu: Bacnet) -> Bacnet:
    return Bacnet(bvlc_function=pdu.bvlc_function, bvlc_function_name=pdu.bvlc_function_name, apdu_type=pdu.apdu_type,
                  apdu_type_name=pdu.apdu_type_name, invoke_id=pdu.invoke_id, service=pdu.service, service_name=pdu.service_name)
