"""EtherNet/IP per-connection state: buffering per direction, request/reply pairing, anomaly events; CIP I/O datagrams."""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field

import msgspec

from pipeline.protocols.enip import Cip, Enip
from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, make_event
from .constants import (
    CMD_SEND_UNIT_DATA,
    COMMAND_ACTIONS,
    MAX_PENDING,
    NO_REPLY_COMMANDS,
    AnomalyCode,
    action_of,
)
from .parser import Message, parse, parse_io

__all__ = ["EnipFlow", "CipIoFlow", "DATASET", "IO_DATASET"]

DATASET = "enip"
IO_DATASET = "cip_io"
MAX_BAD_HEADERS = 4
_CLOSE_SEQ = 900

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)
# Reply fields copied from the request: a CIP reply carries no path.
_FROM_REQUEST = ("class_id", "class_name", "instance_id", "attribute_id", "member_id", "connection_point", "tag", "path", "embedded_in")


def _ns(meta: FrameMeta) -> int:
    t = meta.time
    return ((t - (_EPOCH if t.tzinfo else _EPOCH_NAIVE)) // _US) * 1000


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    key: tuple[object, ...]
    command: int
    cips: list[Cip]
    done: bool = False


@dataclass(slots=True)
class _Side:
    buf: bytearray = field(default_factory=bytearray)
    bad_headers: int = 0
    stopped: bool = False


class _Seq:
    """Per-frame event sequence numbers (event ids are frame + seq)."""

    def __init__(self) -> None:
        self.frame = -1
        self.seq = 0

    def next(self, meta: FrameMeta, close: bool = False) -> int:
        if meta.frame != self.frame:
            self.frame = meta.frame
            self.seq = _CLOSE_SEQ if close else 0
        elif close and self.seq < _CLOSE_SEQ:
            self.seq = _CLOSE_SEQ
        s = self.seq
        self.seq += 1
        return s


def _header(e: Enip) -> Enip:
    return Enip(command_code=e.command_code, command_name=e.command_name, message_type=e.message_type, length=e.length,
                session_handle=e.session_handle, status_code=e.status_code, sender_context=e.sender_context,
                connection_id=e.connection_id, sequence_number=e.sequence_number)


def _effective(cips: list[Cip]) -> list[Cip]:
    """The request services a reply answers: an Unconnected_Send is answered by its embedded request's reply."""
    if cips and cips[0].service_name == "unconnected_send" and len(cips) > 1:
        return [msgspec.structs.replace(c, embedded_in=None) if k == 0 else c for k, c in enumerate(cips[1:])]
    return cips


class EnipFlow:
    """One EtherNet/IP TCP connection or UDP 44818 flow. `feed` in-order bytes; one event per encapsulation message and CIP service."""

    MAX_PENDING = MAX_PENDING

    def __init__(self) -> None:
        self._sides = (_Side(), _Side())
        self._pending: dict[tuple[object, ...], deque[_Request]] = {}
        self._order: deque[_Request] = deque()
        self._npending = 0
        self._flooded = False
        self._seq = _Seq()
        self._last_meta: FrameMeta | None = None

    # ------------------------------------------------------------ FlowDecoder

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises; a bug becomes data
            self._sides[direction].buf.clear()
            return [self._anomaly(meta, direction, AnomalyCode.DECODER_ERROR, f"decoder error: {type(exc).__name__}: {exc}", None)]

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        self._last_meta = meta
        side = self._sides[direction]
        out: list[Event] = []
        if side.buf and not side.stopped:
            out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"{nbytes} byte(s) lost in capture: dropped a partial message of {len(side.buf)} byte(s)", None))
        side.buf.clear()
        side.bad_headers = 0
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        meta = meta or self._last_meta
        out: list[Event] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            side = self._sides[direction]
            if side.buf and not side.stopped and meta is not None:
                out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"connection ended with {len(side.buf)} byte(s) of a partial message", None, close=True))
            side.buf.clear()
        self._pending.clear()
        self._order.clear()
        self._npending = 0
        return out

    # ------------------------------------------------------------ internals

    def _anomaly(self, meta: FrameMeta, direction: Direction, code: AnomalyCode | str, message: str | None, enip: Enip | None, close: bool = False) -> Event:
        value = code.value if isinstance(code, AnomalyCode) else code
        return make_event(meta, direction, dataset=DATASET, seq=self._seq.next(meta, close), action="anomaly",
                          anomaly=Anomaly(code=value, message=message), enip=enip)

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        self._last_meta = meta
        side = self._sides[direction]
        if side.stopped or not len(data):
            return []
        if side.buf:
            side.buf += data
            work = memoryview(bytes(side.buf))
            side.buf.clear()
        else:
            work = data
        out: list[Event] = []
        off, end = 0, len(work)
        while off < end:
            p = parse(work[off:], direction)
            if p.consumed <= 0:
                break
            off += min(p.consumed, end - off)
            if not isinstance(p.pdu, Message):
                side.bad_headers += 1
                out.append(self._anomaly(meta, direction, AnomalyCode.INVALID_LENGTH, p.anomaly_message, None))
                if side.bad_headers >= MAX_BAD_HEADERS:
                    side.stopped = True
                    side.buf.clear()
                    out.append(self._anomaly(meta, direction, AnomalyCode.NOT_ENIP, f"{side.bad_headers} bad encapsulation headers in a row: stopped decoding this direction", None))
                    return out
                continue
            side.bad_headers = 0
            self._message(p.pdu, direction, meta, out)
        if off < end:
            if meta.conn.transport == "udp":  # a datagram is a whole message: a short one is not completed by the next
                out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"datagram ends inside a message ({end - off} byte(s) left)", None))
            else:
                side.buf += work[off:]
        return out

    def _message(self, msg: Message, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        if direction is Direction.TO_SERVER:
            self._request(msg, meta, out)
        else:
            self._reply(msg, meta, out)
        for code, text in msg.anomalies:
            out.append(self._anomaly(meta, direction, code, text, _header(msg.enip)))

    def _emit(self, msg: Message, enip: Enip, cips: list[Cip], actions: list[str | None], enip_action: str | None,
              direction: Direction, meta: FrameMeta, out: list[Event], outcome: str | None = None, duration: int | None = None,
              outcomes: list[str | None] | None = None) -> None:
        if not cips:
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._seq.next(meta), action=enip_action, outcome=outcome,
                                  duration=duration, enip=enip))
            return
        for k, c in enumerate(cips):
            oc = outcomes[k] if outcomes is not None else outcome
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._seq.next(meta), action=actions[k], outcome=oc,
                                  duration=duration, enip=enip, cip=c))

    def _request(self, msg: Message, meta: FrameMeta, out: list[Event]) -> None:
        e = msg.enip
        cmd = e.command_code if e.command_code is not None else -1
        actions = [action_of(c.service_code, c.service_name, c.class_id) if c.message_type == "request" else None for c in msg.cips]
        self._emit(msg, e, msg.cips, actions, COMMAND_ACTIONS.get(cmd), Direction.TO_SERVER, meta, out)
        if cmd in NO_REPLY_COMMANDS and cmd != CMD_SEND_UNIT_DATA:
            return
        if cmd == CMD_SEND_UNIT_DATA:
            if not msg.cips or msg.cips[0].message_type != "request":
                return  # a reply carried in the originator's direction (server-initiated connection): nothing to wait for
            key: tuple[object, ...] = ("cx", msg.cips[0].sequence_count)
        else:
            key = ("c", cmd, e.sender_context)
        req = _Request(meta.frame, _ns(meta), key, cmd, msg.cips)
        self._pending.setdefault(key, deque()).append(req)
        self._order.append(req)
        self._npending += 1
        if self._npending > self.MAX_PENDING:
            self._drop_oldest()
            if not self._flooded:
                self._flooded = True
                out.append(self._anomaly(meta, Direction.TO_SERVER, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} requests without a reply: oldest dropped", _header(e)))

    def _drop_oldest(self) -> None:
        while self._order:
            old = self._order.popleft()
            if old.done:
                continue
            old.done = True
            self._npending -= 1
            q = self._pending.get(old.key)
            if q and q[0] is old:
                q.popleft()
                if not q:
                    del self._pending[old.key]
            return

    def _match(self, key: tuple[object, ...]) -> _Request | None:
        q = self._pending.get(key)
        if not q:
            return None
        req = q.popleft()
        if not q:
            del self._pending[key]
        req.done = True
        self._npending -= 1
        if self._flooded and self._npending < self.MAX_PENDING // 2:
            self._flooded = False
        if len(self._order) > 4 * self.MAX_PENDING:
            self._order = deque(r for r in self._order if not r.done)
        return req

    def _reply(self, msg: Message, meta: FrameMeta, out: list[Event]) -> None:
        e = msg.enip
        cmd = e.command_code if e.command_code is not None else -1
        if cmd == CMD_SEND_UNIT_DATA:
            if not msg.cips or msg.cips[0].message_type != "response":
                actions = [action_of(c.service_code, c.service_name, c.class_id) for c in msg.cips]
                self._emit(msg, e, msg.cips, actions, None, Direction.TO_CLIENT, meta, out)
                return
            key: tuple[object, ...] = ("cx", msg.cips[0].sequence_count)
        elif cmd in NO_REPLY_COMMANDS:
            self._emit(msg, e, msg.cips, [None] * len(msg.cips), COMMAND_ACTIONS.get(cmd), Direction.TO_CLIENT, meta, out)
            return
        else:
            key = ("c", cmd, e.sender_context)
        req = self._match(key)
        enip_outcome = "success" if not e.status_code else "failure"
        cips = msg.cips
        duration = None
        if req is not None:
            duration = max(_ns(meta) - req.time_ns, 0)
            e = msgspec.structs.replace(e, request_frame=req.frame)
            cips = self._enrich(cips, _effective(req.cips), req.frame)
        actions = [action_of(c.service_code, c.service_name, c.class_id) for c in cips]
        outcomes: list[str | None] = [None if c.status_code is None else ("success" if c.status_code == 0 else "failure") for c in cips]
        self._emit(msg, e, cips, actions, COMMAND_ACTIONS.get(cmd), Direction.TO_CLIENT, meta, out, outcome=enip_outcome, duration=duration,
                   outcomes=outcomes if cips else None)
        if req is None and meta.conn.transport == "tcp":
            out.append(self._anomaly(meta, Direction.TO_CLIENT, AnomalyCode.UNSOLICITED_RESPONSE,
                                     f"no pending {e.command_name} request" + (f" with sequence count {key[1]}" if key[0] == "cx" else f" with sender context {e.sender_context}"), _header(e)))

    @staticmethod
    def _enrich(replies: list[Cip], requests: list[Cip], frame: int) -> list[Cip]:
        if not replies or not requests:
            return replies
        top_req = requests[0]
        by_index = {c.index: c for c in requests[1:] if c.index is not None and c.embedded_in == "multiple_service_packet"}
        out: list[Cip] = []
        for k, r in enumerate(replies):
            q = top_req if k == 0 else by_index.get(r.index) if r.index is not None else None
            if q is None or q.service_code != r.service_code:
                out.append(msgspec.structs.replace(r, request_frame=frame) if k == 0 else r)
                continue
            changes: dict[str, object] = {"request_frame": frame, "service_name": q.service_name}
            for name in _FROM_REQUEST:
                v = getattr(q, name)
                if v is not None and getattr(r, name) is None:
                    changes[name] = v
            out.append(msgspec.structs.replace(r, **changes))
        return out


class CipIoFlow:
    """CIP class 0/1 implicit I/O on UDP 2222: recognised and counted, one event per datagram."""

    def __init__(self) -> None:
        self._seq = _Seq()

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            msg = parse_io(bytes(data))
            out = [make_event(meta, direction, dataset=IO_DATASET, seq=self._seq.next(meta), enip=msg.enip)]
            for code, text in msg.anomalies:
                out.append(make_event(meta, direction, dataset=IO_DATASET, seq=self._seq.next(meta), action="anomaly",
                                      anomaly=Anomaly(code=code, message=text), enip=msg.enip))
            return out
        except Exception as exc:
            return [make_event(meta, direction, dataset=IO_DATASET, seq=self._seq.next(meta), action="anomaly",
                               anomaly=Anomaly(code=AnomalyCode.DECODER_ERROR.value, message=f"decoder error: {type(exc).__name__}: {exc}"))]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        return []
