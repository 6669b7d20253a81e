"""ModbusFlow: buffering, pairing, duration, anomaly events, flooding, close."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.schema import Event, to_dict
from sensors.decoders.base import Direction
from sensors.decoders.modbus import SPEC, ModbusFlow

if TYPE_CHECKING:
    from tests.decoders.conftest import Driver

READ_HOLDING_REQ = bytes([
    0x00, 0x01,              # transaction id
    0x00, 0x00,              # protocol id
    0x00, 0x06,              # length
    0x11,                    # unit id
    0x03,                    # function: read holding registers
    0x00, 0x6B, 0x00, 0x02,  # address 107, quantity 2
])
READ_HOLDING_RESP = bytes([
    0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x11,
    0x03,                    # function: read holding registers
    0x04,                    # byte count
    0x00, 0x0A, 0x00, 0x0B,  # 10, 11
])
READ_COILS_REQ = bytes([
    0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x11,
    0x01,                    # function: read coils
    0x00, 0x00, 0x00, 0x0A,  # address 0, quantity 10
])
READ_COILS_RESP = bytes([
    0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0x11,
    0x01,                    # function: read coils
    0x02,                    # byte count
    0xFF, 0xFF,              # 16 bits, of which 10 were asked for
])
WRITE_REGISTER_REQ = bytes([
    0x00, 0x03, 0x00, 0x00, 0x00, 0x06, 0x11,
    0x06,                    # function: write single register
    0x00, 0x01, 0x00, 0x03,  # address 1, value 3
])
EXCEPTION_RESP = bytes([
    0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x11,
    0x86,                    # function: write single register | 0x80
    0x04,                    # exception: server device failure
])
BAD_PROTOCOL_REQ = bytes([
    0x00, 0x09,
    0x12, 0x34,              # protocol id 0x1234
    0x00, 0x06, 0x11,
    0x03, 0x00, 0x00, 0x00, 0x01,
])


def kinds(events: list[Event]) -> list[str]:
    out = []
    for e in events:
        if e.anomaly is not None:
            out.append(f"anomaly:{e.anomaly.code}")
        else:
            assert e.modbus is not None
            out.append(f"{e.modbus.message_type}:{e.modbus.function_code}")
    return out


def test_spec_registers_modbus_on_502() -> None:
    assert (SPEC.name, SPEC.default_ports, SPEC.transport, SPEC.flow) == ("modbus", (502,), "tcp", ModbusFlow)


def test_request_then_response_pairs_with_duration(driver: Driver) -> None:
    (q,) = driver.req(READ_HOLDING_REQ, ms=10)
    (r,) = driver.resp(READ_HOLDING_RESP, ms=35)
    assert q.event.action == "read" and q.event.outcome is None and q.event.dataset == "modbus"
    assert q.network is not None and q.network.direction == "request" and q.source is not None and q.source.port == 40000
    assert r.event.action == "read" and r.event.outcome == "success"
    assert r.event.duration == 25_000_000
    assert r.modbus is not None and r.modbus.request_frame == 1 and r.modbus.values == [10, 11]
    assert r.source is not None and r.source.port == 502 and r.evidence is not None and r.evidence.frame == 2
    assert q.event.id != r.event.id


def test_coil_bits_trimmed_to_requested_quantity(driver: Driver) -> None:
    driver.req(READ_COILS_REQ)
    (r,) = driver.resp(READ_COILS_RESP)
    assert r.modbus is not None and r.modbus.values == [1] * 10 and r.modbus.quantity == 10


def test_exception_response_is_failure_with_request_action(driver: Driver) -> None:
    driver.req(WRITE_REGISTER_REQ)
    (r,) = driver.resp(EXCEPTION_RESP)
    assert r.event.action == "write" and r.event.outcome == "failure"
    assert r.modbus is not None and (r.modbus.function_code, r.modbus.exception_code, r.modbus.exception_name) == (6, 4, "server_device_failure")


def test_adu_split_across_feeds(driver: Driver) -> None:
    assert driver.req(READ_HOLDING_REQ[:3]) == []
    assert driver.req(READ_HOLDING_REQ[3:9]) == []
    (q,) = driver.req(READ_HOLDING_REQ[9:])
    assert q.evidence is not None and q.evidence.frame == 3  # the frame completing the ADU
    assert q.modbus is not None and (q.modbus.address, q.modbus.quantity) == (107, 2)


def test_several_adus_in_one_feed_and_a_partial_tail(driver: Driver) -> None:
    events = driver.req(READ_HOLDING_REQ + READ_COILS_REQ + WRITE_REGISTER_REQ[:5])
    assert kinds(events) == ["request:3", "request:1"]
    assert len({e.event.id for e in events}) == 2
    (w,) = driver.req(WRITE_REGISTER_REQ[5:])
    assert w.event.action == "write"
    rs = driver.resp(EXCEPTION_RESP + READ_COILS_RESP + READ_HOLDING_RESP)
    assert kinds(rs) == ["response:6", "response:1", "response:3"]
    assert [e.modbus.request_frame for e in rs if e.modbus] == [2, 1, 1]


def test_unsolicited_response(driver: Driver) -> None:
    r, a = driver.resp(READ_HOLDING_RESP)
    assert r.modbus is not None and r.modbus.request_frame is None and r.event.duration is None
    assert r.event.action == "read" and r.event.outcome == "success"
    assert a.event.action == "anomaly" and a.anomaly is not None and a.anomaly.code == "unsolicited_response"
    assert a.modbus is not None and a.modbus.transaction_id == 1 and a.event.dataset == "modbus"
    assert a.event.id != r.event.id


def test_reused_transaction_ids_pair_first_in_first_out(driver: Driver) -> None:
    driver.req(READ_HOLDING_REQ, ms=1)
    driver.req(READ_HOLDING_REQ, ms=2)
    r1 = driver.resp(READ_HOLDING_RESP, ms=5)[0]
    r2 = driver.resp(READ_HOLDING_RESP, ms=6)[0]
    assert r1.modbus is not None and r2.modbus is not None
    assert (r1.modbus.request_frame, r1.event.duration) == (1, 4_000_000)
    assert (r2.modbus.request_frame, r2.event.duration) == (2, 4_000_000)
    assert kinds(driver.resp(READ_HOLDING_RESP)) == ["response:3", "anomaly:unsolicited_response"]


def test_response_with_other_function_code_is_value_mismatch(driver: Driver) -> None:
    driver.req(READ_HOLDING_REQ)
    wrong = READ_HOLDING_RESP[:7] + bytes([0x04]) + READ_HOLDING_RESP[8:]  # input, not holding
    assert kinds(driver.resp(wrong)) == ["response:4", "anomaly:value_mismatch"]


def test_flooding_drops_oldest(driver: Driver) -> None:
    flow = driver.flow
    flooded = []
    for i in range(ModbusFlow.MAX_PENDING + 3):
        tid = i.to_bytes(2, "big")
        flooded += [e for e in driver.req(tid + READ_HOLDING_REQ[2:]) if e.anomaly is not None]
    # reported once per episode, not once per extra request
    assert len(flooded) == 1 and flooded[0].anomaly is not None and flooded[0].anomaly.code == "flooded"
    assert flooded[0].evidence is not None and flooded[0].evidence.frame == ModbusFlow.MAX_PENDING + 1
    assert len(flow._pending) == ModbusFlow.MAX_PENDING
    # The oldest (tid 0) was dropped, so its answer is unsolicited; tid 3 is still pending.
    assert kinds(driver.resp(bytes([0, 0]) + READ_HOLDING_RESP[2:]))[-1] == "anomaly:unsolicited_response"
    assert kinds(driver.resp(bytes([0, 3]) + READ_HOLDING_RESP[2:])) == ["response:3"]


def test_bad_protocol_id_then_resync(driver: Driver) -> None:
    events = driver.req(BAD_PROTOCOL_REQ + READ_HOLDING_REQ)
    assert kinds(events) == ["anomaly:invalid_protocol_id", "request:3"]
    a = events[0]
    assert a.event.action == "anomaly" and a.modbus is not None and a.modbus.protocol_id == 0x1234


def test_oversize_length_is_decoded_and_flagged(driver: Driver) -> None:
    body = bytes(253)
    adu = bytes([0x00, 0x07, 0x00, 0x00,
                 0x00, 0xFF,        # length 255: one over the spec's 254
                 0x00, 0x5A]) + body  # unit 0, function 90 (UMAS block transfer), payload
    assert kinds(driver.req(adu)) == ["request:90", "anomaly:invalid_length"]


def test_bad_length_drops_segment_and_decodes_the_next(driver: Driver) -> None:
    bad = bytes([0x00, 0x01, 0x00, 0x00,
                 0x01, 0x40,  # length 320: beyond any tolerance
                 0x11, 0x03, 0x00])
    assert kinds(driver.req(bad + READ_HOLDING_REQ)) == ["anomaly:invalid_length"]
    assert kinds(driver.req(READ_COILS_REQ)) == ["request:1"]


def test_not_modbus_stops_the_direction(driver: Driver) -> None:
    tls = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]) + bytes(40)  # a TLS ClientHello on port 502
    seen: list[str] = []
    for _ in range(6):
        seen += kinds(driver.req(tls))
    assert seen.count("anomaly:invalid_protocol_id") == 4 and seen[-1] == "anomaly:not_modbus"
    assert driver.req(READ_HOLDING_REQ) == []
    assert kinds(driver.resp(READ_HOLDING_RESP)) == ["response:3", "anomaly:unsolicited_response"]


def test_malformed_body_gives_event_and_anomaly(driver: Driver) -> None:
    short = bytes([0x00, 0x05, 0x00, 0x00, 0x00, 0x04, 0x11,
                   0x03, 0x00, 0x01])  # quantity missing
    events = driver.req(short)
    assert kinds(events) == ["request:3", "anomaly:invalid_pdu"]
    assert events[0].event.action == "read"


def test_unknown_function_code_90_is_an_event(driver: Driver) -> None:
    umas = bytes([0x00, 0x07, 0x00, 0x00, 0x00, 0x05, 0x01,
                  0x5A,              # function 90: Schneider UMAS
                  0x00, 0x40, 0xFF])  # session, UMAS start PLC, payload
    (q,) = driver.req(umas)
    assert q.modbus is not None and (q.modbus.function_name, q.modbus.data) == ("unknown_90", "0040ff")
    assert q.event.action == "mode_change"
    (r,) = driver.resp(umas[:8] + bytes([0x00, 0xFE, 0x00]))
    assert r.event.action == "mode_change" and r.modbus is not None and r.modbus.request_frame == 1


def test_close_reports_partial_adu(driver: Driver) -> None:
    driver.req(READ_HOLDING_REQ[:5])
    (a,) = driver.close()
    assert a.anomaly is not None and a.anomaly.code == "truncated_pdu" and a.network is not None and a.network.direction == "request"
    assert driver.close() == []


def test_close_without_meta_uses_last_frame() -> None:
    from tests.decoders.conftest import meta_at

    flow = ModbusFlow()
    flow.feed(memoryview(READ_HOLDING_RESP[:4]), Direction.TO_CLIENT, meta_at(7))
    (a,) = flow.close(None)
    assert a.evidence is not None and a.evidence.frame == 7 and a.anomaly is not None
    # seq of close events never collides with the frame's own events
    assert a.event.id is not None and a.event.id.endswith("-900")


def test_events_serialize(driver: Driver) -> None:
    events = driver.req(READ_HOLDING_REQ) + driver.resp(READ_HOLDING_RESP) + driver.resp(READ_HOLDING_RESP)
    for e in events:
        d = to_dict(e)
        assert d["event"]["dataset"] == "modbus" and "@timestamp" in d
