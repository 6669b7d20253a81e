"""TPKT (RFC 1006) / COTP (ISO 8073) / S7comm / S7comm-plus parsing: pure functions over bytes; never raise.

Layers, outermost first:
- `parse_tpkt` frames one TPKT (version 3, 16-bit length incl. its 4-byte header) from the front of a
  buffer: `Parsed(consumed, needed)` as every decoder here. A bad header has no boundary to trust, so
  the whole buffer is consumed and flagged `invalid_tpkt`; the flow starts again at the next segment.
- `parse_cotp` decodes one TPDU: CR/CC (references, class, TSAP parameters), DR/DC, ER, DT (EOT bit
  and payload). Reassembly of DT fragments (EOT=0) is the flow's job.
- `parse_s7` decodes one S7comm PDU (protocol id 0x32) into a plain field dict plus item dicts; the
  flow completes responses with their request (addresses of read/write items, SZL id) and builds
  the `S7comm` struct. `parse_s7plus` recognises S7comm-plus (0x72) headers without decrypting or
  walking its object tree.
A PDU that does not fit its layout is still decoded as far as it goes and flagged `invalid_pdu`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ..base import Parsed
from .constants import (
    AREA_NAMES,
    AREA_PREFIX,
    BLOCK_TYPE_CODES,
    BLOCK_TYPES,
    COTP_PARAM_DST_TSAP,
    COTP_PARAM_SRC_TSAP,
    COTP_PARAM_TPDU_SIZE,
    COTP_TYPES,
    DATA_SIZE_IN_BITS,
    ERROR_CLASS_NAMES,
    FILESYSTEMS,
    FUNCTION_GROUPS,
    FUNCTION_NAMES,
    MAX_ITEM_DATA_HEX,
    PI_SERVICES,
    RETURN_CODE_NAMES,
    ROSCTR_NAMES,
    S7_PROTOCOL_ID,
    S7PLUS_FUNCTIONS,
    S7PLUS_OPCODES,
    S7PLUS_PROTOCOL_ID,
    SUBFUNCTIONS,
    SYNTAX_NAMES,
    SZL_NAMES,
    TPKT_HEADER,
    TPKT_VERSION,
    TRANSPORT_SIZE_NAMES,
    USERDATA_ERROR_NAMES,
    USERDATA_TYPES,
    AnomalyCode,
    name_of,
)

__all__ = ["parse_tpkt", "parse_cotp", "parse_s7", "parse_s7plus", "Cotp", "S7Pdu", "S7PlusPdu", "block_from_filename"]

_H = struct.Struct(">H")
_I = struct.Struct(">I")


# ---------------------------------------------------------------- TPKT


def parse_tpkt(buf: memoryview | bytes) -> Parsed:
    """One TPKT from the front of `buf`: `pdu` is the TPDU (bytes after the 4-byte header)."""
    n = len(buf)
    if n < TPKT_HEADER:
        return Parsed(0, needed=TPKT_HEADER - n)
    version = buf[0]
    length = (buf[2] << 8) | buf[3]
    if version != TPKT_VERSION or length < TPKT_HEADER + 3:
        return Parsed(n, anomaly=AnomalyCode.INVALID_TPKT.value, anomaly_message=f"TPKT version {version}, length {length}: not a TPKT header (expected version 3, length >= 7)")
    if n < length:
        return Parsed(0, needed=length - n)
    return Parsed(length, pdu=bytes(buf[TPKT_HEADER:length]))


# ---------------------------------------------------------------- COTP


@dataclass(slots=True)
class Cotp:
    code: int  # high nibble of the TPDU code: 0xE CR, 0xD CC, 0x8 DR, 0xC DC, 0xF DT, 0x7 ER, ...
    name: str
    eot: bool = True
    payload: bytes = b""
    fields: dict[str, Any] = field(default_factory=dict)
    anomaly: str | None = None
    anomaly_message: str | None = None


def parse_cotp(tpdu: bytes) -> Cotp:
    if len(tpdu) < 2:
        return Cotp(-1, "invalid", anomaly=AnomalyCode.INVALID_COTP.value, anomaly_message=f"COTP TPDU of {len(tpdu)} byte(s)")
    li = tpdu[0]
    code = tpdu[1] >> 4
    name = COTP_TYPES.get(code) or f"unknown_0x{code:x}"
    c = Cotp(code, name)
    if li + 1 > len(tpdu) or li < 1:
        c.anomaly, c.anomaly_message = AnomalyCode.INVALID_COTP.value, f"COTP length indicator {li} beyond the {len(tpdu)}-byte TPDU"
        li = len(tpdu) - 1
    head = tpdu[1 : li + 1]
    c.payload = tpdu[li + 1 :]
    f = c.fields
    if code == 0xF:
        c.eot = len(head) < 2 or bool(head[1] & 0x80)
    elif code in (0xE, 0xD, 0x8):
        if len(head) >= 5:
            f["dst_ref"] = _H.unpack_from(head, 1)[0]
            f["src_ref"] = _H.unpack_from(head, 3)[0]
        if code == 0x8:
            if len(head) >= 6:
                f["disconnect_reason"] = head[5]
            _cotp_params(head, 6, f)
        else:
            if len(head) >= 6:
                f["cotp_class"] = head[5] >> 4
            _cotp_params(head, 6, f)
    elif code == 0xC:
        if len(head) >= 5:
            f["dst_ref"] = _H.unpack_from(head, 1)[0]
            f["src_ref"] = _H.unpack_from(head, 3)[0]
    elif code == 0x7:
        if len(head) >= 3:
            f["dst_ref"] = _H.unpack_from(head, 1)[0]
        if len(head) >= 4:
            f["disconnect_reason"] = head[3]  # reject cause
    elif code not in COTP_TYPES:
        c.anomaly, c.anomaly_message = AnomalyCode.INVALID_COTP.value, f"unknown COTP TPDU code 0x{tpdu[1]:02x}"
    return c


def _cotp_params(head: bytes, off: int, f: dict[str, Any]) -> None:
    while off + 2 <= len(head):
        pc, pl = head[off], head[off + 1]
        val = head[off + 2 : off + 2 + pl]
        off += 2 + pl
        if pc == COTP_PARAM_SRC_TSAP:
            f["src_tsap"] = val.hex()
        elif pc == COTP_PARAM_DST_TSAP:
            f["dst_tsap"] = val.hex()
            if len(val) == 2:  # S7 TSAP: connection type, rack*32 + slot
                f["connection_type"] = val[0]
                f["rack"], f["slot"] = val[1] >> 5, val[1] & 0x1F
        elif pc == COTP_PARAM_TPDU_SIZE and pl == 1:
            f["tpdu_size"] = 1 << val[0] if val[0] < 17 else None


# ---------------------------------------------------------------- S7comm


@dataclass(slots=True)
class S7Pdu:
    f: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] | None = None
    data: bytes = b""  # the data part (for the flow: SZL responses depend on the request)
    anomaly: str | None = None
    anomaly_message: str | None = None

    def bad(self, msg: str, code: AnomalyCode = AnomalyCode.INVALID_PDU) -> None:
        if self.anomaly is None:
            self.anomaly, self.anomaly_message = code.value, msg


def parse_s7(p: bytes) -> S7Pdu:
    """One S7comm PDU (the reassembled COTP DT payload, starting with 0x32)."""
    out = S7Pdu()
    f = out.f
    f["protocol"] = "s7comm"
    if len(p) < 10 or p[0] != S7_PROTOCOL_ID:
        out.bad(f"S7comm header: {len(p)} byte(s), at least 10 expected")
        f["rosctr"] = p[1] if len(p) > 1 else None
        f["rosctr_name"] = name_of(ROSCTR_NAMES, f["rosctr"])
        return out
    rosctr = p[1]
    f["rosctr"], f["rosctr_name"] = rosctr, name_of(ROSCTR_NAMES, rosctr)
    f["pdu_reference"] = _H.unpack_from(p, 4)[0]
    plen, dlen = _H.unpack_from(p, 6)[0], _H.unpack_from(p, 8)[0]
    f["parameter_length"], f["data_length"] = plen, dlen
    hl = 10
    if rosctr in (2, 3):
        hl = 12
        if len(p) >= 12:
            f["error_class"], f["error_code"] = p[10], p[11]
            f["error_class_name"] = ERROR_CLASS_NAMES.get(p[10]) or name_of(USERDATA_ERROR_NAMES, (p[10] << 8) | p[11], "error")
        else:
            out.bad("Ack/Ack-Data header without error class and code")
    param = p[hl : hl + plen]
    data = p[hl + plen : hl + plen + dlen]
    if len(p) < hl + plen + dlen:
        out.bad(f"S7comm PDU of {len(p)} byte(s), header declares {hl + plen + dlen}")
    elif len(p) > hl + plen + dlen:
        out.bad(f"{len(p) - hl - plen - dlen} byte(s) after the S7comm PDU")
    out.data = data
    if rosctr in (1, 3) and param:
        _job(rosctr, param, data, out)
    elif rosctr == 7:
        _userdata(param, data, out)
    elif rosctr not in ROSCTR_NAMES:
        out.bad(f"unknown ROSCTR {rosctr}")
    return out


def _job(rosctr: int, param: bytes, data: bytes, out: S7Pdu) -> None:
    f = out.f
    fc = param[0]
    f["function_code"], f["function_name"] = fc, name_of(FUNCTION_NAMES, fc)
    if fc == 0xF0:
        if len(param) >= 8:
            f["max_amq_calling"], f["max_amq_called"], f["pdu_size"] = struct.unpack_from(">HHH", param, 2)
        else:
            out.bad(f"setup communication parameter of {len(param)} byte(s), 8 expected")
    elif fc in (0x04, 0x05):
        if len(param) < 2:
            out.bad("read/write var parameter without item count")
            return
        count = param[1]
        f["item_count"] = count
        if rosctr == 1:
            out.items = _items(param, count, out)
            if fc == 0x05:
                _data_items(data, out.items, out, write_request=True)
        elif fc == 0x04:
            out.items = [{} for _ in range(count)]
            _data_items(data, out.items, out, write_request=False)
        else:  # write response: one return code per item
            out.items = [_rc({}, b) for b in data[:count]]
            if len(data) < count:
                out.bad(f"write var response: {len(data)} return code(s) for {count} item(s)")
    elif 0x1A <= fc <= 0x1F:
        _block_transfer(rosctr, fc, param, data, out)
    elif fc == 0x28:
        if rosctr == 1:
            _pi_service(param, out)
    elif fc == 0x29:
        if rosctr == 1 and len(param) >= 7:
            n = param[6]
            f["pi_service"] = _ascii(param[7 : 7 + n])


def _items(param: bytes, count: int, out: S7Pdu) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    off = 2
    for i in range(count):
        if off + 2 > len(param):
            out.bad(f"read/write var: item {i + 1} of {count} missing")
            break
        ln = param[off + 1]
        spec = param[off + 2 : off + 2 + ln]
        off += 2 + ln
        it: dict[str, Any] = {}
        if spec:
            sid = spec[0]
            it["syntax_id"], it["syntax_name"] = sid, name_of(SYNTAX_NAMES, sid)
            if sid == 0x10 and len(spec) >= 10:
                ts, length, db, area = spec[1], _H.unpack_from(spec, 2)[0], _H.unpack_from(spec, 4)[0], spec[6]
                addr = (spec[7] << 16) | (spec[8] << 8) | spec[9]
                it.update(
                    transport_size=ts,
                    transport_size_name=name_of(TRANSPORT_SIZE_NAMES, ts),
                    length=length,
                    db_number=db,
                    area=area,
                    area_name=name_of(AREA_NAMES, area),
                )
                if ts in (0x1C, 0x1D, 0x1E, 0x1F) or area in (0x1C, 0x1D, 0x1E, 0x1F):
                    it["byte_address"] = addr  # counters and timers are numbered, not byte-addressed
                    it["address"] = f"{AREA_PREFIX.get(area, '?')} {addr} {it['transport_size_name'].upper()} {length}"
                else:
                    it["byte_address"], it["bit_address"] = addr >> 3, addr & 7
                    prefix = f"DB{db}.DBX" if area == 0x84 else (f"DI{db}.DIX" if area == 0x85 else AREA_PREFIX.get(area, f"area_0x{area:02x}"))
                    it["address"] = f"{prefix} {addr >> 3}.{addr & 7} {it['transport_size_name'].upper()} {length}"
            elif sid == 0x10:
                out.bad(f"read/write var: S7ANY item {i + 1} of {len(spec)} byte(s), 10 expected")
            else:
                it["data"] = spec[1:].hex()
        items.append(it)
    return items


def _rc(it: dict[str, Any], code: int) -> dict[str, Any]:
    it["return_code"], it["return_code_name"] = code, name_of(RETURN_CODE_NAMES, code)
    return it


def _data_items(data: bytes, items: list[dict[str, Any]], out: S7Pdu, *, write_request: bool) -> None:
    """Read var response / write var request data part: per item return code, size, length, value."""
    off = 0
    n = len(items)
    for i, it in enumerate(items):
        if off + 4 > len(data):
            # A read response with an error return code carries only 4 bytes (or fewer, last item).
            if off < len(data) and not write_request:
                _rc(it, data[off])
                off = len(data)
                continue
            if data or not write_request:
                out.bad(f"data part: item {i + 1} of {n} missing")
            break
        code, ts, length = data[off], data[off + 1], _H.unpack_from(data, off + 2)[0]
        nbytes = (length + 7) // 8 if ts in DATA_SIZE_IN_BITS else length
        if not write_request:
            _rc(it, code)
            if code != 0xFF:  # an item that failed carries no value, whatever its length says
                off += 4
                continue
        value = data[off + 4 : off + 4 + nbytes]
        if len(value) < nbytes:
            out.bad(f"data part: item {i + 1} declares {nbytes} byte(s), {len(value)} present")
        it["data_length"] = len(value)
        it["data"] = value[:MAX_ITEM_DATA_HEX].hex()
        off += 4 + nbytes
        if nbytes % 2 and i < n - 1:
            off += 1  # fill byte after an odd-length value, except after the last item


def block_from_filename(name: str) -> dict[str, Any]:
    """'_0800001P' -> block type OB, number 1, block name OB1, destination filesystem passive."""
    f: dict[str, Any] = {}
    s = name[1:] if name.startswith("_") else name
    if len(s) >= 7:
        bt = BLOCK_TYPES.get(s[0:2].upper())
        if bt:
            f["block_type"] = bt
        if s[2:7].isdigit():
            f["block_number"] = int(s[2:7])
            if bt:
                f["block_name"] = f"{bt}{int(s[2:7])}"
        if len(s) >= 8 and s[7] in FILESYSTEMS:
            f["destination_filesystem"] = FILESYSTEMS[s[7]]
    return f


def _block_transfer(rosctr: int, fc: int, param: bytes, data: bytes, out: S7Pdu) -> None:
    f = out.f
    if len(param) >= 2 and (rosctr == 1 or fc in (0x1B, 0x1D, 0x1E)):
        f["function_status"] = param[1]
    if rosctr == 1:
        if len(param) >= 8:
            f["session_id"] = _I.unpack_from(param, 4)[0]
        if fc in (0x1A, 0x1B, 0x1C, 0x1D) and len(param) >= 9:
            n = param[8]
            name = _ascii(param[9 : 9 + n])
            f["filename"] = name
            f.update(block_from_filename(name))
            if fc == 0x1A and len(param) > 9 + n + 1:
                part2 = _ascii(param[9 + n + 1 : 9 + n + 1 + param[9 + n]])
                # one unknown character, then load memory length and MC7 code length (6 digits each)
                if len(part2) >= 13 and part2[1:7].isdigit() and part2[7:13].isdigit():
                    f["block_length"], f["mc7_length"] = int(part2[1:7]), int(part2[7:13])
        elif fc in (0x1A, 0x1B, 0x1C, 0x1D):
            out.bad(f"{FUNCTION_NAMES[fc]} parameter of {len(param)} byte(s) without file name")
    else:
        if fc == 0x1D and len(param) >= 9:
            f["session_id"] = _I.unpack_from(param, 4)[0]
            n = param[8]
            s = _ascii(param[9 : 9 + n])
            if s.isdigit():
                f["block_length"] = int(s)
        elif fc in (0x1B, 0x1E) and len(data) >= 4:
            f["transfer_length"] = _H.unpack_from(data, 0)[0]


def _pi_service(param: bytes, out: S7Pdu) -> None:
    f = out.f
    if len(param) < 10:
        out.bad(f"PI service parameter of {len(param)} byte(s)")
        return
    blen = _H.unpack_from(param, 8)[0]
    block = param[10 : 10 + blen]
    off = 10 + blen
    name = _ascii(param[off + 1 : off + 1 + param[off]]) if off < len(param) else ""
    if off >= len(param):
        out.bad("PI service without service name")
    f["pi_service"] = name
    params: list[str] = []
    if name in ("_INSE", "_DELE", "_INS2", "_DEL2") and len(block) >= 2:
        for k in range(block[0]):
            entry = _ascii(block[2 + 8 * k : 10 + 8 * k])
            if not entry:
                break
            params.append(entry)
        if params:
            f.update(block_from_filename(params[0]))
    else:
        text = _ascii(block)
        params = [s for s in text.replace("\x00", " ").split() if s] if text else []
    if params:
        f["pi_parameters"] = params
    if name == "P_PROGRAM":
        f["start_mode"] = "cold" if params[:1] == ["C"] else "hot"
    elif name not in PI_SERVICES and name:
        pass  # unknown service: the name says it all


def _userdata(param: bytes, data: bytes, out: S7Pdu) -> None:
    f = out.f
    if len(param) < 8:
        out.bad(f"userdata parameter of {len(param)} byte(s), at least 8 expected")
        return
    # The head is 00 01 12 except in mode-transition pushes (01 00 10): decode by position as the CPUs do.
    tg = param[5]
    typ, group = tg >> 4, tg & 0x0F
    f["userdata_type"] = USERDATA_TYPES.get(typ, f"unknown_0x{typ:x}")
    f["function_group"], f["function_group_name"] = group, name_of(FUNCTION_GROUPS, group)
    sub = param[6]
    f["subfunction_code"], f["subfunction_name"] = sub, name_of(SUBFUNCTIONS.get(group, {}), sub)
    f["sequence_number"] = param[7]
    if param[3] >= 8 and len(param) >= 12:
        f["data_unit_reference"] = param[8]
        f["last_data_unit"] = param[9] == 0
        ec = _H.unpack_from(param, 10)[0]
        f["userdata_error_code"], f["userdata_error_name"] = ec, name_of(USERDATA_ERROR_NAMES, ec, "error")
    if len(data) >= 4:
        rc = data[0]
        f["return_code"], f["return_code_name"] = rc, name_of(RETURN_CODE_NAMES, rc)
        body = data[4 : 4 + _H.unpack_from(data, 2)[0]]
        if group == 0x4 and sub == 0x01 and typ in (0x4, 0x1) and len(body) >= 4:
            f["szl_id"], f["szl_index"] = _H.unpack_from(body, 0)[0], _H.unpack_from(body, 2)[0]
            f["szl_id_name"] = _szl_name(f["szl_id"])
        elif group == 0x7 and len(body) >= 10 and (sub in (0x02, 0x04) and typ == 0x4 or sub in (0x01, 0x03) and typ == 0x8):
            f["time"] = _s7_time(body[0:10])
        elif group == 0x3 and typ == 0x4:
            if sub == 0x03 and len(body) >= 8:  # get block info: type (2 ASCII hex), number (5 digits), filesystem
                f.update(block_from_filename("_" + _ascii(body[0:8])))
            elif sub == 0x02 and len(body) >= 2:
                bt = BLOCK_TYPE_CODES.get(_H.unpack_from(body, 0)[0])
                if bt:
                    f["block_type"] = bt


def _szl_name(szl_id: int) -> str:
    # The high byte of an SZL id selects a partial list of the list named by the low bits.
    return SZL_NAMES.get(szl_id) or SZL_NAMES.get(szl_id & 0x00FF) or f"unknown_0x{szl_id:04x}"


def szl_response(data: bytes, expected_id: int | None) -> dict[str, Any]:
    """SZL header (id, index) and, for 0x0011 / 0x001C, the identity of the module; {} when not an SZL header."""
    f: dict[str, Any] = {}
    if len(data) < 12:
        return f
    body = data[4 : 4 + _H.unpack_from(data, 2)[0]]
    if len(body) < 8:
        return f
    szl_id, index, rec_len, count = struct.unpack_from(">HHHH", body, 0)
    if expected_id is not None and szl_id != expected_id:
        return f  # a follow-up fragment: no SZL header
    if expected_id is None and (_szl_name(szl_id).startswith("unknown") or not 0 < rec_len <= 1024):
        return f
    f["szl_id"], f["szl_id_name"], f["szl_index"] = szl_id, _szl_name(szl_id), index
    low = szl_id & 0x00FF
    recs = body[8:]
    if rec_len <= 0:
        return f
    for k in range(min(count, len(recs) // rec_len)):
        r = recs[k * rec_len : (k + 1) * rec_len]
        idx = _H.unpack_from(r, 0)[0]
        if low == 0x11 and rec_len >= 28:
            mlfb = _ascii(r[2:22]).strip()
            ausbg, ausbe = _H.unpack_from(r, 24)[0], _H.unpack_from(r, 26)[0]
            if idx == 0x0001 and mlfb:
                f["module_order_number"] = mlfb
            elif idx == 0x0006:
                f["hardware_version"] = f"{ausbe}"
                if mlfb and "module_order_number" not in f:
                    f["module_order_number"] = mlfb
            elif idx == 0x0007 and ausbg >> 8 == 0x56:  # 'V' major.minor.patch
                f["firmware_version"] = f"V{ausbg & 0xFF}.{ausbe >> 8}.{ausbe & 0xFF}"
        elif low == 0x1C and rec_len >= 34:
            text = _ascii(r[2:34]).strip()
            key = {1: "system_name", 2: "module_name", 3: "plant_name", 4: "copyright", 5: "serial_number", 7: "module_type_name"}.get(idx)
            if key and text:
                f[key] = text
    return f


def _bcd(b: int) -> int:
    return (b >> 4) * 10 + (b & 0x0F)


def _s7_time(b: bytes) -> str | None:
    """S7 DATE_AND_TIME with century byte: reserved, year hi, year lo, month, day, hour, min, sec, ms (3 BCD digits + weekday)."""
    year = _bcd(b[1]) * 100 + _bcd(b[2])
    if year < 1990 or year > 2189:
        year = (1900 if _bcd(b[2]) >= 90 else 2000) + _bcd(b[2])
    mo, d, h, mi, s = (_bcd(x) for x in b[3:8])
    ms = _bcd(b[8]) * 10 + (b[9] >> 4)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        return None
    return f"{year:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{ms:03d}"


def _ascii(b: bytes) -> str:
    return "".join(chr(x) if 0x20 <= x < 0x7F else "" for x in b)


# ---------------------------------------------------------------- S7comm-plus


@dataclass(slots=True)
class S7PlusPdu:
    f: dict[str, Any] = field(default_factory=dict)
    complete: bool = True  # False: no trailer, the message continues in the next PDU(s)
    anomaly: str | None = None
    anomaly_message: str | None = None


def parse_s7plus(p: bytes, continuation: bool = False) -> S7PlusPdu:
    """Header of one S7comm-plus PDU: version, opcode, function, sequence number, integrity part."""
    out = S7PlusPdu()
    f = out.f
    f["protocol"] = "s7comm-plus"
    if len(p) < 4 or p[0] != S7PLUS_PROTOCOL_ID:
        out.anomaly, out.anomaly_message = AnomalyCode.INVALID_PDU.value, f"S7comm-plus header of {len(p)} byte(s)"
        return out
    version, dlen = p[1], _H.unpack_from(p, 2)[0]
    f["version"] = version
    body = p[4 : 4 + dlen]
    tail = p[4 + dlen :]
    out.complete = len(tail) >= 4 and tail[0] == S7PLUS_PROTOCOL_ID
    if len(body) < dlen:
        out.anomaly, out.anomaly_message = AnomalyCode.INVALID_PDU.value, f"S7comm-plus data of {len(body)} byte(s), header declares {dlen}"
    if continuation or version == 0xFF or not body:
        return out  # a continuation carries no opcode; version 0xff is a keep-alive
    off = 0
    if version == 3:
        # V3: integrity part first (digest length, digest)
        if body[0] in (0x20,) and len(body) > 33:
            f["integrity"] = True
            off = 1 + body[0]
    elif version == 2:
        f["integrity"] = True  # V2: integrity part (id + digest) at the end of the data
    if off >= len(body):
        return out
    op = body[off]
    f["opcode"], f["opcode_name"] = op, name_of(S7PLUS_OPCODES, op)
    if op in (0x31, 0x32, 0x02) and len(body) >= off + 9:
        fn = _H.unpack_from(body, off + 3)[0]
        f["function_code"], f["function_name"] = fn, name_of(S7PLUS_FUNCTIONS, fn)
        f["sequence_number"] = _H.unpack_from(body, off + 7)[0]
        if op == 0x31 and len(body) >= off + 13:
            f["s7plus_session_id"] = _I.unpack_from(body, off + 9)[0]
    elif op not in S7PLUS_OPCODES:
        out.anomaly, out.anomaly_message = AnomalyCode.INVALID_PDU.value, f"unknown S7comm-plus opcode 0x{op:02x}"
    if not out.complete:
        f["fragment"] = True
    return out
