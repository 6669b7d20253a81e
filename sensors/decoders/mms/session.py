"""MMS per-connection state on an ISO transport connection: one event per MMS PDU, requests paired with answers.

The ISO transport flow (TPKT/COTP, shared with S7comm on port 102) hands each reassembled COTP DT
payload that is not S7comm to `MmsSession.payload`; the session numbers its events through the
flow (event ids are file + frame + index, whatever the protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.protocols.mms import Mms, MmsData
from pipeline.schema import Anomaly, Event

from ..base import Direction, FrameMeta, make_event
from ..stream import Pending, time_ns
from .constants import ACSE_ACTIONS, ANSWERS, MAX_PENDING, PDU_ACTIONS, REQUESTS, SERVICE_ACTIONS, SPDU_ACTIONS, AnomalyCode
from .parser import parse_mms, parse_session

__all__ = ["MmsSession", "action_of", "DATASET"]

DATASET = "mms"
_CARRY = ("service_code", "service", "domain_id", "item_id", "object_names", "object_count", "variable_list_name", "program_invocation", "file_name", "object_class", "object_scope")


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str
    f: dict[str, Any]


def action_of(f: dict[str, Any]) -> str:
    """The protocol-independent event.action of one MMS PDU (answers take their request's)."""
    n = f.get("pdu_type_code")
    if n in (0, 1, 3) and f.get("service"):
        return SERVICE_ACTIONS.get(f["service"], "unknown")
    if n is None:
        if f.get("acse"):
            return ACSE_ACTIONS.get(f["acse"], "unknown")
        return SPDU_ACTIONS.get(f.get("session_spdu") or "", "unknown")
    return PDU_ACTIONS.get(n, "unknown")


class MmsSession:
    """MMS of one connection. `next_seq(meta)` numbers events within a frame (the owning flow's)."""

    def __init__(self, next_seq: Callable[[FrameMeta], int]) -> None:
        self.next_seq = next_seq
        self.pending: Pending[tuple[int, int | None], _Request] = Pending(MAX_PENDING)

    def anomaly(self, meta: FrameMeta, direction: Direction, code: AnomalyCode | str, message: str | None, mms: Mms | None = None) -> Event:
        value = code.value if isinstance(code, AnomalyCode) else code
        return make_event(meta, direction, dataset=DATASET, seq=self.next_seq(meta), action="anomaly", anomaly=Anomaly(code=value, message=message), mms=mms)

    def payload(self, p: bytes, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        u = parse_session(p)
        ctx: dict[str, Any] = {}
        if u.spdu:
            ctx["session_spdu"] = u.spdu
        if u.acse:
            ctx["acse"] = u.acse
        if u.acse_result:
            ctx["acse_result"] = u.acse_result
        ctx.update({k: v for k, v in u.acse_fields.items() if v is not None})
        if u.mms:
            for raw in u.mms:
                self._pdu(raw, ctx, direction, meta, out)
        elif u.spdu and u.spdu != "DT" or u.acse:
            # connection management without an MMS PDU (release, abort, refuse)
            outcome = "failure" if u.spdu in ("AB", "RF") or u.acse == "abrt" or (u.acse_result or "accepted") != "accepted" else None
            out.append(make_event(meta, direction, dataset=DATASET, seq=self.next_seq(meta), action=action_of(ctx), outcome=outcome, mms=Mms(**ctx)))
        if u.anomaly:
            out.append(self.anomaly(meta, direction, u.anomaly, u.anomaly_message, Mms(**ctx) if ctx else None))

    def _pdu(self, raw: bytes, ctx: dict[str, Any], direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        pdu = parse_mms(raw)
        f = {**ctx, **pdu.f}
        n = f.get("pdu_type_code")
        action = action_of(f)
        duration = outcome = None
        unsolicited = False
        if n in REQUESTS:
            key = (n, f.get("invoke_id") if n == 0 else None)
            if self.pending.add(key, _Request(meta.frame, time_ns(meta), action, f), replace=n == 0):
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {MAX_PENDING} MMS requests without a response: oldest dropped"))
        elif n in ANSWERS:
            req_type = ANSWERS[n]
            key = (req_type, f.get("invoke_id") if req_type == 0 else None)
            req = self.pending.match(key)
            if req is not None:
                duration = max(time_ns(meta) - req.time_ns, 0)
                f["request_frame"] = req.frame
                action = req.action
                for k in _CARRY:
                    if n == 1 and k in ("service_code", "service"):
                        continue  # a response names its service itself; one that does not is malformed (flagged)
                    if k in req.f and k not in f:
                        f[k] = req.f[k]
            else:
                unsolicited = True
            failed = n in (2, 7, 10, 13) or (f.get("failure_count") or 0) > 0 and not f.get("success_count")
            outcome = "failure" if failed else "success"
        elif n == 4:
            outcome = "failure"
            req = self.pending.match((0, f.get("invoke_id"))) if f.get("invoke_id") is not None else None
            if req is not None:
                f["request_frame"] = req.frame
        if f.get("acse_result") not in (None, "accepted"):
            outcome = "failure"
        if f.get("data"):
            f["data"] = [MmsData(**d) for d in f["data"]]
        mms = Mms(**{k: v for k, v in f.items() if v is not None})
        out.append(make_event(meta, direction, dataset=DATASET, seq=self.next_seq(meta), action=action, outcome=outcome, duration=duration, mms=mms))
        if unsolicited:
            out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending request for {f.get('pdu_type')} (invoke id {f.get('invoke_id')})", _header(f)))
        if pdu.anomaly:
            out.append(self.anomaly(meta, direction, pdu.anomaly, pdu.anomaly_message, _header(f)))

    def close(self) -> None:
        self.pending.clear()


def _header(f: dict[str, Any]) -> Mms:
    keys = ("session_spdu", "acse", "pdu_type_code", "pdu_type", "invoke_id", "service_code", "service")
    return Mms(**{k: f[k] for k in keys if f.get(k) is not None})
