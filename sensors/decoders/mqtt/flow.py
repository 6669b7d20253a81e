"""MQTT per-connection state: buffering and oversized-packet skipping per direction, protocol version,
session introduction (CONNECT/CONNACK), request/acknowledgement pairing by packet id."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from pipeline.protocols.mqtt import Mqtt
from pipeline.schema import Event

from ..base import Direction, FrameMeta, Parsed
from ..stream import Side, StreamFlow, time_ns
from .constants import (
    ACTIONS,
    ANSWERS,
    CONNACK,
    CONNECT,
    MAX_PENDING,
    PINGREQ,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    AnomalyCode,
)
from .parser import SKIP, parse

__all__ = ["MqttFlow"]

DATASET = "mqtt"
_MISSING = {SUBACK: AnomalyCode.MISSING_SUBSCRIBE, UNSUBACK: AnomalyCode.MISSING_UNSUBSCRIBE}
_UNPAIRED_BY_ID = (CONNECT, PINGREQ)  # answered in order, no packet id
_AWAITS_ANSWER = frozenset({CONNECT, PINGREQ, PUBREC, PUBREL, SUBSCRIBE, UNSUBSCRIBE})


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str


@dataclass(slots=True)
class _Side(Side):
    skip: int = 0  # bytes still to pass over of an oversized packet


def _header(p: Mqtt) -> Mqtt:
    return Mqtt(message_type=p.message_type, message_type_name=p.message_type_name, protocol_version=p.protocol_version, packet_id=p.packet_id, remaining_length=p.remaining_length, topic=p.topic)


class MqttFlow(StreamFlow):
    """One MQTT connection (client = originator, broker = responder). One event per control packet."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    MAX_BAD = 8
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    ERROR = AnomalyCode.MALFORMED_TRAFFIC.value
    NOT_PROTOCOL = AnomalyCode.NOT_MQTT.value
    UNIT = "packet"
    STOP_MESSAGE = "{bad} bad packets in a row: stopped decoding this direction"
    SIDE = _Side
    sides: tuple[_Side, _Side]

    def __init__(self) -> None:
        super().__init__()
        self._version: int | None = None
        self._connects = 0
        self._connack = False
        self._login = False
        # (sender direction, request type, packet id) -> requests; not a `Pending`: a flood drops the
        # oldest request of the key least recently added to.
        self._pending: OrderedDict[tuple[int, int, int], list[_Request]] = OrderedDict()
        self._npending = 0
        self._flooded = False

    # An oversized packet is not buffered: its header is decoded and the rest of it passed over.

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        side = self.sides[direction]
        if side.skip and not side.stopped:
            k = min(side.skip, len(data))
            side.skip -= k
            data = data[k:]
        return super().feed(data, direction, meta)

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        p = parse(data, self._version)
        skip = p.extra.get(SKIP)
        if not (isinstance(skip, int) and skip > 0):
            return p
        k = min(skip, max(len(data) - p.consumed, 0))
        self.sides[direction].skip = skip - k
        return dataclasses.replace(p, consumed=p.consumed + k)

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        side = self.sides[direction]
        if not side.skip or side.stopped:
            return super().gap(direction, nbytes, meta)
        self._last_meta = meta
        if side.skip >= nbytes:  # the hole fell inside a packet we were skipping anyway
            side.skip -= nbytes
            return []
        side.skip = side.bad = 0
        side.buf.clear()  # empty while skipping
        return [self.anomaly(meta, direction, self.TRUNCATED, self.GAP_MESSAGE.format(nbytes=nbytes, held=0, unit=self.UNIT))]

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._pending.clear()
        self._npending = 0

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        pdu = p.pdu
        if not isinstance(pdu, Mqtt):
            out.append(self.anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_LENGTH.value, p.anomaly_message))
            return False
        self._packet(pdu, p, direction, meta, out)
        return p.anomaly not in (AnomalyCode.UNASSIGNED_MSG_TYPE.value, AnomalyCode.MALFORMED_TRAFFIC.value)

    def _packet(self, pdu: Mqtt, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        t = pdu.message_type
        notes: list[tuple[AnomalyCode, str]] = []
        if t == CONNECT:
            self._connects += 1
            if self._connects > 1:
                notes.append((AnomalyCode.DOUBLE_CONNECT, "second CONNECT on this connection"))
            self._version = pdu.protocol_version
            self._login = bool(pdu.username_present)
        elif t == CONNACK:
            if not self._connects:
                notes.append((AnomalyCode.MISSING_CONNECT, "CONNACK with no CONNECT before it"))
            self._connack = True
        elif not (self._connects and self._connack) and t in ACTIONS:
            notes.append((AnomalyCode.UNINTRODUCED_MESSAGE, f"{pdu.message_type_name} before CONNECT/CONNACK completed"))
        if self._version is not None and pdu.protocol_version is None:
            pdu = msgspec.structs.replace(pdu, protocol_version=self._version)
        action = ACTIONS.get(t, "unknown")
        if t in (CONNECT, CONNACK) and self._login:
            action = "login"
        outcome: str | None = None
        duration: int | None = None
        answered = ANSWERS.get(t)
        if answered is not None:
            req = self._take(direction, answered, pdu.packet_id)
            if req is None:
                missing = AnomalyCode.MISSING_PUBLISH if answered in (PUBLISH, PUBREC, PUBREL) else _MISSING.get(t)
                if missing is not None:
                    notes.append((missing, f"{pdu.message_type_name} for packet id {pdu.packet_id} with no pending request"))
            else:
                duration = max(time_ns(meta) - req.time_ns, 0)
                pdu = msgspec.structs.replace(pdu, request_frame=req.frame)
            if t != PUBREL:
                outcome = self._outcome(pdu)
        if t in _AWAITS_ANSWER or (t == PUBLISH and (pdu.qos or 0) > 0):
            self._put(direction, t, pdu.packet_id, _Request(meta.frame, time_ns(meta), action), meta, out, pdu)
        out.append(self.emit(meta, direction, action=action, outcome=outcome, duration=duration, mqtt=pdu))
        if p.anomaly:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, mqtt=_header(pdu)))
        for code, msg in notes:
            out.append(self.anomaly(meta, direction, code, msg, mqtt=_header(pdu)))

    @staticmethod
    def _outcome(pdu: Mqtt) -> str:
        codes = list(pdu.reason_codes or [])
        if pdu.reason_code is not None:
            codes.append(pdu.reason_code)
        return "failure" if any(c >= 0x80 for c in codes) or (pdu.message_type == CONNACK and (pdu.reason_code or 0) != 0) else "success"

    def _put(self, direction: Direction, t: int, pid: int | None, req: _Request, meta: FrameMeta, out: list[Event], pdu: Mqtt) -> None:
        key = (int(direction), t, -1 if t in _UNPAIRED_BY_ID else (pid or 0))
        self._pending.setdefault(key, []).append(req)
        self._pending.move_to_end(key)
        self._npending += 1
        if self._npending > self.MAX_PENDING:
            _, q = next(iter(self._pending.items()))
            q.pop(0)
            self._npending -= 1
            if not q:
                self._pending.popitem(last=False)
            if not self._flooded:
                self._flooded = True
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} requests without acknowledgement: oldest dropped", mqtt=_header(pdu)))

    def _take(self, direction: Direction, t: int, pid: int | None) -> _Request | None:
        key = (1 - int(direction), t, -1 if t in _UNPAIRED_BY_ID else (pid or 0))
        q = self._pending.get(key)
        if not q:
            return None
        req = q.pop(0)
        self._npending -= 1
        if not q:
            del self._pending[key]
        if self._flooded and self._npending < self.MAX_PENDING // 2:
            self._flooded = False
        return req
