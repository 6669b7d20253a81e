"""Modbus/TCP parser: every function code, request and response, from annotated byte literals."""

from __future__ import annotations

import pytest

from pipeline.schema import FileRecord, Modbus
from sensors.decoders.base import Direction
from sensors.decoders.modbus import parse
from sensors.decoders.modbus.constants import action_of, function_name
from sensors.decoders.modbus.parser import HEADER_ONLY

REQ = Direction.TO_SERVER
RESP = Direction.TO_CLIENT


def one(data: bytes, direction: Direction) -> Modbus:
    p = parse(memoryview(data), direction)
    assert p.consumed == len(data), p
    assert p.anomaly is None, p.anomaly_message
    assert isinstance(p.pdu, Modbus)
    return p.pdu


# ---------------------------------------------------------------- reads (1-4)

READ_COILS_REQ = bytes([
    0x00, 0x01,              # transaction id
    0x00, 0x00,              # protocol id
    0x00, 0x06,              # length
    0x11,                    # unit id
    0x01,                    # function: read coils
    0x00, 0x13, 0x00, 0x25,  # start address 19, quantity 37
])
READ_COILS_RESP = bytes([
    0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x11,  # MBAP: tid 1, length 8, unit 17
    0x01,                                      # function: read coils
    0x05,                                      # byte count
    0xCD, 0x6B, 0xB2, 0x0E, 0x1B,              # coils 27..20, 35..28, 43..36, 51..44, 56..52 (LSB first)
])


def test_read_coils_request() -> None:
    m = one(READ_COILS_REQ, REQ)
    assert (m.transaction_id, m.protocol_id, m.length, m.unit_id) == (1, 0, 6, 0x11)
    assert (m.function_code, m.function_name, m.message_type) == (1, "read_coils", "request")
    assert (m.address, m.quantity) == (19, 37)


def test_read_coils_response_bits_lsb_first() -> None:
    m = one(READ_COILS_RESP, RESP)
    assert m.byte_count == 5 and m.message_type == "response"
    assert m.values is not None and len(m.values) == 40  # full bytes; the flow trims to the request's 37
    assert m.values[:8] == [1, 0, 1, 1, 0, 0, 1, 1]  # 0xCD
    assert m.values[8:16] == [1, 1, 0, 1, 0, 1, 1, 0]  # 0x6B


READ_DISCRETE_REQ = bytes([
    0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01,  # MBAP: tid 2, unit 1
    0x02,                                      # function: read discrete inputs
    0x00, 0xC4, 0x00, 0x16,                    # address 196, quantity 22
])
READ_DISCRETE_RESP = bytes([
    0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x02,                                      # function: read discrete inputs
    0x03,                                      # byte count
    0xAC, 0xDB, 0x35,                          # inputs
])


def test_read_discrete_inputs() -> None:
    q = one(READ_DISCRETE_REQ, REQ)
    assert (q.function_name, q.address, q.quantity) == ("read_discrete_inputs", 196, 22)
    r = one(READ_DISCRETE_RESP, RESP)
    assert r.values is not None and r.values[:8] == [0, 0, 1, 1, 0, 1, 0, 1]  # 0xAC


READ_HOLDING_REQ = bytes([
    0x00, 0x03, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x03,                                      # function: read holding registers
    0x00, 0x6B, 0x00, 0x03,                    # address 107, quantity 3
])
READ_HOLDING_RESP = bytes([
    0x00, 0x03, 0x00, 0x00, 0x00, 0x09, 0x01,
    0x03,                                      # function: read holding registers
    0x06,                                      # byte count
    0x02, 0x2B, 0x00, 0x00, 0x00, 0x64,        # 555, 0, 100
])
READ_INPUT_REQ = bytes([
    0x00, 0x04, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x04,                                      # function: read input registers
    0x00, 0x08, 0x00, 0x01,                    # address 8, quantity 1
])
READ_INPUT_RESP = bytes([
    0x00, 0x04, 0x00, 0x00, 0x00, 0x05, 0x01,
    0x04,                                      # function: read input registers
    0x02,                                      # byte count
    0x00, 0x0A,                                # 10
])


