"""EtherNet/IP + CIP decoding from byte literals: every command, CPF items, CIP services, pairing, anomalies."""

from __future__ import annotations

import struct

from sensors.decoders.base import Conn, Direction
from sensors.decoders.enip import CipIoFlow, parse, parse_cip, parse_io, parse_path
from sensors.decoders.enip.constants import action_of, service_name


def encap(cmd: int, body: bytes = b"", session: int = 0x11223344, status: int = 0, ctx: bytes = b"ctx00001") -> bytes:
    """Encapsulation header (little endian): command, length, session handle, status, sender context, options."""
    return struct.pack("<HHII8sI", cmd, len(body), session, status, ctx, 0) + body


def rr(cip: bytes) -> bytes:
    """SendRRData body: interface handle 0, timeout 10, CPF of a null address item + an unconnected data item."""
    return struct.pack("<IHH", 0, 10, 2) + bytes([0x00, 0x00, 0x00, 0x00]) + struct.pack("<HH", 0xB2, len(cip)) + cip


def unit(conn_id: int, seq: int, cip: bytes) -> bytes:
    """SendUnitData body: connected address item + connected data item (sequence count first)."""
    return struct.pack("<IHH", 0, 0, 2) + struct.pack("<HHI", 0xA1, 4, conn_id) + struct.pack("<HHH", 0xB1, len(cip) + 2, seq) + cip


GET_IDENTITY_ALL = bytes([
    0x01,                    # service: get_attributes_all
    0x02,                    # request path size: 2 words
    0x20, 0x01,              # class 0x01 (identity)
    0x24, 0x01,              # instance 1
])

IDENTITY_ITEM = (
    struct.pack("<H", 1)                                       # encapsulation protocol version
    + struct.pack(">HH4s8s", 2, 44818, bytes([10, 1, 1, 164]), b"\0" * 8)  # sockaddr (big endian)
    + struct.pack("<HHH", 1, 12, 58)                            # vendor 1, device type 12, product code 58
    + bytes([4, 3])                                             # revision 4.3
    + struct.pack("<HI", 0x0030, 0x00524D8E)                    # status, serial number
    + bytes([11]) + b"1756-ENBT/A"                              # product name
    + bytes([3])                                                # state: operational
)


def test_list_identity_request_and_reply(driver) -> None:
    req = driver.req(encap(0x63, session=0))
    assert [e.event.action for e in req] == ["identify"]
    assert req[0].enip.command_name == "list_identity" and req[0].enip.message_type == "request"
    body = struct.pack("<H", 1) + struct.pack("<HH", 0x0C, len(IDENTITY_ITEM)) + IDENTITY_ITEM
    (ev,) = driver.rsp(encap(0x63, body, session=0))
    ident = ev.enip.identity
    assert ev.enip.request_frame == 1 and ev.event.outcome == "success" and ev.source.ip == "10.0.0.2"
    assert (ident.vendor_id, ident.vendor_name, ident.device_type_name, ident.product_code, ident.revision) == (
        1, "Rockwell Automation/Allen-Bradley", "Communications Adapter", 58, "4.3")
    assert (ident.serial_number, ident.product_name, ident.state, ident.socket_address, ident.socket_port) == (
        "0x00524d8e", "1756-ENBT/A", 3, "10.1.1.164", 44818)
    assert ev.enip.cpf_items == ["cip_identity"]


def test_register_session_pairs_and_names(driver) -> None:
    (r,) = driver.req(encap(0x65, bytes([0x01, 0x00, 0x00, 0x00]), session=0))  # protocol version 1, options 0
    assert r.event.action == "session" and r.enip.protocol_version == 1 and r.enip.option_flags == 0
    (a,) = driver.rsp(encap(0x65, bytes([0x01, 0x00, 0x00, 0x00]), session=0x1234))
    assert a.enip.request_frame == 1 and a.enip.session_handle == 0x1234 and a.event.duration == 1_000_000
    (u,) = driver.req(encap(0x66, session=0x1234))
    assert u.event.action == "disconnect" and u.enip.command_name == "unregister_session"


