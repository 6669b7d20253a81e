"""DCE/RPC connectionless header (C706 ch. 12) and the PNIO IO CM blocks of its body. Pure; never raises."""

from __future__ import annotations

import struct
import uuid

from pipeline.protocols.profinet import Profinet

from . import constants as c

HEADER_LEN = 80


def _uuid(raw: bytes, little: bool) -> str:
    return str(uuid.UUID(bytes_le=raw) if little else uuid.UUID(bytes=raw))


def looks_like_pnio(data: memoryview | bytes) -> bool:
    """A DCE/RPC CL datagram whose object or interface UUID is PNIO's (DEA0000x-6C97-11D1-8271-...)."""
    if len(data) < HEADER_LEN or data[0] != 4 or data[1] > 10:
        return False
    little = bool(data[4] & 0x10)
    for off in (8, 24):
        u = _uuid(bytes(data[off : off + 16]), little)
        if u.startswith("dea0000") and u[8:24] == c.PNIO_UUID_TAIL:
            return True
    return False


def parse(data: bytes) -> Profinet | None:
    """One datagram -> Profinet (None when it is not DCE/RPC CL at all)."""
    if len(data) < HEADER_LEN or data[0] != 4:
        return None
    ptype, flags1 = data[1], data[2]
    little = bool(data[4] & 0x10)
    e = "<" if little else ">"
    boot, _ivers, seq, opnum, _ihint, _ahint, blen, fragnum = struct.unpack_from(e + "IIIHHHHH", data, 56)
    obj = _uuid(data[8:24], little)
    iface = _uuid(data[24:40], little)
    f: dict[str, object] = {}
    if obj[8:24] == c.PNIO_UUID_TAIL and obj.startswith("dea00000"):
        node = bytes.fromhex(obj[24:])
        f.update(instance=int.from_bytes(node[0:2], "big"), device_id=int.from_bytes(node[2:4], "big"), vendor_id=int.from_bytes(node[4:6], "big"))
    opname = None
    if ptype in (c.REQUEST, c.RESPONSE, c.FAULT):
        opname = c.OPERATIONS.get(opnum, f"opnum_{opnum}")
    body = data[HEADER_LEN : HEADER_LEN + blen]
    if ptype in (c.REQUEST, c.RESPONSE) and fragnum == 0:
        f.update(_body(body, ptype == c.RESPONSE, e))
    return Profinet(
        service="io_cm", rpc_packet_type=ptype, rpc_packet_type_name=c.RPC_TYPES.get(ptype, f"type_{ptype}"), little_endian=little,
        object_uuid=obj, interface_uuid=iface, interface_name=c.INTERFACES.get(iface), activity_uuid=_uuid(data[40:56], little),
        server_boot_time=boot, sequence_number=seq, operation_number=opnum if opname else None, operation_name=opname,
        fragment_number=fragnum, fragment=bool(flags1 & 0x04), last_fragment=bool(flags1 & 0x02), body_length=blen,
        **f,  # type: ignore[arg-type]
    )


def _body(body: bytes, response: bool, e: str) -> dict[str, object]:
    """NDR header (args maximum or PNIO status, args length, array max count, offset, actual count), then PNIO blocks."""
    out: dict[str, object] = {}
    if len(body) < 20:
        return out
    if response:
        out["pnio_status"] = body[0:4].hex()
    args_len = struct.unpack_from(e + "I", body, 4)[0]
    off, end = 20, min(20 + args_len, len(body))
    types: list[str] = []
    while off + 6 <= end and len(types) < c.MAX_BLOCKS:
        btype, blen = struct.unpack_from(">HH", body, off)
        b = body[off + 6 : min(off + 4 + blen, end)]  # after type, length and version
        types.append(c.BLOCK_TYPES.get(btype, f"block_{btype:#06x}"))
        _block(btype, b, out)
        if blen < 2:
            break
        off += 4 + blen
    if types:
        out["block_types"] = types
    return out


def _block(btype: int, b: bytes, out: dict[str, object]) -> None:
    if btype in (0x0101, 0x8101) and len(b) >= 26:
        out["ar_type"] = int.from_bytes(b[0:2], "big")
        out["ar_uuid"] = str(uuid.UUID(bytes=b[2:18]))
        out["session_key"] = int.from_bytes(b[18:20], "big")
        if btype == 0x0101:
            out["cm_initiator_mac"] = b[20:26].hex(":")
            if len(b) >= 52:  # after ARType, ARUUID, SessionKey, MAC, ObjectUUID, ARProperties, timeout factor, UDP RT port
                n = int.from_bytes(b[50:52], "big")
                out["station_name"] = b[52 : 52 + n].decode("latin-1")
    elif btype in c.CONTROL_BLOCKS and len(b) >= 26:
        out["ar_uuid"] = str(uuid.UUID(bytes=b[2:18]))
        out["session_key"] = int.from_bytes(b[18:20], "big")
        cmd = int.from_bytes(b[22:24], "big")
        names = [n for bit, n in c.CONTROL_COMMANDS.items() if cmd & bit]
        out["control_command"] = ",".join(names) if names else f"{cmd:#06x}"
    elif btype in (0x0008, 0x0009, 0x8008, 0x8009) and len(b) >= 34:
        out["ar_uuid"] = str(uuid.UUID(bytes=b[2:18]))
        out["api"] = int.from_bytes(b[18:22], "big")
        out["slot"] = int.from_bytes(b[22:24], "big")
        out["subslot"] = int.from_bytes(b[24:26], "big")
        out["index"] = int.from_bytes(b[28:30], "big")
        out["record_data_length"] = int.from_bytes(b[30:34], "big")
