"""OPC UA binary (UA TCP, Part 6) parser: pure functions over bytes; never raises.

`parse(data)` frames one chunk (8-byte header: type, chunk type, size) from the front of a buffer.
`parse_hello`/`parse_ack`/`parse_error`/`parse_reverse_hello` decode the connection messages,
`parse_secure_header` the secure-channel headers of OPN/MSG/CLO, and `decode_service` a
(reassembled) service body: the encoding NodeId, request/response header and, for the services
that matter for security, the parameters (endpoints, session, identity token type, written nodes,
called methods). A body that ends early keeps what was decoded and is flagged `invalid_pdu`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.protocols.opcua import OpcuaBuildInfo, OpcuaCall, OpcuaEndpoint, OpcuaNode

from ..base import Parsed
from .constants import (
    ATTRIBUTES,
    BUILD_INFO_ENCODING,
    CHUNK_TYPES,
    HEADER_LEN,
    IDENTITY_TOKENS,
    MAX_CHUNK,
    MAX_LIST,
    MESSAGE_TYPES,
    REQUEST_TYPES,
    SECURITY_MODES,
    SERVER_STATUS_ENCODING,
    USER_TOKEN_TYPES,
    AnomalyCode,
    policy_name,
    service_of,
    status_name,
)

__all__ = ["Chunk", "Short", "Reader", "parse", "parse_hello", "parse_ack", "parse_error", "parse_reverse_hello",
           "parse_secure_header", "decode_service", "node_id_text"]

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_EPOCH_1601: Final = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
_MAX_STR: Final = 4096  # characters of a string kept in an event
_MAX_DEPTH: Final = 8  # nesting of variants / diagnostic infos before a body is called malformed


@dataclass(slots=True)
class Chunk:
    """One UA TCP chunk: header fields plus the bytes after the 8-byte header."""

    message_type: str
    chunk_type: str
    size: int
    body: bytes


class Short(Exception):
    """The body ended before a field (internal: parse functions turn it into an anomaly)."""


class Reader:
    """Little-endian cursor over one body (Part 6 §5.2 built-in types)."""

    __slots__ = ("b", "o", "depth")

    def __init__(self, b: bytes, o: int = 0) -> None:
        self.b = b
        self.o = o
        self.depth = 0

    def left(self) -> int:
        return len(self.b) - self.o

    def take(self, n: int) -> bytes:
        if n < 0 or self.o + n > len(self.b):
            raise Short(f"needs {n} byte(s) at offset {self.o}, {len(self.b) - self.o} left")
        v = self.b[self.o : self.o + n]
        self.o += n
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self.take(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self.take(8))[0])

    def f64(self) -> float:
        return float(_F64.unpack(self.take(8))[0])

    def bytestring(self) -> bytes | None:
        n = self.i32()
        if n < 0:
            return None
        return self.take(n)

    def string(self) -> str | None:
        b = self.bytestring()
        if b is None:
            return None
        return b[: _MAX_STR * 4].decode("utf-8", "replace")[:_MAX_STR]

    def datetime(self) -> dt.datetime | None:
        ticks = self.i64()
        if ticks <= 0 or ticks >= 2650467743990000000:  # 0 and the max value both mean "no time"
            return None
        try:
            return _EPOCH_1601 + dt.timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None

    def guid(self) -> str:
        d1, d2, d3 = struct.unpack("<IHH", self.take(8))
        d4 = self.take(8)
        return f"{d1:08x}-{d2:04x}-{d3:04x}-{d4[:2].hex()}-{d4[2:].hex()}"

    def array_len(self) -> int:
        n = self.i32()
        if n > self.left():  # every element takes at least one byte
            raise Short(f"array of {n} elements at offset {self.o - 4} with {self.left()} byte(s) left")
        return max(n, 0)

    def node_id(self) -> tuple[int, int | str]:
        """(namespace, identifier) of a NodeId; string/guid/opaque identifiers become text."""
        enc = self.u8()
        return self._node_id_body(enc & 0x3F)

    def _node_id_body(self, kind: int) -> tuple[int, int | str]:
        if kind == 0:
            return 0, self.u8()
        if kind == 1:
            ns = self.u8()
            return ns, self.u16()
        if kind == 2:
            ns = self.u16()
            return ns, self.u32()
        if kind == 3:
            ns = self.u16()
            return ns, "s=" + (self.string() or "")
        if kind == 4:
            ns = self.u16()
            return ns, "g=" + self.guid()
        if kind == 5:
            ns = self.u16()
            return ns, "b=" + base64.b64encode(self.bytestring() or b"").decode()
        raise Short(f"NodeId encoding {kind} at offset {self.o - 1}")

    def expanded_node_id(self) -> tuple[int, int | str]:
        enc = self.u8()
        ns, ident = self._node_id_body(enc & 0x3F)
        if enc & 0x80:
            self.string()  # namespace uri
        if enc & 0x40:
            self.u32()  # server index
        return ns, ident

    def localized_text(self) -> str | None:
        mask = self.u8()
        if mask & 0x01:
            self.string()
        return self.string() if mask & 0x02 else None

    def qualified_name(self) -> str | None:
        self.u16()
        return self.string()

    def extension_object(self) -> tuple[tuple[int, int | str], bytes | None]:
        tid = self.node_id()
        enc = self.u8()
        body = self.bytestring() if enc in (1, 2) else None
        return tid, body

    def diagnostic_info(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise Short("DiagnosticInfo nested too deep")
        mask = self.u8()
        for bit in (0x01, 0x02, 0x04, 0x08):
            if mask & bit:
                self.i32()
        if mask & 0x10:
            self.string()
        if mask & 0x20:
            self.u32()
        if mask & 0x40:
            self.diagnostic_info()
        self.depth -= 1

    def variant(self) -> None:
        """Skip one Variant (values are not kept: they may be process data, not metadata)."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise Short("Variant nested too deep")
        enc = self.u8()
        kind = enc & 0x3F
        if enc & 0x80:
            for _ in range(self.array_len()):
                self._scalar(kind)
            if enc & 0x40:
                for _ in range(self.array_len()):
                    self.i32()
        else:
            self._scalar(kind)
        self.depth -= 1

    _FIXED: Final = {0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 4, 11: 8, 13: 8, 14: 16, 19: 4}

    def _scalar(self, kind: int) -> None:
        n = self._FIXED.get(kind)
        if n is not None:
            self.take(n)
        elif kind in (12, 15, 16):
            self.bytestring()
        elif kind == 17:
            self.node_id()
        elif kind == 18:
            self.expanded_node_id()
        elif kind == 20:
            self.qualified_name()
        elif kind == 21:
            self.localized_text()
        elif kind == 22:
            self.extension_object()
        elif kind == 23:
            self.data_value()
        elif kind == 24:
            self.variant()
        elif kind == 25:
            self.diagnostic_info()
        else:
            raise Short(f"Variant type {kind} at offset {self.o}")

    def data_value(self) -> None:
        mask = self.u8()
        if mask & 0x01:
            self.variant()
        if mask & 0x02:
            self.u32()
        if mask & 0x04:
            self.i64()
        if mask & 0x10:
            self.u16()
        if mask & 0x08:
            self.i64()
        if mask & 0x20:
            self.u16()