def test_read_registers() -> None:
    assert one(READ_HOLDING_REQ, REQ).quantity == 3
    assert one(READ_HOLDING_RESP, RESP).values == [555, 0, 100]
    q = one(READ_INPUT_REQ, REQ)
    assert (q.function_name, q.address, q.quantity) == ("read_input_registers", 8, 1)
    assert one(READ_INPUT_RESP, RESP).values == [10]


def test_read_quantity_out_of_range_is_invalid_value() -> None:
    data = bytes([0, 5, 0, 0, 0, 6, 1,
                  0x03,                      # read holding registers
                  0x00, 0x00, 0x00, 0x7E])  # quantity 126 > 125
    p = parse(memoryview(data), REQ)
    assert p.anomaly == "invalid_value" and isinstance(p.pdu, Modbus) and p.pdu.quantity == 126


# ---------------------------------------------------------------- single writes (5, 6)

WRITE_COIL_REQ = bytes([
    0x00, 0x05, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x05,                                      # function: write single coil
    0x00, 0xAC,                                # address 172
    0xFF, 0x00,                                # ON
])
WRITE_REGISTER_REQ = bytes([
    0x00, 0x06, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x06,                                      # function: write single register
    0x00, 0x01,                                # address 1
    0x00, 0x03,                                # value 3
])


def test_write_single_coil_and_register() -> None:
    for d in (REQ, RESP):  # the response echoes the request
        c = one(WRITE_COIL_REQ, d)
        assert (c.function_name, c.address, c.quantity, c.values) == ("write_single_coil", 172, 1, [1])
        r = one(WRITE_REGISTER_REQ, d)
        assert (r.function_name, r.address, r.values) == ("write_single_register", 1, [3])


def test_write_single_coil_bad_value() -> None:
    data = WRITE_COIL_REQ[:10] + bytes([0x12, 0x34])  # neither 0xFF00 nor 0x0000
    p = parse(memoryview(data), REQ)
    assert p.anomaly == "invalid_value" and isinstance(p.pdu, Modbus) and p.pdu.values == [0x1234]


# ---------------------------------------------------------------- status (7, 11, 12, 17)

EXC_STATUS_REQ = bytes([0x00, 0x07, 0x00, 0x00, 0x00, 0x02, 0x01,
                        0x07])                 # function: read exception status
EXC_STATUS_RESP = bytes([0x00, 0x07, 0x00, 0x00, 0x00, 0x03, 0x01,
                         0x07,                 # function: read exception status
                         0x6D])                # status byte
EVENT_COUNTER_RESP = bytes([
    0x00, 0x08, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x0B,                                      # function: get comm event counter
    0xFF, 0xFF,                                # status: busy
    0x01, 0x08,                                # event count 264
])
EVENT_LOG_RESP = bytes([
    0x00, 0x09, 0x00, 0x00, 0x00, 0x0B, 0x01,
    0x0C,                                      # function: get comm event log
    0x08,                                      # byte count
    0x00, 0x00,                                # status
    0x01, 0x08,                                # event count 264
    0x01, 0x21,                                # message count 289
    0x20, 0x00,                                # events
])
SERVER_ID_RESP = bytes([
    0x00, 0x0A, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x11,                                      # function: report server id
    0x03,                                      # byte count
    0x42, 0xFF, 0x01,                          # server id, run indicator ON, additional data
])


def test_status_functions() -> None:
    q = one(EXC_STATUS_REQ, REQ)
    assert q.function_name == "read_exception_status" and action_of(7, None) == "read_status"
    assert one(EXC_STATUS_RESP, RESP).status == 0x6D
    c = one(EVENT_COUNTER_RESP, RESP)
    assert (c.function_name, c.status, c.event_count) == ("get_comm_event_counter", 0xFFFF, 264)
    log = one(EVENT_LOG_RESP, RESP)
    assert (log.byte_count, log.status, log.event_count, log.message_count, log.data) == (8, 0, 264, 289, "2000")
    s = one(SERVER_ID_RESP, RESP)
    assert (s.function_name, s.byte_count, s.data) == ("report_server_id", 3, "42ff01")
    assert action_of(17, None) == "identify"


