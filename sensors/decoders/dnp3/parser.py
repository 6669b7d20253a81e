"""DNP3 parsers: pure functions over bytes; never raise.

`parse_frame` takes one link frame from the front of a buffer (0x0564, header CRC, user data in
16-byte blocks each with its CRC). A buffer that does not start with 0x0564 is skipped up to the
next start (`invalid_start`). A wrong CRC does not move the boundary: the frame's length is used,
the frame is reported (`bad_crc`, with its addresses) and its data is not used, as the standard
requires of a receiver.

`parse_application` decodes one reassembled application fragment: control, function code, IIN on
responses, then the object headers (group, variation, qualifier, range) and, for the groups that
matter for security (g12 CROB, g40/g41 analog outputs, g50/g51/g52 time, g70 file, g80 IIN,
g110-g113 strings, g120 authentication errors), the object data. Other objects' data is skipped by
its size; when that size cannot be known, object parsing stops and `objects_truncated` is set.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field
from typing import Final

from pipeline.protocols.dnp3 import Dnp3File, Dnp3Object, Dnp3Point

from ..base import Parsed
from ..wire import name_of
from .constants import (
    ATTRIBUTE_TYPES,
    AUTH_ERRORS,
    BLOCK,
    COMMAND_STATUS,
    CROB_OPERATIONS,
    CROB_TRIP_CLOSE,
    FILE_MODES,
    FILE_STATUS,
    FUNCTION_NAMES,
    HEADER_LEN,
    HEADERS_ONLY,
    MAX_OBJECT_HEADERS,
    MAX_POINTS,
    MIN_LENGTH,
    OBJECT_SIZES,
    PREFIX_INDEX,
    PREFIX_SIZE,
    RANGE_CODES,
    RESPONSES,
    START,
    STRING_GROUPS,
    AnomalyCode,
    function_name,
    iin_names,
    object_name,
)

__all__ = ["crc16", "frame_size", "parse_frame", "parse_application", "LinkFrame", "AppFragment"]


def _crc_table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA6BC if c & 1 else c >> 1  # 0x3D65 reflected
        out.append(c)
    return tuple(out)


_TABLE: Final = _crc_table()


def crc16(data: bytes | memoryview) -> int:
    """DNP3 CRC-16 (poly 0x3D65, reflected, initial 0, complemented); sent little-endian."""
    c = 0
    for b in data:
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return ~c & 0xFFFF


def frame_size(length: int) -> int:
    """Bytes on the wire of a link frame whose length byte is `length` (>= 5)."""
    user = length - MIN_LENGTH
    return HEADER_LEN + user + 2 * ((user + BLOCK - 1) // BLOCK)


@dataclass(frozen=True, slots=True)
class LinkFrame:
    length: int
    control: int
    destination: int
    source: int
    user_data: bytes | None  # None: no user data (link-only frame) or a bad CRC
    crc_error: str | None = None

    @property
    def dir(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def prm(self) -> bool:
        return bool(self.control & 0x40)

    @property
    def function(self) -> int:
        return self.control & 0x0F


def parse_frame(data: memoryview) -> Parsed:
    """One link frame from the front of `data` (pdu: LinkFrame); `invalid_start` skips junk."""
    n = len(data)
    if n < 2:
        return Parsed(0, needed=2 - n)
    if data[0] != 0x05 or data[1] != 0x64:
        raw = bytes(data)
        i = raw.find(START, 1)
        if i < 0:
            i = n - 1 if raw[-1] == 0x05 else n  # a start may straddle the next segment
        return Parsed(i, anomaly=AnomalyCode.INVALID_START.value, anomaly_message=f"{i} byte(s) before a 0x0564 link frame start")
    if n < HEADER_LEN:
        return Parsed(0, needed=HEADER_LEN - n)
    length, control = data[2], data[3]
    dst, src = data[4] | data[5] << 8, data[6] | data[7] << 8
    if length < MIN_LENGTH:
        # No boundary to trust: skip the start bytes and resynchronise on the next 0x0564.
        return Parsed(2, anomaly=AnomalyCode.INVALID_LENGTH.value, anomaly_message=f"link length {length} below 5", pdu=LinkFrame(length, control, dst, src, None))
    size = frame_size(length)
    if n < size:
        return Parsed(0, needed=size - n)
    hcrc = data[8] | data[9] << 8
    if crc16(data[:8]) != hcrc:
        return Parsed(size, pdu=LinkFrame(length, control, dst, src, None, "header"), anomaly=AnomalyCode.BAD_CRC.value,
                      anomaly_message=f"header CRC 0x{hcrc:04x}, computed 0x{crc16(data[:8]):04x}")  # fmt: skip
    user = length - MIN_LENGTH
    if user == 0:
        return Parsed(size, pdu=LinkFrame(length, control, dst, src, None))
    out = bytearray()
    off = HEADER_LEN
    block = 0
    while user > 0:
        k = min(BLOCK, user)
        chunk = data[off : off + k]
        got = data[off + k] | data[off + k + 1] << 8
        if crc16(chunk) != got:
            return Parsed(size, pdu=LinkFrame(length, control, dst, src, None, f"block {block}"), anomaly=AnomalyCode.BAD_CRC.value,
                          anomaly_message=f"data block {block} CRC 0x{got:04x}, computed 0x{crc16(chunk):04x}")  # fmt: skip
        out += chunk
        off += k + 2
        user -= k
        block += 1
    return Parsed(size, pdu=LinkFrame(length, control, dst, src, bytes(out)))


# ---------------------------------------------------------------- application layer


@dataclass(slots=True)
class AppFragment:
    function_code: int
    function_name: str
    control: int
    iin: int | None = None
    objects: list[Dnp3Object] = field(default_factory=list)
    truncated: bool = False
    anomaly: str | None = None
    anomaly_message: str | None = None

    @property
    def fir(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def fin(self) -> bool:
        return bool(self.control & 0x40)

    @property
    def con(self) -> bool:
        return bool(self.control & 0x20)

    @property
    def uns(self) -> bool:
        return bool(self.control & 0x10)

    @property
    def sequence(self) -> int:
        return self.control & 0x0F


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MAX_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z: datetime's limit


def _time48(b: bytes, off: int) -> dt.datetime | None:
    ms = int.from_bytes(b[off : off + 6], "little")
    return _EPOCH + dt.timedelta(milliseconds=ms) if ms <= _MAX_MS else None


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace").rstrip("\x00")


def _u16(b: bytes, off: int) -> int:
    return b[off] | b[off + 1] << 8


def _u32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off : off + 4], "little")


_F32: Final = struct.Struct("<f")
_F64: Final = struct.Struct("<d")
_I32: Final = struct.Struct("<i")
_I16: Final = struct.Struct("<h")


def _analog_output(g: int, v: int, b: bytes) -> tuple[int | float, int]:
    """(value, flags/status) of g40 (flag first) or g41 (status last)."""
    if g == 40:
        flags, body = b[0], b[1:]
    else:
        flags, body = b[-1], b[:-1]
    if v == 1:
        val: int | float = _I32.unpack_from(body)[0]
    elif v == 2:
        val = _I16.unpack_from(body)[0]
    elif v == 3:
        val = _F32.unpack_from(body)[0]
    else:
        val = _F64.unpack_from(body)[0]
    if isinstance(val, float) and val != val:  # NaN is not JSON: keep the flags, drop the value
        val = 0.0
    return val, flags


def _file(v: int, b: bytes) -> Dnp3File | None:
    """g70 object data (its size known from the size prefix)."""
    n = len(b)
    if v == 2 and n >= 12:  # authentication: user name and password strings (password dropped)
        uo, us = _u16(b, 0), _u16(b, 2)
        return Dnp3File(user_name=_text(b[uo : uo + us]) if uo >= 12 else None)
    if v == 3 and n >= 26:  # file command
        no, ns = _u16(b, 0), _u16(b, 2)
        mode = _u16(b, 20)
        name = _text(b[no : no + ns]) if no >= 26 else _text(b[26 : 26 + ns])
        return Dnp3File(name=name, created=_time48(b, 4), permissions=_u16(b, 10), size=_u32(b, 16), mode=mode,
                        mode_name=name_of(FILE_MODES, mode), max_block_size=_u16(b, 22), request_id=_u16(b, 24))  # fmt: skip
    if v == 4 and n >= 13:  # command status
        st = b[12]
        return Dnp3File(handle=_u32(b, 0), size=_u32(b, 4), max_block_size=_u16(b, 8), request_id=_u16(b, 10), status_code=st, status_name=name_of(FILE_STATUS, st))
    if v == 5 and n >= 8:  # file transport
        blk = _u32(b, 4)
        return Dnp3File(handle=_u32(b, 0), block_number=blk & 0x7FFFFFFF, last_block=bool(blk >> 31), data_length=n - 8)
    if v == 6 and n >= 9:  # transport status
        blk, st = _u32(b, 4), b[8]
        return Dnp3File(handle=_u32(b, 0), block_number=blk & 0x7FFFFFFF, last_block=bool(blk >> 31), status_code=st, status_name=name_of(FILE_STATUS, st))
    if v == 7 and n >= 20:  # file descriptor
        no, ns = _u16(b, 0), _u16(b, 2)
        return Dnp3File(name=_text(b[20 : 20 + ns]) if no >= 20 else None, file_type=_u16(b, 4), size=_u32(b, 6), created=_time48(b, 10), permissions=_u16(b, 16), request_id=_u16(b, 18))
    if v == 8:
        return Dnp3File(name=_text(b))
    return None


def _point(g: int, v: int, index: int | None, b: bytes) -> Dnp3Point | None:
    """One decoded object instance of a security-relevant group (None: not decoded)."""
    if g == 12 and v in (1, 2) and len(b) >= 11:
        cc = b[0]
        op, tcc = cc & 0x0F, cc >> 6
        st = b[10] & 0x7F
        return Dnp3Point(index=index, control_code=cc, operation_type=op, operation_name=name_of(CROB_OPERATIONS, op),
                         trip_close_code=tcc, trip_close_name=CROB_TRIP_CLOSE[tcc], queue=bool(cc & 0x10), clear=bool(cc & 0x20),
                         count=b[1], on_time=_u32(b, 2), off_time=_u32(b, 6), status_code=st, status_name=name_of(COMMAND_STATUS, st))  # fmt: skip
    if g in (40, 41) and v in (1, 2, 3, 4) and len(b) >= OBJECT_SIZES[(g, v)]:
        val, flags = _analog_output(g, v, b)
        if g == 41:
            st = flags & 0x7F
            return Dnp3Point(index=index, value=val, status_code=st, status_name=name_of(COMMAND_STATUS, st))
        return Dnp3Point(index=index, value=val, flags=flags)
    if g in (50, 51) and len(b) >= 6:
        p = Dnp3Point(index=index, time=_time48(b, 0))
        if g == 50 and v in (2, 4) and len(b) >= 10:
            p = Dnp3Point(index=index, time=p.time, interval=_u32(b, 6))
        return p
    if g == 52 and len(b) >= 2:
        return Dnp3Point(index=index, value=_u16(b, 0))
    if g in STRING_GROUPS:
        return Dnp3Point(index=index, octets=b.hex())
    if g == 70:
        f = _file(v, b)
        return Dnp3Point(index=index, file=f) if f is not None else None
    if g == 120 and v == 7 and len(b) >= 15:
        code = b[8]
        return Dnp3Point(index=index, user=_u16(b, 4), status_code=code, status_name=name_of(AUTH_ERRORS, code), time=_time48(b, 9))
    if g == 120 and v in (1, 2, 5, 9, 10) and len(b) >= 6:
        return Dnp3Point(index=index, user=_u16(b, 4) if v in (1, 2) else None)
    return None


def _attribute(index: int, dtype: int, b: bytes) -> Dnp3Point:
    """One g0 device attribute: strings as `text`, integers and floats as `value`, other types as hex `octets`."""
    kw: dict[str, object] = {}
    n = len(b)
    if dtype in (1, 8):  # visible string; unicode (UTF-8)
        kw["text"] = _text(b)
    elif dtype in (2, 3) and 1 <= n <= 8:
        kw["value"] = int.from_bytes(b, "little", signed=dtype == 3)
    elif dtype == 4 and n in (4, 8):
        val = (_F32 if n == 4 else _F64).unpack(b)[0]
        if val == val and abs(val) != float("inf"):  # NaN and infinities are not JSON
            kw["value"] = val
    elif dtype == 7 and n == 6:
        kw["time"] = _time48(b, 0)
    else:
        kw["octets"] = b.hex()
    return Dnp3Point(index=index, data_type=name_of(ATTRIBUTE_TYPES, dtype), **kw)  # type: ignore[arg-type]


_DECODED_GROUPS: Final = frozenset({12, 40, 41, 50, 51, 52, 70, 80, 110, 111, 112, 113, 120})


class _Cursor:
    __slots__ = ("b", "off")

    def __init__(self, b: bytes, off: int) -> None:
        self.b = b
        self.off = off

    def take(self, n: int) -> bytes | None:
        if n < 0 or self.off + n > len(self.b):
            return None
        s = self.b[self.off : self.off + n]
        self.off += n
        return s

    def uint(self, n: int) -> int | None:
        s = self.take(n)
        return int.from_bytes(s, "little") if s is not None else None


def _objects(fc: int, is_response: bool, body: bytes, off: int, frag: AppFragment) -> None:
    cur = _Cursor(body, off)
    no_data = not is_response and fc in HEADERS_ONLY
    while cur.off < len(body):
        if len(frag.objects) >= MAX_OBJECT_HEADERS:
            frag.truncated = True
            return
        hdr = cur.take(3)
        if hdr is None:
            frag.truncated = True
            return
        g, v, q = hdr[0], hdr[1], hdr[2]
        prefix_code, range_code = (q >> 4) & 0x07, q & 0x0F
        spec = RANGE_CODES.get(range_code)
        obj: dict[str, object] = {"group": g, "variation": v, "name": object_name(g, v), "qualifier": q, "prefix_code": prefix_code, "range_code": range_code}
        if spec is None or prefix_code == 7:
            frag.objects.append(Dnp3Object(**obj))  # type: ignore[arg-type]
            frag.truncated = True
            return
        nbytes, kind = spec
        first = 0
        if kind == "range":
            start, stop = cur.uint(nbytes), cur.uint(nbytes)
            if start is None or stop is None or stop < start:
                if start is not None and stop is not None:
                    obj.update(range_start=start, range_stop=stop)
                frag.objects.append(Dnp3Object(**obj))  # type: ignore[arg-type]
                frag.truncated = True
                return
            count = stop - start + 1
            first = start
            obj.update(range_start=start, range_stop=stop, count=count)
        elif kind == "count":
            c = cur.uint(nbytes)
            if c is None:
                frag.objects.append(Dnp3Object(**obj))  # type: ignore[arg-type]
                frag.truncated = True
                return
            count = c
            obj["count"] = count
        else:
            count = 0
        # Headers-only requests still carry data for size-prefixed (free-format) objects, e.g. READ g70v5.
        if (no_data and prefix_code not in PREFIX_SIZE) or g == 60 or count == 0:
            frag.objects.append(Dnp3Object(**obj))  # type: ignore[arg-type]
            continue
        ok = _object_data(g, v, prefix_code, first, count, cur, obj)
        frag.objects.append(Dnp3Object(**obj))  # type: ignore[arg-type]
        if not ok:
            frag.truncated = True
            return


def _object_data(g: int, v: int, prefix_code: int, first: int, count: int, cur: _Cursor, obj: dict[str, object]) -> bool:
    """Consume (and where useful decode) `count` objects; False when their size is unknown or data ends."""
    size = OBJECT_SIZES.get((g, v))
    if size is None and g in STRING_GROUPS and v > 0:
        size = v
    decode = g in _DECODED_GROUPS
    points: list[Dnp3Point] = []
    if size is not None and size < 0 and prefix_code == 0:  # packed bits, no prefixes
        bits = -size
        data = cur.take((count * bits + 7) // 8)
        if data is None:
            return False
        if g == 80:
            for i in range(min(count, MAX_POINTS)):
                points.append(Dnp3Point(index=first + i, value=(data[i // 8] >> (i % 8)) & 1))
            obj["points"] = points
            if count > MAX_POINTS:
                obj["points_truncated"] = True
        return True
    if size is not None and size < 0:
        size = 1  # packed variation with an index prefix: one byte per point
    pbytes = PREFIX_INDEX.get(prefix_code) or PREFIX_SIZE.get(prefix_code) or 0
    is_size_prefix = prefix_code in PREFIX_SIZE
    if size is None and not is_size_prefix and g == 0 and v < 254:
        # Device attributes: each is data type (1), length (1), value (length bytes).
        for i in range(count):
            index = first + i
            if pbytes:
                index = cur.uint(pbytes)  # type: ignore[assignment]
                if index is None:
                    return False
            h = cur.take(2)
            data = cur.take(h[1]) if h is not None else None
            if h is None or data is None:
                return False
            if len(points) < MAX_POINTS:
                points.append(_attribute(index, h[0], data))
        if points:
            obj["points"] = points
            if count > MAX_POINTS:
                obj["points_truncated"] = True
        return True
    if size is None and not is_size_prefix:
        return False
    if not decode and not is_size_prefix and size is not None and prefix_code == 0:
        return cur.take(count * size) is not None  # fast skip
    for i in range(count):
        index: int | None = first + i
        if pbytes:
            p = cur.uint(pbytes)
            if p is None:
                return False
            if is_size_prefix:
                n = p
                index = None if prefix_code else index
            else:
                index = p
                n = size  # type: ignore[assignment]
        else:
            n = size  # type: ignore[assignment]
        data = cur.take(n)
        if data is None:
            return False
        if decode and len(points) < MAX_POINTS:
            pt = _point(g, v, index if not is_size_prefix else None, data)
            if pt is not None:
                points.append(pt)
    if points:
        obj["points"] = points
        if count > MAX_POINTS:
            obj["points_truncated"] = True
    return True


def parse_application(frag: bytes) -> AppFragment | None:
    """One reassembled application fragment; None when it is too short for a header."""
    if len(frag) < 2:
        return None
    control, fc = frag[0], frag[1]
    out = AppFragment(function_code=fc, function_name=function_name(fc), control=control)
    if fc not in FUNCTION_NAMES:
        out.anomaly, out.anomaly_message = AnomalyCode.UNKNOWN_FUNCTION.value, f"application function code {fc}"
    is_response = fc in RESPONSES
    off = 2
    if is_response:
        if len(frag) < 4:
            out.anomaly, out.anomaly_message = AnomalyCode.INVALID_PDU.value, f"{out.function_name} without IIN ({len(frag)} bytes)"
            return out
        out.iin = frag[2] << 8 | frag[3]
        off = 4
    try:
        _objects(fc, is_response, frag, off, out)
    except (ValueError, struct.error, OverflowError):  # defensive: malformed data never escapes
        out.truncated = True
    if out.truncated and out.anomaly is None:
        out.anomaly, out.anomaly_message = AnomalyCode.OBJECTS_TRUNCATED.value, "object data ended early or had no known size: object parsing stopped"
    return out


def iin_list(iin: int | None) -> list[str] | None:
    return iin_names(iin) or None if iin is not None else None
