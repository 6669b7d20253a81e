"""S7comm decoder, one message type at a time, from byte literals (TPKT + COTP DT added by `wrap`)."""

from __future__ import annotations

from collections.abc import Callable

from sensors.decoders.s7comm import parse_cotp, parse_s7, parse_s7plus, parse_tpkt

from .conftest import tpkt

Wrap = Callable[[bytes], bytes]

CR = bytes([
    0x03, 0x00, 0x00, 0x16,  # TPKT v3, length 22
    0x11, 0xE0,              # COTP LI 17, CR
    0x00, 0x00, 0x00, 0x01,  # dst ref, src ref
    0x00,                    # class 0
    0xC0, 0x01, 0x0A,        # TPDU size 1024
    0xC1, 0x02, 0x01, 0x00,  # calling TSAP
    0xC2, 0x02, 0x01, 0x02,  # called TSAP: PG, rack 0 slot 2
])  # fmt: skip
SETUP = bytes([
    0x32, 0x01, 0x00, 0x00, 0x00, 0x00,  # S7, job, redundancy, PDU ref 0
    0x00, 0x08, 0x00, 0x00,              # parameter 8, data 0
    0xF0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0xE0,  # setup communication: AmQ 1/1, PDU 480
])  # fmt: skip
READ_REQ = bytes([
    0x32, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x0E, 0x00, 0x00,
    0x04, 0x01,                          # read var, 1 item
    0x12, 0x0A, 0x10, 0x02,              # S7ANY, BYTE
    0x00, 0x08, 0x00, 0x01, 0x84,        # 8 elements, DB1, area DB
    0x00, 0x00, 0x50,                    # address 10.0 (bit address 80)
])  # fmt: skip
READ_RESP = bytes([
    0x32, 0x03, 0x00, 0x00, 0x00, 0x05, 0x00, 0x02, 0x00, 0x0C, 0x00, 0x00,
    0x04, 0x01,
    0xFF, 0x04, 0x00, 0x40,              # success, byte/word, 64 bits
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
])  # fmt: skip
WRITE_REQ = bytes([
    0x32, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x05,
    0x05, 0x01,
    0x12, 0x0A, 0x10, 0x01, 0x00, 0x01, 0x00, 0x00, 0x82, 0x00, 0x00, 0x03,  # BIT Q 0.3
    0x00, 0x03, 0x00, 0x01, 0x01,        # bit, 1 bit, value 1
])  # fmt: skip
WRITE_RESP = bytes([0x32, 0x03, 0x00, 0x00, 0x00, 0x06, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x05, 0x01, 0xFF])
STOP = bytes.fromhex("3201000000020010000029000000000009505f50524f4752414d")
COLD_START = bytes.fromhex("3201000000030016000028000000000000fd000243200950" + "5f50524f4752414d")
DELETE = bytes.fromhex("320100000004001a000028000000000000fd000a01003041303030303150" + "055f44454c45")
START_UPLOAD = bytes.fromhex("32010000000800120000" + "1d00000000000000095f3042303030303041")
UPLOAD_ACK = bytes.fromhex("320300000008000c00000000" + "1d00010000000007" + "03" + "323136")
SZL_REQ = bytes.fromhex("320700000001000800080001120411440100ff09000400110000")
SET_CLOCK = bytes.fromhex("3207000000090008000e0001120411470200ff09000a00192403150819550100")
MODE_PUSH = bytes.fromhex("32070000000000080000" + "0100101000000000")
_S7PLUS_DATA = bytes.fromhex("20" + "00" * 32 + "31000004f20000831a70000e4d74" + "00" * 4)  # digest, request setvariable
S7PLUS_REQ = bytes([0x72, 0x03]) + len(_S7PLUS_DATA).to_bytes(2, "big") + _S7PLUS_DATA + bytes.fromhex("72030000")


def test_tpkt_needs_more() -> None:
    assert parse_tpkt(b"\x03\x00").needed == 2
    assert parse_tpkt(b"\x03\x00\x00\x10\x02").needed == 11
    bad = parse_tpkt(b"\x05\x00\x00\x10")
    assert bad.anomaly == "invalid_tpkt" and bad.consumed == 4