def test_status_request_with_body_is_invalid_pdu() -> None:
    p = parse(memoryview(EXC_STATUS_REQ[:5] + bytes([0x03, 0x01, 0x07, 0xAA])), REQ)
    assert p.anomaly == "invalid_pdu" and isinstance(p.pdu, Modbus) and p.pdu.data == "aa"


# ---------------------------------------------------------------- diagnostics (8)


@pytest.mark.parametrize(
    ("sub", "name", "action"),
    [
        (0, "return_query_data", "diagnostics"),
        (1, "restart_communications_option", "restart"),
        (2, "return_diagnostic_register", "diagnostics"),
        (3, "change_ascii_input_delimiter", "diagnostics"),
        (4, "force_listen_only_mode", "mode_change"),
        (10, "clear_counters_and_diagnostic_register", "clear_counters"),
        (11, "return_bus_message_count", "diagnostics"),
        (18, "return_bus_character_overrun_count", "diagnostics"),
        (20, "clear_overrun_counter_and_flag", "clear_counters"),
        (19, "unknown_19", "diagnostics"),
    ],
)
def test_diagnostics_subfunctions(sub: int, name: str, action: str) -> None:
    data = bytes([
        0x00, 0x0B, 0x00, 0x00, 0x00, 0x06, 0x01,
        0x08,                                  # function: diagnostics
        0x00, sub,                             # sub-function
        0xA5, 0x37,                            # data
    ])
    for d in (REQ, RESP):
        m = one(data, d)
        assert (m.function_name, m.subfunction_code, m.subfunction_name, m.data) == ("diagnostics", sub, name, "a537")
    assert action_of(8, sub) == action


# ---------------------------------------------------------------- multiple writes (15, 16)

WRITE_COILS_REQ = bytes([
    0x00, 0x0C, 0x00, 0x00, 0x00, 0x09, 0x01,
    0x0F,                                      # function: write multiple coils
    0x00, 0x13,                                # address 19
    0x00, 0x0A,                                # quantity 10
    0x02,                                      # byte count
    0xCD, 0x01,                                # coils 27..20, 29..28
])
WRITE_COILS_RESP = bytes([
    0x00, 0x0C, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x0F,                                      # function: write multiple coils
    0x00, 0x13, 0x00, 0x0A,                    # address 19, quantity 10
])
WRITE_REGS_REQ = bytes([
    0x00, 0x0D, 0x00, 0x00, 0x00, 0x0B, 0x01,
    0x10,                                      # function: write multiple registers
    0x00, 0x01,                                # address 1
    0x00, 0x02,                                # quantity 2
    0x04,                                      # byte count
    0x00, 0x0A, 0x01, 0x02,                    # 10, 258
])


def test_write_multiple_coils() -> None:
    q = one(WRITE_COILS_REQ, REQ)
    assert (q.address, q.quantity, q.byte_count) == (19, 10, 2)
    assert q.values == [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]  # trimmed to the quantity
    r = one(WRITE_COILS_RESP, RESP)
    assert (r.address, r.quantity, r.values) == (19, 10, None)


def test_write_multiple_registers() -> None:
    q = one(WRITE_REGS_REQ, REQ)
    assert (q.function_name, q.address, q.quantity, q.byte_count, q.values) == ("write_multiple_registers", 1, 2, 4, [10, 258])
    assert action_of(16, None) == "write"


def test_write_multiple_registers_byte_count_mismatch() -> None:
    data = bytearray(WRITE_REGS_REQ)
    data[12] = 0x06  # byte count 6 but only 4 bytes follow
    p = parse(memoryview(bytes(data)), REQ)
    assert p.consumed == len(data) and p.anomaly == "invalid_pdu"


# ---------------------------------------------------------------- file records (20, 21)

