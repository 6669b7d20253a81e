"""IEC 60870-5-104 APDU parser: pure functions over bytes, one APDU from the front of a buffer; never raises.

Framing and resync. Every APDU starts with 0x68 and a length octet (4..253), which is the only
framing 104 has. A buffer not starting with 0x68 is consumed up to the next 0x68 (or whole) and
reported as `invalid_start`; a length below 4 is consumed as the 2 header octets and reported as
`invalid_length` (decoding resumes at the next octet). Lengths 254 and 255 still frame the APDU and
are decoded, flagged `invalid_length`.

ASDU layout is the one IEC 60870-5-104 fixes: 2-octet cause of transmission (with originator
address), 2-octet common address, 3-octet information object address. Objects that do not fit the
declared length are decoded as far as they go, with the rest in `data`, and flagged `invalid_asdu`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from pipeline.protocols.iec104 import Iec104, Iec104Object, Iec104Time

from ..base import Parsed
from .constants import (
    ASDU_HEADER,
    COI_NAMES,
    COT_NAMES,
    DCS_NAMES,
    DPI_NAMES,
    FRZ_NAMES,
    IOA_LEN,
    KPA_NAMES,
    MAX_LENGTH,
    MIN_LENGTH,
    QPA_NAMES,
    QRP_NAMES,
    RCS_NAMES,
    START,
    TYPE_NAMES,
    U_FUNCTIONS,
    AnomalyCode,
    cot_name,
    info_direction,
    type_name,
)

__all__ = ["parse", "parse_asdu", "cp56", "HEADER_ONLY"]

HEADER_ONLY: Final = "header_only"  # Parsed.extra key: the APCI was bad; value is a header-only Iec104

_F = struct.Struct("<f")
_h = struct.Struct("<h")
_H = struct.Struct("<H")
_i = struct.Struct("<i")
_I = struct.Struct("<I")

F = dict[str, object]


# ---------------------------------------------------------------- information elements


def cp56(b: bytes, off: int = 0) -> Iec104Time:
    """CP56Time2a at b[off:off+7]."""
    ms = _H.unpack_from(b, off)[0]
    mi, hr, dy, mo, yr = b[off + 2], b[off + 3], b[off + 4], b[off + 5], b[off + 6]
    minute, hour, day, month, year = mi & 0x3F, hr & 0x1F, dy & 0x1F, mo & 0x0F, yr & 0x7F
    iso = f"{2000 + year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{ms // 1000:02d}.{ms % 1000:03d}"
    return Iec104Time(
        ms=ms, minute=minute, invalid=bool(mi & 0x80), hour=hour, summer=bool(hr & 0x80), day=day, dow=dy >> 5,
        month=month, year=year, iso=iso,
    )  # fmt: skip


def _cp24(b: bytes, off: int) -> Iec104Time:
    mi = b[off + 2]
    return Iec104Time(ms=_H.unpack_from(b, off)[0], minute=mi & 0x3F, invalid=bool(mi & 0x80))


def _q5(q: int, f: F, ov_bit: bool = True) -> None:
    """The common quality bits of SIQ/DIQ/QDS/SEP/QDP (BL SB NT IV; OV for QDS/QDP)."""
    f["quality"] = q
    f["blocked"], f["substituted"], f["not_topical"], f["invalid"] = bool(q & 0x10), bool(q & 0x20), bool(q & 0x40), bool(q & 0x80)
    if ov_bit:
        f["overflow"] = bool(q & 0x01)


def _siq(b: bytes, o: int, f: F) -> None:
    q = b[o]
    f["value"] = q & 1
    f["value_name"] = "on" if q & 1 else "off"
    _q5(q, f, ov_bit=False)


def _diq(b: bytes, o: int, f: F) -> None:
    q = b[o]
    f["value"] = q & 3
    f["value_name"] = DPI_NAMES[q & 3]
    _q5(q, f, ov_bit=False)


def _vti(b: bytes, o: int, f: F) -> None:
    v = b[o]
    f["value"] = (v & 0x7F) - 0x80 if v & 0x40 else v & 0x3F
    f["transient"] = bool(v & 0x80)
    _q5(b[o + 1], f)


def _nva(b: bytes, o: int, f: F) -> None:
    raw = _h.unpack_from(b, o)[0]
    f["raw"] = raw
    f["value"] = raw / 32768.0


def _sva(b: bytes, o: int, f: F) -> None:
    f["value"] = _h.unpack_from(b, o)[0]


def _r32(b: bytes, o: int, f: F) -> None:
    v = _F.unpack_from(b, o)[0]
    f["value"] = v if v == v and v not in (float("inf"), float("-inf")) else None  # NaN/inf are not JSON
    if f["value"] is None:
        f["data"] = b[o : o + 4].hex()


def _bsi(b: bytes, o: int, f: F) -> None:
    f["value"] = _I.unpack_from(b, o)[0]


def _bcr(b: bytes, o: int, f: F) -> None:
    f["value"] = _i.unpack_from(b, o)[0]
    s = b[o + 4]
    f["quality"] = s
    f["sequence"], f["overflow"], f["adjusted"], f["invalid"] = s & 0x1F, bool(s & 0x20), bool(s & 0x40), bool(s & 0x80)


def _sco(b: bytes, o: int, f: F) -> None:
    c = b[o]
    f["value"] = c & 1
    f["value_name"] = "on" if c & 1 else "off"
    f["qualifier"] = (c >> 2) & 0x1F
    f["select"] = bool(c & 0x80)


def _dco(b: bytes, o: int, f: F, names: tuple[str, ...] = DCS_NAMES) -> None:
    c = b[o]
    f["value"] = c & 3
    f["value_name"] = names[c & 3]
    f["qualifier"] = (c >> 2) & 0x1F
    f["select"] = bool(c & 0x80)


def _rco(b: bytes, o: int, f: F) -> None:
    _dco(b, o, f, RCS_NAMES)


def _qos(b: bytes, o: int, f: F) -> None:
    q = b[o]
    f["qualifier"] = q & 0x7F
    f["select"] = bool(q & 0x80)


def _qpm(b: bytes, o: int, f: F) -> None:
    q = b[o]
    f["qualifier"] = q & 0x3F
    f["qualifier_name"] = KPA_NAMES.get(q & 0x3F, f"kpa_{q & 0x3F}")
    f["local_change"], f["not_operational"] = bool(q & 0x40), bool(q & 0x80)


def _seq(*parts: tuple[int, Callable[[bytes, int, F], None] | None]) -> tuple[int, Callable[[bytes, int, F], None]]:
    """An element made of fixed-size parts decoded in order."""
    size = sum(n for n, _ in parts)

    def dec(b: bytes, o: int, f: F) -> None:
        for n, fn in parts:
            if fn is not None:
                fn(b, o, f)
            o += n

    return size, dec


def _qds(b: bytes, o: int, f: F) -> None:
    _q5(b[o], f)


def _t24(b: bytes, o: int, f: F) -> None:
    f["time"] = _cp24(b, o)


def _t56(b: bytes, o: int, f: F) -> None:
    f["time"] = cp56(b, o)


def _cp16(b: bytes, o: int, f: F) -> None:
    f["elapsed_ms"] = _H.unpack_from(b, o)[0]


def _sep(b: bytes, o: int, f: F) -> None:
    q = b[o]
    f["value"] = q & 3
    f["value_name"] = DPI_NAMES[q & 3]
    _q5(q, f, ov_bit=False)  # bit 3 (EI, elapsed time invalid) stays in `quality`


def _byte_value(b: bytes, o: int, f: F) -> None:
    f["value"] = b[o]


def _qoi(b: bytes, o: int, f: F) -> None:
    q = b[o]
    f["qualifier"] = q
    f["qualifier_name"] = "station" if q == 20 else f"group_{q - 20}" if 21 <= q <= 36 else f"qoi_{q}"


def _qcc(b: bytes, o: int, f: F) -> None:
    q = b[o]
    rqt = q & 0x3F
    f["qualifier"] = rqt
    f["qualifier_name"] = "general" if rqt == 5 else f"group_{rqt}" if 1 <= rqt <= 4 else f"rqt_{rqt}"
    f["freeze"] = q >> 6
    f["value_name"] = FRZ_NAMES[q >> 6]


def _qrp(b: bytes, o: int, f: F) -> None:
    f["qualifier"] = b[o]
    f["qualifier_name"] = QRP_NAMES.get(b[o], f"qrp_{b[o]}")


def _coi(b: bytes, o: int, f: F) -> None:
    c = b[o]
    f["qualifier"] = c & 0x7F
    f["qualifier_name"] = COI_NAMES.get(c & 0x7F, f"coi_{c & 0x7F}")
    f["local_change"] = bool(c & 0x80)


def _qpa(b: bytes, o: int, f: F) -> None:
    f["qualifier"] = b[o]
    f["qualifier_name"] = QPA_NAMES.get(b[o], f"qpa_{b[o]}")


def _raw16(b: bytes, o: int, f: F) -> None:
    f["raw"] = _H.unpack_from(b, o)[0]


def _nof(b: bytes, o: int, f: F) -> None:
    f["file_name"] = _H.unpack_from(b, o)[0]


def _nos(b: bytes, o: int, f: F) -> None:
    f["section"] = b[o]


def _lof(b: bytes, o: int, f: F) -> None:
    f["length"] = b[o] | b[o + 1] << 8 | b[o + 2] << 16


def _qual(b: bytes, o: int, f: F) -> None:
    f["qualifier"] = b[o]


def _chs(b: bytes, o: int, f: F) -> None:
    f["value"] = b[o]  # checksum


# Fixed element layouts per type id: (size, decoder). Types absent here are kept as raw `data`.
ELEMENTS: Final[dict[int, tuple[int, Callable[[bytes, int, F], None]]]] = {
    1: _seq((1, _siq)), 2: _seq((1, _siq), (3, _t24)), 3: _seq((1, _diq)), 4: _seq((1, _diq), (3, _t24)),
    5: _seq((2, _vti)), 6: _seq((2, _vti), (3, _t24)),
    7: _seq((4, _bsi), (1, _qds)), 8: _seq((4, _bsi), (1, _qds), (3, _t24)),
    9: _seq((2, _nva), (1, _qds)), 10: _seq((2, _nva), (1, _qds), (3, _t24)),
    11: _seq((2, _sva), (1, _qds)), 12: _seq((2, _sva), (1, _qds), (3, _t24)),
    13: _seq((4, _r32), (1, _qds)), 14: _seq((4, _r32), (1, _qds), (3, _t24)),
    15: _seq((5, _bcr)), 16: _seq((5, _bcr), (3, _t24)),
    17: _seq((1, _sep), (2, _cp16), (3, _t24)),
    18: _seq((1, _byte_value), (1, _qds), (2, _cp16), (3, _t24)),
    19: _seq((1, _byte_value), (1, _qds), (2, _cp16), (3, _t24)),
    20: _seq((4, _bsi), (1, _qds)), 21: _seq((2, _nva)),
    30: _seq((1, _siq), (7, _t56)), 31: _seq((1, _diq), (7, _t56)), 32: _seq((2, _vti), (7, _t56)),
    33: _seq((4, _bsi), (1, _qds), (7, _t56)), 34: _seq((2, _nva), (1, _qds), (7, _t56)),
    35: _seq((2, _sva), (1, _qds), (7, _t56)), 36: _seq((4, _r32), (1, _qds), (7, _t56)),
    37: _seq((5, _bcr), (7, _t56)), 38: _seq((1, _sep), (2, _cp16), (7, _t56)),
    39: _seq((1, _byte_value), (1, _qds), (2, _cp16), (7, _t56)),
    40: _seq((1, _byte_value), (1, _qds), (2, _cp16), (7, _t56)),
    45: _seq((1, _sco)), 46: _seq((1, _dco)), 47: _seq((1, _rco)),
    48: _seq((2, _nva), (1, _qos)), 49: _seq((2, _sva), (1, _qos)), 50: _seq((4, _r32), (1, _qos)),
    51: _seq((4, _bsi)),
    58: _seq((1, _sco), (7, _t56)), 59: _seq((1, _dco), (7, _t56)), 60: _seq((1, _rco), (7, _t56)),
    61: _seq((2, _nva), (1, _qos), (7, _t56)), 62: _seq((2, _sva), (1, _qos), (7, _t56)),
    63: _seq((4, _r32), (1, _qos), (7, _t56)), 64: _seq((4, _bsi), (7, _t56)),
    70: _seq((1, _coi)),
    100: _seq((1, _qoi)), 101: _seq((1, _qcc)), 102: _seq(), 103: _seq((7, _t56)), 104: _seq((2, _raw16)),
    105: _seq((1, _qrp)), 106: _seq((2, _cp16)), 107: _seq((2, _raw16), (7, _t56)),
    110: _seq((2, _nva), (1, _qpm)), 111: _seq((2, _sva), (1, _qpm)), 112: _seq((4, _r32), (1, _qpm)),
    113: _seq((1, _qpa)),
    120: _seq((2, _nof), (3, _lof), (1, _qual)),
    121: _seq((2, _nof), (1, _nos), (3, _lof), (1, _qual)),
    122: _seq((2, _nof), (1, _nos), (1, _qual)),
    123: _seq((2, _nof), (1, _nos), (1, _qual), (1, _chs)),
    124: _seq((2, _nof), (1, _nos), (1, _qual)),
    126: _seq((2, _nof), (3, _lof), (1, _qual), (7, _t56)),
    127: _seq((2, _nof), (7, _t56), (7, _t56)),
}  # fmt: skip


def _segment(b: bytes, o: int, end: int, f: F) -> int:
    """F_SG_NA_1 element (NOF, NOS, LOS, segment): returns the offset after it, or -1 if it does not fit."""
    if o + 4 > end:
        return -1
    f["file_name"] = _H.unpack_from(b, o)[0]
    f["section"] = b[o + 2]
    los = b[o + 3]
    f["length"] = los
    seg = b[o + 4 : min(o + 4 + los, end)]
    f["data"] = seg[:64].hex()  # a preview; segments carry file content, not for the event store
    return o + 4 + los if o + 4 + los <= end else -1


def _obj(ioa: int, f: F) -> Iec104Object:
    return Iec104Object(ioa=ioa, **f)  # type: ignore[arg-type]


def parse_asdu(b: bytes) -> tuple[dict[str, object], str | None, str | None]:
    """ASDU `b` -> (Iec104 fields, anomaly code, anomaly message). Never raises."""
    out: dict[str, object] = {}
    if len(b) < ASDU_HEADER:  # decode the header as far as it goes (as Wireshark does)
        if len(b) >= 1:
            out.update(type_id=b[0], type_name=type_name(b[0]), info_direction=info_direction(b[0]))
        if len(b) >= 2:
            out.update(sq=bool(b[1] & 0x80), num_objects=b[1] & 0x7F)
        if len(b) >= 3:
            out.update(cot=b[2] & 0x3F, cot_name=cot_name(b[2] & 0x3F), negative=bool(b[2] & 0x40), test=bool(b[2] & 0x80))
        if len(b) >= 4:
            out["originator_address"] = b[3]
        if len(b) >= 5:
            out["data"] = b[4:].hex()
        return out, AnomalyCode.INVALID_ASDU.value, f"ASDU of {len(b)} octet(s), shorter than its 6-octet header"
    tid, vsq, cotb, oa, ca = b[0], b[1], b[2], b[3], _H.unpack_from(b, 4)[0]
    sq, n = bool(vsq & 0x80), vsq & 0x7F
    cot = cotb & 0x3F
    out.update(
        type_id=tid, type_name=type_name(tid), info_direction=info_direction(tid), sq=sq, num_objects=n,
        cot=cot, cot_name=cot_name(cot), negative=bool(cotb & 0x40), test=bool(cotb & 0x80),
        originator_address=oa, common_address=ca,
    )  # fmt: skip
    code: str | None = None
    msg: str | None = None
    if tid not in TYPE_NAMES:
        code, msg = AnomalyCode.UNKNOWN_TYPE_ID.value, f"type id {tid} is not defined by IEC 60870-5-101/104"
    elif cot not in COT_NAMES:
        code, msg = AnomalyCode.UNKNOWN_COT.value, f"cause of transmission {cot} is not defined"
    end = len(b)
    off = ASDU_HEADER
    objs: list[Iec104Object] = []
    layout = ELEMENTS.get(tid)
    if tid == 125:  # F_SG_NA_1: variable-length segment
        while len(objs) < max(n, 1) and off + IOA_LEN <= end:
            ioa = b[off] | b[off + 1] << 8 | b[off + 2] << 16
            f: F = {}
            nxt = _segment(b, off + IOA_LEN, end, f)
            objs.append(_obj(ioa, f))
            if nxt < 0:
                off = end
                code = code or AnomalyCode.INVALID_ASDU.value
                msg = msg or "file segment longer than the ASDU"
                break
            off = nxt
    elif layout is not None:
        size, dec = layout
        if sq:
            if off + IOA_LEN <= end:
                base = b[off] | b[off + 1] << 8 | b[off + 2] << 16
                off += IOA_LEN
                for i in range(n):
                    if off + size > end:
                        break
                    f = {}
                    dec(b, off, f)
                    objs.append(_obj((base + i) & 0xFFFFFF, f))
                    off += size
        else:
            for _ in range(n):
                if off + IOA_LEN + size > end:
                    break
                ioa = b[off] | b[off + 1] << 8 | b[off + 2] << 16
                f = {}
                dec(b, off + IOA_LEN, f)
                objs.append(_obj(ioa, f))
                off += IOA_LEN + size
        if code is None and (len(objs) != n or off != end):
            code = AnomalyCode.INVALID_ASDU.value
            msg = f"{n} object(s) declared, {len(objs)} decoded, {end - off} octet(s) left over"
    elif n and off + IOA_LEN <= end:  # known type without a fixed layout (62351-5 security): address only
        ioa = b[off] | b[off + 1] << 8 | b[off + 2] << 16
        objs.append(Iec104Object(ioa=ioa, data=b[off + IOA_LEN :].hex() or None))
        off = end
    if off < end:
        out["data"] = b[off:].hex()
    if objs:
        out["objects"] = objs
        out["ioa"] = objs[0].ioa
        if objs[0].select is not None:
            out["select"] = objs[0].select
    return out, code, msg


# ---------------------------------------------------------------- entry point


def parse(data: memoryview | bytes) -> Parsed:
    """One APDU from the front of `data` (see the module docstring for resync)."""
    n = len(data)
    if n == 0:
        return Parsed(consumed=0, needed=2)
    if data[0] != START:
        nxt = bytes(data).find(bytes([START]), 1)
        consumed = n if nxt < 0 else nxt
        return Parsed(
            consumed=consumed, anomaly=AnomalyCode.INVALID_START.value,
            anomaly_message=f"{consumed} octet(s) before an APDU start 0x68 (first 0x{data[0]:02x})",
        )  # fmt: skip
    if n < 2:
        return Parsed(consumed=0, needed=1)
    length = data[1]
    if length < MIN_LENGTH:
        header = Iec104(apci_type="?", apdu_length=length)
        return Parsed(consumed=2, anomaly=AnomalyCode.INVALID_LENGTH.value, anomaly_message=f"APCI length {length} < 4", extra={HEADER_ONLY: header})
    total = 2 + length
    if n < total:
        return Parsed(consumed=0, needed=total - n)
    c = bytes(data[2:6])
    body = bytes(data[6:total])
    code: str | None = None
    msg: str | None = None
    if length > MAX_LENGTH:
        code, msg = AnomalyCode.INVALID_LENGTH.value, f"APCI length {length} > {MAX_LENGTH}"
    f: dict[str, object] = {"apdu_length": length}
    if not c[0] & 1:  # I-format
        f["apci_type"] = "I"
        f["send_seq"] = _H.unpack_from(c, 0)[0] >> 1
        f["recv_seq"] = _H.unpack_from(c, 2)[0] >> 1
        asdu, acode, amsg = parse_asdu(body)
        f.update(asdu)
        if code is None and acode is not None:
            code, msg = acode, amsg
    elif c[0] & 3 == 1:  # S-format
        f["apci_type"] = "S"
        f["recv_seq"] = _H.unpack_from(c, 2)[0] >> 1
        if body or c[0] != 1 or c[1]:
            code = code or AnomalyCode.INVALID_APCI.value
            msg = msg or f"S-format with control octets {c[:2].hex()} and {len(body)} ASDU octet(s)"
            if body:
                f["data"] = body.hex()
    else:  # U-format
        f["apci_type"] = "U"
        f["u_function_code"] = c[0]
        name = U_FUNCTIONS.get(c[0])
        f["u_function_name"] = name or f"unknown_0x{c[0]:02x}"
        if name is None or body or c[1] or c[2] or c[3]:
            code = code or AnomalyCode.INVALID_APCI.value
            msg = msg or f"U-format with control octets {c.hex()} and {len(body)} ASDU octet(s)"
            if body:
                f["data"] = body.hex()
    pdu = Iec104(**f)  # type: ignore[arg-type]
    return Parsed(consumed=total, pdu=pdu, anomaly=code, anomaly_message=msg)
