"""IEC 104 parser and flow on byte literals: every frame format, the main type ids, pairing, anomalies, fuzz."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.protocols.iec104 import Iec104
from sensors.decoders.base import Direction
from sensors.decoders.iec104 import Iec104Flow, parse
from sensors.decoders.iec104.constants import TYPE_NAMES, action_of

STARTDT_ACT = bytes([0x68, 0x04, 0x07, 0x00, 0x00, 0x00])
STARTDT_CON = bytes([0x68, 0x04, 0x0B, 0x00, 0x00, 0x00])
STOPDT_ACT = bytes([0x68, 0x04, 0x13, 0x00, 0x00, 0x00])
TESTFR_ACT = bytes([0x68, 0x04, 0x43, 0x00, 0x00, 0x00])
S_FRAME = bytes([0x68, 0x04, 0x01, 0x00, 0x7E, 0x14])  # N(R) 2623

C_SC_SELECT = bytes([
    0x68, 0x0E,              # start, length 14
    0x00, 0x00, 0x02, 0x00,  # I-format N(S) 0, N(R) 1
    0x2D, 0x01,              # type 45 C_SC_NA_1, one object
    0x06, 0x00,              # cause act, originator 0
    0x0A, 0x00,              # common address 10
    0x10, 0x27, 0x00,        # IOA 10000
    0x81,                    # SCO: select, on
])  # fmt: skip
C_SC_SELECT_CON = bytes([0x68, 0x0E, 0x02, 0x00, 0x02, 0x00, 0x2D, 0x01, 0x07, 0x00, 0x0A, 0x00, 0x10, 0x27, 0x00, 0x81])
C_SC_EXECUTE = bytes([0x68, 0x0E, 0x02, 0x00, 0x04, 0x00, 0x2D, 0x01, 0x06, 0x00, 0x0A, 0x00, 0x10, 0x27, 0x00, 0x01])
C_SC_EXECUTE_NEG = bytes([0x68, 0x0E, 0x04, 0x00, 0x04, 0x00, 0x2D, 0x01, 0x47, 0x00, 0x0A, 0x00, 0x10, 0x27, 0x00, 0x01])
C_SE_NC = bytes([
    0x68, 0x12, 0x04, 0x00, 0x04, 0x00,
    0x32, 0x01, 0x06, 0x00, 0x0A, 0x00,  # type 50 C_SE_NC_1, act, CA 10
    0x20, 0x4E, 0x00,                    # IOA 20000
    0x00, 0x00, 0x48, 0x42,              # 50.0
    0x00,                                # QOS: execute, QL 0
])  # fmt: skip
C_IC = bytes([0x68, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x64, 0x01, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x14])
C_RP = bytes([0x68, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x69, 0x01, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x01])
C_CS = bytes([
    0x68, 0x14, 0x00, 0x00, 0x00, 0x00, 0x67, 0x01, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x00,
    0xDD, 0xD9, 0x03, 0x09, 0x30, 0x07, 0x18,  # CP56Time2a 2024-07-16 09:03:55.773, Monday
])  # fmt: skip
M_DP_TB = bytes([
    0x68, 0x15, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x01, 0x03, 0x00, 0x0A, 0x00,  # M_DP_TB_1, spont
    0xA1, 0x0F, 0x00, 0x82,                  # IOA 4001, DIQ on + invalid
    0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x18,
])  # fmt: skip
M_ME_NA = bytes([0x68, 0x10, 0x00, 0x00, 0x00, 0x00, 0x09, 0x01, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x00, 0x00, 0x00, 0x40, 0x00])
M_IT_NA = bytes([0x68, 0x12, 0, 0, 0, 0, 0x0F, 0x01, 0x25, 0x00, 0x0A, 0x00, 0x05, 0, 0, 0xE8, 0x03, 0, 0, 0x21])


def p(data: bytes) -> Iec104:
    r = parse(data)
    assert r.consumed == len(data) and isinstance(r.pdu, Iec104), (r.anomaly, r.anomaly_message)
    assert r.anomaly is None, r.anomaly_message
    return r.pdu


@pytest.mark.parametrize(
    ("data", "name"),
    [(STARTDT_ACT, "startdt_act"), (STARTDT_CON, "startdt_con"), (STOPDT_ACT, "stopdt_act"), (TESTFR_ACT, "testfr_act"),
     (bytes([0x68, 4, 0x23, 0, 0, 0]), "stopdt_con"), (bytes([0x68, 4, 0x83, 0, 0, 0]), "testfr_con")],
)  # fmt: skip
def test_u_format(data: bytes, name: str) -> None:
    pdu = p(data)
    assert (pdu.apci_type, pdu.u_function_name, pdu.u_function_code) == ("U", name, data[2])


def test_s_format() -> None:
    assert (p(S_FRAME).apci_type, p(S_FRAME).recv_seq) == ("S", 2623)


def test_single_command_select() -> None:
    pdu = p(C_SC_SELECT)
    assert (pdu.type_name, pdu.cot_name, pdu.common_address, pdu.ioa, pdu.select, pdu.info_direction) == ("C_SC_NA_1", "act", 10, 10000, True, "control")
    o = pdu.objects[0]  # type: ignore[index]
    assert (o.value, o.value_name, o.qualifier, o.select) == (1, "on", 0, True)


def test_set_point_float() -> None:
    o = p(C_SE_NC).objects[0]  # type: ignore[index]
    assert (o.ioa, o.value, o.qualifier, o.select) == (20000, 50.0, 0, False)


def test_clock_sync_time() -> None:
    t = p(C_CS).objects[0].time  # type: ignore[index]
    assert t is not None and (t.iso, t.dow, t.invalid, t.summer) == ("2024-07-16T09:03:55.773", 1, False, False)


def test_monitor_types() -> None:
    o = p(M_DP_TB).objects[0]  # type: ignore[index]
    assert (o.ioa, o.value, o.value_name, o.invalid, o.time.iso if o.time else None) == (4001, 2, "on", True, "2024-01-01T00:00:00.000")
    n = p(M_ME_NA).objects[0]  # type: ignore[index]
    assert (n.raw, n.value) == (0x4000, 0.5)
    c = p(M_IT_NA)
    assert c.cot_name == "reqcogen" and (c.objects[0].value, c.objects[0].sequence, c.objects[0].overflow) == (1000, 1, True)  # type: ignore[index]


def test_every_standard_type_is_named_and_has_an_action() -> None:
    for tid, name in TYPE_NAMES.items():
        assert name[0] in "MCPFS" and name.endswith("_1")
        assert action_of(tid, 6, False, True) != "unknown" or name.startswith("S_")


def test_actions() -> None:
    assert action_of(45, 6, True, True) == "select"
    assert action_of(45, 6, False, True) == "operate"
    assert action_of(50, 6, False, True) == "write"
    assert action_of(100, 6, None, True) == "interrogation"
    assert action_of(105, 6, None, True) == "restart"
    assert action_of(103, 6, None, True) == "time_sync"
    assert action_of(112, 6, None, True) == "write"
    assert action_of(125, 13, None, False) == "file_read"
    assert action_of(13, 20, None, False) == "interrogation"
    assert action_of(13, 3, None, False) == "read_status"


def _events(d: Any, *frames: tuple[str, bytes]) -> list[Any]:
    out = []
    for who, data in frames:
        out += d.master(data) if who == "m" else d.outstation(data)
    return out


def test_select_before_operate_pairs_with_confirmations(driver: Any) -> None:
    ev = _events(driver, ("m", STARTDT_ACT), ("o", STARTDT_CON), ("m", C_SC_SELECT), ("o", C_SC_SELECT_CON), ("m", C_SC_EXECUTE), ("o", C_SC_EXECUTE_NEG))
    assert [e.event.action for e in ev] == ["session", "session", "select", "select", "operate", "operate"]
    assert ev[3].iec104.request_frame == 3 and ev[3].event.outcome == "success" and ev[3].event.duration == 1_000_000
    assert ev[5].iec104.request_frame == 5 and ev[5].event.outcome == "failure" and ev[5].iec104.negative
    assert ev[2].source.ip == "10.0.0.1" and ev[3].source.ip == "10.0.0.2"


def test_several_apdus_in_one_segment_and_split_apdus(driver: Any) -> None:
    blob = STARTDT_ACT + C_IC + TESTFR_ACT
    ev = driver.master(blob[:5]) + driver.master(blob[5:17]) + driver.master(blob[17:])
    assert [e.event.action for e in ev] == ["session", "interrogation", "keepalive"]
    assert [e.evidence.frame for e in ev] == [2, 3, 3]  # each APDU carries the frame that completed it


def test_unsolicited_confirmation_and_sequence_gap(driver: Any) -> None:
    ev = driver.outstation(C_SC_SELECT_CON)
    assert [e.anomaly.code for e in ev if e.anomaly] == ["unsolicited_confirmation"]
    ev = driver.outstation(C_SC_SELECT_CON)  # N(S) 1 expected, 1 sent again
    assert "sequence_gap" in [e.anomaly.code for e in ev if e.anomaly]


def test_garbage_is_skipped_and_flagged(driver: Any) -> None:
    ev = driver.master(b"\x00\x01\x02" + C_RP)
    assert [e.anomaly.code if e.anomaly else e.event.action for e in ev] == ["invalid_start", "restart"]
    ev = driver.master(bytes([0x68, 0x04, 0x17, 0, 0, 0]))  # U-format with several functions
    assert [e.anomaly.code for e in ev if e.anomaly] == ["invalid_apci"]
    ev = driver.master(bytes([0x68, 0x0A, 0x02, 0, 0, 0, 0xC8, 0x01, 0x06, 0x00, 0x0A, 0x00]))  # N(S) 1, type 200
    assert [e.anomaly.code for e in ev if e.anomaly] == ["unknown_type_id"]


def test_truncated_apdu_reported_on_close(driver: Any) -> None:
    driver.master(C_IC[:9])
    assert [e.anomaly.code for e in driver.close() if e.anomaly] == ["truncated_pdu"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_parse_never_raises(data: bytes) -> None:
    r = parse(data)
    assert r.consumed >= 0 and (r.consumed > 0 or r.needed > 0 or not data)


_VALID = [STARTDT_ACT, S_FRAME, C_SC_SELECT, C_SC_SELECT_CON, C_SE_NC, C_IC, C_CS, M_DP_TB, M_ME_NA, M_IT_NA]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.one_of(st.binary(max_size=40), st.sampled_from(_VALID)), st.integers(0, 40)), max_size=20))
def test_flow_never_raises_on_random_split_input(chunks: list[tuple[bool, bytes, int]]) -> None:
    from tests.decoders.iec104.conftest import meta_at  # noqa: PLC0415

    flow = Iec104Flow()
    for i, (to_server, data, cut) in enumerate(chunks, 1):
        d = Direction.TO_SERVER if to_server else Direction.TO_CLIENT
        for part in (data[:cut], data[cut:]):
            for e in flow.feed(memoryview(part), d, meta_at(i)):
                assert e.event.dataset == "iec104" and (e.anomaly is None) == (e.event.action != "anomaly")
    flow.close(meta_at(len(chunks) + 1))
