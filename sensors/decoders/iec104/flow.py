"""IEC 104 per-connection state: buffering per direction, N(S) tracking, activation/confirmation pairing."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.protocols.iec104 import Iec104
from pipeline.schema import Event

from ..base import Direction, FrameMeta, Parsed
from ..stream import Pending, Side, StreamFlow, time_ns
from .constants import COT_CONFIRMATIONS, COT_REQUESTS, MAX_PENDING, AnomalyCode, action_of
from .parser import HEADER_ONLY, parse

__all__ = ["Iec104Flow"]

DATASET = "iec104"
_SEQ_MOD = 32768
_FAILED_COT = frozenset({44, 45, 46, 47})


@dataclass(slots=True)
class _Activation:
    frame: int
    time_ns: int
    action: str


@dataclass(slots=True)
class _Side(Side):
    next_ns: int | None = None  # expected N(S) of the next I-format APDU


def _header(p: Iec104) -> Iec104:
    """The identifying fields of an APDU, for the anomaly event that refers to it."""
    return Iec104(
        apci_type=p.apci_type, apdu_length=p.apdu_length, send_seq=p.send_seq, recv_seq=p.recv_seq,
        u_function_code=p.u_function_code, u_function_name=p.u_function_name, type_id=p.type_id,
        type_name=p.type_name, cot=p.cot, cot_name=p.cot_name, common_address=p.common_address, ioa=p.ioa,
    )  # fmt: skip


class Iec104Flow(StreamFlow):
    """One IEC 104 connection. `feed` in-order bytes of either direction; one event per APDU."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    # Resync on 0x68 is cheap and real stacks recover from garbage, so this is generous.
    MAX_BAD = 16
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    INVALID = AnomalyCode.INVALID_ASDU.value
    NOT_PROTOCOL = AnomalyCode.NOT_IEC104.value
    UNIT, HEADER = "APDU", "APCI"
    SIDE = _Side
    sides: tuple[_Side, _Side]

    def __init__(self) -> None:
        super().__init__()
        # (sender of the activation, common address, ioa, type id) -> activation; a repeated one replaces it
        self._pending: Pending[tuple[int, int, int, int], _Activation] = Pending(self.MAX_PENDING)

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse(data)

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        """Bytes were lost in `direction`: drop the partial APDU they cut and forget the expected N(S)."""
        self.sides[direction].next_ns = None
        return super().gap(direction, nbytes, meta)

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._pending.clear()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        side = self.sides[direction]
        pdu = p.pdu
        if not isinstance(pdu, Iec104):  # bad start or length
            header = p.extra.get(HEADER_ONLY)
            out.append(self.anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_START.value, p.anomaly_message, iec104=header if isinstance(header, Iec104) else None))
            return False
        gap_msg: str | None = None
        if pdu.apci_type == "I" and pdu.send_seq is not None:
            if side.next_ns is not None and pdu.send_seq != side.next_ns:
                gap_msg = f"N(S) {pdu.send_seq}, expected {side.next_ns}"
            side.next_ns = (pdu.send_seq + 1) % _SEQ_MOD
        if pdu.apci_type == "U":
            action = "keepalive" if (pdu.u_function_code or 0) & 0xC0 else "session"
            out.append(self.emit(meta, direction, action=action, iec104=pdu))
        elif pdu.apci_type == "S" or pdu.type_id is None:
            out.append(self.emit(meta, direction, action="session", iec104=pdu))
        else:
            self._asdu(pdu, direction, meta, out)
        if p.anomaly:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, iec104=_header(pdu)))
        if gap_msg:
            out.append(self.anomaly(meta, direction, AnomalyCode.SEQUENCE_GAP, gap_msg, iec104=_header(pdu)))
        return True

    def _asdu(self, pdu: Iec104, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        tid, cot = pdu.type_id or 0, pdu.cot or 0
        action = action_of(tid, cot, pdu.select, direction is Direction.TO_SERVER)
        if pdu.info_direction == "monitor" or tid == 70:
            out.append(self.emit(meta, direction, action=action, iec104=pdu))
            return
        key = (int(direction), pdu.common_address or 0, pdu.ioa or 0, tid)
        if cot in COT_REQUESTS:
            out.append(self.emit(meta, direction, action=action, iec104=pdu))
            if self._pending.add(key, _Activation(meta.frame, time_ns(meta), action), replace=True):
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} activations without confirmation: oldest dropped", iec104=_header(pdu)))
            return
        if cot in COT_CONFIRMATIONS:
            rkey = (1 - int(direction), key[1], key[2], key[3])
            act = self._pending.peek(rkey)
            if act is not None and (cot == 10 or cot in _FAILED_COT or pdu.negative):
                self._pending.match(rkey)  # terminated, rejected or refused: nothing more will come
            outcome = "failure" if pdu.negative or cot in _FAILED_COT else "success"
            if act is None:
                out.append(self.emit(meta, direction, action=action, outcome=outcome, iec104=pdu))
                out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_CONFIRMATION, f"{pdu.cot_name} of {pdu.type_name} for common address {pdu.common_address} ioa {pdu.ioa} with no pending activation", iec104=_header(pdu)))
                return
            pdu = msgspec.structs.replace(pdu, request_frame=act.frame)
            out.append(self.emit(meta, direction, action=act.action, outcome=outcome, duration=max(time_ns(meta) - act.time_ns, 0), iec104=pdu))
            return
        out.append(self.emit(meta, direction, action=action, iec104=pdu))
