"""BACnet/IP: byte-literal datagrams of every BVLC function, NPDU form and APDU type."""

from __future__ import annotations

from sensors.decoders.bacnet import parse
from sensors.decoders.bacnet.parser import tokens

WHO_IS = bytes([
    0x81, 0x0B, 0x00, 0x0C,  # BVLC: Original-Broadcast-NPDU, length 12
    0x01, 0x20, 0xFF, 0xFF, 0x00, 0xFF,  # NPDU: version 1, DNET 65535 (global), DLEN 0, hop count 255
    0x10, 0x08,  # unconfirmed request, who-is (no range)
])
I_AM = bytes([
    0x81, 0x0B, 0x00, 0x14, 0x01, 0x00,
    0x10, 0x00,  # unconfirmed request, i-am
    0xC4, 0x02, 0x00, 0x00, 0x7E,  # object id: device 126
    0x22, 0x05, 0xC4,  # max APDU 1476
    0x91, 0x00,  # segmentation: segmented-both
    0x21, 0x2A,  # vendor 42
])
READ_PROPERTY = bytes([
    0x81, 0x0A, 0x00, 0x11, 0x01, 0x04,  # unicast, NPDU expecting reply
    0x00, 0x05, 0x01, 0x0C,  # confirmed request, max APDU 1476, invoke id 1, readProperty
    0x0C, 0x00, 0x40, 0x00, 0x65,  # [0] object id: analog-output 101
    0x19, 0x55,  # [1] property: present-value
])
READ_PROPERTY_ACK = bytes([
    0x81, 0x0A, 0x00, 0x17, 0x01, 0x00,
    0x30, 0x01, 0x0C,  # complex ack, invoke id 1, readProperty
    0x0C, 0x00, 0x40, 0x00, 0x65, 0x19, 0x55,
    0x3E, 0x44, 0x42, 0x20, 0x00, 0x00, 0x3F,  # [3] { real 40.0 }
])
WRITE_PROPERTY = bytes([
    0x81, 0x0A, 0x00, 0x1A, 0x01, 0x04,
    0x00, 0x05, 0x02, 0x0F,  # confirmed, invoke 2, writeProperty
    0x0C, 0x00, 0x40, 0x00, 0x65, 0x19, 0x55,
    0x3E, 0x44, 0x42, 0xC8, 0x00, 0x00, 0x3F,  # [3] { real 100.0 }
    0x49, 0x01,  # [4] priority 1
])
SIMPLE_ACK = bytes([0x81, 0x0A, 0x00, 0x09, 0x01, 0x00, 0x20, 0x02, 0x0F])
DCC = bytes([
    0x81, 0x0A, 0x00, 0x16, 0x01, 0x04,
    0x00, 0x05, 0x03, 0x11,  # deviceCommunicationControl
    0x09, 0x05,  # [0] duration 5 minutes
    0x19, 0x01,  # [1] disable
    0x2D, 0x06, 0x00, 0x73, 0x65, 0x63, 0x72, 0x74,  # [2] password "secrt"
])
REINIT = bytes([0x81, 0x0A, 0x00, 0x0C, 0x01, 0x04, 0x00, 0x05, 0x04, 0x14, 0x09, 0x00])  # coldstart, no password
ERROR = bytes([
    0x81, 0x0A, 0x00, 0x0D, 0x01, 0x00,
    0x50, 0x03, 0x11,  # error, invoke 3, deviceCommunicationControl
    0x91, 0x04, 0x91, 0x1A,  # security / password-failure
])
REJECT = bytes([0x81, 0x0A, 0x00, 0x09, 0x01, 0x00, 0x60, 0x09, 0x04])  # invoke 9, invalid-tag
ABORT = bytes([0x81, 0x0A, 0x00, 0x09, 0x01, 0x00, 0x71, 0x05, 0x04])  # from server: segmentation not supported
SEGMENT_ACK = bytes([0x81, 0x0A, 0x00, 0x0A, 0x01, 0x00, 0x40, 0x07, 0x00, 0x04])
ROUTER = bytes([0x81, 0x0B, 0x00, 0x0A, 0x01, 0x80, 0x01, 0x00, 0x05, 0x00])  # I-Am-Router-To-Network 5
FORWARDED = bytes([0x81, 0x04, 0x00, 0x12, 0xC0, 0xA8, 0x00, 0x05, 0xBA, 0xC0]) + WHO_IS[4:]
BVLC_RESULT = bytes([0x81, 0x00, 0x00, 0x06, 0x00, 0x30])
ATOMIC_WRITE = bytes([
    0x81, 0x0A, 0x00, 0x19, 0x01, 0x04,
    0x00, 0x05, 0x06, 0x07,  # atomicWriteFile
    0xC4, 0x02, 0x80, 0x00, 0x01,  # file 1
    0x0E, 0x31, 0x00, 0x65, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0x0F,  # [0] { start 0, octets(4) }
])


