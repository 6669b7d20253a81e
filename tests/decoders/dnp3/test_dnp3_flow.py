"""DNP3 flow: events per message, pairing by (master, outstation, sequence), reassembly, anomalies."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.schema import Event
from sensors.decoders.base import Direction
from sensors.decoders.dnp3 import Dnp3UdpFlow
from tests.decoders.dnp3.conftest import MASTER, OUTSTATION, Driver

READ_CLASS0 = bytes([0xC1, 0x01, 0x3C, 0x01, 0x06])  # FIR FIN seq 1, read g60v1 all
RESPONSE_1 = bytes([0xC1, 0x81, 0x00, 0x00])  # FIR FIN seq 1, response, IIN 0
COLD_RESTART = bytes([0xC2, 0x0D])
CROB_OPERATE = bytes([0xC3, 0x04, 0x0C, 0x01, 0x17, 0x01, 0x00, 0x81, 0x01, 0xE8, 0x03, 0, 0, 0, 0, 0, 0, 0x00])


def codes(events: list[Event]) -> list[str]:
    return [e.anomaly.code for e in events if e.anomaly is not None]


def test_request_response_pairing(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    (req,) = dnp3_driver.req(build(READ_CLASS0), ms=10)
    (resp,) = dnp3_driver.resp(build(RESPONSE_1, src=OUTSTATION, dst=MASTER), ms=25)
    assert req.dnp3 is not None and resp.dnp3 is not None
    assert (req.event.action, req.dnp3.message_type, req.dnp3.function_name, req.dnp3.sequence) == ("read", "request", "read", 1)
    assert (resp.event.action, resp.event.outcome, resp.event.duration, resp.dnp3.request_frame) == ("read", "success", 15_000_000, 1)
    assert resp.source is not None and resp.source.port == 20000
    assert resp.dnp3.iin == 0 and resp.dnp3.iin_names is None


def test_unmatched_and_unsolicited(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    ev = dnp3_driver.resp(build(RESPONSE_1, src=OUTSTATION, dst=MASTER))
    assert codes(ev) == ["unmatched_response"] and ev[0].event.action == "unknown"
    (uns,) = dnp3_driver.resp(build(bytes([0xF0, 0x82, 0x80, 0x00]), src=OUTSTATION, dst=MASTER))
    assert uns.dnp3 is not None and (uns.event.action, uns.dnp3.message_type, uns.dnp3.iin_names) == ("read_status", "unsolicited_response", ["device_restart"])
    (conf,) = dnp3_driver.req(build(bytes([0xD0, 0x00])))
    assert conf.dnp3 is not None and (conf.event.action, conf.dnp3.function_name, conf.dnp3.app_uns) == ("session", "confirm", True)


def test_actions(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    (e,) = dnp3_driver.req(build(COLD_RESTART))
    assert e.event.action == "restart"
    (e,) = dnp3_driver.req(build(CROB_OPERATE))
    assert e.event.action == "operate" and e.dnp3 is not None and e.dnp3.object_types == ["g12v1"]
    (e,) = dnp3_driver.req(build(bytes([0xC4, 0x02, 0x32, 0x01, 0x07, 0x01]) + bytes(6)))
    assert e.event.action == "time_sync" and e.dnp3 is not None and e.dnp3.object_groups == [50]
    (e,) = dnp3_driver.req(build(bytes([0xC5, 0x12])))
    assert e.event.action == "mode_change"


def test_failure_outcome_from_iin_and_status(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    dnp3_driver.req(build(CROB_OPERATE))
    resp = bytearray([0xC3, 0x81, 0x00, 0x00]) + CROB_OPERATE[2:]
    resp[-1] = 0x04  # status not_supported
    (e,) = dnp3_driver.resp(build(bytes(resp), src=OUTSTATION, dst=MASTER))
    assert e.event.outcome == "failure" and e.event.action == "operate"
    dnp3_driver.req(build(bytes([0xC6, 0x01, 0x3C, 0x01, 0x06])))
    (e,) = dnp3_driver.resp(build(bytes([0xC6, 0x81, 0x00, 0x01]), src=OUTSTATION, dst=MASTER))
    assert e.event.outcome == "failure" and e.dnp3 is not None and e.dnp3.iin_names == ["no_func_code_support"]


def test_multi_segment_fragment(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    dnp3_driver.req(build(READ_CLASS0))
    body = bytes([0xC1, 0x81, 0x00, 0x00, 0x1E, 0x04, 0x01, 0x00, 0x00, 0xFF, 0x00]) + bytes(2 * 256)  # g30v4 points 0..255
    frames = build(body, src=OUTSTATION, dst=MASTER)
    n = 0
    out: list[Event] = []
    # split the byte stream at arbitrary points across several feeds
    for i in range(0, len(frames), 97):
        out += dnp3_driver.resp(frames[i : i + 97])
        n += 1
    (e,) = out
    assert e.dnp3 is not None and e.dnp3.transport_segments == 3 and e.dnp3.length == len(body)
    assert e.dnp3.objects is not None and e.dnp3.objects[0].count == 256 and not e.dnp3.objects_truncated
    assert e.event.action == "read" and e.dnp3.request_frame == 1


def test_transport_out_of_order(dnp3_driver: Driver, link: Callable[..., bytes]) -> None:
    assert dnp3_driver.req(link(bytes([0x40 | 5]) + READ_CLASS0[:2])) == []  # FIR, not FIN, seq 5
    ev = dnp3_driver.req(link(bytes([0x80 | 7]) + READ_CLASS0[2:]))  # FIN seq 7: 6 missing
    assert codes(ev) == ["transport_sequence_error"]
    ev = dnp3_driver.req(link(bytes([0x80 | 9]) + READ_CLASS0[2:]))  # no FIR at all
    assert codes(ev) == ["transport_sequence_error"]


def test_bad_crc_reports_addresses(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    raw = bytearray(build(READ_CLASS0))
    raw[-1] ^= 0xFF
    (e,) = dnp3_driver.req(bytes(raw))
    assert e.anomaly is not None and e.anomaly.code == "bad_crc" and e.dnp3 is not None
    assert (e.dnp3.source, e.dnp3.destination) == (MASTER, OUTSTATION)


def test_link_only_frames(dnp3_driver: Driver, link: Callable[..., bytes]) -> None:
    (e,) = dnp3_driver.req(link(b"", control=0xC9))  # request link status
    assert e.dnp3 is not None and (e.dnp3.message_type, e.dnp3.link_function_name, e.event.action) == ("link", "request_link_status", "keepalive")
    (e,) = dnp3_driver.resp(link(b"", src=OUTSTATION, dst=MASTER, control=0x0B))  # link status
    assert e.dnp3 is not None and (e.dnp3.link_function_name, e.dnp3.link_prm, e.dnp3.link_dfc) == ("link_status", False, False)


def test_not_dnp3_stops_direction(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    out: list[Event] = []
    for _ in range(5):
        out += dnp3_driver.req(b"\x16\x03\x01\x00\xa5hello")
    assert codes(out) == ["invalid_start"] * 4 + ["not_dnp3"]
    assert dnp3_driver.req(build(READ_CLASS0)) == []


def test_flood(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    out: list[Event] = []
    for i in range(40):
        out += dnp3_driver.req(build(bytes([0xC0 | (i & 15), 0x01, 0x3C, 0x01, 0x06])))
    assert codes(out) == ["flooded"]


def test_broadcast_request_not_pending(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    (e,) = dnp3_driver.req(build(COLD_RESTART, dst=0xFFFF))
    assert e.dnp3 is not None and e.dnp3.destination == 0xFFFF
    assert len(dnp3_driver.flow._pending) == 0


def test_gap_and_close(dnp3_driver: Driver, build: Callable[..., bytes]) -> None:
    raw = build(READ_CLASS0)
    assert dnp3_driver.req(raw[:7]) == []
    ev = dnp3_driver.flow.gap(Direction.TO_SERVER, 100, dnp3_driver.flow._last_meta)  # type: ignore[arg-type]
    assert codes(ev) == ["truncated_pdu"]
    assert dnp3_driver.req(raw[:7]) == []
    assert codes(dnp3_driver.close()) == ["truncated_pdu"]


def test_udp_datagram_is_whole(build: Callable[..., bytes]) -> None:
    d = Driver(Dnp3UdpFlow())
    raw = build(READ_CLASS0)
    assert codes(d.req(raw[:-3])) == ["truncated_pdu"]
    (e,) = d.req(raw)
    assert e.dnp3 is not None and e.dnp3.function_name == "read"
