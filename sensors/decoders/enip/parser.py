"""EtherNet/IP encapsulation + CIP parser: pure functions over bytes, one message from the front of a buffer; never raises.

Framing. The 24-byte encapsulation header's length is the only framing EtherNet/IP has over TCP. A
header with a length above MAX_ENCAP_LENGTH, or with an unknown command and either non-zero options
(the spec requires 0) or a length above MAX_UNKNOWN_LENGTH, is not trusted: the whole buffer is
consumed as `not a header` (`invalid_length`) and the flow starts again at the next segment. An
unknown command with a plausible header is consumed and reported (`unknown_command`).

CIP. The message router request (service, request path, data) or response (service | 0x80, general
status, additional status, data) inside an unconnected (0x00B2) or connected (0x00B1) data item is
decoded into a `Cip`; Multiple_Service_Packet and Unconnected_Send carry further requests, which are
decoded into further `Cip` records (`embedded_in` says which). Object-specific service codes
(0x4B..0x63) are named by the class addressed; a reply carries no path, so the flow names it from
its request.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Final

from pipeline.protocols.enip import Cip, Enip, EnipIdentity

from ..base import Direction, Parsed
from ..wire import name_of
from .constants import (
    CLASS_CONNECTION_MANAGER,
    CMD_LIST_IDENTITY,
    CMD_LIST_INTERFACES,
    CMD_LIST_SERVICES,
    CMD_REGISTER_SESSION,
    CMD_SEND_RR_DATA,
    CMD_SEND_UNIT_DATA,
    COMMANDS,
    CM_EXTENDED_STATUS,
    DEVICE_STATES,
    DEVICE_TYPES,
    ENCAP_HEADER_LEN,
    ITEM_CONNECTED_ADDRESS,
    ITEM_CONNECTED_DATA,
    ITEM_IDENTITY,
    ITEM_LIST_SERVICES,
    ITEM_SEQUENCED_ADDRESS,
    ITEM_SOCKADDR_O_T,
    ITEM_SOCKADDR_T_O,
    ITEM_UNCONNECTED_DATA,
    MAX_DATA_HEX,
    MAX_ENCAP_LENGTH,
    REPLY_BIT,
    SC_FORWARD_OPEN,
    SC_LARGE_FORWARD_OPEN,
    SC_MSP,
    VENDORS,
    AnomalyCode,
    class_name,
    command_name,
    encap_status_name,
    general_status_name,
    item_name,
    service_name,
)

__all__ = ["Message", "parse", "parse_cip", "parse_path", "parse_cpf", "parse_io", "Path"]

_HEADER = struct.Struct("<HHII8sI")
_H = struct.Struct("<H")
_I = struct.Struct("<I")
_HH = struct.Struct("<HH")
# A list of at most this many CPF items / embedded services is believed (real traffic: 2-4 / <50).
MAX_ITEMS: Final = 64
MAX_EMBEDDED: Final = 256
MAX_DEPTH: Final = 3
# An unknown command is believed to be a header only with options 0 (as the spec requires) and at most this length.
MAX_UNKNOWN_LENGTH: Final = 4096


@dataclass(slots=True)
class Message:
    """One encapsulation message (or one CIP I/O datagram): its enip fields, its CIP services, its problems."""

    enip: Enip
    cips: list[Cip] = field(default_factory=list)  # top-level service first, then the embedded ones
    anomalies: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Path:
    class_id: int | None = None
    instance_id: int | None = None
    attribute_id: int | None = None
    member_id: int | None = None
    connection_point: int | None = None
    tag: str | None = None
    text: str | None = None
    error: str | None = None


def _hexcap(b: bytes) -> str | None:
    return b[:MAX_DATA_HEX].hex() if b else None


# ---------------------------------------------------------------- EPATH


def parse_path(b: bytes) -> Path:
    """Decode a padded EPATH (port, logical, network, symbolic and data segments)."""
    p = Path()
    parts: list[str] = []
    tags: list[str] = []
    i, n = 0, len(b)
    while i < n:
        seg = b[i]
        kind = seg >> 5
        if kind == 0:  # port segment
            port = seg & 0x0F
            ext = seg & 0x10
            j = i + 1
            if ext:
                if j >= n:
                    p.error = "truncated port segment"
                    break
                size = b[j]
                j += 1
                if port == 0x0F:
                    if j + 2 > n:
                        p.error = "truncated port segment"
                        break
                    port = _H.unpack_from(b, j)[0]
                    j += 2
                link = b[j : j + size]
                j += size
                if len(link) < size:
                    p.error = "truncated port segment"
                    break
                link_txt = link.decode("latin-1")
            else:
                if port == 0x0F:
                    if j + 2 > n:
                        p.error = "truncated port segment"
                        break
                    port = _H.unpack_from(b, j)[0]
                    j += 2
                if j >= n:
                    p.error = "truncated port segment"
                    break
                link_txt = str(b[j])
                j += 1
            if (j - i) % 2:
                j += 1
            parts.append(f"port {port} link {link_txt}")
            i = j
        elif kind == 1:  # logical segment
            ltype = (seg >> 2) & 7
            fmt = seg & 3
            if ltype == 5 and fmt == 0:  # electronic key
                if i + 2 > n:
                    p.error = "truncated electronic key"
                    break
                klen = 8 if b[i + 1] == 4 else 0
                parts.append("key")
                i += 2 + klen
                continue
            if fmt == 0:
                if i + 2 > n:
                    p.error = "truncated logical segment"
                    break
                v = b[i + 1]
                i += 2
            elif fmt == 1:
                if i + 4 > n:
                    p.error = "truncated logical segment"
                    break
                v = _H.unpack_from(b, i + 2)[0]
                i += 4
            elif fmt == 2:
                if i + 6 > n:
                    p.error = "truncated logical segment"
                    break
                v = _I.unpack_from(b, i + 2)[0]
                i += 6
            else:
                p.error = f"reserved logical format in segment 0x{seg:02x}"
                break
            if ltype == 0:
                p.class_id = v
                parts.append(f"class 0x{v:02x}")
            elif ltype == 1:
                p.instance_id = v
                parts.append(f"instance 0x{v:02x}")
            elif ltype == 2:
                if tags:
                    tags[-1] += f"[{v}]"
                p.member_id = v
                parts.append(f"member {v}")
            elif ltype == 3:
                p.connection_point = v
                parts.append(f"connection_point {v}")
            elif ltype == 4:
                p.attribute_id = v
                parts.append(f"attribute {v}")
            else:
                parts.append(f"logical_{ltype} {v}")
        elif kind == 2:  # network segment
            if seg & 0x10:
                if i + 2 > n:
                    p.error = "truncated network segment"
                    break
                i += 2 + 2 * b[i + 1]
            else:
                i += 2
            parts.append(f"network 0x{seg:02x}")
        elif kind == 3:  # symbolic segment
            size = seg & 0x1F
            if size == 0:
                p.error = "extended symbolic segment not supported"
                break
            sym = b[i + 1 : i + 1 + size]
            if len(sym) < size:
                p.error = "truncated symbolic segment"
                break
            tags.append(sym.decode("latin-1"))
            i += 1 + size + ((1 + size) % 2)
        elif seg == 0x91:  # ANSI extended symbol
            if i + 2 > n:
                p.error = "truncated ANSI symbol"
                break
            size = b[i + 1]
            sym = b[i + 2 : i + 2 + size]
            if len(sym) < size:
                p.error = "truncated ANSI symbol"
                break
            tags.append(sym.decode("latin-1"))
            i += 2 + size + (size % 2)
        elif seg == 0x80:  # simple data segment
            if i + 2 > n:
                p.error = "truncated data segment"
                break
            i += 2 + 2 * b[i + 1]
            parts.append("data")
        else:
            p.error = f"unsupported path segment 0x{seg:02x}"
            break
    if tags:
        p.tag = ".".join(tags)
        parts.insert(0, f"tag {p.tag}")
    p.text = " ".join(parts) or None
    return p


# ---------------------------------------------------------------- CIP


def _status(o: dict[str, object], class_id: int | None, gs: int, ext: bytes) -> None:
    o["status_code"] = gs
    o["status_name"] = general_status_name(gs)
    if len(ext) >= 2:
        es = _H.unpack_from(ext)[0]
        o["extended_status"] = es
        if class_id == CLASS_CONNECTION_MANAGER or gs == 0x01:
            o["extended_status_name"] = CM_EXTENDED_STATUS.get(es) or f"0x{es:04x}"


def parse_cip(
    b: bytes, seq: int | None = None, *, embedded_in: str | None = None, index: int | None = None,
    req_class: int | None = None, req_symbolic: bool = False, depth: int = 0,
) -> tuple[list[Cip], list[tuple[str, str]]]:
    """Decode one CIP message router request or reply and what it carries. Never raises.

    For a reply, `req_class`/`req_symbolic` (from the paired request, when known) name object-specific services.
    """
    out: list[Cip] = []
    bad: list[tuple[str, str]] = []
    if len(b) < 2:
        bad.append((AnomalyCode.INVALID_CIP.value, f"CIP message of {len(b)} byte(s)"))
        return out, bad
    sc_raw = b[0]
    sc = sc_raw & 0x7F
    o: dict[str, object] = {}
    if seq is not None:
        o["sequence_count"] = seq
    if embedded_in:
        o["embedded_in"] = embedded_in
    if index is not None:
        o["index"] = index
    if sc_raw & REPLY_BIT:
        if len(b) < 4:
            bad.append((AnomalyCode.INVALID_CIP.value, f"CIP reply of {len(b)} byte(s)"))
            return [Cip(service_code=sc, service_name=service_name(sc, req_class, req_symbolic), message_type="response", **o)], bad  # type: ignore[arg-type]
        gs, ext_words = b[2], b[3]
        ext = b[4 : 4 + 2 * ext_words]
        data = b[4 + 2 * ext_words :]
        if len(ext) < 2 * ext_words:
            bad.append((AnomalyCode.INVALID_CIP.value, f"additional status of {ext_words} word(s) truncated"))
        name = service_name(sc, req_class, req_symbolic)
        _status(o, req_class, gs, ext)
        top = dict(o)
        o_embedded: list[Cip] = []
        if sc == SC_MSP and gs in (0x00, 0x1E) and depth < MAX_DEPTH:
            o_embedded, sub_bad, count = _msp(data, seq, reply=True, depth=depth)
            top["service_count"] = count
            bad += sub_bad
        elif sc in (SC_FORWARD_OPEN, SC_LARGE_FORWARD_OPEN) and req_class in (None, CLASS_CONNECTION_MANAGER) and gs == 0 and len(data) >= 16:
            top["o_t_connection_id"], top["t_o_connection_id"] = struct.unpack_from("<II", data)
            top["connection_serial"], top["originator_vendor_id"], top["originator_serial"] = struct.unpack_from("<HHI", data, 8)
        elif name == "forward_close" and gs == 0 and len(data) >= 8:
            top["connection_serial"], top["originator_vendor_id"], top["originator_serial"] = struct.unpack_from("<HHI", data)
        elif name in ("read_tag", "read_tag_fragmented") and gs in (0x00, 0x06) and len(data) >= 2:
            top["data_type"] = _H.unpack_from(data)[0]
        if data and sc != SC_MSP:
            top["data_length"] = len(data)
            top["data"] = _hexcap(data)
        out.append(Cip(service_code=sc, service_name=name, message_type="response", **top))  # type: ignore[arg-type]
        out.extend(o_embedded)
        return out, bad
    # request
    words = b[1]
    praw = b[2 : 2 + 2 * words]
    data = b[2 + 2 * words :]
    if len(praw) < 2 * words:
        bad.append((AnomalyCode.INVALID_CIP.value, f"request path of {words} word(s) truncated to {len(praw)} byte(s)"))
    p = parse_path(praw)
    if p.error:
        bad.append((AnomalyCode.INVALID_PATH.value, p.error))
    symbolic = p.tag is not None
    name = service_name(sc, p.class_id, symbolic)
    for k in ("class_id", "instance_id", "attribute_id", "member_id", "connection_point", "tag"):
        v = getattr(p, k)
        if v is not None:
            o[k] = v
    if p.class_id is not None:
        o["class_name"] = class_name(p.class_id)
    if p.text:
        o["path"] = p.text
    embedded: list[Cip] = []
    if sc == SC_MSP and depth < MAX_DEPTH:
        embedded, sub_bad, count = _msp(data, seq, reply=False, depth=depth)
        o["service_count"] = count
        bad += sub_bad
    elif name == "unconnected_send" and depth < MAX_DEPTH:
        embedded, sub_bad, route = _unconnected_send(data, seq, depth)
        if route:
            o["route_path"] = route
        bad += sub_bad
    elif name in ("forward_open", "large_forward_open"):
        _forward_open(data, o, large=sc == SC_LARGE_FORWARD_OPEN)
    elif name == "forward_close" and len(data) >= 10:
        o["connection_serial"], o["originator_vendor_id"], o["originator_serial"] = struct.unpack_from("<HHI", data, 2)
    elif name in ("read_tag", "read_tag_fragmented") and len(data) >= 2:
        o["element_count"] = _H.unpack_from(data)[0]
    elif name in ("write_tag", "write_tag_fragmented") and len(data) >= 4:
        dt, cnt = _HH.unpack_from(data)
        if dt == 0x02A0 and len(data) >= 6:  # structure: type code + handle
            cnt = _H.unpack_from(data, 4)[0]
        o["data_type"], o["element_count"] = dt, cnt
    if data and sc != SC_MSP and name != "unconnected_send":
        o["data_length"] = len(data)
        o["data"] = _hexcap(data)
    out.append(Cip(service_code=sc, service_name=name, message_type="request", **o))  # type: ignore[arg-type]
    out.extend(embedded)
    return out, bad


def _msp(data: bytes, seq: int | None, *, reply: bool, depth: int) -> tuple[list[Cip], list[tuple[str, str]], int | None]:
    out: list[Cip] = []
    bad: list[tuple[str, str]] = []
    if len(data) < 2:
        bad.append((AnomalyCode.INVALID_CIP.value, "multiple_service_packet without a service count"))
        return out, bad, None
    count = _H.unpack_from(data)[0]
    if count > MAX_EMBEDDED or 2 + 2 * count > len(data):
        bad.append((AnomalyCode.INVALID_CIP.value, f"multiple_service_packet: {count} services do not fit {len(data)} byte(s)"))
        return out, bad, count
    offs = list(struct.unpack_from(f"<{count}H", data, 2))
    for k, off in enumerate(offs):
        end = offs[k + 1] if k + 1 < count else len(data)
        if not 2 + 2 * count <= off < end <= len(data):
            bad.append((AnomalyCode.INVALID_CIP.value, f"multiple_service_packet: service {k} at offset {off} outside the packet"))
            continue
        sub, sub_bad = parse_cip(data[off:end], seq, embedded_in="multiple_service_packet", index=k, depth=depth + 1)
        if reply:
            sub = [c for c in sub if c.message_type == "response"] or sub
        out.extend(sub)
        bad += sub_bad
    return out, bad, count


def _unconnected_send(data: bytes, seq: int | None, depth: int) -> tuple[list[Cip], list[tuple[str, str]], str | None]:
    bad: list[tuple[str, str]] = []
    if len(data) < 4:
        return [], [(AnomalyCode.INVALID_CIP.value, f"unconnected_send of {len(data)} byte(s)")], None
    size = _H.unpack_from(data, 2)[0]
    msg = data[4 : 4 + size]
    if len(msg) < size:
        bad.append((AnomalyCode.INVALID_CIP.value, f"unconnected_send: embedded message of {size} byte(s) truncated to {len(msg)}"))
    rest = 4 + size + (size % 2)
    route = None
    if rest + 2 <= len(data):
        words = data[rest]
        rp = parse_path(data[rest + 2 : rest + 2 + 2 * words])
        route = rp.text
    sub, sub_bad = parse_cip(msg, seq, embedded_in="unconnected_send", depth=depth + 1)
    return sub, bad + sub_bad, route


def _forward_open(data: bytes, o: dict[str, object], *, large: bool) -> None:
    if len(data) < 36:
        return
    o["o_t_connection_id"], o["t_o_connection_id"] = struct.unpack_from("<II", data, 2)
    o["connection_serial"], o["originator_vendor_id"], o["originator_serial"] = struct.unpack_from("<HHI", data, 10)
    pw = 4 if large else 2
    off = 22
    o["o_t_rpi"] = _I.unpack_from(data, off)[0]
    off += 4 + pw
    if off + 4 + pw + 1 <= len(data):
        o["t_o_rpi"] = _I.unpack_from(data, off)[0]
        off += 4 + pw
        o["transport_class"] = data[off] & 0x0F


# ---------------------------------------------------------------- CPF and encapsulation


def parse_cpf(b: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """Common packet format: [(type id, data)], and a problem (or None)."""
    if len(b) < 2:
        return [], f"CPF of {len(b)} byte(s): no item count"
    count = _H.unpack_from(b)[0]
    if count > MAX_ITEMS:
        return [], f"CPF item count {count}"
    items: list[tuple[int, bytes]] = []
    off = 2
    for k in range(count):
        if off + 4 > len(b):
            return items, f"CPF item {k} of {count}: header truncated"
        t, ln = _HH.unpack_from(b, off)
        d = b[off + 4 : off + 4 + ln]
        if len(d) < ln:
            items.append((t, d))
            return items, f"CPF item {k} (0x{t:04x}): length {ln}, {len(d)} byte(s) present"
        items.append((t, d))
        off += 4 + ln
    if off < len(b):
        return items, f"{len(b) - off} byte(s) after the last CPF item"
    return items, None


def _sockaddr(d: bytes) -> tuple[str, int] | None:
    if len(d) < 8:
        return None
    port = struct.unpack_from(">H", d, 2)[0]
    return str(ipaddress.IPv4Address(d[4:8])), port


def _identity(d: bytes) -> tuple[EnipIdentity, str | None]:
    f: dict[str, object] = {}
    if len(d) < 33:
        return EnipIdentity(), f"identity item of {len(d)} byte(s), at least 33 expected"
    f["encapsulation_version"] = _H.unpack_from(d)[0]
    sa = _sockaddr(d[2:18])
    if sa:
        f["socket_address"], f["socket_port"] = sa
    vid, dtype, pcode = struct.unpack_from("<HHH", d, 18)
    f["vendor_id"], f["vendor_name"] = vid, name_of(VENDORS, vid)
    f["device_type"], f["device_type_name"] = dtype, name_of(DEVICE_TYPES, dtype)
    f["product_code"] = pcode
    f["revision"] = f"{d[24]}.{d[25]}"
    f["status"] = _H.unpack_from(d, 26)[0]
    f["serial_number"] = f"0x{_I.unpack_from(d, 28)[0]:08x}"
    nlen = d[32]
    name = d[33 : 33 + nlen]
    f["product_name"] = name.decode("latin-1")
    problem = None
    if len(name) < nlen or len(d) < 34 + nlen:
        problem = f"identity item: product name of {nlen} byte(s) or state truncated"
    else:
        st = d[33 + nlen]
        f["state"], f["state_name"] = st, name_of(DEVICE_STATES, st)
    return EnipIdentity(**f), problem  # type: ignore[arg-type]


def _body(cmd: int, body: bytes, reply: bool, e: dict[str, object], msg: Message) -> None:
    """Decode a command-specific body into `e` (enip fields) and msg.cips."""
    if cmd == CMD_REGISTER_SESSION:
        if len(body) >= 4:
            e["protocol_version"], e["option_flags"] = _HH.unpack_from(body)
        elif body or not reply:
            msg.anomalies.append((AnomalyCode.INVALID_LENGTH.value, f"register_session body of {len(body)} byte(s), 4 expected"))
        return
    if cmd in (CMD_SEND_RR_DATA, CMD_SEND_UNIT_DATA):
        if len(body) < 8:
            msg.anomalies.append((AnomalyCode.INVALID_LENGTH.value, f"{command_name(cmd)} body of {len(body)} byte(s), at least 8 expected"))
            return
        e["interface_handle"], e["timeout"] = struct.unpack_from("<IH", body)
        items, problem = parse_cpf(body[6:])
    elif cmd in (CMD_LIST_IDENTITY, CMD_LIST_SERVICES, CMD_LIST_INTERFACES):
        if not reply or not body:
            return
        items, problem = parse_cpf(body)
    else:
        return
    if problem:
        msg.anomalies.append((AnomalyCode.INVALID_CPF.value, problem))
    e["cpf_items"] = [item_name(t) for t, _ in items]
    seq: int | None = None
    cip_data: bytes | None = None
    addrs: list[str] = []
    for t, d in items:
        if t == ITEM_CONNECTED_ADDRESS and len(d) >= 4:
            e["connection_id"] = _I.unpack_from(d)[0]
        elif t == ITEM_SEQUENCED_ADDRESS and len(d) >= 8:
            e["connection_id"], e["sequence_number"] = struct.unpack_from("<II", d)
        elif t == ITEM_UNCONNECTED_DATA and cip_data is None:
            cip_data = d
        elif t == ITEM_CONNECTED_DATA and cip_data is None:
            if len(d) >= 2:
                seq = _H.unpack_from(d)[0]
                cip_data = d[2:]
            else:
                msg.anomalies.append((AnomalyCode.INVALID_CPF.value, f"connected data item of {len(d)} byte(s)"))
        elif t in (ITEM_SOCKADDR_O_T, ITEM_SOCKADDR_T_O):
            sa = _sockaddr(d)
            if sa:
                addrs.append(f"{sa[0]}:{sa[1]}")
        elif t == ITEM_IDENTITY:
            ident, p = _identity(d)
            e["identity"] = ident
            if p:
                msg.anomalies.append((AnomalyCode.INVALID_CPF.value, p))
        elif t == ITEM_LIST_SERVICES and len(d) >= 4:
            e.setdefault("protocol_version", _H.unpack_from(d)[0])
            e.setdefault("capability_flags", _H.unpack_from(d, 2)[0])
            svc = e.setdefault("services", [])
            assert isinstance(svc, list)
            svc.append(d[4:20].split(b"\x00", 1)[0].decode("latin-1"))
    if addrs:
        e["sockaddr"] = ",".join(addrs)
    if cip_data is not None and cip_data:
        cips, bad = parse_cip(cip_data, seq)
        msg.cips = cips
        msg.anomalies += bad


def parse(data: memoryview | bytes, direction: Direction) -> Parsed:
    """One encapsulation message from the front of `data`. Parsed.pdu is a Message, or None for a bad header."""
    n = len(data)
    if n < ENCAP_HEADER_LEN:
        return Parsed(0, ENCAP_HEADER_LEN - n)
    cmd, length, session, status, ctx, options = _HEADER.unpack_from(data)
    known = cmd in COMMANDS
    if length > MAX_ENCAP_LENGTH or (not known and (length > MAX_UNKNOWN_LENGTH or options != 0)):
        return Parsed(n, anomaly=AnomalyCode.NOT_ENIP.value, anomaly_message=f"command 0x{cmd:04x}, length {length}, options 0x{options:08x}: not an encapsulation header")
    total = ENCAP_HEADER_LEN + length
    if n < total:
        return Parsed(0, total - n)
    body = bytes(data[ENCAP_HEADER_LEN:total])
    reply = direction is Direction.TO_CLIENT
    e: dict[str, object] = {
        "command_code": cmd,
        "command_name": command_name(cmd),
        "message_type": "response" if reply else "request",
        "length": length,
        "session_handle": session,
        "status_code": status,
        "status_name": encap_status_name(status),
        "sender_context": ctx.hex(),
        "options": options,
    }
    msg = Message(enip=Enip())
    if not known:
        msg.anomalies.append((AnomalyCode.UNKNOWN_COMMAND.value, f"unknown encapsulation command 0x{cmd:04x}"))
    elif status == 0 or reply:
        _body(cmd, body, reply, e, msg)
    if status and not reply:
        msg.anomalies.append((AnomalyCode.ERROR_STATUS.value, f"request with encapsulation status 0x{status:08x}"))
    msg.enip = Enip(**e)  # type: ignore[arg-type]
    return Parsed(total, pdu=msg)


def parse_io(data: bytes) -> Message:
    """One CIP I/O (class 0/1) datagram on UDP 2222: CPF with sequenced address + connected data items."""
    items, problem = parse_cpf(bytes(data))
    e: dict[str, object] = {"cpf_items": [item_name(t) for t, _ in items]}
    msg = Message(enip=Enip())
    if problem:
        msg.anomalies.append((AnomalyCode.INVALID_CPF.value, problem))
    for t, d in items:
        if t == ITEM_SEQUENCED_ADDRESS and len(d) >= 8:
            e["connection_id"], e["sequence_number"] = struct.unpack_from("<II", d)
        elif t == ITEM_CONNECTED_ADDRESS and len(d) >= 4:
            e["connection_id"] = _I.unpack_from(d)[0]
        elif t == ITEM_CONNECTED_DATA:
            e["io_data_length"] = len(d)
            if d:
                e["io_data"] = _hexcap(d)
        elif t in (ITEM_SOCKADDR_O_T, ITEM_SOCKADDR_T_O):
            sa = _sockaddr(d)
            if sa:
                e["sockaddr"] = f"{sa[0]}:{sa[1]}"
    msg.enip = Enip(**e)  # type: ignore[arg-type]
    return msg
