"""MQTT per-connection state: buffering and oversized-packet skipping per direction, protocol version,
session introduction (CONNECT/CONNACK), request/acknowledgement pairing by packet id."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from pipeline.protocols.mqtt import Mqtt
from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, Parsed, make_event
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
MAX_BAD_PACKETS = 8
_CLOSE_SEQ = 900
_MISSING = {SUBACK: AnomalyCode.MISSING_SUBSCRIBE, UNSUBACK: AnomalyCode.MISSING_UNSUBSCRIBE}
_UNPAIRED_BY_ID = (CONNECT, PINGREQ)  # answered in order, no packet id
_AWAITS_ANSWER = frozenset({CONNECT, PINGREQ, PUBREC, PUBREL, SUBSCRIBE, UNSUBSCRIBE})


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str


@dataclass(slots=True)
class _Side:
    buf: bytearray = field(default_factory=bytearray)
    skip: int = 0
    bad: int = 0
    stopped: bool = False


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


def _ns(meta: FrameMeta) -> int:
    t = meta.time
    return ((t - (_EPOCH if t.tzinfo else _EPOCH_NAIVE)) // _US) * 1000


def _header(p: Mqtt) -> Mqtt:
    return Mqtt(message_type=p.message_type, message_type_name=p.message_type_name, protocol_version=p.protocol_version, packet_id=p.packet_id, remaining_length=p.remaining_length, topic=p.topic)


class MqttFlow:
    """One MQTT connection (client = originator, broker = responder). One event per control packet."""

    MAX_PENDING = MAX_PENDING

    def __init__(self) -> None:
        self._sides = (_Side(), _Side())
        self._version: int | None = None
        self._connects = 0
        self._connack = False
        self._login = False
        # (sender direction, request type, packet id) -> request; oldest first
        self._pending: OrderedDict[tuple[int, int, int], list[_Request]] = OrderedDict()
        self._npending = 0
        self._flooded = False
        self._seq_frame = -1
        self._seq = 0
        self._last_meta: FrameMeta | None = None

    # ------------------------------------------------------------ FlowDecoder

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises; a bug becomes data, not a crash
            self._sides[direction].buf.clear()
            return [self._anomaly(meta, direction, AnomalyCode.MALFORMED_TRAFFIC, f"decoder error: {type(exc).__name__}: {exc}", None)]

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        self._last_meta = meta
        side = self._sides[direction]
        out: list[Event] = []
        if (side.buf or side.skip) and not side.stopped:
            if side.skip >= nbytes:  # the hole fell inside a packet we were skipping anyway
                side.skip -= nbytes
                return out
            out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"{nbytes} byte(s) lost in capture: dropped a partial packet of {len(side.buf)} byte(s)", None))
        side.buf.clear()
        side.skip = 0
        side.bad = 0
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        meta = meta or self._last_meta
        out: list[Event] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            side = self._sides[direction]
            if side.buf and not side.stopped and meta is not None:
                out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"connection ended with {len(side.buf)} byte(s) of a partial packet", None, close=True))
            side.buf.clear()
        self._pending.clear()
        self._npending = 0
        return out

    # ------------------------------------------------------------ internals

    def _next_seq(self, meta: FrameMeta, close: bool = False) -> int:
        if meta.frame != self._seq_frame:
            self._seq_frame = meta.frame
            self._seq = _CLOSE_SEQ if close else 0
        elif close and self._seq < _CLOSE_SEQ:
            self._seq = _CLOSE_SEQ
        s = self._seq
        self._seq += 1
        return s

    def _anomaly(self, meta: FrameMeta, direction: Direction, code: AnomalyCode | str, message: str | None, pdu: Mqtt | None, close: bool = False) -> Event:
        value = code.value if isinstance(code, AnomalyCode) else code
        return make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta, close), action="anomaly", anomaly=Anomaly(code=value, message=message), mqtt=pdu)

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        self._last_meta = meta
        side = self._sides[direction]
        if side.stopped or not len(data):
            return []
        if side.skip:
            k = min(side.skip, len(data))
            side.skip -= k
            data = data[k:]
            if not len(data):
                return []
        if side.buf:
            side.buf += data
            work = memoryview(bytes(side.buf))
            side.buf.clear()
        else:
            work = data
        out: list[Event] = []
        off = 0
        end = len(work)
        while off < end:
            p = parse(work[off:], self._version)
            if p.consumed <= 0:
                break
            off += min(p.consumed, end - off)
            self._handle(p, direction, meta, out)
            skip = p.extra.get(SKIP)
            if isinstance(skip, int) and skip > 0:
                k = min(skip, end - off)
                off += k
                side.skip = skip - k
            if side.stopped:
                return out
        if off < end:
            side.buf += work[off:]
        return out

    def _handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        side = self._sides[direction]
        pdu = p.pdu
        if not isinstance(pdu, Mqtt) or p.anomaly in (AnomalyCode.UNASSIGNED_MSG_TYPE.value, AnomalyCode.MALFORMED_TRAFFIC.value):
            side.bad += 1
        else:
            side.bad = 0
        if not isinstance(pdu, Mqtt):
            out.append(self._anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_LENGTH.value, p.anomaly_message, None))
        else:
            self._packet(pdu, p, direction, meta, out)
        if side.bad >= MAX_BAD_PACKETS:
            side.stopped = True
            side.buf.clear()
            out.append(self._anomaly(meta, direction, AnomalyCode.NOT_MQTT, f"{side.bad} bad packets in a row: stopped decoding this direction", None))

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
                duration = max(_ns(meta) - req.time_ns, 0)
                pdu = msgspec.structs.replace(pdu, request_frame=req.frame)
            if t != PUBREL:
                outcome = self._outcome(pdu)
        if t in _AWAITS_ANSWER or (t == PUBLISH and (pdu.qos or 0) > 0):
            self._put(direction, t, pdu.packet_id, _Request(meta.frame, _ns(meta), action), meta, out, pdu)
        out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, outcome=outcome, duration=duration, mqtt=pdu))  # type: ignore[arg-type]
        if p.anomaly:
            out.append(self._anomaly(meta, direction, p.anomaly, p.anomaly_message, _header(pdu)))
        for code, msg in notes:
            out.append(self._anomaly(meta, direction, code, msg, _header(pdu)))

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
                out.append(self._anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} requests without acknowledgement: oldest dropped", _header(pdu)))

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