READ_FILE_REQ = bytes([
    0x00, 0x0E, 0x00, 0x00, 0x00, 0x11, 0x01,
    0x14,                                      # function: read file record
    0x0E,                                      # byte count 14
    0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02,  # ref 6, file 4, record 1, length 2
    0x06, 0x00, 0x03, 0x00, 0x09, 0x00, 0x02,  # ref 6, file 3, record 9, length 2
])
READ_FILE_RESP = bytes([
    0x00, 0x0E, 0x00, 0x00, 0x00, 0x0F, 0x01,
    0x14,                                      # function: read file record
    0x0C,                                      # response data length 12
    0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20,        # sub-response 1: length 5, ref 6, 0x0DFE, 0x0020
    0x05, 0x06, 0x33, 0xCD, 0x00, 0x40,        # sub-response 2: length 5, ref 6, 0x33CD, 0x0040
])
WRITE_FILE_REQ = bytes([
    0x00, 0x0F, 0x00, 0x00, 0x00, 0x10, 0x01,
    0x15,                                      # function: write file record
    0x0D,                                      # byte count 13
    0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03,  # ref 6, file 4, record 7, length 3
    0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D,        # 0x06AF, 0x04BE, 0x100D
])


def test_read_file_record() -> None:
    q = one(READ_FILE_REQ, REQ)
    assert q.byte_count == 14
    assert q.file_records == [
        FileRecord(reference_type=6, file_number=4, record_number=1, record_length=2),
        FileRecord(reference_type=6, file_number=3, record_number=9, record_length=2),
    ]
    r = one(READ_FILE_RESP, RESP)
    assert r.file_records is not None and [x.values for x in r.file_records] == [[0x0DFE, 0x20], [0x33CD, 0x40]]
    assert action_of(20, None) == "read"


def test_write_file_record_both_ways() -> None:
    for d in (REQ, RESP):  # the normal response echoes the request
        m = one(WRITE_FILE_REQ, d)
        assert m.file_records == [FileRecord(reference_type=6, file_number=4, record_number=7, record_length=3, values=[0x06AF, 0x04BE, 0x100D])]
    assert action_of(21, None) == "write"


def test_write_file_record_short_is_invalid_pdu() -> None:
    data = bytearray(WRITE_FILE_REQ[:-2])
    data[5] -= 2
    p = parse(memoryview(bytes(data)), REQ)
    assert p.consumed == len(data) and p.anomaly == "invalid_pdu"


# ---------------------------------------------------------------- 22, 23, 24

MASK_WRITE = bytes([
    0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x01,
    0x16,                                      # function: mask write register
    0x00, 0x04,                                # address 4
    0x00, 0xF2,                                # and mask
    0x00, 0x25,                                # or mask
])
READ_WRITE_REQ = bytes([
    0x00, 0x11, 0x00, 0x00, 0x00, 0x11, 0x01,
    0x17,                                      # function: read/write multiple registers
    0x00, 0x03, 0x00, 0x06,                    # read address 3, read quantity 6
    0x00, 0x0E, 0x00, 0x03,                    # write address 14, write quantity 3
    0x06,                                      # write byte count
    0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF,        # 255, 255, 255
])
READ_WRITE_RESP = bytes([
    0x00, 0x11, 0x00, 0x00, 0x00, 0x0F, 0x01,
    0x17,                                      # function: read/write multiple registers
    0x0C,                                      # byte count
    0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D, 0x00, 0xFF,
])
FIFO_REQ = bytes([
    0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x01,
    0x18,                                      # function: read fifo queue
    0x04, 0xDE,                                # fifo pointer address 1246
])
FIFO_RESP = bytes([
    0x00, 0x12, 0x00, 0x00, 0x00, 0x0A, 0x01,
    0x18,                                      # function: read fifo queue
    0x00, 0x06,                                # byte count 6
    0x00, 0x02,                                # fifo count 2
    0x01, 0xB8, 0x12, 0x84,                    # 440, 4740
])


def test_mask_write_register() -> None:
    for d in (REQ, RESP):
        m = one(MASK_WRITE, d)
        assert (m.function_name, m.address, m.and_mask, m.or_mask) == ("mask_write_register", 4, 0xF2, 0x25)
    assert action_of(22, None) == "write"


def test_read_write_multiple_registers() -> None:
    q = one(READ_WRITE_REQ, REQ)
    assert (q.read_address, q.read_quantity, q.address, q.quantity, q.byte_count, q.values) == (3, 6, 14, 3, 6, [255, 255, 255])
    r = one(READ_WRITE_RESP, RESP)
    assert r.values == [0xFE, 0x0ACD, 1, 3, 0x0D, 0xFF]
    assert action_of(23, None) == "write"