def node_id_text(nid: tuple[int, int | str]) -> str:
    ns, ident = nid
    body = f"i={ident}" if isinstance(ident, int) else ident
    return body if ns == 0 else f"ns={ns};{body}"


# ---------------------------------------------------------------- framing


def parse(data: memoryview | bytes) -> Parsed:
    """One chunk from the front of `data`: Parsed(pdu=Chunk) or incomplete/anomaly (whole buffer)."""
    n = len(data)
    if n < HEADER_LEN:
        return Parsed(0, HEADER_LEN - n)
    head = bytes(data[:HEADER_LEN])
    mtype = head[:3].decode("latin-1")
    ctype = chr(head[3])
    size = int(_U32.unpack_from(head, 4)[0])
    if mtype not in MESSAGE_TYPES or ctype not in CHUNK_TYPES or not HEADER_LEN <= size <= MAX_CHUNK:
        return Parsed(n, anomaly=AnomalyCode.INVALID_HEADER.value,
                      anomaly_message=f"not a UA TCP header: type {head[:4]!r}, size {size}")
    if n < size:
        return Parsed(0, size - n)
    return Parsed(size, pdu=Chunk(mtype, ctype, size, bytes(data[HEADER_LEN:size])))


def _fields(r: Reader, names: tuple[str, ...]) -> dict[str, Any]:
    return {k: r.u32() for k in names}


