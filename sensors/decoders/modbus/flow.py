"""Modbus/TCP per-connection state: buffering per direction, request/response pairing, anomaly events."""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field

import msgspec

from pipeline.schema import Anomaly, Event, Modbus

from ..base import Direction, FrameMeta, Parsed, make_event
from .constants import MAX_PENDING, AnomalyCode, action_of
from .parser import HEADER_ONLY, parse

__all__ = ["ModbusFlow"]

DATASET = "modbus"
# After this many bad MBAP headers in a row (no good ADU between), a direction is not Modbus
# (TLS, RPC or a scanner on port 502): report it once and stop decoding that direction.
MAX_BAD_HEADERS = 4
# Events emitted by close() get seq numbers from here: the closing frame may belong to another flow.
_CLOSE_SEQ = 900


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    function_code: int
    action: str
    quantity: int | None
    done: bool = False


@dataclass(slots=True)
class _Side:
    buf: bytearray = field(default_factory=bytearray)
    bad_headers: int = 0
    stopped: bool = False


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


def _ns(meta: FrameMeta) -> int:
    """Capture time in integer nanoseconds (exact: no float rounding in durations)."""
    t = meta.time
    return ((t - (_EPOCH if t.tzinfo else _EPOCH_NAIVE)) // _US) * 1000


class ModbusFlow:
    """One Modbus/TCP connection. `feed` in-order bytes of either direction; one event per ADU."""

    MAX_PENDING = MAX_PENDING

    def __init__(self) -> None:
        self._sides = (_Side(), _Side())
        self._pending: dict[tuple[int, int], deque[_Request]] = {}
        self._order: deque[_Request] = deque()  # every pending request, oldest first (lazy removal)
        self._npending = 0
        self._flooded = False  # re-armed when the backlog falls below half of MAX_PENDING
        self._seq_frame = -1
        self._seq = 0
        self._last_meta: FrameMeta | None = None

    # ------------------------------------------------------------ FlowDecoder

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises; a bug becomes data, not a crash
            side = self._sides[direction]
            side.buf.clear()
            return [self._anomaly(meta, direction, AnomalyCode.INVALID_PDU, f"decoder error: {type(exc).__name__}: {exc}", None)]

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        """Bytes were lost in `direction`: drop the partial ADU they cut, keep pending requests."""
        self._last_meta = meta
        side = self._sides[direction]
        out: list[Event] = []
        if side.buf and not side.stopped:
            out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"{nbytes} byte(s) lost in capture: dropped a partial ADU of {len(side.buf)} byte(s)", None))
        side.buf.clear()
        side.bad_headers = 0
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        meta = meta or self._last_meta
        out: list[Event] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            side = self._sides[direction]
            if side.buf and not side.stopped and meta is not None:
                n = len(side.buf)
                out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"connection ended with {n} byte(s) of a partial ADU", None, close=True))
            side.buf.clear()
        self._pending.clear()
        self._order.clear()
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

    def _anomaly(self, meta: FrameMeta, direction: Direction, code: AnomalyCode | str, message: str | None, modbus: Modbus | None, close: bool = False) -> Event:
        value = code.value if isinstance(code, AnomalyCode) else code
        return make_event(
            meta,
            direction,
            dataset=DATASET,
            seq=self._next_seq(meta, close),
            action="anomaly",
            anomaly=Anomaly(code=value, message=message),
            modbus=modbus,
        )

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
        off = 0
        end = len(work)
        while off < end:
            p = parse(work[off:], direction)
            if p.consumed <= 0:
                break
            off += min(p.consumed, end - off)
            self._handle(p, direction, meta, out)
            if side.stopped:
                return out
        if off < end:
            side.buf += work[off:]
        return out

    def _handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        side = self._sides[direction]
        pdu = p.pdu
        if not isinstance(pdu, Modbus):  # bad MBAP header
            header = p.extra.get(HEADER_ONLY)
            side.bad_headers += 1
            out.append(self._anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_LENGTH.value, p.anomaly_message, header if isinstance(header, Modbus) else None))
            if side.bad_headers >= MAX_BAD_HEADERS:
                side.stopped = True
                side.buf.clear()
                out.append(self._anomaly(meta, direction, AnomalyCode.NOT_MODBUS, f"{side.bad_headers} bad MBAP headers in a row: stopped decoding this direction", None))
            return
        side.bad_headers = 0
        if direction is Direction.TO_SERVER:
            self._request(pdu, meta, out)
        else:
            self._response(pdu, meta, out)
        if p.anomaly:
            out.append(self._anomaly(meta, direction, p.anomaly, p.anomaly_message, _header(pdu)))

    def _request(self, pdu: Modbus, meta: FrameMeta, out: list[Event]) -> None:
        action = action_of(pdu.function_code, pdu.subfunction_code)
        out.append(make_event(meta, Direction.TO_SERVER, dataset=DATASET, seq=self._next_seq(meta), action=action, modbus=pdu))
        req = _Request(meta.frame, _ns(meta), pdu.function_code, action, pdu.quantity)
        self._pending.setdefault((pdu.transaction_id, pdu.unit_id), deque()).append(req)
        self._order.append(req)
        self._npending += 1
        if self._npending > self.MAX_PENDING:
            self._drop_oldest()
            # Once per episode: a master that never gets answers would otherwise flag every request.
            if not self._flooded:
                self._flooded = True
                out.append(self._anomaly(meta, Direction.TO_SERVER, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} requests without a response: oldest dropped", _header(pdu)))

    def _drop_oldest(self) -> None:
        while self._order:
            old = self._order.popleft()
            if old.done:
                continue
            old.done = True
            self._npending -= 1
            for key, q in self._pending.items():
                if q and q[0] is old:
                    q.popleft()
                    if not q:
                        del self._pending[key]
                    break
            return

    def _match(self, pdu: Modbus) -> _Request | None:
        key = (pdu.transaction_id, pdu.unit_id)
        q = self._pending.get(key)
        if not q:
            return None
        req = q.popleft()  # ids reused while pending: first in, first answered
        if not q:
            del self._pending[key]
        req.done = True
        self._npending -= 1
        if self._flooded and self._npending < self.MAX_PENDING // 2:
            self._flooded = False
        if len(self._order) > 4 * self.MAX_PENDING:  # keep the lazy order queue bounded
            self._order = deque(r for r in self._order if not r.done)
        return req

    def _response(self, pdu: Modbus, meta: FrameMeta, out: list[Event]) -> None:
        req = self._match(pdu)
        outcome = "failure" if pdu.exception_code is not None else "success"
        mismatch: str | None = None
        if req is None:
            action = action_of(pdu.function_code, pdu.subfunction_code)
            duration = None
        else:
            action = req.action
            duration = max(_ns(meta) - req.time_ns, 0)
            changes: dict[str, object] = {"request_frame": req.frame}
            if req.function_code != pdu.function_code:
                mismatch = f"response function code {pdu.function_code} to a request with {req.function_code}"
            elif pdu.function_code in (1, 2) and pdu.values is not None and req.quantity is not None and pdu.exception_code is None:
                if len(pdu.values) < req.quantity:
                    mismatch = f"response carries {len(pdu.values)} bits for a request of {req.quantity}"
                changes["values"] = pdu.values[: req.quantity]
                changes["quantity"] = req.quantity
            pdu = msgspec.structs.replace(pdu, **changes)
        out.append(make_event(meta, Direction.TO_CLIENT, dataset=DATASET, seq=self._next_seq(meta), action=action, outcome=outcome, duration=duration, modbus=pdu))
        if req is None:
            out.append(self._anomaly(meta, Direction.TO_CLIENT, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending request with transaction id {pdu.transaction_id}, unit id {pdu.unit_id}", _header(pdu)))
        elif mismatch:
            out.append(self._anomaly(meta, Direction.TO_CLIENT, AnomalyCode.VALUE_MISMATCH, mismatch, _header(pdu)))


def _header(pdu: Modbus) -> Modbus:
    """The identifying fields of an ADU, for the anomaly event that refers to it."""
    return Modbus(
        transaction_id=pdu.transaction_id,
        unit_id=pdu.unit_id,
        function_code=pdu.function_code,
        function_name=pdu.function_name,
        message_type=pdu.message_type,
        protocol_id=pdu.protocol_id,
        length=pdu.length,
        request_frame=pdu.request_frame,
    )
