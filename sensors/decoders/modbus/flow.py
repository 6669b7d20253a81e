"""Modbus/TCP per-connection state: buffering per direction, request/response pairing, anomaly events."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.schema import Event, Modbus

from ..base import Direction, FrameMeta, Parsed
from ..stream import Pending, StreamFlow, time_ns
from .constants import MAX_PENDING, AnomalyCode, action_of
from .parser import HEADER_ONLY, parse

__all__ = ["ModbusFlow"]


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    function_code: int
    action: str
    quantity: int | None


class ModbusFlow(StreamFlow):
    """One Modbus/TCP connection. `feed` in-order bytes of either direction; one event per ADU."""

    DATASET = "modbus"
    MAX_PENDING = MAX_PENDING
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    INVALID = AnomalyCode.INVALID_PDU.value
    NOT_PROTOCOL = AnomalyCode.NOT_MODBUS.value
    UNIT, HEADER = "ADU", "MBAP"

    def __init__(self) -> None:
        super().__init__()
        self._pending: Pending[tuple[int, int], _Request] = Pending(self.MAX_PENDING)

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse(data, direction)

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._pending.clear()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        pdu = p.pdu
        if not isinstance(pdu, Modbus):  # bad MBAP header
            header = p.extra.get(HEADER_ONLY)
            code = p.anomaly or AnomalyCode.INVALID_LENGTH.value
            out.append(self.anomaly(meta, direction, code, p.anomaly_message, modbus=header if isinstance(header, Modbus) else None))
            return False
        if direction is Direction.TO_SERVER:
            self._request(pdu, meta, out)
        else:
            self._response(pdu, meta, out)
        if p.anomaly:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, modbus=_header(pdu)))
        return True

    def _request(self, pdu: Modbus, meta: FrameMeta, out: list[Event]) -> None:
        action = action_of(pdu.function_code, pdu.subfunction_code)
        out.append(self.emit(meta, Direction.TO_SERVER, action=action, modbus=pdu))
        req = _Request(meta.frame, time_ns(meta), pdu.function_code, action, pdu.quantity)
        if self._pending.add((pdu.transaction_id, pdu.unit_id), req):
            msg = f"more than {self.MAX_PENDING} requests without a response: oldest dropped"
            out.append(self.anomaly(meta, Direction.TO_SERVER, AnomalyCode.FLOODED, msg, modbus=_header(pdu)))

    def _response(self, pdu: Modbus, meta: FrameMeta, out: list[Event]) -> None:
        req = self._pending.match((pdu.transaction_id, pdu.unit_id))
        outcome = "failure" if pdu.exception_code is not None else "success"
        mismatch: str | None = None
        if req is None:
            action = action_of(pdu.function_code, pdu.subfunction_code)
            duration = None
        else:
            action = req.action
            duration = max(time_ns(meta) - req.time_ns, 0)
            changes: dict[str, object] = {"request_frame": req.frame}
            if req.function_code != pdu.function_code:
                mismatch = f"response function code {pdu.function_code} to a request with {req.function_code}"
            elif pdu.function_code in (1, 2) and pdu.values is not None and req.quantity is not None and pdu.exception_code is None:
                if len(pdu.values) < req.quantity:
                    mismatch = f"response carries {len(pdu.values)} bits for a request of {req.quantity}"
                changes["values"] = pdu.values[: req.quantity]
                changes["quantity"] = req.quantity
            pdu = msgspec.structs.replace(pdu, **changes)
        out.append(self.emit(meta, Direction.TO_CLIENT, action=action, outcome=outcome, duration=duration, modbus=pdu))
        if req is None:
            msg = f"no pending request with transaction id {pdu.transaction_id}, unit id {pdu.unit_id}"
            out.append(self.anomaly(meta, Direction.TO_CLIENT, AnomalyCode.UNSOLICITED_RESPONSE, msg, modbus=_header(pdu)))
        elif mismatch:
            out.append(self.anomaly(meta, Direction.TO_CLIENT, AnomalyCode.VALUE_MISMATCH, mismatch, modbus=_header(pdu)))


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