def _safe(fn: Any, *args: Any) -> tuple[dict[str, Any], str | None]:
    """Run a field decoder; a short body returns what was decoded plus the problem."""
    out: dict[str, Any] = {}
    try:
        fn(out, *args)
    except Short as e:
        return out, str(e)
    except (ValueError, OverflowError, struct.error, UnicodeError) as e:
        return out, f"{type(e).__name__}: {e}"
    return out, None


def _hello(out: dict[str, Any], body: bytes) -> None:
    r = Reader(body)
    out.update(_fields(r, ("protocol_version", "receive_buffer_size", "send_buffer_size", "max_message_size", "max_chunk_count")))
    out["endpoint_url"] = r.string()


def _ack(out: dict[str, Any], body: bytes) -> None:
    r = Reader(body)
    out.update(_fields(r, ("protocol_version", "receive_buffer_size", "send_buffer_size", "max_message_size", "max_chunk_count")))


def _error(out: dict[str, Any], body: bytes) -> None:
    r = Reader(body)
    code = r.u32()
    out["error_code"] = code
    out["error_name"] = status_name(code)
    out["reason"] = r.string()


def _reverse_hello(out: dict[str, Any], body: bytes) -> None:
    r = Reader(body)
    out["server_uri"] = r.string()
    out["endpoint_url"] = r.string()


def parse_hello(body: bytes) -> tuple[dict[str, Any], str | None]:
    return _safe(_hello, body)


def parse_ack(body: bytes) -> tuple[dict[str, Any], str | None]:
    return _safe(_ack, body)


def parse_error(body: bytes) -> tuple[dict[str, Any], str | None]:
    """ERR message body, also the body of an aborted (A) chunk after its sequence header."""
    return _safe(_error, body)


def parse_reverse_hello(body: bytes) -> tuple[dict[str, Any], str | None]:
    return _safe(_reverse_hello, body)


@dataclass(slots=True)
class SecureHeader:
    fields: dict[str, Any] = field(default_factory=dict)
    offset: int = 0  # where the sequence header starts
    problem: str | None = None


def parse_secure_header(c: Chunk) -> SecureHeader:
    """OPN: channel id + asymmetric security header; MSG/CLO: channel id + token id."""
    h = SecureHeader()
    r = Reader(c.body)
    try:
        h.fields["secure_channel_id"] = r.u32()
        if c.message_type == "OPN":
            uri = r.string()
            h.fields["security_policy_uri"] = uri
            h.fields["security_policy"] = policy_name(uri)
            cert = r.bytestring()
            h.fields["sender_certificate_length"] = -1 if cert is None else len(cert)
            thumb = r.bytestring()
            h.fields["receiver_thumbprint_present"] = bool(thumb)
        else:
            h.fields["security_token_id"] = r.u32()
        h.offset = r.o
    except Short as e:
        h.problem = str(e)
        h.offset = len(c.body)
    return h


# ---------------------------------------------------------------- services


