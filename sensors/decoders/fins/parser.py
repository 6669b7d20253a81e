"""Omron FINS parsing: pure functions over bytes; never raise.

- `parse_frame` decodes one FINS frame (UDP datagram payload, or what a FINS/TCP Frame Send carries):
  the 10-byte header (ICF, RSV, GCT, DNA/DA1/DA2, SNA/SA1/SA2, SID), the command code (MRC/SRC), a
  response's end code (MRES/SRES), and the parameters of the commands an analyst needs (memory area
  and address, parameter area, program number, run mode, file names, forced set/reset, controller model
  and version from a Controller Data Read response).
- `parse_tcp` frames one FINS/TCP message (magic "FINS", length, command, error code) from the front
  of a buffer as `Parsed(consumed, needed)`; Frame Send carries a FINS frame, the node address
  handshake (commands 0/1) the client and server node numbers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ..base import Parsed
from .constants import (
    COMMANDS,
    END_CODE_MAIN,
    END_CODES,
    FINS_HEADER,
    MAX_ITEMS,
    MAX_TCP_LENGTH,
    MEMORY_AREAS,
    PARAMETER_AREAS,
    RUN_MODES,
    TCP_COMMANDS,
    TCP_ERRORS,
    TCP_HEADER,
    TCP_MAGIC,
    AnomalyCode,
)

__all__ = ["FinsFrame", "TcpMessage", "parse_frame", "parse_tcp", "parse_response_data", "command_name"]

_H = struct.Struct(">H")
_I = struct.Struct(">I")


def command_name(code: int) -> str:
    return COMMANDS[code][0] if code in COMMANDS else f"unknown_0x{code:04x}"


@dataclass(slots=True)
class FinsFrame:
    f: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""  # parameters (command) or data after the end code (response)
    anomaly: str | None = None
    anomaly_message: str | None = None

    def bad(self, msg: str, code: AnomalyCode = AnomalyCode.INVALID_PDU) -> None:
        if self.anomaly is None:
            self.anomaly, self.anomaly_message = code.value, msg


def _ascii(b: bytes) -> str:
    return "".join(chr(x) if 0x20 <= x < 0x7F else "" for x in b).strip()


def parse_frame(p: bytes) -> FinsFrame:
    out = FinsFrame()
    f = out.f
    if len(p) < FINS_HEADER + 2:
        out.bad(f"FINS frame of {len(p)} byte(s): header and command code need 12", AnomalyCode.INVALID_HEADER)
        return out
    icf = p[0]
    f["icf"] = icf
    f["gateway"] = bool(icf & 0x80)
    response = bool(icf & 0x40)
    f["message_type"] = "response" if response else "command"
    f["response_required"] = not icf & 0x01
    f["gct"] = p[2]
    f["dna"], f["da1"], f["da2"], f["sna"], f["sa1"], f["sa2"], f["sid"] = p[3:10]
    code = _H.unpack_from(p, 10)[0]
    f["command_code"], f["command_name"] = code, command_name(code)
    rest = p[12:]
    if response:
        if len(rest) >= 2:
            end = _H.unpack_from(rest, 0)[0]
            masked = end & 0x7F7F  # bit 15: relay error, bit 7: fatal/non-fatal CPU error flags
            f["end_code"] = end
            f["end_code_name"] = END_CODES.get(masked) or END_CODE_MAIN.get(masked >> 8, f"unknown_0x{masked:04x}")
            if end & 0x8000:
                f["relay_error"] = True
            out.data = rest[2:]
        else:
            out.bad("FINS response without end code")
    else:
        out.data = rest
        _command(code, rest, out)
    return out


def _area(area: int, addr: int, bit: int) -> dict[str, Any]:
    return {"memory_area_code": area, "memory_area_name": MEMORY_AREAS.get(area, f"unknown_0x{area:02x}"), "address": addr, "bit": bit}


def _file(b: bytes) -> str:
    return _ascii(b[:12])


def _command(code: int, d: bytes, out: FinsFrame) -> None:
    f = out.f
    need = {0x0101: 6, 0x0102: 6, 0x0103: 8, 0x0105: 10, 0x0201: 6, 0x0202: 6, 0x0203: 6, 0x0306: 8, 0x0307: 8,
            0x2202: 20, 0x2203: 22, 0x2205: 4, 0x2207: 28, 0x2208: 26, 0x2301: 2}.get(code, 0)  # fmt: skip
    if len(d) < need:
        out.bad(f"{command_name(code)} parameters of {len(d)} byte(s), at least {need} expected")
        return
    if code in (0x0101, 0x0102, 0x0103):
        f.update(_area(d[0], _H.unpack_from(d, 1)[0], d[3]))
        f["item_count"] = _H.unpack_from(d, 4)[0]
        if code == 0x0102:
            f["data_length"] = len(d) - 6
    elif code == 0x0104:
        items = [_area(d[i], _H.unpack_from(d, i + 1)[0], d[i + 3]) for i in range(0, len(d) - 3, 4)]
        f["item_count"] = len(items)
        if items:
            f.update(items[0])
        f["memory_areas"] = sorted({it["memory_area_name"] for it in items})[:MAX_ITEMS]
    elif code == 0x0105:
        f.update(_area(d[0], _H.unpack_from(d, 1)[0], d[3]))
        dst = MEMORY_AREAS.get(d[4], f"unknown_0x{d[4]:02x}")
        f["destination_memory_area_name"], f["destination_address"] = dst, _H.unpack_from(d, 5)[0]
        f["item_count"] = _H.unpack_from(d, 8)[0]
    elif code in (0x0201, 0x0202, 0x0203):
        pa = _H.unpack_from(d, 0)[0]
        f["parameter_area_code"], f["parameter_area_name"] = pa, PARAMETER_AREAS.get(pa, f"unknown_0x{pa:04x}")
        f["address"], f["item_count"] = _H.unpack_from(d, 2)[0], _H.unpack_from(d, 4)[0] & 0x7FFF
    elif code in (0x0304, 0x0305, 0x0306, 0x0307, 0x0308) and len(d) >= 2:
        f["program_number"] = _H.unpack_from(d, 0)[0]
        if code in (0x0306, 0x0307) and len(d) >= 8:
            f["address"], f["item_count"] = _I.unpack_from(d, 2)[0], _H.unpack_from(d, 6)[0] & 0x7FFF
            if code == 0x0307:
                f["data_length"] = len(d) - 8
    elif code == 0x0401 and len(d) >= 2:
        f["program_number"] = _H.unpack_from(d, 0)[0]
        if len(d) >= 3:
            f["run_mode"] = RUN_MODES.get(d[2], f"unknown_0x{d[2]:02x}")
    elif code == 0x0402 and len(d) >= 2:
        f["program_number"] = _H.unpack_from(d, 0)[0]
    elif code == 0x0501:
        if d:
            f["parameter"] = d[0]
    elif code == 0x0702 and len(d) >= 5:
        f["clock"] = _bcd_time(d)
    elif code == 0x0C01 and len(d) >= 2:
        f["program_number"] = _H.unpack_from(d, 0)[0]
    elif code in (0x2201, 0x2202, 0x2203, 0x2204, 0x2205, 0x2206, 0x2208, 0x2209, 0x220F, 0x2210, 0x2211, 0x2215) and len(d) >= 2:
        f["disk_number"] = _H.unpack_from(d, 0)[0]
        if code == 0x2202:
            f["file_name"] = _file(d[2:14])
        elif code == 0x2203:
            f["parameter"] = _H.unpack_from(d, 2)[0]
            f["file_name"] = _file(d[4:16])
            f["data_length"] = len(d) - 22
        elif code == 0x2205:
            n = _H.unpack_from(d, 2)[0]
            names = [_file(d[4 + 12 * i : 16 + 12 * i]) for i in range(min(n, MAX_ITEMS)) if len(d) >= 16 + 12 * i]
            f["item_count"] = n
            if names:
                f["file_name"], f["file_names"] = names[0], names
        elif code == 0x2206 and len(d) >= 16:
            f["parameter"] = _H.unpack_from(d, 2)[0]
            f["file_name"] = _file(d[4:16])
        elif code == 0x2208:
            f["file_name"], f["new_file_name"] = _file(d[2:14]), _file(d[14:26])
        elif code == 0x2209 and len(d) >= 14:
            f["file_name"] = _file(d[2:14])
    elif code == 0x2207:
        f["disk_number"] = _H.unpack_from(d, 0)[0]
        f["file_name"], f["new_file_name"] = _file(d[2:14]), _file(d[16:28])
    elif code in (0x220A, 0x220B, 0x220C) and len(d) >= 2:
        f["parameter"] = _H.unpack_from(d, 0)[0]
        tail = {0x220A: 8, 0x220B: 8, 0x220C: 12}[code]
        if len(d) >= 2 + tail + 14:
            f["disk_number"] = _H.unpack_from(d, 2 + tail)[0]
            f["file_name"] = _file(d[4 + tail : 16 + tail])
        if code == 0x220A and len(d) >= 8:
            f.update(_area(d[2], _H.unpack_from(d, 3)[0], d[5]))
        elif code == 0x220C and len(d) >= 4:
            f["program_number"] = _H.unpack_from(d, 2)[0]
    elif code == 0x2301:
        n = _H.unpack_from(d, 0)[0]
        specs = []
        for i in range(min(n, MAX_ITEMS)):
            o = 2 + 6 * i
            if o + 6 > len(d):
                out.bad(f"forced set/reset: {n} bit(s) declared, {i} present")
                break
            spec = _H.unpack_from(d, o)[0]
            specs.append({0x0000: "reset", 0x0001: "set", 0x8000: "forced_reset", 0x8001: "forced_set", 0xFFFF: "release"}.get(spec, f"unknown_0x{spec:04x}"))
            if i == 0:
                f.update(_area(d[o + 2], _H.unpack_from(d, o + 3)[0], d[o + 5]))
        f["item_count"] = n
        if specs:
            f["set_reset"] = sorted(set(specs))
    elif code == 0x2101 and len(d) >= 2:
        f["parameter"] = _H.unpack_from(d, 0)[0]


def _bcd(b: int) -> int:
    return (b >> 4) * 10 + (b & 0x0F)


def _bcd_time(d: bytes) -> str | None:
    yy, mo, dd, hh, mi = (_bcd(x) for x in d[:5])
    ss = _bcd(d[5]) if len(d) >= 6 else 0
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 60):
        return None
    year = (1900 if yy >= 70 else 2000) + yy  # FINS clocks carry two digits: 70-99 = 19xx
    return f"{year:04d}-{mo:02d}-{dd:02d}T{hh:02d}:{mi:02d}:{ss:02d}"


def parse_response_data(code: int, data: bytes, request: dict[str, Any] | None) -> dict[str, Any]:
    """Fields from a response's data that depend on the command (and its parameters)."""
    f: dict[str, Any] = {}
    if code == 0x0501 and (request is None or request.get("parameter", 0) == 0) and len(data) >= 40:
        model, version = _ascii(data[0:20]), _ascii(data[20:40])
        if model:
            f["controller_model"] = model
        if version:
            f["controller_version"] = version
    elif code == 0x0701 and len(data) >= 5:
        f["clock"] = _bcd_time(data)
    elif code == 0x0601 and len(data) >= 2:
        f["status"], f["mode"] = data[0], data[1]
    elif code in (0x0101, 0x0306, 0x2202, 0x2210):
        f["data_length"] = len(data)
    return {k: v for k, v in f.items() if v is not None}


