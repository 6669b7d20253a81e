"""OPC UA binary: byte-literal messages of every type through parser and flow."""

from __future__ import annotations

import struct

from sensors.decoders.opcua import parse
from sensors.decoders.opcua.parser import decode_service

NONE_URI = b"http://opcfoundation.org/UA/SecurityPolicy#None"
B256_URI = b"http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"


def s(b: bytes | None) -> bytes:
    return struct.pack("<i", -1) if b is None else struct.pack("<i", len(b)) + b


def msg(mtype: bytes, body: bytes, chunk: bytes = b"F") -> bytes:
    return mtype + chunk + struct.pack("<I", 8 + len(body)) + body


HEL = msg(b"HEL", struct.pack("<5I", 0, 65535, 65535, 0, 0) + s(b"opc.tcp://plc:4840"))
ACK = msg(b"ACK", struct.pack("<5I", 0, 65535, 65535, 0, 0))
ERR = msg(b"ERR", struct.pack("<I", 0x80130000) + s(b"security checks failed"))

REQ_HEADER = (
    b"\x00\x00"  # authentication token: two-byte NodeId i=0
    + struct.pack("<q", 0)  # timestamp
    + struct.pack("<I", 7)  # request handle
    + struct.pack("<I", 0)  # return diagnostics
    + s(None)  # audit entry id
    + struct.pack("<I", 10000)  # timeout hint
    + b"\x00\x00\x00"  # additional header: null ExtensionObject
)
RESP_HEADER = (
    struct.pack("<q", 0)  # timestamp
    + struct.pack("<I", 7)  # request handle
    + struct.pack("<I", 0)  # service result Good
    + b"\x00"  # diagnostic info: empty
    + struct.pack("<i", -1)  # string table
    + b"\x00\x00\x00"
)


def typeid(n: int) -> bytes:
    return b"\x01\x00" + struct.pack("<H", n)  # four-byte NodeId, ns 0


OPN_REQ = msg(
    b"OPN",
    struct.pack("<I", 0)  # secure channel id
    + s(NONE_URI) + s(None) + s(None)  # asymmetric header
    + struct.pack("<II", 1, 1)  # sequence number, request id
    + typeid(446) + REQ_HEADER
    + struct.pack("<III", 0, 0, 1)  # protocol version, request type issue, security mode None
    + s(b"")  # client nonce
    + struct.pack("<I", 600000),  # requested lifetime
)
OPN_RESP = msg(
    b"OPN",
    struct.pack("<I", 5) + s(NONE_URI) + s(None) + s(None)
    + struct.pack("<II", 1, 1)
    + typeid(449) + RESP_HEADER
    + struct.pack("<III", 0, 5, 1) + struct.pack("<q", 0) + struct.pack("<I", 600000) + s(b""),
)


def sym(mtype: bytes, seq: int, rid: int, body: bytes, chunk: bytes = b"F") -> bytes:
    return msg(mtype, struct.pack("<IIII", 5, 1, seq, rid) + body, chunk)


WRITE_REQ = sym(
    b"MSG", 2, 2,
    typeid(673) + REQ_HEADER
    + struct.pack("<i", 1)  # one WriteValue
    + b"\x03\x01\x00" + s(b"Pump1.Setpoint")  # NodeId ns=1;s=Pump1.Setpoint
    + struct.pack("<I", 13)  # attribute Value
    + s(None)  # index range
    + b"\x01" + b"\x0b" + struct.pack("<d", 42.5),  # DataValue with a Double variant
)
WRITE_RESP = sym(b"MSG", 2, 2, typeid(676) + RESP_HEADER + struct.pack("<iI", 1, 0x803B0000) + struct.pack("<i", -1))


def test_framing_incomplete_and_invalid() -> None:
    assert parse(HEL[:5]).needed == 3
    assert parse(HEL[:20]).consumed == 0
    assert parse(HEL).consumed == len(HEL)
    bad = parse(b"XYZF\x10\x00\x00\x00" + b"\x00" * 8)
    assert bad.anomaly == "invalid_header" and bad.pdu is None