def test_cotp_connection_request(driver) -> None:  # type: ignore[no-untyped-def]
    c = parse_cotp(CR[4:])
    assert (c.code, c.name) == (0xE, "CR Connection Request")
    assert c.fields == {"dst_ref": 0, "src_ref": 1, "cotp_class": 0, "tpdu_size": 1024, "src_tsap": "0100", "dst_tsap": "0102", "connection_type": 1, "rack": 0, "slot": 2}
    assert driver.req(CR) == []  # held: the first data PDU tells what the connection carries
    (ev, setup) = driver.req(tpkt(SETUP))
    assert ev.event.action == "connect" and ev.event.dataset == "s7comm" and ev.s7comm.protocol == "cotp" and ev.s7comm.slot == 2
    assert ev.evidence.frame == 1 and ev.event.id.endswith("-1-0") and ev.timestamp < setup.timestamp
    assert setup.event.dataset == "s7comm" and setup.evidence.frame == 2
    assert driver.flow.application_protocol == "s7comm"


CC = bytes.fromhex("0300001611d00001000100c0010ac1020100c2020102")
DR = bytes.fromhex("0300000b06800001000180")  # TPKT + COTP DR, reason 0x80 (normal)
MMS_INITIATE = bytes.fromhex("0d" "05" "0100" "0300" "00")  # a session CONNECT SPDU, enough for the dispatcher


def test_cotp_set_up_without_data_is_emitted_at_close(driver) -> None:  # type: ignore[no-untyped-def]
    assert driver.req(CR) == [] and driver.resp(CC) == []
    evs = driver.close()
    assert [(e.event.dataset, e.s7comm.cotp_pdu_code, e.evidence.frame) for e in evs] == [("s7comm", 0xE, 1), ("s7comm", 0xD, 2)]
    assert driver.flow.application_protocol is None  # nothing showed what it carried: the engine keeps the port's name


def test_cotp_set_up_of_an_mms_connection_is_mms(driver) -> None:  # type: ignore[no-untyped-def]
    """An ISO transport connection carrying MMS: its CR/CC/DR are mms events with the COTP fields, ids unchanged."""
    assert driver.req(CR) == [] and driver.resp(CC) == []
    evs = driver.req(tpkt(MMS_INITIATE))
    cr, cc = evs[:2]
    assert all(e.event.dataset == "mms" and e.s7comm is None for e in evs)
    assert (cr.event.action, cr.mms.cotp_pdu_code, cr.mms.src_tsap, cr.mms.dst_tsap, cr.mms.tpdu_size, cr.evidence.frame) == ("connect", 0xE, "0100", "0102", 1024, 1)
    assert (cc.event.action, cc.event.outcome, cc.mms.cotp_pdu_code, cc.evidence.frame) == ("connect", "success", 0xD, 2)
    assert cr.event.id.endswith("-1-0") and cc.event.id.endswith("-2-0")
    (dr,) = driver.req(DR)  # known now: emitted at once
    assert (dr.event.dataset, dr.event.action, dr.mms.cotp_pdu_code) == ("mms", "disconnect", 0x8)
    assert driver.flow.application_protocol == "mms"
    assert driver.close() == []


def test_bad_tpkt_during_set_up_goes_with_the_connection(driver) -> None:  # type: ignore[no-untyped-def]
    assert driver.req(CR) == []
    assert driver.resp(b"\x05\x00\x00\x08\x00\x00\x00\x00") == []  # not TPKT, while the set-up is held
    evs = driver.req(tpkt(MMS_INITIATE))
    assert [(e.event.dataset, e.event.action, e.anomaly and e.anomaly.code) for e in evs[:2]] == [("mms", "connect", None), ("mms", "anomaly", "invalid_tpkt")]


def test_many_set_ups_without_data_are_not_held_forever(driver) -> None:  # type: ignore[no-untyped-def]
    evs = [e for _ in range(8) for e in driver.req(CR) + driver.resp(CC)]
    assert len(evs) == 16 and {e.event.dataset for e in evs} == {"s7comm"}


