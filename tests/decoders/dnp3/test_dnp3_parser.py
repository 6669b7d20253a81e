"""DNP3 parser: link frames and CRCs, application headers, object headers and decoded object data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sensors.decoders.dnp3 import crc16, parse_application, parse_frame
from sensors.decoders.dnp3.constants import FUNCTION_NAMES, iin_names
from sensors.decoders.dnp3.parser import LinkFrame

# Reset link states from 1024 to 1: the frame every DNP3 text quotes for its CRC.
RESET_LINK = bytes([
    0x05, 0x64,  # start
    0x05,        # length: control + addresses, no user data
    0xC0,        # DIR, PRM, function 0 reset link states
    0x01, 0x00,  # destination 1
    0x00, 0x04,  # source 1024
    0xE9, 0x21,  # header CRC (little-endian)
])  # fmt: skip

# Read of classes 1, 2, 3 and 0 from master 3 to outstation 2 (zeek/traces/dnp3/dnp3_read.pcap frame 4).
READ_CLASSES = bytes([
    0x05, 0x64, 0x14, 0xC4, 0x02, 0x00, 0x03, 0x00,  # length 20, DIR PRM unconfirmed user data, 3 -> 2
    0x45, 0x03,                                      # header CRC
    0xC7,                                            # transport: FIN FIR seq 7
    0xC8, 0x01,                                      # application: FIR FIN seq 8, read
    0x3C, 0x02, 0x06,                                # g60v2 (class 1), qualifier 0x06 all
    0x3C, 0x03, 0x06,                                # g60v3 (class 2)
    0x3C, 0x04, 0x06,                                # g60v4 (class 3)
    0x3C, 0x01, 0x06,                                # g60v1 (class 0)
    0x42, 0xAC,                                      # block CRC
])  # fmt: skip


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0xEA82  # CRC-16/DNP check value
    assert crc16(RESET_LINK[:8]) == 0x21E9


def test_link_only_frame() -> None:
    p = parse_frame(memoryview(RESET_LINK))
    f = p.pdu
    assert p.consumed == 10 and p.anomaly is None and isinstance(f, LinkFrame)
    assert (f.source, f.destination, f.dir, f.prm, f.function, f.user_data) == (1024, 1, True, True, 0, None)


def test_read_frame_and_application() -> None:
    p = parse_frame(memoryview(READ_CLASSES))
    f = p.pdu
    assert p.consumed == len(READ_CLASSES) and p.anomaly is None, p.anomaly_message
    assert isinstance(f, LinkFrame) and (f.source, f.destination) == (3, 2)
    assert f.user_data is not None and f.user_data[0] == 0xC7
    app = parse_application(f.user_data[1:])
    assert app is not None and (app.function_name, app.sequence, app.fir, app.fin, app.con, app.uns) == ("read", 8, True, True, False, False)
    assert [o.name for o in app.objects] == ["class_1_data", "class_2_data", "class_3_data", "class_0_data"]
    o = app.objects[0]
    assert (o.group, o.variation, o.qualifier, o.range_code, o.count) == (60, 2, 6, 6, None)


def test_incomplete_frame_asks_for_more() -> None:
    for cut in (1, 5, 12):
        p = parse_frame(memoryview(READ_CLASSES[:cut]))
        assert p.consumed == 0 and p.needed > 0


def test_bad_header_crc_keeps_addresses() -> None:
    bad = bytearray(READ_CLASSES)
    bad[8] ^= 0xFF
    p = parse_frame(memoryview(bytes(bad)))
    assert p.anomaly == "bad_crc" and p.consumed == len(bad)
    assert isinstance(p.pdu, LinkFrame) and (p.pdu.source, p.pdu.destination, p.pdu.user_data) == (3, 2, None)


def test_bad_block_crc() -> None:
    bad = bytearray(READ_CLASSES)
    bad[-1] ^= 0x01
    p = parse_frame(memoryview(bytes(bad)))
    assert p.anomaly == "bad_crc" and "block 0" in (p.anomaly_message or "") and p.consumed == len(bad)


def test_invalid_start_skips_to_next_frame() -> None:
    data = b"\x05\x05\x11junk" + RESET_LINK
    p = parse_frame(memoryview(data))
    assert p.anomaly == "invalid_start" and p.consumed == 7
    assert parse_frame(memoryview(data[7:])).anomaly is None


def test_invalid_length() -> None:
    p = parse_frame(memoryview(bytes([0x05, 0x64, 0x03, 0xC0, 1, 0, 2, 0, 0, 0])))
    assert p.anomaly == "invalid_length" and p.consumed == 2


def test_multi_block_frame(link: Callable[..., bytes]) -> None:
    ud = bytes(range(40))  # three blocks: 16 + 16 + 8
    raw = link(ud)
    assert len(raw) == 10 + 40 + 6
    p = parse_frame(memoryview(raw))
    assert isinstance(p.pdu, LinkFrame) and p.pdu.user_data == ud


# ---------------------------------------------------------------- application layer


def test_response_iin() -> None:
    app = parse_application(bytes([
        0xC2, 0x81,  # FIR FIN seq 2, response
        0x90, 0x02,  # IIN1: device_restart + need_time; IIN2: object_unknown
    ]))  # fmt: skip
    assert app is not None and app.iin == 0x9002
    assert iin_names(0x9002) == ["need_time", "device_restart", "object_unknown"]


def test_select_crob() -> None:
    app = parse_application(bytes([
        0xC3, 0x03,                          # FIR FIN seq 3, select
        0x0C, 0x01, 0x28, 0x01, 0x00,        # g12v1, qualifier 0x28 (2-byte index prefix, 2-byte count), count 1
        0x01, 0x00,                          # index 1
        0x41,                                # control: close (01) | pulse_on (1)
        0x01,                                # count
        0x64, 0x00, 0x00, 0x00,              # on time 100 ms
        0xC8, 0x00, 0x00, 0x00,              # off time 200 ms
        0x00,                                # status success
    ]))  # fmt: skip
    assert app is not None and not app.truncated
    (o,) = app.objects
    assert (o.group, o.variation, o.name, o.prefix_code, o.range_code, o.count) == (12, 1, "control_relay_output_block", 2, 8, 1)
    (pt,) = o.points or []
    assert (pt.index, pt.control_code, pt.operation_name, pt.trip_close_name, pt.count, pt.on_time, pt.off_time, pt.status_name) == (
        1, 0x41, "pulse_on", "close", 1, 100, 200, "success")  # fmt: skip


def test_direct_operate_analog_output() -> None:
    app = parse_application(bytes([
        0xC0, 0x05,                      # direct operate
        0x29, 0x02, 0x17, 0x01,          # g41v2 (16-bit analog output), qualifier 0x17 (1-byte index, 1-byte count), 1
        0x07,                            # index 7
        0xE8, 0x03,                      # value 1000
        0x00,                            # status
    ]))  # fmt: skip
    assert app is not None
    (pt,) = app.objects[0].points or []
    assert (pt.index, pt.value, pt.status_code) == (7, 1000, 0)


def test_write_time() -> None:
    ms = 1_700_000_000_123
    app = parse_application(bytes([0xC0, 0x02, 0x32, 0x01, 0x07, 0x01]) + ms.to_bytes(6, "little"))
    assert app is not None
    (pt,) = app.objects[0].points or []
    assert pt.time == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.timezone.utc)


def test_open_file_command() -> None:
    name = b"/log.txt"
    body = (
        (26).to_bytes(2, "little") + len(name).to_bytes(2, "little")  # name offset, size
        + bytes(6)                                                    # created
        + (0o644).to_bytes(2, "little") + bytes(4)                    # permissions, auth key
        + (0).to_bytes(4, "little")                                   # file size
        + (2).to_bytes(2, "little")                                   # mode: write
        + (1024).to_bytes(2, "little") + (7).to_bytes(2, "little")    # max block, request id
        + name
    )  # fmt: skip
    app = parse_application(bytes([0xC0, 0x19, 0x46, 0x03, 0x5B, 0x01]) + len(body).to_bytes(2, "little") + body)
    assert app is not None and not app.truncated
    f = (app.objects[0].points or [])[0].file
    assert f is not None and (f.name, f.mode_name, f.max_block_size, f.request_id, f.permissions) == ("/log.txt", "write", 1024, 7, 0o644)


def test_auth_error() -> None:
    body = (5).to_bytes(4, "little") + (1).to_bytes(2, "little") + (0).to_bytes(2, "little") + bytes([1]) + bytes(6)
    app = parse_application(bytes([0xC0, 0x83, 0x00, 0x00, 0x78, 0x07, 0x5B, 0x01]) + len(body).to_bytes(2, "little") + body)
    assert app is not None
    pt = (app.objects[0].points or [])[0]
    assert (app.objects[0].name, pt.user, pt.status_name) == ("auth_error", 1, "authentication_failed")


def test_response_skips_undecoded_objects() -> None:
    app = parse_application(bytes([
        0xC0, 0x81, 0x00, 0x00,
        0x01, 0x02, 0x00, 0x00, 0x01,    # g1v2 points 0..1 (flags, one byte each)
        0x81, 0x81,
        0x1E, 0x02, 0x00, 0x00, 0x00,    # g30v2 point 0 (flag + int16)
        0x01, 0x10, 0x00,
        0x01, 0x01, 0x00, 0x00, 0x09,    # g1v1 points 0..9 packed: two bytes
        0xFF, 0x03,
    ]))  # fmt: skip
    assert app is not None and not app.truncated
    assert [(o.group, o.variation, o.count) for o in app.objects] == [(1, 2, 2), (30, 2, 1), (1, 1, 10)]


def test_unknown_object_size_truncates() -> None:
    app = parse_application(bytes([0xC0, 0x81, 0x00, 0x00, 0x63, 0x01, 0x00, 0x00, 0x00, 0xAA, 0x01, 0x02, 0x00, 0x00, 0x00]))
    assert app is not None and app.truncated and app.anomaly == "objects_truncated"
    assert [(o.group, o.variation) for o in app.objects] == [(99, 1)]  # the header is still reported


def test_every_function_is_named() -> None:
    for fc, name in FUNCTION_NAMES.items():
        app = parse_application(bytes([0xC0, fc]) + (b"\x00\x00" if fc >= 129 else b""))
        assert app is not None and app.function_name == name and app.anomaly is None
    app = parse_application(bytes([0xC0, 0x50]))
    assert app is not None and app.function_name == "unknown_80" and app.anomaly == "unknown_function"
    assert parse_application(b"\xc0") is None