def test_every_command_is_named() -> None:
    names = {}
    for cmd in (0x00, 0x04, 0x63, 0x64, 0x65, 0x66, 0x6F, 0x70, 0x72, 0x73):
        p = parse(memoryview(encap(cmd)), Direction.TO_SERVER)
        names[cmd] = p.pdu.enip.command_name
    assert names == {0x00: "nop", 0x04: "list_services", 0x63: "list_identity", 0x64: "list_interfaces", 0x65: "register_session",
                     0x66: "unregister_session", 0x6F: "send_rr_data", 0x70: "send_unit_data", 0x72: "indicate_status", 0x73: "cancel"}
    p = parse(memoryview(encap(0x99)), Direction.TO_SERVER)
    assert p.pdu.enip.command_name == "unknown_0x0099" and p.pdu.anomalies[0][0] == "unknown_command"


def test_list_services_reply() -> None:
    item = struct.pack("<HH", 1, 0x0120) + b"Communications\0\0"  # version 1, capability flags, name (16 bytes)
    body = struct.pack("<H", 1) + struct.pack("<HH", 0x100, len(item)) + item
    p = parse(memoryview(encap(0x04, body)), Direction.TO_CLIENT)
    e = p.pdu.enip
    assert e.services == ["Communications"] and e.capability_flags == 0x0120 and e.protocol_version == 1


def test_unconnected_send_embedded_request_and_reply(driver) -> None:
    ucs = bytes([
        0x52, 0x02, 0x20, 0x06, 0x24, 0x01,  # unconnected_send to the connection manager (class 6, instance 1)
        0x0A, 0xF0,                          # priority/tick, timeout ticks
        0x06, 0x00,                          # embedded message size: 6
    ]) + GET_IDENTITY_ALL + bytes([
        0x01, 0x00,                          # route path size 1 word, reserved
        0x01, 0x00,                          # port 1 (backplane), link 0
    ])
    evs = driver.req(encap(0x6F, rr(ucs)))
    assert [(e.cip.service_name, e.cip.embedded_in, e.event.action) for e in evs] == [
        ("unconnected_send", None, None), ("get_attributes_all", "unconnected_send", "identify")]
    assert evs[0].cip.route_path == "port 1 link 0" and evs[1].cip.class_name == "identity"
    reply = bytes([0x81, 0x00, 0x00, 0x00]) + b"\x01\x00\x0e\x00"  # get_attributes_all reply, success, data
    (a,) = driver.rsp(encap(0x6F, rr(reply)))
    assert (a.cip.service_name, a.cip.message_type, a.cip.status_name, a.cip.class_id, a.cip.request_frame) == (
        "get_attributes_all", "response", "success", 1, 1)
    assert a.event.action == "identify" and a.event.outcome == "success" and a.cip.embedded_in is None


def test_multiple_service_packet_connected_pairing(driver) -> None:
    e1 = bytes([0x03, 0x02, 0x20, 0x01, 0x24, 0x01, 0x01, 0x00, 0x01, 0x00])  # get_attribute_list identity/1, 1 attr: 1
    e2 = bytes([0x10, 0x03, 0x20, 0x8B, 0x24, 0x01, 0x30, 0x06, 0x05])        # set_attribute_single class 0x8b attr 6, data 05
    msp = bytes([0x0A, 0x02, 0x20, 0x02, 0x24, 0x01]) + struct.pack("<HHH", 2, 6, 6 + len(e1)) + e1 + e2
    evs = driver.req(encap(0x70, unit(0x11020100, 7, msp)))
    assert [(e.cip.service_name, e.cip.index, e.event.action) for e in evs] == [
        ("multiple_service_packet", None, None), ("get_attribute_list", 0, "identify"), ("set_attribute_single", 1, "time_sync")]
    assert evs[0].cip.service_count == 2 and evs[0].cip.sequence_count == 7 and evs[0].enip.connection_id == 0x11020100
    r1 = bytes([0x83, 0x00, 0x00, 0x00, 0x01, 0x00])
    r2 = bytes([0x90, 0x00, 0x0E, 0x00])  # attribute_not_settable
    rsp = bytes([0x8A, 0x00, 0x1E, 0x00]) + struct.pack("<HHH", 2, 6, 6 + len(r1)) + r1 + r2
    out = driver.rsp(encap(0x70, unit(0x22, 7, rsp)))
    got = [(e.cip.service_name, e.cip.status_name, e.cip.class_id, e.cip.attribute_id, e.event.outcome, e.cip.request_frame) for e in out]
    assert got == [
        ("multiple_service_packet", "embedded_service_error", 2, None, "failure", 1),
        ("get_attribute_list", "success", 1, None, "success", 1),
        ("set_attribute_single", "attribute_not_settable", 0x8B, 6, "failure", 1),
    ]