def _token_hash(nid: tuple[int, int | str]) -> str | None:
    if nid == (0, 0):
        return None
    return hashlib.sha256(node_id_text(nid).encode()).hexdigest()[:16]


def _request_header(r: Reader, out: dict[str, Any]) -> None:
    out["auth_token_hash"] = _token_hash(r.node_id())
    out["request_timestamp"] = r.datetime()
    out["request_handle"] = r.u32()
    r.u32()  # return diagnostics
    r.string()  # audit entry id
    out["timeout_hint"] = r.u32()
    r.extension_object()


def _response_header(r: Reader, out: dict[str, Any]) -> None:
    out["response_timestamp"] = r.datetime()
    out["request_handle"] = r.u32()
    code = r.u32()
    out["status_code"] = code
    out["status_name"] = status_name(code)
    r.diagnostic_info()
    for _ in range(r.array_len()):
        r.string()
    r.extension_object()


def _application_description(r: Reader) -> tuple[str | None, str | None, str | None]:
    """(application uri, product uri, application name) of an ApplicationDescription."""
    uri = r.string()
    product = r.string()
    name = r.localized_text()
    r.i32()  # application type
    r.string()  # gateway server uri
    r.string()  # discovery profile uri
    for _ in range(r.array_len()):
        r.string()
    return uri, product, name


def _endpoint(r: Reader) -> OpcuaEndpoint:
    url = r.string()
    app_uri, product_uri, app_name = _application_description(r)
    r.bytestring()  # server certificate
    mode = r.i32()
    puri = r.string()
    tokens: list[str] = []
    for _ in range(r.array_len()):
        r.string()  # policy id
        ttype = r.i32()
        r.string()  # issued token type
        r.string()  # issuer endpoint url
        r.string()  # security policy uri
        tokens.append(USER_TOKEN_TYPES.get(ttype, str(ttype)))
    r.string()  # transport profile uri
    level = r.u8()
    return OpcuaEndpoint(url=url, security_mode=SECURITY_MODES.get(mode, str(mode)), security_policy=policy_name(puri),
                         security_policy_uri=puri, security_level=level, user_token_types=tokens, application_uri=app_uri,
                         product_uri=product_uri, application_name=app_name)


def _endpoints(r: Reader, out: dict[str, Any]) -> None:
    eps: list[OpcuaEndpoint] = []
    out["endpoints"] = eps
    for _ in range(r.array_len()):
        ep = _endpoint(r)
        if len(eps) < MAX_LIST:
            eps.append(ep)


def _build_info(r: Reader, into: dict[str, Any]) -> None:
    for k in ("product_uri", "manufacturer_name", "product_name", "software_version", "build_number"):
        into[k] = r.string()
    into["build_date"] = r.datetime()


def _identity_value(r: Reader, key: str, into: dict[str, Any]) -> None:
    """One DataValue of a Read response for an identity node (constants.IDENTITY_NODES) into `into`."""
    mask = r.u8()
    if mask & 0x01:
        enc = r.u8()
        kind = enc & 0x3F
        if enc & 0x80:
            n = r.array_len()
            if kind == 12 and not enc & 0x40 and key in ("server_uris", "namespace_uris"):
                into[key] = [r.string() or "" for _ in range(n)][:MAX_LIST]
            else:  # no other identity value is an array: skip it
                for _ in range(n):
                    r._scalar(kind)
            if enc & 0x40:
                for _ in range(r.array_len()):
                    r.i32()
        elif kind == 12:
            into[key] = r.string()
        elif kind == 13:
            into[key] = r.datetime()
        elif kind == 21:
            into[key] = r.localized_text()
        elif kind == 22:
            tid, body = r.extension_object()
            if body is not None and tid in ((0, BUILD_INFO_ENCODING), (0, SERVER_STATUS_ENCODING)):
                b = Reader(body)
                if tid[1] == SERVER_STATUS_ENCODING:
                    b.i64()  # start time
                    b.i64()  # current time
                    b.i32()  # server state
                _build_info(b, into)
        else:
            r._scalar(kind)
    if mask & 0x02:
        r.u32()
    if mask & 0x04:
        r.i64()
    if mask & 0x10:
        r.u16()
    if mask & 0x08:
        r.i64()
    if mask & 0x20:
        r.u16()


