"""Modbus/TCP ADU parser: pure functions over bytes, one ADU from the front of a buffer; never raises.

Framing and resync. The MBAP length is the only framing Modbus/TCP has, so it is trusted when it is
plausible (2..254, tolerated up to 300 with an `invalid_length` anomaly: devices overshoot):
- protocol id != 0 with a plausible length: the declared ADU is consumed and reported as
  `invalid_protocol_id` (no function decoding: it is probably not Modbus); decoding goes on after it.
- length < 2 or > 300: there is no boundary to trust, so the whole buffer is consumed and reported
  as `invalid_length` (or `invalid_protocol_id` when that is wrong too); the flow starts again at the
  next segment, which in practice is where senders start their ADUs.
A body that does not fit its function's layout is still decoded as far as it goes, with its raw
bytes in `data`, and flagged (`invalid_pdu`, `invalid_value`, ...): the MBAP length stays the
boundary, so the next ADU is unaffected.

Coil/discrete bits in a read response are decoded in full (multiples of 8); the flow trims them to
the quantity of the matching request.
"""

from __future__ import annotations

import struct
from typing import Final

from pipeline.schema import DeviceIdentification, FileRecord, Modbus

from ..base import Direction, Parsed
from ..wire import Body
from .constants import (
    DEVICE_ID_OBJECTS,
    EXCEPTION_BIT,
    EXCEPTION_NAMES,
    FC_UMAS,
    MAX_LENGTH,
    MAX_TOLERATED_LENGTH,
    MBAP_LEN,
    MEI_DEVICE_ID,
    MIN_LENGTH,
    AnomalyCode,
    exception_name,
    function_name,
    subfunction_name,
)

__all__ = ["parse", "bits_of", "HEADER_ONLY"]

HEADER_ONLY: Final = "header_only"  # Parsed.extra key: MBAP was bad; the value is a header-only Modbus

_H = struct.Struct(">H")
_HH = struct.Struct(">HH")
_HHH = struct.Struct(">HHH")
_MBAP = struct.Struct(">HHHB")

_BITS: Final[tuple[tuple[int, ...], ...]] = tuple(tuple((b >> i) & 1 for i in range(8)) for b in range(256))

# Quantity limits per function (spec §6): reads of bits, reads of registers, multiple writes.
_READ_QTY_MAX: Final = {1: 2000, 2: 2000, 3: 125, 4: 125}


def bits_of(b: bytes) -> list[int]:
    """Coil/discrete bits, least significant bit of the first byte first."""
    out: list[int] = []
    for x in b:
        out.extend(_BITS[x])
    return out


def _regs(b: bytes, off: int, count: int) -> list[int]:
    return list(struct.unpack_from(f">{count}H", b, off)) if count > 0 else []


def _need(o: Body, b: bytes, n: int, what: str) -> bool:
    """True when `b` holds at least n bytes; else flags invalid_pdu and keeps the raw bytes."""
    if len(b) >= n:
        return True
    o.bad(AnomalyCode.INVALID_PDU, f"{what}: {len(b)} byte(s) of data, at least {n} expected")
    o.f["data"] = b.hex()
    return False


def _exact(o: Body, b: bytes, n: int, what: str) -> None:
    if len(b) > n:
        o.bad(AnomalyCode.INVALID_PDU, f"{what}: {len(b) - n} trailing byte(s)")
        o.f.setdefault("data", b[n:].hex())


def _qty(o: Body, q: int, lo: int, hi: int, what: str) -> None:
    if not lo <= q <= hi:
        o.bad(AnomalyCode.INVALID_VALUE, f"{what}: quantity {q} outside {lo}..{hi}")


# ---------------------------------------------------------------- requests