def test_setup_communication(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (ev,) = driver.req(wrap(SETUP))
    s = ev.s7comm
    assert ev.event.action == "session" and (s.function_name, s.max_amq_calling, s.pdu_size) == ("setup_communication", 1, 480)


def test_read_var_pairs_items(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (req,) = driver.req(wrap(READ_REQ))
    (it,) = req.s7comm.items
    assert (it.area_name, it.db_number, it.byte_address, it.bit_address, it.address) == ("db", 1, 10, 0, "DB1.DBX 10.0 BYTE 8")
    (resp,) = driver.resp(wrap(READ_RESP))
    (it,) = resp.s7comm.items
    assert resp.event.action == "read" and resp.event.outcome == "success" and resp.s7comm.request_frame == 1
    assert (it.address, it.return_code_name, it.data_length, it.data) == ("DB1.DBX 10.0 BYTE 8", "success", 8, "0102030405060708")
    assert resp.event.duration == 1_000_000


def test_write_var(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (req,) = driver.req(wrap(WRITE_REQ))
    (it,) = req.s7comm.items
    assert req.event.action == "write" and req.s7comm.areas == ["outputs"]
    assert (it.address, it.data_length, it.data) == ("Q 0.3 BIT 1", 1, "01")
    (resp,) = driver.resp(wrap(WRITE_RESP))
    assert resp.s7comm.items[0].return_code_name == "success" and resp.s7comm.items[0].address == "Q 0.3 BIT 1"


def test_plc_stop_is_a_mode_change(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (ev,) = driver.req(wrap(STOP))
    assert ev.event.action == "mode_change" and ev.s7comm.function_name == "plc_stop" and ev.s7comm.pi_service == "P_PROGRAM"


def test_pi_services(wrap: Wrap, driver) -> None:  # type: ignore[no-untyped-def]
    (cold,) = driver.req(wrap(COLD_START))
    assert cold.event.action == "restart" and cold.s7comm.start_mode == "cold" and cold.s7comm.pi_parameters == ["C"]
    (dele,) = driver.req(wrap(DELETE))
    s = dele.s7comm
    assert dele.event.action == "file_delete" and s.pi_service == "_DELE" and s.pi_parameters == ["0A00001P"] and s.block_name == "DB1"


def test_block_upload_session(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (req,) = driver.req(wrap(START_UPLOAD))
    assert req.event.action == "program_upload" and (req.s7comm.block_type, req.s7comm.block_name, req.s7comm.destination_filesystem) == ("SDB", "SDB0", "active")
    (ack,) = driver.resp(wrap(UPLOAD_ACK))
    assert (ack.s7comm.session_id, ack.s7comm.block_length, ack.s7comm.block_name) == (7, 216, "SDB0")


def test_szl_request(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (ev,) = driver.req(wrap(SZL_REQ))
    s = ev.s7comm
    assert ev.event.action == "identify" and (s.function_group_name, s.subfunction_name, s.szl_id, s.szl_id_name) == ("cpu_functions", "read_szl", 0x11, "module_identification")


def test_set_clock_is_time_sync(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (ev,) = driver.req(wrap(SET_CLOCK))
    assert ev.event.action == "time_sync" and ev.s7comm.time == "2024-03-15T08:19:55.010"


def test_mode_transition_push(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    (ev,) = driver.resp(wrap(MODE_PUSH))
    assert ev.event.action == "mode_change" and ev.s7comm.function_group_name == "mode_transition" and ev.s7comm.subfunction_name == "stop"


def test_s7comm_plus_request() -> None:
    p = parse_s7plus(S7PLUS_REQ)
    assert p.complete and p.f["version"] == 3 and p.f["integrity"] is True
    assert (p.f["opcode_name"], p.f["function_name"], p.f["sequence_number"], p.f["s7plus_session_id"]) == ("request", "setvariable", 0x831A, 0x70000E4D)


def test_cotp_fragments_are_reassembled(driver) -> None:  # type: ignore[no-untyped-def]
    first, rest = READ_REQ[:10], READ_REQ[10:]
    dt = lambda b, eot: bytes([3, 0]) + (len(b) + 7).to_bytes(2, "big") + bytes([2, 0xF0, 0x80 if eot else 0x00]) + b  # noqa: E731
    assert driver.req(dt(first, False)) == []
    (ev,) = driver.req(dt(rest, True))
    assert ev.evidence.frame == 2 and ev.s7comm.items[0].address == "DB1.DBX 10.0 BYTE 8"


def test_split_tpkt_and_two_pdus_in_one_segment(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    data = wrap(READ_REQ) + wrap(SETUP)
    assert driver.req(data[:5]) == []
    evs = driver.req(data[5:])
    assert [e.s7comm.function_code for e in evs] == [0x04, 0xF0]


def test_unsolicited_response_and_truncation(driver, wrap: Wrap) -> None:  # type: ignore[no-untyped-def]
    evs = driver.resp(wrap(READ_RESP))
    assert [e.event.action for e in evs] == ["read", "anomaly"] and evs[1].anomaly.code == "unsolicited_response"
    bad = parse_s7(READ_REQ[:-2])
    assert bad.anomaly == "invalid_pdu"
    driver.req(wrap(SETUP)[:9])
    (ev,) = driver.close()
    assert ev.anomaly.code == "truncated_pdu"


def test_not_tpkt_stops_the_direction(driver) -> None:  # type: ignore[no-untyped-def]
    evs = [e for _ in range(5) for e in driver.req(b"GET / HTTP/1.1\r\n")]
    assert [e.anomaly.code for e in evs] == ["invalid_tpkt"] * 4 + ["not_tpkt"]