def test_hello_ack_error(ua) -> None:  # type: ignore[no-untyped-def]
    (hel,) = ua.req(HEL)
    assert hel.opcua.message_type == "HEL" and hel.opcua.endpoint_url == "opc.tcp://plc:4840"
    assert hel.opcua.receive_buffer_size == 65535 and hel.event.action == "connect"
    (ack,) = ua.resp(ACK)
    assert ack.opcua.message_type == "ACK" and ack.opcua.max_chunk_count == 0
    (err,) = ua.resp(ERR)
    assert err.opcua.error_name == "BadSecurityChecksFailed" and err.opcua.reason == "security checks failed"
    assert err.event.outcome == "failure"


def test_open_secure_channel_policy_none(ua) -> None:  # type: ignore[no-untyped-def]
    (req,) = ua.req(OPN_REQ)
    o = req.opcua
    assert (o.message_type, o.security_policy, o.security_mode, o.request_type) == ("OPN", "None", "None", "issue")
    assert o.service_name == "OpenSecureChannelRequest" and o.requested_lifetime == 600000
    assert o.sender_certificate_length == -1 and o.receiver_thumbprint_present is False
    assert req.event.action == "connect"
    (resp,) = ua.resp(OPN_RESP)
    assert resp.opcua.secure_channel_id == 5 and resp.opcua.revised_lifetime == 600000
    assert resp.opcua.request_frame == 1 and resp.event.outcome == "success"


def test_write_request_and_bad_result(ua) -> None:  # type: ignore[no-untyped-def]
    ua.req(OPN_REQ)
    ua.resp(OPN_RESP)
    (w,) = ua.req(WRITE_REQ)
    assert w.event.action == "write" and w.opcua.service == "Write" and w.opcua.is_response is False
    assert w.opcua.nodes is not None and w.opcua.nodes[0].node_id == "ns=1;s=Pump1.Setpoint"
    assert w.opcua.nodes[0].attribute_name == "Value" and w.opcua.node_count == 1 and w.opcua.request_handle == 7
    (r,) = ua.resp(WRITE_RESP)
    assert r.opcua.service_name == "WriteResponse" and r.opcua.result_codes == [0x803B0000]
    assert r.event.action == "write" and r.opcua.request_frame == 3 and r.event.duration == 1_000_000


def test_chunked_message_reassembled(ua) -> None:  # type: ignore[no-untyped-def]
    ua.req(OPN_REQ)
    body = WRITE_REQ[24:]  # after header (8) + channel, token, sequence, request id (16)
    first = sym(b"MSG", 2, 2, body[:20], b"C")
    last = sym(b"MSG", 3, 2, body[20:])
    assert ua.req(first) == []
    (w,) = ua.req(last)
    assert w.opcua.chunk_count == 2 and w.opcua.message_size == len(first) + len(last)
    assert w.opcua.nodes is not None and w.opcua.nodes[0].node_id == "ns=1;s=Pump1.Setpoint"


def test_abort_chunk(ua) -> None:  # type: ignore[no-untyped-def]
    ua.req(OPN_REQ)
    ua.req(sym(b"MSG", 2, 9, b"\x01\x00\xa9\x02", b"C"))
    evs = ua.req(sym(b"MSG", 3, 9, struct.pack("<I", 0x80080000) + s(b"too big"), b"A"))
    assert evs[0].opcua.chunk_type == "A" and evs[0].opcua.error_name == "BadEncodingLimitsExceeded"
    assert evs[1].anomaly is not None and evs[1].anomaly.code == "aborted"