def _req(fc: int, b: bytes, o: Body) -> None:
    f = o.f
    if fc in (1, 2, 3, 4):
        if _need(o, b, 4, "read request"):
            f["address"], f["quantity"] = _HH.unpack_from(b)
            _qty(o, f["quantity"], 1, _READ_QTY_MAX[fc], "read request")  # type: ignore[arg-type]
            _exact(o, b, 4, "read request")
    elif fc == 5:
        if _need(o, b, 4, "write single coil"):
            addr, v = _HH.unpack_from(b)
            f["address"], f["quantity"] = addr, 1
            if v == 0xFF00:
                f["values"] = [1]
            elif v == 0:
                f["values"] = [0]
            else:
                f["values"] = [v]
                o.bad(AnomalyCode.INVALID_VALUE, f"write single coil: value 0x{v:04x}, expected 0xff00 or 0x0000")
            _exact(o, b, 4, "write single coil")
    elif fc == 6:
        if _need(o, b, 4, "write single register"):
            addr, v = _HH.unpack_from(b)
            f["address"], f["quantity"], f["values"] = addr, 1, [v]
            _exact(o, b, 4, "write single register")
    elif fc in (7, 11, 12, 17):
        if b:
            o.bad(AnomalyCode.INVALID_PDU, f"{function_name(fc)} request: {len(b)} unexpected byte(s)")
            f["data"] = b.hex()
    elif fc == 8:
        _diag(b, o)
    elif fc == 15:
        if _need(o, b, 5, "write multiple coils"):
            addr, q = _HH.unpack_from(b)
            bc = b[4]
            f["address"], f["quantity"], f["byte_count"] = addr, q, bc
            bits = b[5 : 5 + bc]
            f["values"] = bits_of(bits)[:q]
            _qty(o, q, 1, 0x7B0, "write multiple coils")
            if bc != (q + 7) // 8 or len(b) != 5 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"write multiple coils: quantity {q}, byte count {bc}, {len(b) - 5} data byte(s)")
    elif fc == 16:
        if _need(o, b, 5, "write multiple registers"):
            addr, q = _HH.unpack_from(b)
            bc = b[4]
            f["address"], f["quantity"], f["byte_count"] = addr, q, bc
            avail = min(bc, len(b) - 5) // 2
            f["values"] = _regs(b, 5, avail)
            _qty(o, q, 1, 123, "write multiple registers")
            if bc != 2 * q or len(b) != 5 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"write multiple registers: quantity {q}, byte count {bc}, {len(b) - 5} data byte(s)")
    elif fc == 20:
        if _need(o, b, 1, "read file record"):
            bc = b[0]
            f["byte_count"] = bc
            recs: list[FileRecord] = []
            end = min(1 + bc, len(b))
            off = 1
            while off + 7 <= end:
                ref, fn, rn, rl = struct.unpack_from(">BHHH", b, off)
                recs.append(FileRecord(reference_type=ref, file_number=fn, record_number=rn, record_length=rl))
                off += 7
            f["file_records"] = recs
            if bc % 7 or len(b) != 1 + bc or not recs:
                o.bad(AnomalyCode.INVALID_PDU, f"read file record: byte count {bc}, {len(b) - 1} data byte(s)")
            elif any(r.reference_type != 6 for r in recs):
                o.bad(AnomalyCode.INVALID_VALUE, "read file record: reference type is not 6")
    elif fc == 21:
        _write_file(b, o, "write file record request")
    elif fc == 22:
        _mask(b, o)
    elif fc == 23:
        if _need(o, b, 9, "read/write multiple registers"):
            ra, rq, wa, wq = struct.unpack_from(">HHHH", b)
            bc = b[8]
            f.update(read_address=ra, read_quantity=rq, address=wa, quantity=wq, byte_count=bc)
            f["values"] = _regs(b, 9, min(bc, len(b) - 9) // 2)
            _qty(o, rq, 1, 125, "read/write multiple registers (read)")
            _qty(o, wq, 1, 121, "read/write multiple registers (write)")
            if bc != 2 * wq or len(b) != 9 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"read/write multiple registers: write quantity {wq}, byte count {bc}, {len(b) - 9} data byte(s)")
    elif fc == 24:
        if _need(o, b, 2, "read fifo queue"):
            f["address"] = _H.unpack_from(b)[0]
            _exact(o, b, 2, "read fifo queue")
    elif fc == 43:
        if _need(o, b, 1, "encapsulated interface transport"):
            mei = b[0]
            f["subfunction_code"], f["subfunction_name"] = mei, subfunction_name(43, mei)
            if mei == MEI_DEVICE_ID:
                if _need(o, b, 3, "read device identification"):
                    f["device_id"] = DeviceIdentification(read_code=b[1], object_id=b[2])
                    if not 1 <= b[1] <= 4:
                        o.bad(AnomalyCode.INVALID_VALUE, f"read device identification: read code {b[1]}")
                    _exact(o, b, 3, "read device identification")
            elif len(b) > 1:
                f["data"] = b[1:].hex()
    else:
        _other(fc, b, o, request=True)


