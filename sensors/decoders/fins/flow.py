"""FINS per-flow state: one event per FINS frame (UDP datagram or FINS/TCP message), commands paired with responses by SID."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.protocols.fins import Fins
from pipeline.schema import Event

from ..base import Direction, FrameMeta, Parsed
from ..stream import EventNumbering, Pending, StreamFlow, time_ns
from .constants import COMMANDS, MAX_PENDING, AnomalyCode
from .parser import FinsFrame, TcpMessage, parse_frame, parse_response_data, parse_tcp

__all__ = ["FinsUdpFlow", "FinsTcpFlow", "action_of"]

DATASET = "fins"
_CARRY = ("memory_area_code", "memory_area_name", "address", "program_number", "parameter_area_code", "parameter_area_name", "file_name", "run_mode")


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str
    f: dict[str, Any]


def action_of(f: dict[str, Any]) -> str:
    code = f.get("command_code")
    if code is None:
        return {0: "connect", 1: "connect", 6: "connect"}.get(f.get("tcp_command", -1), "unknown")
    action = COMMANDS[code][1] if code in COMMANDS else "unknown"
    if code == 0x220C:  # program area file transfer: parameter 0 = file -> program area (download), 1 = program area -> file
        action = "program_upload" if f.get("parameter") == 1 else "program_download"
    return action


class _FinsFrames(EventNumbering):
    """What both transports share: one FINS frame -> events, command/response pairing."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    INVALID = AnomalyCode.INVALID_PDU.value

    def _init_pending(self) -> None:
        # Keyed by command code, oldest first: some PLCs and simulators answer with another SID
        # than the command's, and a client rarely has two commands of one code outstanding.
        self._pending: Pending[int, _Request] = Pending(self.MAX_PENDING)

    def _frame(self, fr: FinsFrame, extra: dict[str, Any], direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        f = {**extra, **fr.f}
        if "command_code" not in f:
            out.append(self.anomaly(meta, direction, fr.anomaly or AnomalyCode.INVALID_HEADER.value, fr.anomaly_message, fins=Fins(**extra) if extra else None))
            return
        action = action_of(f)
        duration = outcome = None
        unsolicited = False
        key = f["command_code"]
        if f["message_type"] == "command":
            if f.get("response_required") and self._pending.add(key, _Request(meta.frame, time_ns(meta), action, f)):
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} FINS commands without a response: oldest dropped"))
        else:
            req = self._pending.match(key)
            if req is not None:
                duration = max(time_ns(meta) - req.time_ns, 0)
                f["request_frame"] = req.frame
                action = req.action
                for k in _CARRY:
                    if k in req.f and k not in f:
                        f[k] = req.f[k]
            else:
                unsolicited = True
            f.update(parse_response_data(f["command_code"], fr.data, req.f if req else None))
            outcome = "success" if (f.get("end_code", 0) & 0x7F7F) in (0, 0x0001) else "failure"
        out.append(self.emit(meta, direction, action=action, outcome=outcome, duration=duration, fins=Fins(**{k: v for k, v in f.items() if v is not None})))
        if unsolicited:
            out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending {f['command_name']} command with SID {f['sid']}", fins=_header(f)))
        if fr.anomaly:
            out.append(self.anomaly(meta, direction, fr.anomaly, fr.anomaly_message, fins=_header(f)))


class FinsUdpFlow(_FinsFrames):
    """The datagrams between two FINS endpoints (UDP 9600). `feed` one datagram at a time."""

    def __init__(self) -> None:
        self._init_pending()

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            if not len(data):
                return []
            out: list[Event] = []
            self._frame(parse_frame(bytes(data)), {}, direction, meta, out)
            return out
        except Exception as exc:  # a decoder never raises
            return [self.error(meta, direction, exc)]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        self._pending.clear()
        return []


class FinsTcpFlow(_FinsFrames, StreamFlow):
    """One FINS/TCP connection (TCP 9600): node address handshake, then FINS frames in Frame Send messages."""

    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    NOT_PROTOCOL = AnomalyCode.NOT_FINS.value
    HEADER = "FINS/TCP"
    UNIT = "FINS/TCP message"

    def __init__(self) -> None:
        StreamFlow.__init__(self)
        self._init_pending()

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse_tcp(data)

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._pending.clear()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        msg = p.pdu
        if not isinstance(msg, TcpMessage):
            out.append(self.anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_TCP_HEADER.value, p.anomaly_message))
            return False
        f = msg.f
        if msg.frame is not None and f["tcp_command"] == 2:
            self._frame(parse_frame(msg.frame), f, direction, meta, out)
        else:
            outcome = "failure" if f["tcp_error_code"] else ("success" if f["tcp_command"] == 1 else None)
            if f["tcp_command"] == 3 and msg.frame:
                fr = parse_frame(msg.frame)
                f = {**f, **{k: v for k, v in fr.f.items() if k in ("command_code", "command_name", "sid", "dna", "da1", "da2", "sna", "sa1", "sa2")}}
                outcome = "failure"
            out.append(self.emit(meta, direction, action=action_of({k: v for k, v in f.items() if k != "command_code"}) if f["tcp_command"] != 3 else "unknown", outcome=outcome, fins=Fins(**f)))
        if f["tcp_error_code"]:
            out.append(self.anomaly(meta, direction, AnomalyCode.TCP_ERROR, f"FINS/TCP error code {f['tcp_error_code']} ({f['tcp_error_name']})", fins=Fins(tcp_command=f["tcp_command"], tcp_command_name=f["tcp_command_name"], tcp_error_code=f["tcp_error_code"], tcp_error_name=f["tcp_error_name"])))
        return True


def _header(f: dict[str, Any]) -> Fins:
    keys = ("message_type", "sid", "command_code", "command_name", "end_code", "end_code_name", "request_frame")
    return Fins(**{k: f[k] for k in keys if f.get(k) is not None})