def test_logix_tags_and_paths() -> None:
    read = bytes([0x4C, 0x0D, 0x91, 0x0C]) + b"Program:Main" + bytes([0x91, 0x07]) + b"Counter" + bytes([0x00, 0x28, 0x03, 0x01, 0x00])
    (c,), bad = parse_cip(read)
    assert bad == [] and (c.service_name, c.tag, c.element_count) == ("read_tag", "Program:Main.Counter[3]", 1)
    assert action_of(c.service_code, c.service_name, c.class_id) == "read"
    write = bytes([0x4D, 0x03, 0x91, 0x03]) + b"Run" + bytes([0x00, 0xC1, 0x00, 0x01, 0x00, 0x01])  # BOOL, 1 element, 1
    (w,), _ = parse_cip(write)
    assert (w.service_name, w.tag, w.data_type, w.element_count) == ("write_tag", "Run", 0xC1, 1)
    assert action_of(w.service_code, w.service_name, w.class_id) == "write"
    # 0x52 / 0x4E mean different things on the connection manager and on a tag.
    assert service_name(0x52, 0x06, False) == "unconnected_send" and service_name(0x52, None, True) == "read_tag_fragmented"
    assert service_name(0x4E, 0x06, False) == "forward_close" and service_name(0x4E, None, True) == "read_modify_write_tag"
    assert service_name(0x4C, 0x8E, False) == "object_specific_0x4c"
    p = parse_path(bytes([0x21, 0x00, 0x00, 0x03, 0x25, 0x00, 0x01, 0x00, 0x30, 0x0A]))  # 16-bit class 0x300, 16-bit instance 1
    assert (p.class_id, p.instance_id, p.attribute_id, p.error) == (0x300, 1, 10, None)


def test_forward_open_request_and_reply() -> None:
    fo = bytes([0x54, 0x02, 0x20, 0x06, 0x24, 0x01, 0x0A, 0x0E]) + struct.pack(
        "<IIHHIB3sIHIHB", 0, 0x80FE0016, 0x0102, 1, 0xDEADBEEF, 3, b"\0\0\0", 2_000_000, 0x43F4, 2_000_000, 0x43F4, 0xA3
    ) + bytes([0x03, 0x01, 0x00, 0x20, 0x02, 0x24, 0x01])  # connection path: port 1 link 0, message router
    (c,), bad = parse_cip(fo)
    assert bad == [] and (c.service_name, c.t_o_connection_id, c.connection_serial, c.originator_serial, c.o_t_rpi, c.transport_class) == (
        "forward_open", 0x80FE0016, 0x0102, 0xDEADBEEF, 2_000_000, 3)
    assert action_of(c.service_code, c.service_name, c.class_id) == "session"
    rep = bytes([0xD4, 0x00, 0x00, 0x00]) + struct.pack("<IIHHIII", 0x11020100, 0x80FE0016, 0x0102, 1, 0xDEADBEEF, 1, 1) + b"\0\0"
    (r,), _ = parse_cip(rep)
    assert (r.o_t_connection_id, r.t_o_connection_id, r.status_name) == (0x11020100, 0x80FE0016, "success")
    fail = bytes([0xD4, 0x00, 0x01, 0x01, 0x00, 0x01])  # connection failure, extended status 0x0100
    (f,), _ = parse_cip(fail, req_class=0x06)
    assert (f.status_name, f.extended_status, f.extended_status_name) == ("connection_failure", 0x0100, "connection_in_use_or_duplicate_forward_open")