def _diag(b: bytes, o: Body) -> None:
    if _need(o, b, 2, "diagnostics"):
        sub = _H.unpack_from(b)[0]
        o.f["subfunction_code"], o.f["subfunction_name"] = sub, subfunction_name(8, sub)
        if len(b) > 2:
            o.f["data"] = b[2:].hex()


def _mask(b: bytes, o: Body) -> None:
    if _need(o, b, 6, "mask write register"):
        o.f["address"], o.f["and_mask"], o.f["or_mask"] = _HHH.unpack_from(b)
        _exact(o, b, 6, "mask write register")


def _write_file(b: bytes, o: Body, what: str) -> None:
    if not _need(o, b, 1, what):
        return
    bc = b[0]
    o.f["byte_count"] = bc
    end = min(1 + bc, len(b))
    off = 1
    recs: list[FileRecord] = []
    bad = False
    while off + 7 <= end:
        ref, fn, rn, rl = struct.unpack_from(">BHHH", b, off)
        off += 7
        n = min(rl, (end - off) // 2)
        bad = bad or n < rl
        recs.append(FileRecord(reference_type=ref, file_number=fn, record_number=rn, record_length=rl, values=_regs(b, off, n)))
        off += 2 * n
        if n < rl:
            break
    o.f["file_records"] = recs
    if bad or off != end or len(b) != 1 + bc or not recs:
        o.bad(AnomalyCode.INVALID_PDU, f"{what}: byte count {bc} does not match its sub-requests")
    elif any(r.reference_type != 6 for r in recs):
        o.bad(AnomalyCode.INVALID_VALUE, f"{what}: reference type is not 6")


def _other(fc: int, b: bytes, o: Body, *, request: bool) -> None:
    """Vendor, user-defined and unknown codes: kept whole in `data` so rules can see them."""
    if b:
        o.f["data"] = b.hex()
    if fc == FC_UMAS and request and len(b) >= 2:
        # UMAS: session byte, then the UMAS function code.
        o.f["subfunction_code"], o.f["subfunction_name"] = b[1], subfunction_name(FC_UMAS, b[1])


# ---------------------------------------------------------------- responses


def _resp(fc: int, b: bytes, o: Body) -> None:
    f = o.f
    if fc in (1, 2, 3, 4, 23):
        if _need(o, b, 1, "read response"):
            bc = b[0]
            f["byte_count"] = bc
            data = b[1 : 1 + bc]
            if fc in (1, 2):
                f["values"] = bits_of(data)
            else:
                f["values"] = _regs(data, 0, len(data) // 2)
                if bc % 2:
                    o.bad(AnomalyCode.INVALID_PDU, f"read registers response: odd byte count {bc}")
            if len(b) != 1 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"read response: byte count {bc}, {len(b) - 1} data byte(s)")
    elif fc in (5, 6):
        if _need(o, b, 4, "write single response"):
            addr, v = _HH.unpack_from(b)
            f["address"], f["quantity"] = addr, 1
            f["values"] = [1 if v == 0xFF00 else 0 if v == 0 else v] if fc == 5 else [v]
            _exact(o, b, 4, "write single response")
    elif fc == 7:
        if _need(o, b, 1, "read exception status"):
            f["status"] = b[0]
            _exact(o, b, 1, "read exception status")
    elif fc == 8:
        _diag(b, o)
    elif fc == 11:
        if _need(o, b, 4, "get comm event counter"):
            f["status"], f["event_count"] = _HH.unpack_from(b)
            _exact(o, b, 4, "get comm event counter")
    elif fc == 12:
        if _need(o, b, 7, "get comm event log"):
            bc = b[0]
            f["byte_count"] = bc
            f["status"], f["event_count"], f["message_count"] = _HHH.unpack_from(b, 1)
            if len(b) > 7:
                f["data"] = b[7:].hex()
            if len(b) != 1 + bc or bc < 6:
                o.bad(AnomalyCode.INVALID_PDU, f"get comm event log: byte count {bc}, {len(b) - 1} data byte(s)")
    elif fc in (15, 16):
        if _need(o, b, 4, "write multiple response"):
            f["address"], f["quantity"] = _HH.unpack_from(b)
            _exact(o, b, 4, "write multiple response")
    elif fc == 17:
        # Server id and run indicator: their split is device-specific, so all of it goes to `data`.
        if _need(o, b, 1, "report server id"):
            bc = b[0]
            f["byte_count"] = bc
            if len(b) > 1:
                f["data"] = b[1:].hex()
            if len(b) != 1 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"report server id: byte count {bc}, {len(b) - 1} data byte(s)")
    elif fc == 20:
        if _need(o, b, 1, "read file record response"):
            bc = b[0]
            f["byte_count"] = bc
            end = min(1 + bc, len(b))
            off = 1
            recs: list[FileRecord] = []
            bad = False
            while off + 2 <= end:
                rl, ref = b[off], b[off + 1]
                words = max(rl - 1, 0) // 2
                n = min(words, (end - off - 2) // 2)
                recs.append(FileRecord(reference_type=ref, record_length=words, values=_regs(b, off + 2, n)))
                bad = bad or n < words or rl < 1 or (rl - 1) % 2 == 1
                off += 1 + rl if rl else 2
            f["file_records"] = recs
            if bad or off != end or len(b) != 1 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"read file record response: byte count {bc} does not match its sub-responses")
    elif fc == 21:
        _write_file(b, o, "write file record response")
    elif fc == 22:
        _mask(b, o)
    elif fc == 24:
        if _need(o, b, 4, "read fifo queue response"):
            bc, cnt = _HH.unpack_from(b)
            f["byte_count"], f["fifo_count"] = bc, cnt
            f["values"] = _regs(b, 4, min(cnt, (len(b) - 4) // 2))
            if cnt > 31:
                o.bad(AnomalyCode.INVALID_VALUE, f"read fifo queue response: fifo count {cnt} > 31")
            if bc != 2 + 2 * cnt or len(b) != 2 + bc:
                o.bad(AnomalyCode.INVALID_PDU, f"read fifo queue response: byte count {bc}, fifo count {cnt}")
    elif fc == 43:
        if _need(o, b, 1, "encapsulated interface transport"):
            mei = b[0]
            f["subfunction_code"], f["subfunction_name"] = mei, subfunction_name(43, mei)
            if mei == MEI_DEVICE_ID:
                _device_id(b, o)
            elif len(b) > 1:
                f["data"] = b[1:].hex()
    else:
        _other(fc, b, o, request=False)


def _text(v: bytes) -> str:
    return v.decode("utf-8", errors="backslashreplace")


def _device_id(b: bytes, o: Body) -> None:
    if not _need(o, b, 6, "read device identification response"):
        return
    code, conformity, more, nxt, count = b[1], b[2], b[3], b[4], b[5]
    objects: dict[str, str] = {}
    named: dict[str, str] = {}
    off = 6
    for _ in range(count):
        if off + 2 > len(b):
            break
        oid, ln = b[off], b[off + 1]
        val = b[off + 2 : off + 2 + ln]
        if len(val) < ln:
            off = len(b) + 1
            break
        s = _text(val)
        objects[f"0x{oid:02x}"] = s
        key = DEVICE_ID_OBJECTS.get(oid)
        if key is not None:
            named["revision" if key == "major_minor_revision" else key] = s
        off += 2 + ln
    o.f["device_id"] = DeviceIdentification(
        read_code=code,
        conformity_level=conformity,
        more_follows=more == 0xFF,
        object_id=nxt,
        objects=objects,
        **named,  # type: ignore[arg-type]
    )
    if len(objects) != count or off != len(b):
        o.bad(AnomalyCode.INVALID_PDU, f"read device identification response: {count} object(s) declared, {len(objects)} decoded")
    elif more not in (0, 0xFF):
        o.bad(AnomalyCode.INVALID_VALUE, f"read device identification response: more follows 0x{more:02x}")


# ---------------------------------------------------------------- entry point


def parse(data: memoryview | bytes, direction: Direction) -> Parsed:
    """One Modbus/TCP ADU from the front of `data` (see the module docstring for resync)."""
    n = len(data)
    if n < 6:
        return Parsed(consumed=0, needed=MBAP_LEN + 1 - n)
    tid, pid, length = _HHH.unpack_from(data)
    bad_len = length < MIN_LENGTH or length > MAX_TOLERATED_LENGTH
    if pid != 0 or bad_len:
        code = AnomalyCode.INVALID_PROTOCOL_ID if pid != 0 else AnomalyCode.INVALID_LENGTH
        msg = f"MBAP protocol id {pid}, length {length}"
        if bad_len:
            consumed = n  # no boundary to trust: drop what is buffered
        else:
            consumed = 6 + length
            if n < consumed:
                return Parsed(consumed=0, needed=consumed - n)
        header = Modbus(
            transaction_id=tid,
            unit_id=data[6] if n > 6 else 0,
            function_code=data[7] if n > 7 else 0,
            function_name=function_name(data[7]) if n > 7 else "unknown_0",
            message_type="request" if direction is Direction.TO_SERVER else "response",
            protocol_id=pid,
            length=length,
        )
        return Parsed(consumed=consumed, anomaly=code.value, anomaly_message=msg, extra={HEADER_ONLY: header})
    total = 6 + length
    if n < total:
        return Parsed(consumed=0, needed=total - n)
    unit = data[6]
    raw_fc = data[7]
    body = bytes(data[8:total])
    o = Body()
    f = o.f
    if length > MAX_LENGTH:
        o.bad(AnomalyCode.INVALID_LENGTH, f"MBAP length {length} > {MAX_LENGTH} (ADU over 260 bytes)")
    request = direction is Direction.TO_SERVER
    fc = raw_fc
    if request:
        if raw_fc == 0 or raw_fc >= EXCEPTION_BIT:
            o.bad(AnomalyCode.INVALID_FUNCTION_CODE, f"request function code {raw_fc}")
            if body:
                f["data"] = body.hex()
        else:
            _req(raw_fc, body, o)
    elif raw_fc & EXCEPTION_BIT:
        fc = raw_fc & 0x7F
        if _need(o, body, 1, "exception response"):
            ec = body[0]
            f["exception_code"], f["exception_name"] = ec, exception_name(ec)
            if ec not in EXCEPTION_NAMES:
                o.bad(AnomalyCode.INVALID_EXCEPTION_CODE, f"exception code {ec}")
            _exact(o, body, 1, "exception response")
    elif raw_fc == 0:
        o.bad(AnomalyCode.INVALID_FUNCTION_CODE, "response function code 0")
        if body:
            f["data"] = body.hex()
    else:
        _resp(raw_fc, body, o)
    pdu = Modbus(
        transaction_id=tid,
        unit_id=unit,
        function_code=fc,
        function_name=function_name(fc),
        message_type="request" if request else "response",
        protocol_id=pid,
        length=length,
        **f,  # type: ignore[arg-type]
    )
    return Parsed(consumed=total, pdu=pdu, anomaly=o.code, anomaly_message=o.msg)