def _read_results(r: Reader, out: dict[str, Any], reads: dict[int, str]) -> None:
    """Read response paired with a request that read identity nodes: only those values are decoded."""
    n = r.array_len()
    out["node_count"] = n
    info: dict[str, Any] = {}
    try:
        for i in range(n):
            key = reads.get(i)
            if key is None:
                r.data_value()
            else:
                _identity_value(r, key, info)
    finally:
        for k in ("server_uris", "namespace_uris"):
            if k in info:
                out[k] = info.pop(k)
        if any(v is not None for v in info.values()):
            out["build_info"] = OpcuaBuildInfo(**{k: v for k, v in info.items() if v is not None})


def _nodes(r: Reader, out: dict[str, Any], per_item: Any) -> None:
    n = r.array_len()
    out["node_count"] = n
    nodes: list[OpcuaNode] = []
    out["nodes"] = nodes
    for _ in range(n):
        node = per_item(r)
        if len(nodes) < MAX_LIST:
            nodes.append(node)


def _write_value(r: Reader) -> OpcuaNode:
    nid = node_id_text(r.node_id())
    attr = r.u32()
    r.string()  # index range
    r.data_value()
    return OpcuaNode(node_id=nid, attribute_id=attr, attribute_name=ATTRIBUTES.get(attr))


def _read_value(r: Reader) -> OpcuaNode:
    nid = node_id_text(r.node_id())
    attr = r.u32()
    r.string()
    r.qualified_name()
    return OpcuaNode(node_id=nid, attribute_id=attr, attribute_name=ATTRIBUTES.get(attr))


def _browse_description(r: Reader) -> OpcuaNode:
    nid = node_id_text(r.node_id())
    r.i32()  # direction
    r.node_id()  # reference type
    r.u8()
    r.u32()
    r.u32()
    return OpcuaNode(node_id=nid)


def _add_node_item(r: Reader) -> OpcuaNode:
    r.expanded_node_id()  # parent
    r.node_id()  # reference type
    nid = node_id_text(r.expanded_node_id())  # requested new node id
    r.qualified_name()
    r.i32()  # node class
    r.extension_object()  # attributes
    r.expanded_node_id()  # type definition
    return OpcuaNode(node_id=nid)


def _delete_node_item(r: Reader) -> OpcuaNode:
    nid = node_id_text(r.node_id())
    r.u8()  # delete target references
    return OpcuaNode(node_id=nid)


def _results(r: Reader, out: dict[str, Any]) -> None:
    n = r.array_len()
    out["node_count"] = n
    out["result_codes"] = [r.u32() for _ in range(n)][:MAX_LIST]