def test_actions_of_dangerous_services() -> None:
    cases = {
        (0x07, "stop", 0x8E): "mode_change",
        (0x06, "start", 0x8E): "mode_change",
        (0x05, "reset", 0x01): "restart",
        (0x4D, "object_specific_0x4d", 0xA1): "firmware_update",
        (0x4C, "initiate_download", 0x37): "program_download",
        (0x4B, "initiate_upload", 0x37): "program_upload",
        (0x50, "object_specific_0x50", 0x6A): "program_download",
        (0x4F, "object_specific_0x4f", 0x6A): "program_upload",
        (0x08, "create", 0x68): "program_download",
        (0x08, "create", 0x04): "write",
        (0x0E, "get_attribute_single", 0x01): "identify",
        (0x0E, "get_attribute_single", 0x04): "read",
        (0x10, "set_attribute_single", 0xF5): "write",
    }
    assert {k: action_of(*k) for k in cases} == cases


def test_stop_request_events(driver) -> None:
    stop = bytes([0x07, 0x02, 0x20, 0x8E, 0x24, 0x01])  # stop, class 0x8e (Logix controller), instance 1
    (e,) = driver.req(encap(0x70, unit(1, 1, stop)))
    assert (e.cip.service_name, e.cip.class_name, e.event.action) == ("stop", "logix_controller", "mode_change")


def test_byte_by_byte_equals_whole(driver, meta) -> None:
    msg = encap(0x6F, rr(GET_IDENTITY_ALL)) + encap(0x65, b"\x01\x00\x00\x00")
    whole = [(e.enip.command_name, e.cip.service_name if e.cip else None) for e in driver.req(msg)]
    from sensors.decoders.enip import EnipFlow

    f = EnipFlow()
    pieces = []
    for k in range(len(msg)):
        pieces += f.feed(memoryview(msg[k : k + 1]), Direction.TO_SERVER, meta(k + 1))
    assert [(e.enip.command_name, e.cip.service_name if e.cip else None) for e in pieces] == whole
    assert whole == [("send_rr_data", "get_attributes_all"), ("register_session", None)]


def test_garbage_is_reported_then_decoding_stops(driver) -> None:
    junk = b"\x16\x03\x01" + b"\xff" * 60  # TLS-looking bytes on port 44818
    codes = []
    for _ in range(4):
        codes += [e.anomaly.code for e in driver.req(junk)]
    assert codes == ["invalid_length"] * 4 + ["not_enip"]
    assert driver.req(encap(0x63)) == []


def test_unsolicited_reply_and_error_status(driver) -> None:
    evs = driver.rsp(encap(0x6F, rr(bytes([0x81, 0x00, 0x08, 0x00]))))  # service_not_supported, no request
    assert [e.anomaly.code for e in evs if e.anomaly] == ["unsolicited_response"]
    assert evs[0].cip.status_name == "service_not_supported" and evs[0].event.outcome == "failure"
    bad = driver.req(encap(0x6F, rr(GET_IDENTITY_ALL), status=1))
    assert [e.anomaly.code for e in bad if e.anomaly] == ["error_status"]


def test_truncated_cpf_and_cip_are_flagged() -> None:
    body = struct.pack("<IHH", 0, 10, 2) + struct.pack("<HH", 0, 0) + struct.pack("<HH", 0xB2, 40) + GET_IDENTITY_ALL
    p = parse(memoryview(encap(0x6F, body)), Direction.TO_SERVER)
    assert [a for a, _ in p.pdu.anomalies] == ["invalid_cpf"]
    (c,), bad = parse_cip(bytes([0x0E, 0x03, 0x20, 0x01]))
    assert c.class_id == 1 and [a for a, _ in bad] == ["invalid_cip"]
    _, bad = parse_cip(bytes([0x0E, 0x01, 0xE0, 0x01]))
    assert [a for a, _ in bad] == ["invalid_path"]


def test_cip_io_datagram(meta) -> None:
    dgram = struct.pack("<H", 2) + struct.pack("<HHII", 0x8002, 8, 0x004B0603, 4166875) + struct.pack("<HH", 0xB1, 6) + bytes.fromhex("a587e80f0300")
    m = parse_io(dgram)
    assert (m.enip.connection_id, m.enip.sequence_number, m.enip.io_data_length, m.enip.io_data) == (0x004B0603, 4166875, 6, "a587e80f0300")
    conn = Conn("192.168.1.24", 2222, "192.168.1.22", 2222, "udp", "1:io")
    (ev,) = CipIoFlow().feed(memoryview(dgram), Direction.TO_SERVER, meta(1, conn=conn))
    assert ev.event.dataset == "cip_io" and ev.enip.cpf_items == ["sequenced_address", "connected_data"]
