"""GOOSE frame (after the ethertype) -> Goose fields: header, goosePdu members, allData values. Never raises."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct

from pipeline.protocols.goose import Goose, GooseValue

from . import constants as c
from .ber import BerError, items, sint, tlv, uint

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_F32 = struct.Struct("!f")
_F64 = struct.Struct("!d")


def utc_time(raw: bytes) -> tuple[str, int] | None:
    """UtcTime (8 octets: seconds, 24-bit fraction, quality) -> (ISO 8601 with microseconds, quality)."""
    if len(raw) != 8:
        return None
    secs = int.from_bytes(raw[0:4], "big")
    frac = int.from_bytes(raw[4:7], "big")
    micros = (frac * 1_000_000 + (1 << 23)) >> 24  # rounded to the nearest microsecond, as ICSNPP logs it
    t = _EPOCH + dt.timedelta(seconds=secs, microseconds=micros)
    return t.isoformat().replace("+00:00", "Z"), raw[7]


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


def _values(data: bytes, vs: int, ve: int, prefix: str, depth: int, out: list[GooseValue]) -> None:
    """Append every Data element between vs and ve (members after their structure) to `out`."""
    i = 0
    for tag, s, e in items(data, vs, ve):
        if len(out) >= c.MAX_VALUES:
            return
        index = f"{prefix}{i}"
        i += 1
        kind = c.DATA_TYPES.get(tag)
        raw = data[s:e]
        if kind in ("structure", "array"):
            members = sum(1 for _ in items(data, s, e))
            out.append(GooseValue(index=index, type=kind, count=members))
            if depth < c.MAX_DEPTH:
                _values(data, s, e, index + ".", depth + 1, out)
            continue
        if kind is None:
            out.append(GooseValue(index=index, type=f"unknown_{tag:#04x}", value=raw.hex()))
            continue
        value: bool | int | float | str | None
        if kind == "boolean":
            value = bool(raw[0]) if raw else None
        elif kind in ("integer", "unsigned", "bcd"):
            try:
                value = sint(data, s, e) if kind == "integer" else uint(data, s, e)
            except BerError:  # wider than 64 bits: kept as sent
                value = raw.hex()
        elif kind == "float":  # first octet: exponent width (8 single, 11 double precision)
            if len(raw) == 5:
                value = _F32.unpack(raw[1:])[0]
            elif len(raw) == 9:
                value = _F64.unpack(raw[1:])[0]
            else:
                value = raw.hex()
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                value = repr(value)  # NaN and infinities do not survive JSON
        elif kind in ("visible_string", "mms_string"):
            value = _text(raw)
        elif kind == "utc_time":
            ut = utc_time(raw)
            value = ut[0] if ut else raw.hex()
        else:  # bit_string (first octet: unused bits), octet_string, binary_time, boolean_array, object_id
            value = raw.hex()
        out.append(GooseValue(index=index, type=kind, value=value))


def parse(data: bytes | memoryview) -> Goose:
    """Every GOOSE frame gives a Goose; `parse_status`/`parse_error` say what was wrong (ICSNPP's classes)."""
    buf = bytes(data)
    n = len(buf)
    if n < 8:
        return Goose(appid=int.from_bytes(buf[0:2], "big") if n >= 2 else 0, parse_status=c.FAILED, parse_error=c.TRUNCATED)
    appid, length, res1, res2 = struct.unpack_from("!HHHH", buf, 0)
    head = dict(appid=appid, length=length, reserved1=res1, reserved2=res2, simulation_bit=bool(res1 & 0x8000))
    end = min(length, n) if length >= 8 else n
    try:
        tag, ps, pe = tlv(buf, 8, end)
        if tag != c.PDU_TAG:
            raise BerError(f"goosePdu tag {tag:#04x}, expected 0x61")
        return _pdu(buf, ps, pe, head)
    except BerError as e:
        return Goose(**head, parse_status=c.FAILED, parse_error=c.TRUNCATED if e.truncated else c.MALFORMED)  # type: ignore[arg-type]


def _pdu(buf: bytes, ps: int, pe: int, head: dict[str, object]) -> Goose:
    f: dict[str, object] = {}
    seen: set[int] = set()
    unknown = False
    off = ps
    while off < pe:
        start = off
        tag, vs, ve = tlv(buf, off, pe)
        off = ve
        raw = buf[vs:ve]
        seen.add(tag)
        if tag == c.GOCB_REF:
            f["gocb_ref"] = _text(raw)
        elif tag == c.TAL:
            f["time_allowed_to_live"] = uint(buf, vs, ve)
        elif tag == c.DAT_SET:
            f["dat_set"] = _text(raw)
        elif tag == c.GO_ID:
            f["go_id"] = _text(raw)
        elif tag == c.T:
            ut = utc_time(raw)
            if ut is None:
                raise BerError(f"UtcTime of {len(raw)} octets")
            f["t"], f["t_quality"] = ut
        elif tag == c.ST_NUM:
            f["st_num"] = uint(buf, vs, ve)
        elif tag == c.SQ_NUM:
            f["sq_num"] = uint(buf, vs, ve)
        elif tag == c.SIMULATION:
            f["simulation"] = bool(raw[0]) if raw else False
        elif tag == c.CONF_REV:
            f["conf_rev"] = uint(buf, vs, ve)
        elif tag == c.NDS_COM:
            f["nds_com"] = bool(raw[0]) if raw else False
        elif tag == c.NUM_ENTRIES:
            f["num_dat_set_entries"] = uint(buf, vs, ve)
        elif tag == c.ALL_DATA:
            values: list[GooseValue] = []
            _values(buf, vs, ve, "", 1, values)
            f["all_data"] = values
            f["all_data_hash"] = hashlib.sha256(buf[start:ve]).hexdigest()
        elif tag == c.SECURITY:  # "reserved for digital signature": no edition defines it, so ICSNPP calls it unsupported
            f["security"] = raw.hex()
            unknown = True
        else:
            unknown = True
    status, error = c.OK, None
    if any(t not in seen for t in c.HARD_REQUIRED):
        status, error = c.FAILED, c.MISSING_REQUIRED
    elif any(t not in seen for t in c.SOFT_REQUIRED):
        status, error = c.PARTIAL, c.MISSING_REQUIRED
    elif c.ALL_DATA not in seen:
        status, error = c.PARTIAL, c.MISSING_ALL_DATA
    elif unknown:
        status, error = c.PARTIAL, c.UNSUPPORTED_TLV
    return Goose(**head, **f, parse_status=status, parse_error=error)  # type: ignore[arg-type]