def test_read_fifo_queue() -> None:
    assert one(FIFO_REQ, REQ).address == 1246
    r = one(FIFO_RESP, RESP)
    assert (r.byte_count, r.fifo_count, r.values) == (6, 2, [440, 4740])


# ---------------------------------------------------------------- 43 (MEI)

DEVICE_ID_REQ = bytes([
    0x00, 0x13, 0x00, 0x00, 0x00, 0x05, 0x01,
    0x2B,                                      # function: encapsulated interface transport
    0x0E,                                      # MEI type: read device identification
    0x01,                                      # read device id code: basic
    0x00,                                      # object id
])
DEVICE_ID_RESP = bytes([
    0x00, 0x13, 0x00, 0x00, 0x00, 0x20, 0x01,
    0x2B, 0x0E,                                # function 43 / MEI 14
    0x01,                                      # read device id code
    0x01,                                      # conformity level
    0x00,                                      # more follows: no
    0x00,                                      # next object id
    0x03,                                      # number of objects
    0x00, 0x07, *b"Company",                   # 0x00 vendor name
    0x01, 0x07, *b"Product",                   # 0x01 product code
    0x02, 0x04, *b"V2.1",                      # 0x02 major/minor revision
])


def test_read_device_identification() -> None:
    q = one(DEVICE_ID_REQ, REQ)
    assert (q.subfunction_code, q.subfunction_name) == (14, "read_device_identification")
    assert q.device_id is not None and (q.device_id.read_code, q.device_id.object_id) == (1, 0)
    r = one(DEVICE_ID_RESP, RESP)
    dev = r.device_id
    assert dev is not None
    assert (dev.vendor_name, dev.product_code, dev.revision) == ("Company", "Product", "V2.1")
    assert (dev.read_code, dev.conformity_level, dev.more_follows, dev.object_id) == (1, 1, False, 0)
    assert dev.objects == {"0x00": "Company", "0x01": "Product", "0x02": "V2.1"}
    assert action_of(43, 14) == "identify"


def test_device_identification_object_count_mismatch() -> None:
    data = bytearray(DEVICE_ID_RESP)
    data[13] = 4  # four objects declared, three present
    p = parse(memoryview(bytes(data)), RESP)
    assert p.anomaly == "invalid_pdu" and isinstance(p.pdu, Modbus) and p.pdu.device_id is not None
    assert p.pdu.device_id.vendor_name == "Company"


CANOPEN_REQ = bytes([
    0x00, 0x14, 0x00, 0x00, 0x00, 0x05, 0x01,
    0x2B, 0x0D,                                # function 43 / MEI 13: CANopen general reference
    0x00, 0x10,                                # CANopen payload
])


def test_canopen_general_reference() -> None:
    m = one(CANOPEN_REQ, REQ)
    assert (m.subfunction_code, m.subfunction_name, m.data) == (13, "canopen_general_reference", "0010")


# ---------------------------------------------------------------- exceptions, unknown codes

EXCEPTION_RESP = bytes([
    0x00, 0x15, 0x00, 0x00, 0x00, 0x03, 0x01,
    0x83,                                      # function: read holding registers | 0x80
    0x02,                                      # exception: illegal data address
])


def test_exception_response() -> None:
    m = one(EXCEPTION_RESP, RESP)
    assert (m.function_code, m.function_name, m.exception_code, m.exception_name) == (3, "read_holding_registers", 2, "illegal_data_address")


def test_gateway_exception_and_unknown_exception_code() -> None:
    m = one(EXCEPTION_RESP[:8] + bytes([0x0B]), RESP)
    assert m.exception_name == "gateway_target_device_failed_to_respond"
    p = parse(memoryview(EXCEPTION_RESP[:8] + bytes([0x33])), RESP)
    assert p.anomaly == "invalid_exception_code" and isinstance(p.pdu, Modbus) and p.pdu.exception_name == "unknown_51"