# ---------------------------------------------------------------- FINS/TCP


@dataclass(slots=True)
class TcpMessage:
    f: dict[str, Any]
    frame: bytes | None = None  # the FINS frame of a Frame Send


def parse_tcp(buf: memoryview | bytes) -> Parsed:
    """One FINS/TCP message from the front of `buf`: `pdu` is a TcpMessage."""
    n = len(buf)
    if n < 8:
        return Parsed(0, needed=8 - n)
    if bytes(buf[0:4]) != TCP_MAGIC:
        return Parsed(n, anomaly=AnomalyCode.INVALID_TCP_HEADER.value, anomaly_message=f"FINS/TCP header starts with {bytes(buf[0:4]).hex()}, not 'FINS' (46494e53)")
    length = _I.unpack_from(buf, 4)[0]
    if length < 8 or length > MAX_TCP_LENGTH:
        return Parsed(n, anomaly=AnomalyCode.INVALID_TCP_HEADER.value, anomaly_message=f"FINS/TCP length {length} outside 8..{MAX_TCP_LENGTH}")
    total = 8 + length
    if n < total:
        return Parsed(0, needed=total - n)
    b = bytes(buf[:total])
    cmd, err = _I.unpack_from(b, 8)[0], _I.unpack_from(b, 12)[0]
    f: dict[str, Any] = {
        "tcp_length": length,
        "tcp_command": cmd,
        "tcp_command_name": TCP_COMMANDS.get(cmd, f"unknown_0x{cmd:x}"),
        "tcp_error_code": err,
        "tcp_error_name": TCP_ERRORS.get(err, f"unknown_0x{err:x}"),
    }
    body = b[TCP_HEADER:]
    msg = TcpMessage(f)
    if cmd == 0 and len(body) >= 4:
        f["client_node"] = _I.unpack_from(body, 0)[0]
    elif cmd == 1 and len(body) >= 8:
        f["client_node"], f["server_node"] = _I.unpack_from(body, 0)[0], _I.unpack_from(body, 4)[0]
    elif cmd in (2, 3):
        msg.frame = body
    return Parsed(total, pdu=msg)
