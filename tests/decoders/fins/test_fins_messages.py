"""FINS frames from bytes: header fields, command parameters, FINS/TCP handshake and framing, pairing and outcome."""

from __future__ import annotations

import datetime as dt

from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.fins import FinsTcpFlow, FinsUdpFlow, parse_frame, parse_tcp

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
UDP = Conn("10.0.0.1", 40000, "10.0.0.2", 9600, "udp", "1:u")
TCP = Conn("10.0.0.1", 40000, "10.0.0.2", 9600, "tcp", "1:t")

HEADER_CMD = bytes([0x80, 0x00, 0x02, 0x00, 0x0A, 0x00, 0x00, 0x14, 0x00, 0x2A])  # ICF RSV GCT DNA DA1 DA2 SNA SA1 SA2 SID
HEADER_RESP = bytes([0xC0, 0x00, 0x02, 0x00, 0x14, 0x00, 0x00, 0x0A, 0x00, 0x2A])


def _meta(conn: Conn, n: int) -> FrameMeta:
    return FrameMeta(frame=n, time=T0 + dt.timedelta(milliseconds=n), conn=conn, file_sha256="0" * 64)


def test_memory_area_write_header_and_parameters() -> None:
    fr = parse_frame(HEADER_CMD + bytes([0x01, 0x02]) + bytes([0x82, 0x00, 0x64, 0x00, 0x00, 0x02]) + bytes(4))
    f = fr.f
    assert fr.anomaly is None
    assert (f["message_type"], f["gateway"], f["response_required"], f["da1"], f["sa1"], f["sid"]) == ("command", True, True, 10, 20, 42)
    assert (f["command_code"], f["command_name"], f["memory_area_name"], f["address"], f["item_count"], f["data_length"]) == (0x0102, "memory_area_write", "dm_word", 100, 2, 4)


def test_forced_set_and_file_delete_parameters() -> None:
    forced = parse_frame(HEADER_CMD + bytes([0x23, 0x01, 0x00, 0x01, 0x00, 0x01, 0x30, 0x00, 0x0A, 0x03])).f
    assert (forced["set_reset"], forced["memory_area_name"], forced["address"], forced["bit"]) == (["set"], "cio_bit", 10, 3)
    names = b"BACKUP  .CXP" + b"LOG     .IOM"
    deleted = parse_frame(HEADER_CMD + bytes([0x22, 0x05, 0x80, 0x00, 0x00, 0x02]) + names).f
    assert deleted["file_names"] == ["BACKUP  .CXP", "LOG     .IOM"] and deleted["item_count"] == 2


def test_udp_response_paired_with_identity_and_failure_outcome() -> None:
    flow = FinsUdpFlow()
    flow.feed(memoryview(HEADER_CMD + bytes([0x05, 0x01])), Direction.TO_SERVER, _meta(UDP, 1))
    model = b"CJ2M-CPU31".ljust(20, b" ") + b"02.01".ljust(20, b" ") + bytes(40)
    (resp,) = flow.feed(memoryview(HEADER_RESP + bytes([0x05, 0x01, 0x00, 0x00]) + model), Direction.TO_CLIENT, _meta(UDP, 2))
    assert resp.event.action == "identify" and resp.event.outcome == "success" and resp.fins is not None
    assert (resp.fins.controller_model, resp.fins.controller_version, resp.fins.request_frame) == ("CJ2M-CPU31", "02.01", 1)
    flow.feed(memoryview(HEADER_CMD + bytes([0x04, 0x02])), Direction.TO_SERVER, _meta(UDP, 3))
    (stop,) = flow.feed(memoryview(HEADER_RESP + bytes([0x04, 0x02, 0x22, 0x06])), Direction.TO_CLIENT, _meta(UDP, 4))
    assert stop.event.action == "mode_change" and stop.event.outcome == "failure" and stop.fins is not None and stop.fins.end_code_name == "wrong_plc_mode_run"


def test_tcp_handshake_then_frames_split_anywhere() -> None:
    hello = b"FINS" + (12).to_bytes(4, "big") + bytes(4) + bytes(4) + (0x05).to_bytes(4, "big")
    answer = b"FINS" + (16).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes(4) + (0x05).to_bytes(4, "big") + (0x01).to_bytes(4, "big")
    frame = HEADER_CMD + bytes([0x04, 0x01, 0xFF, 0xFF, 0x04])
    send = b"FINS" + (len(frame) + 8).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes(4) + frame
    assert parse_tcp(send[:10]).consumed == 0 and parse_tcp(send).consumed == len(send)
    flow = FinsTcpFlow()
    events = flow.feed(memoryview(hello), Direction.TO_SERVER, _meta(TCP, 1))
    events += flow.feed(memoryview(answer), Direction.TO_CLIENT, _meta(TCP, 2))
    events += flow.feed(memoryview(send[:7]), Direction.TO_SERVER, _meta(TCP, 3))
    events += flow.feed(memoryview(send[7:]), Direction.TO_SERVER, _meta(TCP, 4))
    assert [e.event.action for e in events] == ["connect", "connect", "mode_change"]
    assert events[1].fins is not None and (events[1].fins.client_node, events[1].fins.server_node) == (5, 1)
    run = events[2].fins
    assert run is not None and (run.tcp_command_name, run.command_name, run.run_mode, run.program_number) == ("frame_send", "run", "run", 0xFFFF)
    assert events[2].evidence is not None and events[2].evidence.frame == 4


def test_not_fins_over_tcp_is_reported_then_stopped() -> None:
    flow = FinsTcpFlow()
    out = []
    for i in range(5):
        out += flow.feed(memoryview(b"GET / HTTP/1.1\r\n\r\n"), Direction.TO_SERVER, _meta(TCP, i + 1))
    codes = [e.anomaly.code for e in out if e.anomaly is not None]
    assert codes[-1] == "not_fins" and set(codes) == {"invalid_tcp_header", "not_fins"}
