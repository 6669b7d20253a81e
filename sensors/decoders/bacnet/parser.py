"""BACnet/IP parser: one UDP datagram (BVLC + NPDU + APDU) -> a `Bacnet` struct; pure, never raises.

Service parameters are tokenised into tags first (application/context, opening/closing), then the
key services are read from the token list: Who-Is/I-Am/Who-Has/I-Have, Read/WriteProperty(Multiple)
and their acks, DeviceCommunicationControl, ReinitializeDevice (passwords: presence only),
AtomicRead/WriteFile, Create/DeleteObject, SubscribeCOV, ReadRange, TimeSynchronization,
Error/Reject/Abort. A segment of a segmented message carries a slice of the parameters: the first
segment's slice is decoded as far as it goes; every segment's slice is handed to the flow
(`Parsed.extra["segment"]`), which reassembles the message and decodes it whole with
`decode_segmented` (flow.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pipeline.protocols.bacnet import Bacnet, BacnetProperty

from ..base import Parsed
from .constants import (
    ABORT_REASONS,
    APDU_TYPES,
    BVLC_FUNCTIONS,
    BVLC_RESULTS,
    CONFIRMED_SERVICES,
    ENABLE_DISABLE,
    ERROR_CLASSES,
    ERROR_CODES,
    MAX_APDU,
    MAX_LIST,
    MAX_SEGMENTS,
    MAX_VALUE,
    NETWORK_MESSAGES,
    OBJECT_TYPES,
    REINITIALIZE_STATES,
    REJECT_REASONS,
    SEGMENTATION,
    UNCONFIRMED_SERVICES,
    VENDORS,
    AnomalyCode,
    property_name,
)

__all__ = ["parse", "tokens", "render_value", "decode_segmented", "Tag"]

_NPDU_FUNCTIONS = frozenset({0x04, 0x09, 0x0A, 0x0B})


class _Bad(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Tag:
    number: int
    context: bool
    kind: str  # "data" | "open" | "close"
    data: bytes  # content octets (application boolean: one byte holding the value)


def tokens(b: bytes) -> tuple[list[Tag], str | None]:
    """Every tag of `b` in order; stops at the first malformed tag (returned as the problem)."""
    out: list[Tag] = []
    o = 0
    n = len(b)
    while o < n:
        t = b[o]
        o += 1
        num = t >> 4
        ctx = bool(t & 0x08)
        lvt = t & 0x07
        if num == 15:
            if o >= n:
                return out, "extended tag number missing"
            num = b[o]
            o += 1
        if ctx and lvt == 6:
            out.append(Tag(num, True, "open", b""))
            continue
        if ctx and lvt == 7:
            out.append(Tag(num, True, "close", b""))
            continue
        if not ctx and num == 1:  # application boolean: value in the length field
            out.append(Tag(1, False, "data", bytes([lvt])))
            continue
        length = lvt
        if lvt == 5:
            if o >= n:
                return out, "extended length missing"
            length = b[o]
            o += 1
            if length == 254:
                if o + 2 > n:
                    return out, "extended length missing"
                length = int.from_bytes(b[o : o + 2], "big")
                o += 2
            elif length == 255:
                if o + 4 > n:
                    return out, "extended length missing"
                length = int.from_bytes(b[o : o + 4], "big")
                o += 4
        if o + length > n:
            return out, f"tag {num} needs {length} byte(s), {n - o} left"
        out.append(Tag(num, ctx, "data", b[o : o + length]))
        o += length
    return out, None


def _uint(b: bytes) -> int:
    return int.from_bytes(b, "big") if b else 0


def _sint(b: bytes) -> int:
    return int.from_bytes(b, "big", signed=True) if b else 0


def _objid(b: bytes) -> tuple[int, int]:
    v = _uint(b[:4])
    return v >> 22, v & 0x3FFFFF


def _objid_text(b: bytes) -> str:
    t, i = _objid(b)
    return f"{OBJECT_TYPES.get(t, str(t))}:{i}"


def _charstring(b: bytes) -> str:
    if not b:
        return ""
    charset, body = b[0], b[1:]
    if charset == 0:
        s = body.decode("utf-8", "replace")
    elif charset == 4:
        s = body.decode("utf-16-be", "replace")
    elif charset == 3:
        s = body.decode("utf-32-be", "replace")
    else:
        s = body.decode("latin-1")
    return s[:MAX_VALUE]


def _date(b: bytes) -> str:
    if len(b) < 4:
        return b.hex()
    y = "*" if b[0] == 255 else str(1900 + b[0])
    m = "*" if b[1] == 255 else f"{b[1]:02d}"
    d = "*" if b[2] == 255 else f"{b[2]:02d}"
    return f"{y}-{m}-{d}"


def _time(b: bytes) -> str:
    if len(b) < 4:
        return b.hex()
    parts = ["*" if x == 255 else f"{x:02d}" for x in b[:4]]
    return f"{parts[0]}:{parts[1]}:{parts[2]}.{parts[3]}"


def render_value(t: Tag) -> str:
    """One application-tagged value as text; context tags as `[n]hex`."""
    b = t.data
    if t.context:
        return f"[{t.number}]{b.hex()}"
    n = t.number
    if n == 0:
        return "null"
    if n == 1:
        return "true" if b and b[0] else "false"
    if n == 2 or n == 9:
        return str(_uint(b))
    if n == 3:
        return str(_sint(b))
    if n == 4 and len(b) == 4:
        return repr(round(struct.unpack(">f", b)[0], 6))
    if n == 5 and len(b) == 8:
        return repr(struct.unpack(">d", b)[0])
    if n == 6:
        return b.hex()[:MAX_VALUE]
    if n == 7:
        return _charstring(b)
    if n == 8:
        if not b:
            return ""
        bits = "".join(f"{x:08b}" for x in b[1:])
        return bits[: max(len(bits) - b[0], 0)]
    if n == 10:
        return _date(b)
    if n == 11:
        return _time(b)
    if n == 12 and len(b) >= 4:
        return _objid_text(b)
    return b.hex()[:MAX_VALUE]


class _Cursor:
    """Walks a token list; `ctx(n)` takes an optional context data tag number n."""

    __slots__ = ("t", "i", "count")

    def __init__(self, toks: list[Tag]) -> None:
        self.t = toks
        self.i = 0
        self.count = 0  # elements at the top level of the last `values` (primitive tags and constructs)

    def peek(self) -> Tag | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def ctx(self, n: int) -> bytes | None:
        t = self.peek()
        if t is not None and t.context and t.kind == "data" and t.number == n:
            self.i += 1
            return t.data
        return None

    def app(self, n: int | None = None) -> Tag | None:
        t = self.peek()
        if t is not None and not t.context and (n is None or t.number == n):
            self.i += 1
            return t
        return None

    def opening(self, n: int) -> bool:
        t = self.peek()
        if t is not None and t.kind == "open" and t.number == n:
            self.i += 1
            return True
        return False

    def closing(self, n: int) -> bool:
        t = self.peek()
        if t is not None and t.kind == "close" and t.number == n:
            self.i += 1
            return True
        return False

    def values(self, n: int) -> str:
        """Render everything up to the closing tag n matching an already consumed opening tag n.

        Sets `count` to the number of top-level elements (a primitive value or a constructed one),
        counted over the whole value, also when the text is cut to MAX_VALUE characters.
        """
        depth = 0
        count = 0
        size = 0
        parts: list[str] = []
        while self.i < len(self.t):
            t = self.t[self.i]
            self.i += 1
            if t.kind == "open":
                count += depth == 0
                depth += 1
                text = "{"
            elif t.kind == "close":
                if depth == 0 and t.number == n:
                    break
                depth -= 1
                text = "}"
            else:
                count += depth == 0
                if size > MAX_VALUE:
                    continue  # the text is full: only counting now
                text = render_value(t)
            if size <= MAX_VALUE:
                parts.append(text)
                size += len(text) + 1
        self.count = count
        return ";".join(parts)[:MAX_VALUE]

    def skip_to_close(self, n: int) -> None:
        self.values(n)


def _prop(obj: bytes | None, prop: bytes | None, idx: bytes | None, value: str | None = None, priority: bytes | None = None,
          count: int = 0) -> BacnetProperty:
    kw: dict[str, Any] = {}
    if value is not None and count > 1:
        kw["value_count"] = count
    if obj is not None and len(obj) >= 4:
        t, i = _objid(obj)
        kw.update(object_type=t, object_type_name=OBJECT_TYPES.get(t, str(t)), instance_number=i)
    if prop is not None:
        p = _uint(prop)
        kw.update(property_id=p, property_name=property_name(p))
    if idx is not None:
        kw["array_index"] = _uint(idx)
    if value is not None:
        kw["value"] = value
    if priority is not None:
        kw["priority"] = _uint(priority)
    return BacnetProperty(**kw)


def _object(out: dict[str, Any], b: bytes | None) -> None:
    if b is not None and len(b) >= 4:
        t, i = _objid(b)
        out.update(object_type=t, object_type_name=OBJECT_TYPES.get(t, str(t)), instance_number=i)


def _service_params(apdu_type: int, service: str, c: _Cursor, out: dict[str, Any]) -> None:
    props: list[BacnetProperty] = []
    if service in ("read_property", "write_property") or (service == "read_property" and apdu_type == 3):
        obj, prop, idx = c.ctx(0), c.ctx(1), c.ctx(2)
        value = c.values(3) if c.opening(3) else None
        prio = c.ctx(4)
        props.append(_prop(obj, prop, idx, value, prio, c.count))
    elif service == "read_property_multiple" and apdu_type == 0:
        while c.peek() is not None:
            obj = c.ctx(0)
            if obj is None or not c.opening(1):
                raise _Bad("read_property_multiple: object specification expected")
            while not c.closing(1):
                prop = c.ctx(0)
                if prop is None:
                    raise _Bad("read_property_multiple: property reference expected")
                props.append(_prop(obj, prop, c.ctx(1)))
    elif service == "read_property_multiple" and apdu_type == 3:
        while c.peek() is not None:
            obj = c.ctx(0)
            if obj is None or not c.opening(1):
                raise _Bad("read_property_multiple ack: object result expected")
            while not c.closing(1):
                prop = c.ctx(2)
                if prop is None:
                    raise _Bad("read_property_multiple ack: property result expected")
                idx = c.ctx(3)
                if c.opening(4):
                    props.append(_prop(obj, prop, idx, c.values(4), count=c.count))
                elif c.opening(5):
                    props.append(_prop(obj, prop, idx, "error:" + c.values(5)))
                else:
                    raise _Bad("read_property_multiple ack: value or error expected")
    elif service == "write_property_multiple":
        while c.peek() is not None:
            obj = c.ctx(0)
            if obj is None or not c.opening(1):
                raise _Bad("write_property_multiple: object specification expected")
            while not c.closing(1):
                prop = c.ctx(0)
                if prop is None:
                    raise _Bad("write_property_multiple: property value expected")
                idx = c.ctx(1)
                value = c.values(2) if c.opening(2) else None
                props.append(_prop(obj, prop, idx, value, c.ctx(3), c.count))
    elif service == "who_is":
        lo, hi = c.ctx(0), c.ctx(1)
        if lo is not None:
            out["low_limit"] = _uint(lo)
        if hi is not None:
            out["high_limit"] = _uint(hi)
    elif service == "i_am":
        dev, apdu, seg, vendor = c.app(12), c.app(2), c.app(9), c.app(2)
        if dev is not None:
            _object(out, dev.data)
            out["device_instance"] = _objid(dev.data)[1]
        if apdu is not None:
            out["max_apdu_accepted"] = _uint(apdu.data)
        if seg is not None:
            s = _uint(seg.data)
            out["segmentation_supported"] = SEGMENTATION.get(s, str(s))
        if vendor is not None:
            v = _uint(vendor.data)
            out["vendor_id"] = v
            out["vendor_name"] = VENDORS.get(v)
    elif service == "who_has":
        lo, hi = c.ctx(0), c.ctx(1)
        if lo is not None:
            out["low_limit"] = _uint(lo)
        if hi is not None:
            out["high_limit"] = _uint(hi)
        obj, name = c.ctx(2), c.ctx(3)
        _object(out, obj)
        if name is not None:
            out["object_name"] = _charstring(name)
    elif service == "i_have":
        dev, obj, name = c.app(12), c.app(12), c.app(7)
        if dev is not None:
            out["device_instance"] = _objid(dev.data)[1]
        if obj is not None:
            _object(out, obj.data)
        if name is not None:
            out["object_name"] = _charstring(name.data)
    elif service == "device_communication_control":
        dur, ed, pw = c.ctx(0), c.ctx(1), c.ctx(2)
        if dur is not None:
            out["time_duration"] = _uint(dur)
        if ed is not None:
            e = _uint(ed)
            out["enable_disable"] = ENABLE_DISABLE.get(e, str(e))
        out["password_present"] = pw is not None
    elif service == "reinitialize_device":
        st, pw = c.ctx(0), c.ctx(1)
        if st is not None:
            s = _uint(st)
            out["reinitialize_state"] = REINITIALIZE_STATES.get(s, str(s))
        out["password_present"] = pw is not None
    elif service in ("atomic_read_file", "atomic_write_file") and apdu_type == 0:
        f = c.app(12)
        if f is not None:
            _object(out, f.data)
        if c.opening(0) or c.opening(1):
            start = c.app(3)
            if start is not None:
                out["file_start"] = _sint(start.data)
            if service == "atomic_read_file":
                cnt = c.app(2)
                if cnt is not None:
                    out["file_length"] = _uint(cnt.data)
            else:
                data = c.app(6)
                if data is not None:
                    out["file_length"] = len(data.data)
                else:
                    cnt = c.app(2)
                    if cnt is not None:
                        out["file_length"] = _uint(cnt.data)
    elif service == "atomic_read_file" and apdu_type == 3:
        eof = c.app(1)
        if eof is not None:
            out["end_of_file"] = bool(eof.data and eof.data[0])
        if c.opening(0) or c.opening(1):
            start = c.app(3)
            if start is not None:
                out["file_start"] = _sint(start.data)
            data = c.app(6)
            if data is not None:
                out["file_length"] = len(data.data)
            else:
                cnt = c.app(2)
                if cnt is not None:
                    out["file_length"] = _uint(cnt.data)
    elif service == "atomic_write_file" and apdu_type == 3:
        start = c.ctx(0) or c.ctx(1)
        if start is not None:
            out["file_start"] = _sint(start)
    elif service == "create_object" and apdu_type == 0:
        if c.opening(0):
            t = c.ctx(0)
            if t is not None:
                ot = _uint(t)
                out.update(object_type=ot, object_type_name=OBJECT_TYPES.get(ot, str(ot)))
            else:
                _object(out, c.ctx(1))
            c.closing(0)
        if c.opening(1):
            while not c.closing(1) and c.peek() is not None:
                prop = c.ctx(0)
                if prop is None:
                    raise _Bad("create_object: initial value expected")
                idx = c.ctx(1)
                value = c.values(2) if c.opening(2) else None
                props.append(_prop(None, prop, idx, value, c.ctx(3), c.count))
    elif service == "create_object" and apdu_type == 3:
        o = c.app(12)
        if o is not None:
            _object(out, o.data)
    elif service == "delete_object" and apdu_type == 0:
        o = c.app(12)
        if o is not None:
            _object(out, o.data)
    elif service in ("subscribe_cov", "subscribe_cov_property") and apdu_type == 0:
        c.ctx(0)
        _object(out, c.ctx(1))
    elif service in ("confirmed_cov_notification", "unconfirmed_cov_notification"):
        c.ctx(0)
        dev = c.ctx(1)
        if dev is not None:
            out["device_instance"] = _objid(dev)[1]
        obj = c.ctx(2)
        c.ctx(3)
        if c.opening(4):
            while not c.closing(4) and c.peek() is not None:
                prop = c.ctx(0)
                if prop is None:
                    raise _Bad("cov notification: property value expected")
                idx = c.ctx(1)
                value = c.values(2) if c.opening(2) else None
                props.append(_prop(obj, prop, idx, value, c.ctx(3), c.count))
        else:
            _object(out, obj)
    elif service == "read_range" and apdu_type == 0:
        obj, prop, idx = c.ctx(0), c.ctx(1), c.ctx(2)
        props.append(_prop(obj, prop, idx, _range(c)))
    elif service == "read_range" and apdu_type == 3:
        obj, prop, idx = c.ctx(0), c.ctx(1), c.ctx(2)
        c.ctx(3)  # result flags
        items = c.ctx(4)
        value = c.values(5) if c.opening(5) else None
        first_seq = c.ctx(6)
        if value is not None and first_seq is not None:
            value = f"first_sequence={_uint(first_seq)};{value}"[:MAX_VALUE]
        props.append(_prop(obj, prop, idx, value, count=_uint(items) if items is not None else c.count))
    elif service in ("time_synchronization", "utc_time_synchronization"):
        d, t = c.app(10), c.app(11)
        if d is not None and t is not None:
            out["time"] = f"{_date(d.data)} {_time(t.data)}"
    if props:
        first = props[0]
        for k in ("object_type", "object_type_name", "instance_number", "property_id", "property_name", "array_index", "value",
                  "value_count", "priority"):
            v = getattr(first, k)
            if v is not None:
                out[k] = v
        out["property_count"] = len(props)
        if len(props) > 1 or service in ("read_property_multiple", "write_property_multiple"):
            out["properties"] = props[:MAX_LIST]


# ReadRange-Request range choice: context tag -> name (4 and 5 are the 135-1995 byTime and timeRange)
_RANGES = {3: "by_position", 4: "by_time", 5: "time_range", 6: "by_sequence", 7: "by_time"}


def _range(c: _Cursor) -> str | None:
    """ReadRange-Request range as `by_position;index=I;count=C`, `by_sequence;sequence=S;count=C`,
    `by_time;time=YYYY-MM-DD hh:mm:ss.cc;count=C` (None when the whole list is read)."""
    t = c.peek()
    if t is None or t.kind != "open" or t.number not in _RANGES:
        return None
    c.opening(t.number)
    kind = _RANGES[t.number]
    parts = [kind]
    if t.number in (3, 6):
        ref, cnt = c.app(2), c.app(3)
        if ref is not None:
            parts.append(f"{'index' if t.number == 3 else 'sequence'}={_uint(ref.data)}")
        if cnt is not None:
            parts.append(f"count={_sint(cnt.data)}")
    elif t.number in (4, 7):
        d, tm, cnt = c.app(10), c.app(11), c.app(3)
        if d is not None and tm is not None:
            parts.append(f"time={_date(d.data)} {_time(tm.data)}")
        if cnt is not None:
            parts.append(f"count={_sint(cnt.data)}")
    else:
        times = []
        while (d := c.app(10)) is not None and (tm := c.app(11)) is not None:
            times.append(f"{_date(d.data)} {_time(tm.data)}")
        if times:
            parts.append("from=" + times[0])
        if len(times) > 1:
            parts.append("to=" + times[1])
    if not c.closing(t.number):
        raise _Bad(f"read_range: range [{t.number}] not closed")
    return ";".join(parts)


def _error_params(c: _Cursor, out: dict[str, Any]) -> None:
    """Error class and code: the first two enumerated tags, wherever the service nests them."""
    enums = [t for t in c.t if t.kind == "data" and not t.context and t.number == 9][:2]
    if len(enums) < 2:
        raise _Bad("error PDU without error class and code")
    ec, code = _uint(enums[0].data), _uint(enums[1].data)
    out.update(error_class=ec, error_class_name=ERROR_CLASSES.get(ec, str(ec)), error_code=code,
               error_code_name=ERROR_CODES.get(code, str(code)))


def _apdu(a: bytes, out: dict[str, Any], extra: dict[str, object]) -> str | None:
    """Fill APDU fields (a segment's parameter slice goes to `extra["segment"]`); returns a problem or None."""
    if not a:
        return "empty APDU"
    ptype = a[0] >> 4
    out["apdu_type"] = ptype
    out["apdu_type_name"] = APDU_TYPES.get(ptype, f"reserved_{ptype}")
    flags = a[0]
    params: bytes | None = None
    service_name: str | None = None
    try:
        if ptype == 0:
            if len(a) < 4:
                return "confirmed request shorter than 4 bytes"
            seg = bool(flags & 0x08)
            out.update(message_type="request", segmented=seg, more_follows=bool(flags & 0x04),
                       segmented_response_accepted=bool(flags & 0x02),
                       max_segments=MAX_SEGMENTS.get((a[1] >> 4) & 0x07), max_apdu=MAX_APDU.get(a[1] & 0x0F),
                       invoke_id=a[2])
            o = 3
            if seg:
                if len(a) < 6:
                    return "segmented confirmed request shorter than 6 bytes"
                out.update(sequence_number=a[3], window_size=a[4])
                o = 5
            svc = a[o]
            service_name = CONFIRMED_SERVICES.get(svc, f"confirmed_{svc}")
            out.update(service=svc, service_name=service_name)
            if seg:
                extra["segment"] = a[o + 1 :]
            if not seg or out.get("sequence_number") == 0:
                params = a[o + 1 :]
        elif ptype == 1:
            if len(a) < 2:
                return "unconfirmed request shorter than 2 bytes"
            svc = a[1]
            service_name = UNCONFIRMED_SERVICES.get(svc, f"unconfirmed_{svc}")
            out.update(message_type="request", service=svc, service_name=service_name)
            params = a[2:]
        elif ptype == 2:
            if len(a) < 3:
                return "simple ack shorter than 3 bytes"
            out.update(message_type="response", invoke_id=a[1], service=a[2],
                       service_name=CONFIRMED_SERVICES.get(a[2], f"confirmed_{a[2]}"))
        elif ptype == 3:
            if len(a) < 3:
                return "complex ack shorter than 3 bytes"
            seg = bool(flags & 0x08)
            out.update(message_type="response", segmented=seg, more_follows=bool(flags & 0x04), invoke_id=a[1])
            o = 2
            if seg:
                if len(a) < 5:
                    return "segmented complex ack shorter than 5 bytes"
                out.update(sequence_number=a[2], window_size=a[3])
                o = 4
            svc = a[o]
            service_name = CONFIRMED_SERVICES.get(svc, f"confirmed_{svc}")
            out.update(service=svc, service_name=service_name)
            if seg:
                extra["segment"] = a[o + 1 :]
            if not seg or out.get("sequence_number") == 0:
                params = a[o + 1 :]
        elif ptype == 4:
            if len(a) < 4:
                return "segment ack shorter than 4 bytes"
            out.update(message_type="response" if flags & 0x01 else "request", negative_ack=bool(flags & 0x02),
                       from_server=bool(flags & 0x01), invoke_id=a[1], sequence_number=a[2], window_size=a[3])
        elif ptype == 5:
            if len(a) < 3:
                return "error PDU shorter than 3 bytes"
            out.update(message_type="response", invoke_id=a[1], service=a[2],
                       service_name=CONFIRMED_SERVICES.get(a[2], f"confirmed_{a[2]}"))
            toks, problem = tokens(a[3:])
            _error_params(_Cursor(toks), out)
            return problem
        elif ptype == 6:
            if len(a) < 3:
                return "reject PDU shorter than 3 bytes"
            out.update(message_type="response", invoke_id=a[1], reject_reason=a[2],
                       reject_reason_name=REJECT_REASONS.get(a[2], str(a[2])))
        elif ptype == 7:
            if len(a) < 3:
                return "abort PDU shorter than 3 bytes"
            out.update(message_type="response" if flags & 0x01 else "request", from_server=bool(flags & 0x01),
                       invoke_id=a[1], abort_reason=a[2], abort_reason_name=ABORT_REASONS.get(a[2], str(a[2])))
        else:
            return f"reserved APDU type {ptype}"
        if params is not None and service_name is not None:
            toks, problem = tokens(params)
            if problem and out.get("more_follows"):
                problem = None  # first segment: parameters continue in the next segment
            _service_params(ptype, service_name, _Cursor(toks), out)
            return problem
    except _Bad as e:
        return None if out.get("more_follows") else str(e)
    except (IndexError, ValueError, struct.error) as e:
        return f"{type(e).__name__}: {e}"
    return None


def _npdu(b: bytes, out: dict[str, Any]) -> tuple[int, str | None]:
    """NPDU header fields; returns (offset of the APDU or -1 for a network message, problem)."""
    if len(b) < 2:
        return -1, "NPDU shorter than 2 bytes"
    ver, ctl = b[0], b[1]
    out.update(npdu_version=ver, npdu_control=ctl, expecting_reply=bool(ctl & 0x04), network_priority=ctl & 0x03)
    if ver != 1:
        return -1, f"NPDU version {ver}"
    o = 2
    try:
        if ctl & 0x20:
            out["dnet"] = int.from_bytes(b[o : o + 2], "big")
            dlen = b[o + 2]
            out["dadr"] = b[o + 3 : o + 3 + dlen].hex()
            o += 3 + dlen
        if ctl & 0x08:
            out["snet"] = int.from_bytes(b[o : o + 2], "big")
            slen = b[o + 2]
            out["sadr"] = b[o + 3 : o + 3 + slen].hex()
            o += 3 + slen
        if ctl & 0x20:
            out["hop_count"] = b[o]
            o += 1
        if ctl & 0x80:
            mt = b[o]
            out["network_message_type"] = mt
            out["network_message_name"] = NETWORK_MESSAGES.get(mt, "vendor_proprietary" if mt >= 0x80 else f"reserved_{mt}")
            o += 1
            if mt >= 0x80:
                o += 2
            if mt in (0x00, 0x01, 0x02, 0x04, 0x05, 0x12, 0x13) or mt == 0x03:
                rest = b[o:]
                if mt == 0x03:
                    rest = rest[1:]
                if mt == 0x02:
                    rest = rest[:2]
                nets = [int.from_bytes(rest[i : i + 2], "big") for i in range(0, len(rest) - 1, 2)]
                if nets:
                    out["networks"] = nets[:MAX_LIST]
            return -1, None
    except IndexError:
        return -1, "NPDU shorter than its control field announces"
    if o > len(b):
        return -1, "NPDU shorter than its control field announces"
    return o, None


def parse(data: memoryview | bytes) -> Parsed:
    """One BACnet/IP datagram. `pdu` is a Bacnet (also with an anomaly when only partly decoded)."""
    b = bytes(data)
    n = len(b)
    if n < 4 or b[0] != 0x81:
        return Parsed(n, anomaly=AnomalyCode.INVALID_BVLC.value,
                      anomaly_message=f"not BACnet/IP: {n} byte(s) starting {b[:4].hex()}")
    func = b[1]
    length = int.from_bytes(b[2:4], "big")
    out: dict[str, Any] = {"bvlc_function": func, "bvlc_function_name": BVLC_FUNCTIONS.get(func, f"reserved_{func}"), "bvlc_length": length}
    anomaly: tuple[str, str] | None = None
    extra: dict[str, object] = {}
    if length != n:
        # Decoded all the same, as Wireshark and ICSNPP do: the datagram is the real boundary.
        anomaly = (AnomalyCode.INVALID_BVLC.value, f"BVLC length {length} but datagram has {n} byte(s)")
    o = 4
    if func == 0x00 and len(b) >= 6:
        code = int.from_bytes(b[4:6], "big")
        out.update(bvlc_result_code=code, bvlc_result_name=BVLC_RESULTS.get(code, str(code)))
    elif func == 0x04:
        if len(b) < 10:
            return Parsed(n, pdu=Bacnet(**out), anomaly=AnomalyCode.INVALID_BVLC.value, anomaly_message="Forwarded-NPDU without originating address")
        out["originating_address"] = f"{b[4]}.{b[5]}.{b[6]}.{b[7]}:{int.from_bytes(b[8:10], 'big')}"
        o = 10
    if func in _NPDU_FUNCTIONS:
        aoff, problem = _npdu(b[o:], out)
        if problem:
            anomaly = anomaly or (AnomalyCode.INVALID_NPDU.value, problem)
        elif aoff >= 0:
            problem = _apdu(b[o + aoff :], out, extra)
            if problem:
                anomaly = anomaly or (AnomalyCode.INVALID_APDU.value, problem)
    out = {k: v for k, v in out.items() if v is not None}
    pdu = Bacnet(**out)
    if anomaly:
        return Parsed(n, pdu=pdu, anomaly=anomaly[0], anomaly_message=anomaly[1], extra=extra)
    return Parsed(n, pdu=pdu, extra=extra)


def decode_segmented(apdu_type: int, service_name: str, params: bytes) -> tuple[dict[str, Any], str | None]:
    """The service parameters of a reassembled segmented message -> (Bacnet fields, problem or None)."""
    out: dict[str, Any] = {}
    toks, problem = tokens(params)
    try:
        _service_params(apdu_type, service_name, _Cursor(toks), out)
    except _Bad as e:
        problem = problem or str(e)
    except (IndexError, ValueError, struct.error) as e:
        problem = problem or f"{type(e).__name__}: {e}"
    return out, problem
