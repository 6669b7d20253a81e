"""IEC 104 per-connection state: buffering per direction, N(S) tracking, activation/confirmation pairing."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from pipeline.protocols.iec104 import Iec104
from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, Parsed, make_event
from .constants import COT_CONFIRMATIONS, COT_REQUESTS, MAX_PENDING, AnomalyCode, action_of
from .parser import HEADER_ONLY, parse

__all__ = ["Iec104Flow"]

DATASET = "iec104"
# After this many bad APCI headers in a row (no good APDU between), a direction is not IEC 104.
# Resync on 0x68 is cheap and real stacks recover from garbage, so this is generous.
MAX_BAD_HEADERS = 16
_CLOSE_SEQ = 900
_SEQ_MOD = 32768
_FAILED_COT = frozenset({44, 45, 46, 47})


@dataclass(slots=True)
class _Activation:
    frame: int
    time_ns: int
    action: str


@dataclass(slots=True)
class _Side:
    buf: bytearray = field(default_factory=bytearray)
    bad_headers: int = 0
    stopped: bool = False
    next_ns: int | None = None  # expected N(S) of the next I-format APDU


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


def _ns(meta: FrameMeta) -> int:
    t = meta.time
    return ((t - (_EPOCH if t.tzinfo else _EPOCH_NAIVE)) // _US) * 1000


def _header(p: Iec104) -> Iec104:
    """The identifying fields of an APDU, for the anomaly event that refers to it."""
    return Iec104(
        apci_type=p.apci_type, apdu_length=p.apdu_length, send_seq=p.send_seq, recv_seq=p.recv_seq,
        u_function_code=p.u_function_code, u_function_name=p.u_function_name, type_id=p.type_id,
        type_name=p.type_name, cot=p.cot, cot_name=p.cot_name, common_address=p.common_address, ioa=p.ioa,
    )  # fmt: skip


class Iec104Flow:
    """One IEC 104 connection. `feed` in-order bytes of either direction; one event per APDU."""

    MAX_PENDING = MAX_PENDING

    def __init__(self) -> None:
        self._sides = (_Side(), _Side())
        # (sender of the activation, common address, ioa, type id) -> activation; oldest first
        self._pending: OrderedDict[tuple[int, int, int, int], _Activation] = OrderedDict()
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
            return [self._anomaly(meta, direction, AnomalyCode.INVALID_ASDU, f"decoder error: {type(exc).__name__}: {exc}", None)]

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        """Bytes were lost in `direction`: drop the partial APDU they cut and forget the expected N(S)."""
        self._last_meta = meta
        side = self._sides[direction]
        out: list[Event] = []
        if side.buf and not side.stopped:
            out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"{nbytes} byte(s) lost in capture: dropped a partial APDU of {len(side.buf)} byte(s)", None))
        side.buf.clear()
        side.bad_headers = 0
        side.next_ns = None
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        meta = meta or self._last_meta
        out: list[Event] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            side = self._sides[direction]
            if side.buf and not side.stopped and meta is not None:
                out.append(self._anomaly(meta, direction, AnomalyCode.TRUNCATED_PDU, f"connection ended with {len(side.buf)} byte(s) of a partial APDU", None, close=True))
            side.buf.clear()
        self._pending.clear()
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

    def _anomaly(self, meta: FrameMeta, direction: Direction, code: AnomalyCode | str, message: str | None, pdu: Iec104 | None, close: bool = False) -> Event:
        value = code.value if isinstance(code, AnomalyCode) else code
        return make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta, close), action="anomaly", anomaly=Anomaly(code=value, message=message), iec104=pdu)

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
            p = parse(work[off:])
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
        if not isinstance(pdu, Iec104):  # bad start or length
            header = p.extra.get(HEADER_ONLY)
            side.bad_headers += 1
            out.append(self._anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_START.value, p.anomaly_message, header if isinstance(header, Iec104) else None))
            if side.bad_headers >= MAX_BAD_HEADERS:
                side.stopped = True
                side.buf.clear()
                out.append(self._anomaly(meta, direction, AnomalyCode.NOT_IEC104, f"{side.bad_headers} bad APCI headers in a row: stopped decoding this direction", None))
            return
        side.bad_headers = 0
        gap_msg: str | None = None
        if pdu.apci_type == "I" and pdu.send_seq is not None:
            if side.next_ns is not None and pdu.send_seq != side.next_ns:
                gap_msg = f"N(S) {pdu.send_seq}, expected {side.next_ns}"
            side.next_ns = (pdu.send_seq + 1) % _SEQ_MOD
        if pdu.apci_type == "U":
            action = "keepalive" if (pdu.u_function_code or 0) & 0xC0 else "session"
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, iec104=pdu))
        elif pdu.apci_type == "S" or pdu.type_id is None:
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action="session", iec104=pdu))
        else:
            self._asdu(pdu, direction, meta, out)
        if p.anomaly:
            out.append(self._anomaly(meta, direction, p.anomaly, p.anomaly_message, _header(pdu)))
        if gap_msg:
            out.append(self._anomaly(meta, direction, AnomalyCode.SEQUENCE_GAP, gap_msg, _header(pdu)))

    def _asdu(self, pdu: Iec104, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        tid, cot = pdu.type_id or 0, pdu.cot or 0
        action = action_of(tid, cot, pdu.select, direction is Direction.TO_SERVER)
        if pdu.info_direction == "monitor" or tid == 70:
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, iec104=pdu))
            return
        key = (int(direction), pdu.common_address or 0, pdu.ioa or 0, tid)
        if cot in COT_REQUESTS:
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, iec104=pdu))
            self._pending.pop(key, None)
            self._pending[key] = _Activation(meta.frame, _ns(meta), action)
            if len(self._pending) > self.MAX_PENDING:
                self._pending.popitem(last=False)
                if not self._flooded:
                    self._flooded = True
                    out.append(self._anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} activations without confirmation: oldest dropped", _header(pdu)))
            return
        if cot in COT_CONFIRMATIONS:
            rkey = (1 - int(direction), key[1], key[2], key[3])
            act = self._pending.get(rkey)
            if act is not None and cot == 10 or act is not None and cot in _FAILED_COT:
                del self._pending[rkey]  # terminated (or rejected): nothing more will come
            elif act is not None and pdu.negative:
                del self._pending[rkey]
            if self._flooded and len(self._pending) < self.MAX_PENDING // 2:
                self._flooded = False
            outcome = "failure" if pdu.negative or cot in _FAILED_COT else "success"
            if act is None:
                out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, outcome=outcome, iec104=pdu))
                out.append(self._anomaly(meta, direction, AnomalyCode.UNSOLICITED_CONFIRMATION, f"{pdu.cot_name} of {pdu.type_name} for common address {pdu.common_address} ioa {pdu.ioa} with no pending activation", _header(pdu)))
                return
            pdu = msgspec.structs.replace(pdu, request_frame=act.frame)
            out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=act.action, outcome=outcome, duration=max(_ns(meta) - act.time_ns, 0), iec104=pdu))
            return
        out.append(make_event(meta, direction, dataset=DATASET, seq=self._next_seq(meta), action=action, iec104=pdu))