def test_who_is_global_broadcast() -> None:
    b = parse(WHO_IS).pdu
    assert b.bvlc_function_name == "original_broadcast_npdu" and b.dnet == 65535 and b.hop_count == 255
    assert (b.apdu_type_name, b.service_name, b.low_limit) == ("unconfirmed_request", "who_is", None)


def test_i_am() -> None:
    b = parse(I_AM).pdu
    assert (b.service_name, b.device_instance, b.max_apdu_accepted) == ("i_am", 126, 1476)
    assert (b.segmentation_supported, b.vendor_id, b.vendor_name) == ("segmented-both", 42, "Acuity Brands Lighting, Inc.")


def test_read_property_and_ack(bac) -> None:  # type: ignore[no-untyped-def]
    (req,) = bac.req(READ_PROPERTY)
    b = req.bacnet
    assert (b.invoke_id, b.service_name, b.object_type_name, b.instance_number, b.property_name) == (1, "read_property", "analog-output", 101, "present-value")
    assert req.event.action == "read" and b.max_apdu == 1476
    (ack,) = bac.resp(READ_PROPERTY_ACK)
    assert ack.bacnet.value == "40.0" and ack.bacnet.request_frame == 1 and ack.event.outcome == "success"
    assert ack.event.duration == 1_000_000


def test_write_property_with_priority(bac) -> None:  # type: ignore[no-untyped-def]
    (w,) = bac.req(WRITE_PROPERTY)
    assert (w.event.action, w.bacnet.value, w.bacnet.priority, w.bacnet.property_name) == ("write", "100.0", 1, "present-value")
    (ack,) = bac.resp(SIMPLE_ACK)
    assert ack.bacnet.apdu_type_name == "simple_ack" and ack.event.action == "write" and ack.bacnet.request_frame == 1


def test_device_communication_control_password_not_kept(bac) -> None:  # type: ignore[no-untyped-def]
    (d,) = bac.req(DCC)
    assert (d.event.action, d.bacnet.enable_disable, d.bacnet.time_duration, d.bacnet.password_present) == ("mode_change", "disable", 5, True)
    assert "secrt" not in repr(d)
    (e,) = bac.resp(ERROR)
    assert (e.bacnet.error_class_name, e.bacnet.error_code_name, e.event.outcome) == ("security", "password-failure", "failure")


def test_reinitialize() -> None:
    b = parse(REINIT).pdu
    assert (b.service_name, b.reinitialize_state, b.password_present) == ("reinitialize_device", "coldstart", False)


def test_reject_abort_segment_ack() -> None:
    r = parse(REJECT).pdu
    assert (r.apdu_type_name, r.reject_reason_name) == ("reject", "invalid-tag")
    a = parse(ABORT).pdu
    assert (a.apdu_type_name, a.abort_reason_name, a.from_server) == ("abort", "segmentation-not-supported", True)
    s = parse(SEGMENT_ACK).pdu
    assert (s.apdu_type_name, s.sequence_number, s.window_size, s.negative_ack) == ("segment_ack", 0, 4, False)


def test_network_message_forwarded_and_result() -> None:
    r = parse(ROUTER).pdu
    assert (r.network_message_name, r.networks, r.apdu_type) == ("i_am_router_to_network", [5], None)
    f = parse(FORWARDED).pdu
    assert (f.bvlc_function_name, f.originating_address, f.service_name) == ("forwarded_npdu", "192.168.0.5:47808", "who_is")
    res = parse(BVLC_RESULT).pdu
    assert (res.bvlc_function_name, res.bvlc_result_name) == ("bvlc_result", "register_foreign_device_nak")


def test_atomic_write_file(bac) -> None:  # type: ignore[no-untyped-def]
    (e,) = bac.req(ATOMIC_WRITE)
    assert (e.event.action, e.bacnet.object_type_name, e.bacnet.file_start, e.bacnet.file_length) == ("file_write", "file", 0, 4)


def test_invalid_datagrams(bac) -> None:  # type: ignore[no-untyped-def]
    (e,) = bac.req(b"\x82\x0a\x00\x04")
    assert e.anomaly is not None and e.anomaly.code == "invalid_bvlc"
    evs = bac.req(READ_PROPERTY[:-1])  # BVLC length says one byte more
    assert evs[0].bacnet.service_name == "read_property" and evs[1].anomaly.code == "invalid_bvlc"
    evs = bac.req(READ_PROPERTY[:8])
    assert evs[-1].anomaly is not None


def test_tokens_extended_length() -> None:
    toks, problem = tokens(bytes([0x75, 0x06, 0x00]) + b"hello")
    assert problem is None and toks[0].number == 7 and toks[0].data == b"\x00hello"