UMAS_REQ = bytes([
    0x00, 0x16, 0x00, 0x00, 0x00, 0x06, 0x01,
    0x5A,                                      # function 90: Schneider UMAS
    0x00,                                      # session
    0x41,                                      # UMAS: stop PLC
    0x01, 0x02,                                # UMAS payload
])


def test_unknown_function_90_is_kept_with_its_payload() -> None:
    m = one(UMAS_REQ, REQ)
    assert (m.function_code, m.function_name, m.data) == (90, "unknown_90", "00410102")
    assert (m.subfunction_code, m.subfunction_name) == (0x41, "stop_plc")
    assert action_of(90, 0x41) == "mode_change"
    assert action_of(90, 0x31) == "program_download"  # UMAS "upload block" goes PC -> PLC
    r = one(UMAS_REQ[:7] + bytes([0x5A, 0x00, 0xFE, 0x01, 0x02]), RESP)
    assert (r.function_code, r.data) == (90, "00fe0102")


@pytest.mark.parametrize("fc", [65, 72, 100, 110])
def test_user_defined_codes(fc: int) -> None:
    m = one(bytes([0, 1, 0, 0, 0, 4, 1, fc, 0xDE, 0xAD]), REQ)
    assert (m.function_name, m.data) == (f"user_defined_{fc}", "dead")
    assert action_of(fc, None) == "unknown"
    assert function_name(9) == "unknown_9"


@pytest.mark.parametrize("fc", [0, 0x80, 0xFF])
def test_request_function_code_zero_or_high_bit_is_invalid(fc: int) -> None:
    p = parse(memoryview(bytes([0, 1, 0, 0, 0, 3, 1, fc, 0x01])), REQ)
    assert p.consumed == 9 and p.anomaly == "invalid_function_code"
    assert isinstance(p.pdu, Modbus) and p.pdu.function_code == fc and p.pdu.data == "01"


# ---------------------------------------------------------------- framing


def test_incomplete_reports_needed() -> None:
    assert parse(memoryview(READ_COILS_REQ[:3]), REQ).needed == 5
    p = parse(memoryview(READ_COILS_REQ[:9]), REQ)
    assert (p.consumed, p.needed) == (0, 3)


def test_bad_protocol_id_with_plausible_length_consumes_declared_adu() -> None:
    bad = bytes([
        0x00, 0x01,
        0x00, 0x07,                            # protocol id 7
        0x00, 0x06, 0x01,                      # length 6, unit 1
        0x03, 0x00, 0x00, 0x00, 0x01,
    ])
    p = parse(memoryview(bad + READ_HOLDING_REQ), REQ)
    assert (p.consumed, p.anomaly, p.pdu) == (12, "invalid_protocol_id", None)
    header = p.extra[HEADER_ONLY]
    assert isinstance(header, Modbus) and (header.protocol_id, header.function_code) == (7, 3)


@pytest.mark.parametrize("length", [0, 1, 301, 0xFFFF])
def test_bad_length_drops_the_buffer(length: int) -> None:
    bad = bytes([0x00, 0x01, 0x00, 0x00, length >> 8, length & 0xFF, 0x01, 0x03])
    p = parse(memoryview(bad + READ_HOLDING_REQ), REQ)
    assert (p.consumed, p.anomaly) == (len(bad) + len(READ_HOLDING_REQ), "invalid_length")


def test_truncated_body_is_invalid_pdu_within_its_length() -> None:
    data = bytes([0, 1, 0, 0, 0, 4, 1,
                  0x03,                        # read holding registers
                  0x00, 0x01])                 # address only: quantity missing
    p = parse(memoryview(data), REQ)
    assert p.consumed == 10 and p.anomaly == "invalid_pdu" and isinstance(p.pdu, Modbus) and p.pdu.data == "0001"


def test_trailing_bytes_are_flagged() -> None:
    data = bytes([0, 1, 0, 0, 0, 7, 1,
                  0x03, 0x00, 0x01, 0x00, 0x02,
                  0x99])                       # one byte too many
    p = parse(memoryview(data), REQ)
    assert p.anomaly == "invalid_pdu" and isinstance(p.pdu, Modbus) and (p.pdu.address, p.pdu.quantity, p.pdu.data) == (1, 2, "99")