def test_encrypted_channel(ua) -> None:  # type: ignore[no-untyped-def]
    opn = msg(b"OPN", struct.pack("<I", 0) + s(B256_URI) + s(b"C" * 900) + s(b"T" * 20) + b"\xaa" * 256)
    (e,) = ua.req(opn)
    assert e.opcua.security_policy == "Basic256Sha256" and e.opcua.encrypted is True
    assert e.opcua.sender_certificate_length == 900 and e.opcua.receiver_thumbprint_present is True
    (m,) = ua.req(msg(b"MSG", struct.pack("<II", 5, 1) + b"\x5a" * 120))
    assert m.opcua.encrypted is True and m.opcua.service is None


def test_signed_channel_body_readable(ua) -> None:  # type: ignore[no-untyped-def]
    ua.req(msg(b"OPN", struct.pack("<I", 0) + s(B256_URI) + s(b"C" * 900) + s(b"T" * 20) + b"\xaa" * 256))
    (w,) = ua.req(WRITE_REQ + b"")  # Sign mode: sequence header and body in clear, signature after
    assert w.opcua.encrypted is None and w.opcua.service == "Write"


def test_activate_session_identity_tokens() -> None:
    def activate(token_id: int, token: bytes) -> dict[str, object]:
        body = (typeid(467) + REQ_HEADER + s(None) + s(None) + struct.pack("<ii", -1, -1)
                + typeid(token_id) + b"\x01" + s(token))
        fields, problem = decode_service(body)
        assert problem is None
        return fields

    anon = activate(321, s(b"anonymous"))
    assert anon["user_token_type"] == "Anonymous" and "user_name" not in anon
    user = activate(324, s(b"username") + s(b"operator") + s(b"secret-password") + s(None))
    assert user["user_token_type"] == "UserName" and user["user_name"] == "operator"
    assert "secret-password" not in repr(user)


def test_get_endpoints_response() -> None:
    ep = (s(b"opc.tcp://plc:4840")
          + s(b"urn:plc") + s(None) + b"\x02" + s(b"PLC") + struct.pack("<i", 0) + s(None) + s(None) + struct.pack("<i", -1)
          + s(None)  # server certificate
          + struct.pack("<i", 1) + s(NONE_URI)
          + struct.pack("<i", 2) + s(b"anon") + struct.pack("<i", 0) + s(None) + s(None) + s(None)
          + s(b"user") + struct.pack("<i", 1) + s(None) + s(None) + s(None)
          + s(None) + b"\x00")
    fields, problem = decode_service(typeid(431) + RESP_HEADER + struct.pack("<i", 1) + ep)
    assert problem is None
    (e,) = fields["endpoints"]  # type: ignore[misc]
    assert (e.url, e.security_mode, e.security_policy, e.user_token_types) == ("opc.tcp://plc:4840", "None", "None", ["Anonymous", "UserName"])


def test_call_request() -> None:
    body = (typeid(712) + REQ_HEADER + struct.pack("<i", 1) + b"\x01\x02\x10\x27" + b"\x01\x02\x11\x27"
            + struct.pack("<i", 1) + b"\x06" + struct.pack("<i", 3))
    fields, problem = decode_service(body)
    assert problem is None
    (c,) = fields["calls"]  # type: ignore[misc]
    assert (c.object_id, c.method_id, c.argument_count) == ("ns=2;i=10000", "ns=2;i=10001", 1)


def test_truncated_body_flagged(ua) -> None:  # type: ignore[no-untyped-def]
    ua.req(OPN_REQ)
    evs = ua.req(sym(b"MSG", 2, 2, typeid(673) + REQ_HEADER[:5]))
    assert evs[0].opcua.service_name == "WriteRequest"
    assert evs[1].anomaly is not None and evs[1].anomaly.code == "invalid_pdu"


def test_not_opcua_stops_after_bad_headers(ua) -> None:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(4):
        out += ua.req(b"GET / HTTP/1.1\r\n\r\n")
    assert [e.anomaly.code for e in out][-1] == "not_opcua"
    assert ua.req(HEL) == []
