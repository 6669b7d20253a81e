"""DNP3 per-connection state: link framing per direction, transport reassembly, request/response pairing."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.protocols.dnp3 import Dnp3
from pipeline.schema import Event

from ..base import Direction, FrameMeta, Parsed
from ..stream import Pending, StreamFlow, time_ns
from .constants import (
    BROADCAST,
    FC_AUTH_RESPONSE,
    FC_CONFIRM,
    FC_RESPONSE,
    FC_UNSOLICITED,
    IIN_FAILURE,
    LINK_USER_DATA,
    MAX_FRAGMENT,
    MAX_PENDING,
    NO_RESPONSE,
    RESPONSES,
    AnomalyCode,
    action_of,
    iin_names,
    link_function_name,
)
from .parser import AppFragment, LinkFrame, parse_application, parse_frame

__all__ = ["Dnp3Flow", "Dnp3UdpFlow", "DATASET"]

DATASET = "dnp3"
MAX_FILE_HANDLES = 64


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    function_code: int
    action: str


@dataclass(slots=True)
class _Reasm:
    data: bytearray
    first_seq: int
    last_seq: int
    segments: int = 1
    dead: bool = False  # too long: ignore segments until the next FIR


def link_header(f: LinkFrame) -> Dnp3:
    """The link-layer fields of a frame (every DNP3 event carries them)."""
    prm = f.prm
    return Dnp3(
        source=f.source,
        destination=f.destination,
        link_function_code=f.function,
        link_function_name=link_function_name(prm, f.function),
        link_dir=f.dir,
        link_prm=prm,
        link_fcb=bool(f.control & 0x20) if prm else None,
        link_fcv=bool(f.control & 0x10) if prm else None,
        link_dfc=bool(f.control & 0x10) if not prm else None,
        link_length=f.length,
    )


def _distinct(xs: list[object]) -> list[object]:
    return list(dict.fromkeys(xs))


class Dnp3Flow(StreamFlow):
    """One DNP3 connection (TCP). `feed` in-order bytes of either direction; one event per application
    fragment or link-only frame, plus anomaly events."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    DATAGRAMS = False
    TRUNCATED = AnomalyCode.TRUNCATED_PDU.value
    INVALID = AnomalyCode.INVALID_PDU.value
    NOT_PROTOCOL = AnomalyCode.NOT_DNP3.value
    UNIT = "frame"
    # After this many non-DNP3 stretches in a row (no good frame between) a direction is not DNP3.
    STOP_MESSAGE = "{bad} stretches of non-DNP3 bytes in a row: stopped decoding this direction"

    def __init__(self) -> None:
        super().__init__()
        self._reasm: dict[tuple[int, int, int], _Reasm] = {}
        self._pending: Pending[tuple[int, int, int], _Request] = Pending(self.MAX_PENDING)
        self._continuation: dict[tuple[int, int], _Request] = {}
        self._file_actions: dict[int, str] = {}

    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        return parse_frame(data)

    def drop(self, direction: Direction) -> None:
        """The partial link frame and the transport fragments being reassembled in `direction`."""
        super().drop(direction)
        for key in [k for k in self._reasm if k[0] == direction]:
            del self._reasm[key]

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        self._reasm.clear()
        self._pending.clear()
        self._continuation.clear()

    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool | None:
        frame = p.pdu if isinstance(p.pdu, LinkFrame) else None
        if p.anomaly is not None:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, dnp3=link_header(frame) if frame is not None else None))
            # A bad CRC is a DNP3 frame, corrupted: not evidence that the stream is something else.
            return None if p.anomaly == AnomalyCode.BAD_CRC.value else False
        if frame is None:
            return None
        self._frame(frame, direction, meta, out)
        return True

    def _frame(self, f: LinkFrame, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        if not (f.prm and f.function in LINK_USER_DATA and f.user_data):
            hdr = msgspec.structs.replace(link_header(f), message_type="link")
            action = "session" if f.prm and f.function in (0, 1) else "keepalive"
            out.append(self.emit(meta, direction, action=action, dnp3=hdr))
            return
        ud = f.user_data
        th = ud[0]
        fin, fir, tseq = bool(th & 0x80), bool(th & 0x40), th & 0x3F
        key = (int(direction), f.source, f.destination)
        r = self._reasm.get(key)
        if fir:
            if r is not None and not r.dead:
                out.append(self.anomaly(meta, direction, AnomalyCode.TRANSPORT_SEQUENCE, f"new fragment (FIR) while {r.segments} segment(s) of another were pending: those were dropped", dnp3=link_header(f)))
            r = _Reasm(bytearray(ud[1:]), tseq, tseq)
            self._reasm[key] = r
        else:
            if r is None:
                out.append(self.anomaly(meta, direction, AnomalyCode.TRANSPORT_SEQUENCE, f"transport segment {tseq} without a first segment (FIR)", dnp3=link_header(f)))
                return
            if tseq == r.last_seq:
                return  # link-layer repeat of the last segment
            if tseq != (r.last_seq + 1) & 0x3F:
                if not r.dead:
                    out.append(self.anomaly(meta, direction, AnomalyCode.TRANSPORT_SEQUENCE, f"transport segment {tseq} after {r.last_seq}: fragment dropped", dnp3=link_header(f)))
                del self._reasm[key]
                return
            r.last_seq = tseq
            r.segments += 1
            if not r.dead:
                r.data += ud[1:]
        if not r.dead and len(r.data) > MAX_FRAGMENT:
            r.dead = True
            r.data = bytearray()
            out.append(self.anomaly(meta, direction, AnomalyCode.FRAGMENT_TOO_LONG, f"reassembled fragment over {MAX_FRAGMENT} bytes: dropped", dnp3=link_header(f)))
        if fin:
            del self._reasm[key]
            if not r.dead:
                self._application(bytes(r.data), r, f, direction, meta, out)

    # ------------------------------------------------------------ application layer

    def _application(self, frag: bytes, r: _Reasm, f: LinkFrame, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        hdr = msgspec.structs.replace(link_header(f), transport_sequence=r.first_seq, transport_segments=r.segments, length=len(frag))
        app = parse_application(frag)
        if app is None:
            out.append(self.anomaly(meta, direction, AnomalyCode.INVALID_PDU, f"application fragment of {len(frag)} byte(s): no header", dnp3=hdr))
            return
        fc = app.function_code
        objs = app.objects or None
        dnp3 = msgspec.structs.replace(
            hdr,
            function_code=fc,
            function_name=app.function_name,
            message_type="unsolicited_response" if fc == FC_UNSOLICITED else "response" if fc in RESPONSES else "request",
            app_fir=app.fir,
            app_fin=app.fin,
            app_con=app.con,
            app_uns=app.uns,
            sequence=app.sequence,
            iin=app.iin,
            iin_names=(iin_names(app.iin) or None) if app.iin is not None else None,
            objects=objs,
            object_groups=_distinct([o.group for o in app.objects]) or None,  # type: ignore[arg-type]
            object_types=_distinct([f"g{o.group}v{o.variation}" for o in app.objects]) or None,  # type: ignore[arg-type]
            objects_truncated=True if app.truncated else None,
        )
        if fc in RESPONSES:
            self._response(app, dnp3, direction, meta, out)
        else:
            self._request(app, dnp3, direction, meta, out)
        if app.anomaly is not None:
            out.append(self.anomaly(meta, direction, app.anomaly, app.anomaly_message, dnp3=hdr))

    def _request_action(self, app: AppFragment) -> str:
        fc = app.function_code
        groups = {o.group for o in app.objects}
        if fc == 2 and 50 in groups:
            return "time_sync"
        if fc == 2 and 70 in groups:
            return "file_write"
        if fc == 1 and 70 in groups:
            return "file_read"
        if fc == 25:
            for o in app.objects:
                for p in o.points or ():
                    if p.file is not None and p.file.mode in (2, 3):
                        return "file_write"
        if fc in (26, 30):
            for o in app.objects:
                for p in o.points or ():
                    if p.file is not None and p.file.handle in self._file_actions:
                        return self._file_actions[p.file.handle]
        return action_of(fc)

    def _request(self, app: AppFragment, dnp3: Dnp3, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        action = self._request_action(app)
        out.append(self.emit(meta, direction, action=action, dnp3=dnp3))
        fc = app.function_code
        if fc == FC_CONFIRM or fc in NO_RESPONSE or dnp3.destination in BROADCAST:
            return
        req = _Request(meta.frame, time_ns(meta), fc, action)
        if self._pending.add((dnp3.source, dnp3.destination, app.sequence), req):
            text = f"more than {self.MAX_PENDING} requests without a response: oldest dropped"
            out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, text, dnp3=_header(dnp3)))

    def _response(self, app: AppFragment, dnp3: Dnp3, direction: Direction, meta: FrameMeta, out: list[Event]) -> None:
        fc = app.function_code
        outcome = "success"
        if app.iin is not None and app.iin & IIN_FAILURE:
            outcome = "failure"
        for o in app.objects:
            if o.group in (12, 41) and any(p.status_code for p in o.points or ()):
                outcome = "failure"
        pair = (dnp3.destination, dnp3.source)  # (master, outstation)
        req: _Request | None = None
        unmatched = False
        if fc == FC_UNSOLICITED:
            action = action_of(fc)
        elif fc == FC_AUTH_RESPONSE:
            # A challenge to a critical request: that request stays pending for the real response.
            req = self._pending.peek((*pair, app.sequence))
            action = "login"
        else:
            if app.fir:
                req = self._pending.match((*pair, app.sequence))
                if req is not None and not app.fin:
                    self._continuation[pair] = req
            else:
                req = self._continuation.get(pair)
                if req is not None and app.fin:
                    del self._continuation[pair]
            unmatched = req is None
            action = req.action if req is not None else "unknown"
            if req is not None and req.function_code == 25:
                self._remember_handles(app, req.action)
        changes: dict[str, object] = {}
        duration = None
        if req is not None:
            changes["request_frame"] = req.frame
            duration = max(time_ns(meta) - req.time_ns, 0)
        if changes:
            dnp3 = msgspec.structs.replace(dnp3, **changes)
        out.append(self.emit(meta, direction, action=action, outcome=outcome, duration=duration, dnp3=dnp3))  # type: ignore[arg-type]
        if unmatched and fc == FC_RESPONSE:
            out.append(self.anomaly(meta, direction, AnomalyCode.UNMATCHED_RESPONSE, f"no pending request with sequence {app.sequence} from {dnp3.destination} to {dnp3.source}", dnp3=_header(dnp3)))

    def _remember_handles(self, app: AppFragment, action: str) -> None:
        for o in app.objects:
            for p in o.points or ():
                if p.file is not None and p.file.handle is not None:
                    if len(self._file_actions) >= MAX_FILE_HANDLES:
                        self._file_actions.pop(next(iter(self._file_actions)))
                    self._file_actions[p.file.handle] = action


class Dnp3UdpFlow(Dnp3Flow):
    """DNP3 over UDP: the engine feeds each datagram whole; a frame never continues in the next one."""

    DATAGRAMS = True


def _header(d: Dnp3) -> Dnp3:
    """The identifying fields of a message, for the anomaly event that refers to it."""
    return Dnp3(
        source=d.source,
        destination=d.destination,
        function_code=d.function_code,
        function_name=d.function_name,
        message_type=d.message_type,
        sequence=d.sequence,
        request_frame=d.request_frame,
    )