def _body(out: dict[str, Any], b: bytes, reads: dict[int, str] | None = None) -> None:
    r = Reader(b)
    nid = r.node_id()
    ns, ident = nid
    if ns == 0 and isinstance(ident, int):
        out["service_type_id"] = ident
        svc, name, resp = service_of(ident)
    else:
        svc, name, resp = None, None, None
    if svc is None:
        out["type_id"] = node_id_text(nid)
        return
    out["service"] = svc
    out["service_name"] = name
    out["is_response"] = resp
    if resp:
        _response_header(r, out)
    else:
        _request_header(r, out)
    if svc == "ServiceFault":
        return
    key = (svc, bool(resp))
    if key == ("OpenSecureChannel", False):
        r.u32()  # client protocol version
        rt = r.u32()
        out["request_type"] = REQUEST_TYPES.get(rt, str(rt))
        mode = r.u32()
        out["security_mode"] = SECURITY_MODES.get(mode, str(mode))
        r.bytestring()  # client nonce
        out["requested_lifetime"] = r.u32()
    elif key == ("OpenSecureChannel", True):
        r.u32()  # server protocol version
        out["secure_channel_id"] = r.u32()
        out["security_token_id"] = r.u32()
        r.i64()  # created at
        out["revised_lifetime"] = r.u32()
    elif key == ("GetEndpoints", False):
        out["endpoint_url"] = r.string()
    elif key == ("GetEndpoints", True):
        _endpoints(r, out)
    elif key == ("FindServers", False):
        out["endpoint_url"] = r.string()
    elif key == ("FindServers", True):
        n = r.array_len()
        out["node_count"] = n
        if n:  # the first server's description (a discovery server lists others after itself)
            out["application_uri"], out["product_uri"], out["application_name"] = _application_description(r)
    elif key == ("CreateSession", False):
        uri, product, name = _application_description(r)
        out["application_uri"], out["product_uri"], out["application_name"] = uri, product, name
        out["server_uri"] = r.string()
        out["endpoint_url"] = r.string()
        out["session_name"] = r.string()
    elif key == ("CreateSession", True):
        out["session_id"] = node_id_text(r.node_id())
        r.node_id()  # authentication token: a secret, never kept
        r.f64()  # revised session timeout
        r.bytestring()  # server nonce
        r.bytestring()  # server certificate
        _endpoints(r, out)
    elif key == ("Read", True):
        if reads:
            _read_results(r, out, reads)
    elif key == ("ActivateSession", False):
        r.string()  # client signature algorithm
        r.bytestring()
        for _ in range(r.array_len()):  # client software certificates
            r.bytestring()
            r.bytestring()
        for _ in range(r.array_len()):  # locale ids
            r.string()
        tid, body = r.extension_object()
        tns, tident = tid
        name = IDENTITY_TOKENS.get(tident) if tns == 0 and isinstance(tident, int) else None
        out["user_token_type"] = name or node_id_text(tid)
        if name == "UserName" and body is not None:
            t = Reader(body)
            t.string()  # policy id
            out["user_name"] = t.string()  # the password that follows is never read
    elif key == ("Write", False):
        _nodes(r, out, _write_value)
    elif key == ("Read", False):
        r.f64()  # max age
        r.u32()  # timestamps to return
        _nodes(r, out, _read_value)
    elif key == ("Browse", False):
        r.node_id()  # view
        r.i64()
        r.u32()
        r.u32()  # max references per node
        _nodes(r, out, _browse_description)
    elif key == ("AddNodes", False):
        _nodes(r, out, _add_node_item)
    elif key == ("DeleteNodes", False):
        _nodes(r, out, _delete_node_item)
    elif key == ("Call", False):
        n = r.array_len()
        out["node_count"] = n
        calls: list[OpcuaCall] = []
        out["calls"] = calls
        for _ in range(n):
            obj = node_id_text(r.node_id())
            meth = node_id_text(r.node_id())
            nargs = r.array_len()
            for _ in range(nargs):
                r.variant()
            if len(calls) < MAX_LIST:
                calls.append(OpcuaCall(object_id=obj, method_id=meth, argument_count=nargs))
    elif key in (("Write", True), ("DeleteNodes", True), ("AddReferences", True), ("DeleteReferences", True)):
        _results(r, out)


def decode_service(body: bytes, reads: dict[int, str] | None = None) -> tuple[dict[str, Any], str | None]:
    """Fields of one service message body (starting at its encoding NodeId); None-valued fields dropped.
    `reads`: for a Read response, the operations of its request that read an identity node (their values
    become `build_info`; every other value stays undecoded)."""
    out, problem = _safe(_body, body, reads)
    return {k: v for k, v in out.items() if v is not None}, problem
