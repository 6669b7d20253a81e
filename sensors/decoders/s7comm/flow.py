"""S7comm per-connection state: TPKT buffering, COTP DT reassembly, job/response pairing, anomaly events.

The flow is the ISO transport of TCP 102, shared with MMS: the COTP set-up of a connection is held
until its first data payload shows what it carries, so an MMS connection's CR/CC are mms events.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.protocols.mms import Mms
from pipeline.protocols.s7comm import S7comm, S7Item
from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, Parsed, make_event
from ..mms import MmsSession, looks_like_mms, looks_like_session
from ..stream import Side, StreamFlow, time_ns
from .constants import (
    COTP_ACTIONS,
    FUNCTION_ACTIONS,
    GROUP_ACTIONS,
    MAX_PENDING,
    MAX_REASSEMBLY,
    PI_SERVICES,
    S7_PROTOCOL_ID,
    S7PLUS_ACTIONS,
    S7PLUS_PROTOCOL_ID,
    USERDATA_ACTIONS,
    AnomalyCode,
)
from .parser import Cotp, S7Pdu, parse_cotp, parse_s7, parse_s7plus, parse_tpkt, szl_response

__all__ = ["S7commFlow"]

DATASET = "s7comm"
MMS = "mms"
MAX_SESSIONS = 64  # block transfer sessions remembered (upload id -> block)
MAX_HELD = 16  # COTP connection events held until the connection's first data shows what it carries
# COTP fields an MMS event carries (the S7 reading of the TSAP, rack/slot/connection type, is not MMS's)
_MMS_COTP = ("cotp_pdu_code", "cotp_pdu_name", "src_ref", "dst_ref", "cotp_class", "src_tsap", "dst_tsap", "tpdu_size", "disconnect_reason")


@dataclass(slots=True)
class _Held:
    """A COTP connection event (or a COTP anomaly) of a connection whose payload protocol is not known yet.

    Its index within its frame is taken when it happens, so its id is the same whichever dataset it
    is finally emitted under.
    """

    meta: FrameMeta
    direction: Direction
    seq: int
    action: str
    outcome: str | None
    f: dict[str, Any] | None  # the COTP fields (protocol "cotp"); None on a TPKT anomaly
    anomaly: Anomaly | None = None


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    rosctr: int
    action: str
    f: dict[str, Any]
    items: list[dict[str, Any]] | None


@dataclass(slots=True)
class _Side(Side):
    frag: bytearray = field(default_factory=bytearray)  # COTP DT payloads until EOT
    s7plus_cont: bool = False  # an S7comm-plus message without trailer: next PDUs continue it
    unknown_reported: bool = False


def action_of(f: dict[str, Any]) -> str:
    """The protocol-independent event.action of a request (responses take their request's)."""
    if f.get("protocol") == "s7comm-plus":
        return S7PLUS_ACTIONS.get(f.get("function_code", -1), "unknown") if f.get("function_code") is not None else ("publish" if f.get("opcode") == 0x33 else "unknown")
    if f.get("rosctr") == 7:
        g, s = f.get("function_group", -1), f.get("subfunction_code", -1)
        return USERDATA_ACTIONS.get((g, s)) or GROUP_ACTIONS.get(g) or "unknown"
    fc = f.get("function_code")
    if fc == 0x28:
        svc = f.get("pi_service") or ""
        return PI_SERVICES.get(svc, ("unknown", ""))[0]
    if fc is None:
        return "unknown"
    return FUNCTION_ACTIONS.get(fc, "unknown")


def _struct(f: dict[str, Any], items: list[dict[str, Any]] | None) -> S7comm:
    kw = {k: v for k, v in f.items() if v is not None}
    if items is not None:
        kw["items"] = [S7Item(**{k: v for k, v in it.items() if v is not None}) for it in items]
        areas = sorted({it["area_name"] for it in items if it.get("area_name")})
        if areas:
            kw["areas"] = areas
    return S7comm(**kw)


class S7commFlow(StreamFlow):
    """One ISO-on-TCP connection. `feed` in-order bytes of either direction; one event per S7 message."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    INVALID = AnomalyCode.INVALID_PDU.value
    NOT_PROTOCOL = AnomalyCode.NOT_TPKT.value
    HEADER = "TPKT"
    GAP_MESSAGE = "{nbytes} byte(s) lost in capture: dropped {held} buffered byte(s)"
    SIDE = _Side
    sides: tuple[_Side, _Side]

    def __init__(self) -> None:
        super().__init__()
        # Not a `Pending`: a reused PDU reference replaces the request, userdata answers are also
        # matched by function group, and the flood signal is raised once per connection.
        self._pending: OrderedDict[tuple[int, int], _Request] = OrderedDict()
        self._flooded = False
        self._sessions: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._mms: MmsSession | None = None  # MMS shares port 102: made at its first PDU
        # What the connection carries, from its first COTP data: "s7comm" (S7comm, S7comm-plus or
        # unknown data) or "mms". Until then its COTP connection events are held.
        self.carries: str | None = None
        self._held: list[_Held] = []

    @property
    def application_protocol(self) -> str | None:
        """The protocol this connection turned out to carry (the engine names its flow record by it); None until known."""
        return self.carries

    def anomaly(self, meta: FrameMeta, direction: Direction, code: Any, message: str | None, close: bool = False, **protocol: Any) -> Event:
        """On an MMS connection, transport anomalies (TPKT/COTP) are MMS events with the COTP fields."""
        if self.carries != MMS:
            return super().anomaly(meta, direction, code, message, close=close, **protocol)
        value = code.value if isinstance(code, enum.Enum) else code
        s7 = protocol.get("s7comm")
        mms = _mms_cotp(msgspec.structs.asdict(s7) if s7 is not None else {})
        return make_event(meta, direction, dataset=MMS, seq=self.next_seq(meta, close), action="anomaly", anomaly=Anomaly(code=value, message=message), mms=mms)

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse_tpkt(data)

    def held(self, direction: Direction) -> int:
        return super().held(direction) + len(self.sides[direction].frag)

    def drop(self, direction: Direction) -> None:
        """The partial TPKT and the COTP fragments not yet ended by EOT."""
        super().drop(direction)
        self.sides[direction].frag.clear()

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        self.sides[direction].s7plus_cont = False
        out: list[Event] = []
        self._flush(out)  # data lost: what the set-up led to is not known; emit it as it is
        return out + super().gap(direction, nbytes, meta)

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        held: list[Event] = []
        self._flush(held)  # a connection without data (refused, scanned): ISO transport events
        out[:0] = held
        self._pending.clear()
        if self._mms is not None:
            self._mms.close()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        if not isinstance(p.pdu, bytes):
            code = p.anomaly or AnomalyCode.INVALID_TPKT.value
            if self._held:  # a bad TPKT during a connection set-up being held belongs with it
                self._cotp_event(meta, direction, "anomaly", None, None, out, Anomaly(code=code, message=p.anomaly_message))
            else:
                out.append(self.anomaly(meta, direction, code, p.anomaly_message))
            self.sides[direction].frag.clear()
            return False
        self._tpdu(parse_cotp(p.pdu), direction, meta, out)
        return True

    def _tpdu(self, c: Cotp, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        side = self.sides[direction]
        if c.anomaly:
            head = {"protocol": "cotp", "cotp_pdu_code": c.code if c.code >= 0 else None, "cotp_pdu_name": c.name}
            self._cotp_event(meta, direction, "anomaly", None, head, out, Anomaly(code=c.anomaly, message=c.anomaly_message))
        if c.code != 0xF:
            if c.code in COTP_ACTIONS or (c.code == 0x7 and not c.anomaly):
                outcome = "failure" if c.code == 0x7 else ("success" if c.code in (0xD, 0xC) else None)
                action = COTP_ACTIONS.get(c.code, "anomaly" if c.code == 0x7 else "unknown")
                self._cotp_event(meta, direction, action, outcome, {"protocol": "cotp", "cotp_pdu_code": c.code, "cotp_pdu_name": c.name, **c.fields}, out)
            return
        if not c.eot:
            if len(side.frag) + len(c.payload) > MAX_REASSEMBLY:
                out.append(self.anomaly(meta, direction, AnomalyCode.REASSEMBLY_OVERFLOW, f"COTP fragments exceed {MAX_REASSEMBLY} bytes without EOT: dropped"))
                side.frag.clear()
                return
            side.frag += c.payload
            return
        payload = bytes(side.frag) + c.payload if side.frag else c.payload
        side.frag.clear()
        if not payload:
            return
        if payload[0] == S7_PROTOCOL_ID:
            self._release(DATASET, out)
            self._s7(parse_s7(payload), direction, meta, out)
        elif payload[0] == S7PLUS_PROTOCOL_ID:
            self._release(DATASET, out)
            self._s7plus(payload, direction, meta, out)
        elif looks_like_session(payload) or looks_like_mms(payload):
            self._release(MMS, out)
            if self._mms is None:
                self._mms = MmsSession(self.next_seq)
            self._mms.payload(payload, direction, meta, out)
        elif not side.unknown_reported:
            self._release(DATASET, out)
            side.unknown_reported = True
            out.append(self.anomaly(meta, direction, AnomalyCode.UNKNOWN_PROTOCOL, f"COTP data starting with 0x{payload[0]:02x} is neither S7comm (0x32), S7comm-plus (0x72) nor MMS (an ISO session SPDU or an MMS PDU); not reported again on this connection"))

    def _cotp_event(self, meta: FrameMeta, direction: Direction, action: str, outcome: str | None, f: dict[str, Any] | None, out: list[Event], anomaly: Anomaly | None = None) -> None:
        """A COTP connection TPDU (or a TPKT/COTP anomaly): held until the connection shows what it carries."""
        h = _Held(meta, direction, self.next_seq(meta), action, outcome, f, anomaly)
        if self.carries is None:
            self._held.append(h)
            if len(self._held) >= MAX_HELD:  # connection churn without data: stop waiting
                self._flush(out)
            return
        out.append(self._render(h, self.carries))

    def _flush(self, out: list[Event]) -> None:
        """Nothing showed what the held set-up led to: emit it as ISO transport (s7comm) events, undecided."""
        held, self._held = self._held, []
        out.extend(self._render(h, DATASET) for h in held)

    def _release(self, dataset: str, out: list[Event]) -> None:
        """The connection carries `dataset`: emit the held COTP events under it, and later ones too."""
        if self.carries is None:
            self.carries = dataset
        held, self._held = self._held, []
        out.extend(self._render(h, self.carries) for h in held)

    @staticmethod
    def _render(h: _Held, dataset: str) -> Event:
        kw: dict[str, Any]
        if h.f is None:
            kw = {}
        elif dataset == MMS:
            kw = {"mms": _mms_cotp(h.f)}
        else:
            kw = {"s7comm": _struct(h.f, None) if h.anomaly is None else S7comm(**{k: v for k, v in h.f.items() if v is not None})}
        return make_event(h.meta, h.direction, dataset=dataset, seq=h.seq, action=h.action, outcome=h.outcome, anomaly=h.anomaly, **kw)

    def _s7plus(self, payload: bytes, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        side = self.sides[direction]
        cont = side.s7plus_cont
        p = parse_s7plus(payload, continuation=cont)
        side.s7plus_cont = not p.complete
        if cont:
            return  # the rest of a message already reported
        f = p.f
        action = action_of(f)
        key = (0x72, f.get("sequence_number", -1))
        duration = None
        outcome = None
        if f.get("opcode") == 0x31 and "sequence_number" in f:
            self._remember(key, _Request(meta.frame, time_ns(meta), 0x72, action, f, None), direction, meta, out)
        elif f.get("opcode") in (0x32, 0x02) and "sequence_number" in f:
            req = self._pending.pop(key, None)
            if req is not None:
                duration = max(time_ns(meta) - req.time_ns, 0)
                f["request_frame"] = req.frame
                action = req.action
            outcome = "success"
        out.append(self.emit(meta, direction, action=action, s7comm=_struct(f, None), outcome=outcome, duration=duration))
        if p.anomaly:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, s7comm=S7comm(protocol="s7comm-plus", version=f.get("version"), opcode=f.get("opcode"))))

    def _remember(self, key: tuple[int, int], req: _Request, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        self._pending.pop(key, None)
        self._pending[key] = req
        if len(self._pending) > self.MAX_PENDING:
            self._pending.popitem(last=False)
            if not self._flooded:
                self._flooded = True
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} requests without a response: oldest dropped"))

    def _s7(self, pdu: S7Pdu, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        f = pdu.f
        rosctr = f.get("rosctr")
        items = pdu.items
        duration: int | None = None
        outcome: str | None = None
        ref = f.get("pdu_reference", -1)
        if rosctr == 1 or (rosctr == 7 and f.get("userdata_type") in ("request", "nc_request")):
            action = action_of(f)
            self._session_note(f)
            self._remember((rosctr, ref), _Request(meta.frame, time_ns(meta), rosctr, action, dict(f), items), direction, meta, out)
        elif rosctr in (2, 3) or (rosctr == 7 and f.get("userdata_type") in ("response", "nc_response")):
            req = self._match(rosctr, f)
            if req is not None:
                duration = max(time_ns(meta) - req.time_ns, 0)
                action = req.action
                f["request_frame"] = req.frame
                rf = req.f
                if f.get("function_code") is None and rf.get("function_code") is not None and rosctr == 2:
                    f["function_code"], f["function_name"] = rf["function_code"], rf.get("function_name")
                for k in ("filename", "block_type", "block_number", "block_name", "destination_filesystem", "pi_service", "start_mode", "pi_parameters"):
                    if k in rf and k not in f:
                        f[k] = rf[k]
                if req.items and items is not None:
                    items = [{**(req.items[i] if i < len(req.items) else {}), **{k: v for k, v in it.items() if k not in ("data_length", "data") or f.get("function_code") == 0x04}} for i, it in enumerate(items)]
                    if f.get("function_code") == 0x05:  # keep the written values' length from the request
                        for i, it in enumerate(items):
                            if i < len(req.items):
                                it["data_length"] = req.items[i].get("data_length")
                                it.pop("data", None)
                if rosctr == 7 and rf.get("function_group") == 0x4 and rf.get("subfunction_code") == 0x01:
                    f.update(szl_response(pdu.data, rf.get("szl_id")))
            else:
                action = action_of(f)
                if rosctr == 7 and f.get("function_group") == 0x4 and f.get("subfunction_code") == 0x01:
                    f.update(szl_response(pdu.data, None))
            self._session_note(f)
            failed = (f.get("error_class") or 0) != 0 or (f.get("userdata_error_code") or 0) != 0
            outcome = "failure" if failed else "success"
            ev = self.emit(meta, direction, action=action, s7comm=_struct(f, items), outcome=outcome, duration=duration)
            out.append(ev)
            if req is None:
                out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending request with PDU reference {ref}", s7comm=_header(f)))
            if pdu.anomaly:
                out.append(self.anomaly(meta, direction, pdu.anomaly, pdu.anomaly_message, s7comm=_header(f)))
            return
        else:
            action = action_of(f)  # userdata push (alarms, mode transitions) or unknown ROSCTR
        out.append(self.emit(meta, direction, action=action, s7comm=_struct(f, items), outcome=outcome, duration=duration))
        if pdu.anomaly:
            out.append(self.anomaly(meta, direction, pdu.anomaly, pdu.anomaly_message, s7comm=_header(f)))

    def _match(self, rosctr: int, f: dict[str, Any]) -> _Request | None:
        ref = f.get("pdu_reference", -1)
        if rosctr in (2, 3):
            return self._pending.pop((1, ref), None)
        req = self._pending.pop((7, ref), None)
        if req is not None:
            return req
        # Some servers (snap7) answer userdata with another PDU reference: the oldest request of
        # the same function group and sub-function is the one answered.
        for key, r in self._pending.items():
            if r.rosctr == 7 and r.f.get("function_group") == f.get("function_group") and r.f.get("subfunction_code") == f.get("subfunction_code"):
                del self._pending[key]
                return r
        return None

    def _session_note(self, f: dict[str, Any]) -> None:
        """Block transfers name the block once (start upload / request download); later PDUs carry only the session id."""
        sid = f.get("session_id")
        if sid is None:
            return
        if "filename" in f:
            if sid:
                self._sessions[sid] = {k: f[k] for k in ("filename", "block_type", "block_number", "block_name", "destination_filesystem") if k in f}
                if len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
        elif sid in self._sessions:
            for k, v in self._sessions[sid].items():
                f.setdefault(k, v)


def _mms_cotp(f: dict[str, Any]) -> Mms | None:
    kw = {k: f[k] for k in _MMS_COTP if f.get(k) is not None}
    return Mms(**kw) if kw else None


def _header(f: dict[str, Any]) -> S7comm:
    keys = ("protocol", "rosctr", "rosctr_name", "pdu_reference", "function_code", "function_name", "function_group", "function_group_name", "subfunction_code", "subfunction_name", "request_frame")
    return S7comm(**{k: f[k] for k in keys if f.get(k) is not None})
