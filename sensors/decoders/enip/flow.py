"""EtherNet/IP per-connection state: buffering per direction, request/reply pairing, anomaly events; CIP I/O datagrams."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.protocols.enip import Cip, Enip
from pipeline.schema import Event

from ..base import Direction, FrameMeta, Parsed
from ..stream import EventNumbering, Pending, StreamFlow, time_ns
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

# Reply fields copied from the request: a CIP reply carries no path.
_FROM_REQUEST = ("class_id", "class_name", "instance_id", "attribute_id", "member_id", "connection_point", "tag", "path", "embedded_in")


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    cips: list[Cip]


def _header(e: Enip) -> Enip:
    return Enip(command_code=e.command_code, command_name=e.command_name, message_type=e.message_type, length=e.length,
                session_handle=e.session_handle, status_code=e.status_code, sender_context=e.sender_context,
                connection_id=e.connection_id, sequence_number=e.sequence_number)


def _effective(cips: list[Cip]) -> list[Cip]:
    """The request services a reply answers: an Unconnected_Send is answered by its embedded request's reply."""
    if cips and cips[0].service_name == "unconnected_send" and len(cips) > 1:
        return [msgspec.structs.replace(c, embedded_in=None) if k == 0 else c for k, c in enumerate(cips[1:])]
    return cips


class EnipFlow(StreamFlow):
    """One EtherNet/IP TCP connection or UDP 44818 flow. `feed` in-order bytes; one event per encapsulation message and CIP service."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    INVALID = AnomalyCode.INVALID_LENGTH.value
    ERROR = AnomalyCode.DECODER_ERROR.value
    NOT_PROTOCOL = AnomalyCode.NOT_ENIP.value
    UNIT, HEADER = "message", "encapsulation"

    def __init__(self) -> None:
        super().__init__()
        self._pending: Pending[tuple[object, ...], _Request] = Pending(self.MAX_PENDING)

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse(data, direction)

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._pending.clear()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        if not isinstance(p.pdu, Message):
            out.append(self.anomaly(meta, direction, self.INVALID, p.anomaly_message))
            return False
        self._message(p.pdu, direction, meta, out)
        return True

    def _message(self, msg: Message, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        if direction is Direction.TO_SERVER:
            self._request(msg, meta, out)
        else:
            self._reply(msg, meta, out)
        for code, text in msg.anomalies:
            out.append(self.anomaly(meta, direction, code, text, enip=_header(msg.enip)))

    def _emit(self, msg: Message, enip: Enip, cips: list[Cip], actions: list[str | None], enip_action: str | None,
              direction: Direction, meta: FrameMeta, out: list[Event], outcome: str | None = None, duration: int | None = None,
              outcomes: list[str | None] | None = None) -> None:
        if not cips:
            out.append(self.emit(meta, direction, action=enip_action, outcome=outcome, duration=duration, enip=enip))
            return
        for k, c in enumerate(cips):
            oc = outcomes[k] if outcomes is not None else outcome
            out.append(self.emit(meta, direction, action=actions[k], outcome=oc, duration=duration, enip=enip, cip=c))

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
        if self._pending.add(key, _Request(meta.frame, time_ns(meta), msg.cips)):
            text = f"more than {self.MAX_PENDING} requests without a reply: oldest dropped"
            out.append(self.anomaly(meta, Direction.TO_SERVER, AnomalyCode.FLOODED, text, enip=_header(e)))

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
        req = self._pending.match(key)
        enip_outcome = "success" if not e.status_code else "failure"
        cips = msg.cips
        duration = None
        if req is not None:
            duration = max(time_ns(meta) - req.time_ns, 0)
            e = msgspec.structs.replace(e, request_frame=req.frame)
            cips = self._enrich(cips, _effective(req.cips), req.frame)
        actions = [action_of(c.service_code, c.service_name, c.class_id) for c in cips]
        outcomes: list[str | None] = [None if c.status_code is None else ("success" if c.status_code == 0 else "failure") for c in cips]
        self._emit(msg, e, cips, actions, COMMAND_ACTIONS.get(cmd), Direction.TO_CLIENT, meta, out, outcome=enip_outcome, duration=duration,
                   outcomes=outcomes if cips else None)
        if req is None and meta.conn.transport == "tcp":
            text = f"no pending {e.command_name} request" + (f" with sequence count {key[1]}" if key[0] == "cx" else f" with sender context {e.sender_context}")
            out.append(self.anomaly(meta, Direction.TO_CLIENT, AnomalyCode.UNSOLICITED_RESPONSE, text, enip=_header(e)))

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


class CipIoFlow(EventNumbering):
    """CIP class 0/1 implicit I/O on UDP 2222: recognised and counted, one event per datagram."""

    DATASET = IO_DATASET
    ERROR = AnomalyCode.DECODER_ERROR.value

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            msg = parse_io(bytes(data))
            out = [self.emit(meta, direction, enip=msg.enip)]
            for code, text in msg.anomalies:
                out.append(self.anomaly(meta, direction, code, text, enip=msg.enip))
            return out
        except Exception as exc:
            return [self.error(meta, direction, exc)]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        return []
