"""OPC UA binary per-connection state: framing, chunk reassembly, channel security, request/response pairing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Event, Opcua

from ..base import Direction, FrameMeta, Parsed
from ..stream import Pending, StreamFlow, time_ns
from .constants import MAX_CHUNKS, MAX_PENDING, AnomalyCode, action_of, identity_reads, service_of
from .parser import Chunk, Reader, Short, decode_service, parse, parse_ack, parse_error, parse_hello, parse_reverse_hello, parse_secure_header

__all__ = ["OpcuaFlow"]

DATASET = "opcua"
_MAX_PARTIAL_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class _Partial:
    chunks: int = 0
    size: int = 0
    body: bytearray = field(default_factory=bytearray)
    first: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str
    service: str | None
    reads: dict[int, str] | None = None  # Read request: operations reading a Server identity node


class OpcuaFlow(StreamFlow):
    """One UA TCP connection. `feed` in-order bytes of either direction; one event per message."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    INVALID = AnomalyCode.INVALID_PDU.value
    NOT_PROTOCOL = AnomalyCode.NOT_OPCUA.value
    UNIT, HEADER = "chunk", "UA TCP"

    def __init__(self) -> None:
        super().__init__()
        self._partials: dict[tuple[int, int | None], _Partial] = {}
        self._pending: Pending[int, _Request] = Pending(self.MAX_PENDING)
        self._policy: str | None = None  # short name of the secure channel's security policy
        self._mode: str | None = None  # security mode, when the OPN request was readable
        self._saw_start = False  # HEL or OPN seen: the capture has the connection from its start
        self._identity_reads = False  # a Read of a Server identity node was seen: responses look up their request

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse(data)

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        if not isinstance(p.pdu, Chunk):
            out.append(self.anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_HEADER.value, p.anomaly_message))
            return False
        self._chunk(p.pdu, direction, meta, out)
        return True

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        """Bytes were lost: drop the partial chunk and the partial messages of that direction."""
        self._last_meta = meta
        mine = [k for k in self._partials if k[0] == direction]
        lost = self.held(direction) + sum(len(self._partials.pop(k).body) for k in mine)
        out: list[Event] = []
        if lost and not self.sides[direction].stopped:
            msg = f"{nbytes} byte(s) lost in capture: dropped {lost} byte(s) of a partial message"
            out.append(self.anomaly(meta, direction, self.TRUNCATED, msg))
        self.drop(direction)
        self.sides[direction].bad = 0
        return out

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._partials.clear()
        self._pending.clear()

    def _chunk(self, c: Chunk, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        mt = c.message_type
        base: dict[str, Any] = {"message_type": mt, "chunk_type": c.chunk_type, "message_size": c.size}
        if mt in ("HEL", "ACK", "ERR", "RHE"):
            fn = {"HEL": parse_hello, "ACK": parse_ack, "ERR": parse_error, "RHE": parse_reverse_hello}[mt]
            fields, problem = fn(c.body)
            if mt == "HEL":
                self._saw_start = True
            ev = Opcua(**base, **{k: v for k, v in fields.items() if v is not None})
            outcome = "failure" if mt == "ERR" else None
            out.append(self.emit(meta, direction, action=action_of(mt, None), outcome=outcome, opcua=ev))
            if problem:
                out.append(self.anomaly(meta, direction, AnomalyCode.INVALID_PDU, f"{mt}: {problem}", opcua=ev))
            return
        sh = parse_secure_header(c)
        base.update(sh.fields)
        if sh.problem:
            ev = Opcua(**base)
            out.append(self.emit(meta, direction, action=action_of(mt, None), opcua=ev))
            out.append(self.anomaly(meta, direction, AnomalyCode.INVALID_PDU, f"{mt} security header: {sh.problem}", opcua=ev))
            return
        if mt == "OPN":
            self._saw_start = True
            self._policy = sh.fields.get("security_policy")
            if self._policy != "None":
                self._mode = None
        if self._encrypted(c, sh.offset):
            self._encrypted_chunk(c, base, direction, meta, out)
            return
        r = Reader(c.body, sh.offset)
        try:
            base["sequence_number"] = r.u32()
            base["request_id"] = r.u32()
        except Short as e:
            ev = Opcua(**base)
            out.append(self.emit(meta, direction, action=action_of(mt, None), opcua=ev))
            out.append(self.anomaly(meta, direction, AnomalyCode.INVALID_PDU, f"{mt} sequence header: {e}", opcua=ev))
            return
        rest = c.body[r.o :]
        key = (int(direction), base["request_id"])
        if c.chunk_type == "A":
            part = self._partials.pop(key, None)
            fields, _ = parse_error(rest)
            base.update({k: v for k, v in fields.items() if v is not None})
            if part is not None:
                base["chunk_count"] = part.chunks + 1
            ev = Opcua(**base)
            out.append(self.emit(meta, direction, action=action_of(mt, None), outcome="failure", opcua=ev))
            out.append(self.anomaly(meta, direction, AnomalyCode.ABORTED, f"{mt} message with request id {base['request_id']} aborted: {base.get('error_name')}", opcua=ev))
            return
        if c.chunk_type == "C":
            part = self._partials.get(key)
            if part is None:
                part = self._partials[key] = _Partial(first=dict(base))
            part.chunks += 1
            part.size += c.size
            part.body += rest
            if part.chunks > MAX_CHUNKS or len(part.body) > _MAX_PARTIAL_BYTES:
                del self._partials[key]
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {MAX_CHUNKS} chunks or {_MAX_PARTIAL_BYTES} bytes without a final chunk: message dropped", opcua=Opcua(**base)))
            return
        part = self._partials.pop(key, None)
        if part is not None:
            body = bytes(part.body) + rest
            base["message_size"] = part.size + c.size
            base["chunk_count"] = part.chunks + 1
            base["sequence_number"] = part.first.get("sequence_number", base["sequence_number"])
        else:
            body = rest
        self._message(mt, base, body, direction, meta, out)

    def _encrypted(self, c: Chunk, offset: int) -> bool:
        if c.message_type == "OPN":
            return self._policy not in (None, "None")
        if self._policy == "None" or self._mode in ("None", "Sign"):
            return False
        if self._mode == "SignAndEncrypt":
            return True
        # Channel opened before the capture, or with an encrypted OPN: the body is readable when it
        # starts with a sequence header and the encoding id of a known service (Sign mode).
        r = Reader(c.body, offset + 8)
        try:
            ns, ident = r.node_id()
        except Short:
            return True
        return not (ns == 0 and isinstance(ident, int) and service_of(ident)[0] is not None)

    def _encrypted_chunk(self, c: Chunk, base: dict[str, Any], direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        key = (int(direction), None)
        if c.chunk_type == "C":
            part = self._partials.setdefault(key, _Partial())
            part.chunks += 1
            part.size += c.size
            return
        part = self._partials.pop(key, None)
        if part is not None:
            base["message_size"] = part.size + c.size
            base["chunk_count"] = part.chunks + 1
        base["encrypted"] = True
        if c.message_type == "OPN":
            base["service"] = "OpenSecureChannel"
        outcome = "failure" if c.chunk_type == "A" else None
        out.append(self.emit(meta, direction, action=action_of(c.message_type, base.get("service")), outcome=outcome, opcua=Opcua(**base)))

    def _message(self, mt: str, base: dict[str, Any], body: bytes, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        reads = None
        if self._identity_reads:
            req = self._pending.peek(base["request_id"])
            reads = req.reads if req is not None else None
        fields, problem = decode_service(body, reads)
        if mt == "OPN" and "secure_channel_id" in fields and base.get("secure_channel_id") not in (None, 0):
            fields.pop("secure_channel_id")  # the header's id is the one in force for this message
        base.update(fields)
        if mt == "OPN" and fields.get("service") == "OpenSecureChannel" and not fields.get("is_response"):
            self._mode = fields.get("security_mode", self._mode)
        if mt == "OPN" and self._policy == "None":
            base["security_mode"] = base.get("security_mode") or "None"
        service = base.get("service")
        action = action_of(mt, service)
        is_response = base.get("is_response")
        if is_response is None:
            is_response = direction is Direction.TO_CLIENT and mt != "CLO"
        rid = base["request_id"]
        duration = None
        outcome = None
        unsolicited = False
        if is_response:
            req = self._pending.match(rid)
            if req is not None:
                duration = max(time_ns(meta) - req.time_ns, 0)
                base["request_frame"] = req.frame
                action = req.action if service in (None, "ServiceFault") else action
            elif self._saw_start:
                unsolicited = True
            code = base.get("status_code")
            outcome = "failure" if service == "ServiceFault" or (code is not None and code >= 0x80000000) else "success"
        elif mt != "CLO":
            reads = identity_reads(base.get("nodes")) if service == "Read" else None
            self._identity_reads = self._identity_reads or reads is not None
            if self._pending.add(rid, _Request(meta.frame, time_ns(meta), action, service, reads), replace=True):  # a reused id replaces the older request
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} requests without a response: oldest dropped"))
        ev = Opcua(**base)
        out.append(self.emit(meta, direction, action=action, outcome=outcome, duration=duration, opcua=ev))
        if problem:
            out.append(self.anomaly(meta, direction, AnomalyCode.INVALID_PDU, f"{base.get('service_name') or mt}: {problem}", opcua=_header(ev)))
        if unsolicited:
            out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending request with request id {rid}", opcua=_header(ev)))


def _header(ev: Opcua) -> Opcua:
    return Opcua(message_type=ev.message_type, chunk_type=ev.chunk_type, secure_channel_id=ev.secure_channel_id,
                 request_id=ev.request_id, service_type_id=ev.service_type_id, service_name=ev.service_name, service=ev.service)
