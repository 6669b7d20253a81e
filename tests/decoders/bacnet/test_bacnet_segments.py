"""BACnet/IP segmented messages: reassembled from the corpus traces' real segments, and what happens
when a segment is missing, out of order, repeated, late, too large, or never finished; ReadRange."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.utils import PcapReader

from pipeline.schema import Event
from sensors.decoders.bacnet import BacnetFlow, parse
from sensors.decoders.bacnet.flow import Reassembly
from sensors.decoders.base import Conn, Direction, FrameMeta

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CORPUS = (Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus").resolve()
TRACES = CORPUS / "icsnpp-bacnet" / "traces"
BASELINE = CORPUS / "icsnpp-bacnet" / "baseline"


def _datagrams(path: Path, client: str) -> dict[int, tuple[bytes, Direction]]:
    """Frame number -> (UDP payload, direction) of a trace, `client` being the requester."""
    if not path.is_file():
        pytest.skip(f"corpus trace not found: {path}")
    out = {}
    with PcapReader(str(path)) as r:
        for n, pkt in enumerate(r, 1):
            if UDP in pkt:
                out[n] = (bytes(pkt[UDP].payload), Direction.TO_SERVER if pkt[IP].src == client else Direction.TO_CLIENT)
    return out


def _feed(frames: dict[int, tuple[bytes, Direction]], order: list[int], seconds: Callable[[int], float] = lambda i: i / 1000) -> tuple[BacnetFlow, list[Event]]:
    flow = BacnetFlow()
    conn = Conn("10.0.0.1", 47808, "10.0.0.2", 47808, "udp", "1:seg")
    events: list[Event] = []
    for i, n in enumerate(order):
        data, direction = frames[n]
        meta = FrameMeta(frame=n, time=T0 + dt.timedelta(seconds=seconds(i)), conn=conn, file_sha256="0" * 64)
        events += flow.feed(memoryview(data), direction, meta)
    return flow, events


def _ack_rows(log: Path, invoke_id: str, service: str) -> int:
    n = 0
    for line in log.read_text(encoding="utf-8").splitlines():
        f = line.split("\t")
        if not line.startswith("#") and len(f) > 12 and f[11] == invoke_id and f[12] == service:
            n += 1
    return n


def _anomalies(events: list[Event], code: str) -> list[Event]:
    return [e for e in events if e.anomaly is not None and e.anomaly.code == code]


@pytest.fixture(scope="module")
def object_list() -> dict[int, tuple[bytes, Direction]]:
    """bacnet_segmented_data.pcap: frame 14 reads the object-list of device 254 (invoke id 94); the ack
    comes in segments 0, 1, 2 (frames 15, 17, 18), each answered by a SegmentACK (16, 19)."""
    return _datagrams(TRACES / "bacnet_segmented_data.pcap", "10.0.0.1")


def test_object_list_reassembled_with_icsnpp_element_count(object_list: dict[int, tuple[bytes, Direction]]) -> None:
    log = BASELINE / "analyzer.segmented_data" / "bacnet_property.log"
    if not log.is_file():
        pytest.skip(f"baseline not found: {log}")
    _, events = _feed(object_list, sorted(object_list))
    assert not [e for e in events if e.anomaly is not None]
    acks = {e.evidence.frame: e.bacnet for e in events if e.bacnet and e.bacnet.invoke_id == 94 and e.bacnet.apdu_type == 3}
    assert sorted(acks) == [15, 17, 18]
    final = acks[18]
    assert final is not None and (final.sequence_number, final.more_follows, final.segment_count) == (2, False, 3)
    assert (final.object_type_name, final.instance_number, final.property_name, final.array_index) == ("device", 254, "object-list", None)
    # ICSNPP logs one row per element of the reassembled list; the list's length, object-list[0], was read first (invoke 93)
    assert final.value_count == _ack_rows(log, "94", "read-property-ack") == 426
    length = next(e.bacnet for e in events if e.bacnet and e.bacnet.invoke_id == 93 and e.bacnet.apdu_type == 3)
    assert length is not None and length.array_index == 0 and length.value == "426"
    assert final.value is not None and final.value.startswith("binary-input:0;binary-input:20001;")
    assert acks[15].segment_count is None and acks[17].segment_count is None  # the earlier segments stay per-segment


def test_segmented_rpm_ack_reassembled(bac_traces: list[Path]) -> None:
    """bacnet_services.pcap: a ReadPropertyMultiple ack (invoke 136) of 32 results in 2 segments."""
    frames = _datagrams(TRACES / "bacnet_services.pcap", "192.168.0.50")
    order = [n for n in sorted(frames) if 270 <= n <= 282]
    _, events = _feed(frames, order)
    final = next(e.bacnet for e in events if e.evidence.frame == 281 and e.bacnet is not None)
    assert (final.segment_count, final.property_count) == (2, 32)
    rows = _ack_rows(BASELINE / "analyzer.services" / "bacnet_property.log", "136", "read-property-multiple-ack")
    assert final.properties is not None and len(final.properties) == rows == 32
    assert [p.instance_number for p in final.properties] == list(range(2101, 2133))


@pytest.mark.parametrize("order, why", [
    ([14, 15, 16, 18, 19], ["segment 2 where 1 was expected"]),  # segment 1 lost
    ([14, 16, 17, 18, 19], ["segment 1 without the segments before it"]),  # first segment lost
    # reordered: the final segment ends the message early; the late segment 1 then belongs to none
    ([14, 15, 16, 18, 17, 19], ["segment 2 where 1 was expected", "segment 1 without the segments before it"]),
])
def test_missing_or_out_of_order_segment(object_list: dict[int, tuple[bytes, Direction]], order: list[int], why: list[str]) -> None:
    flow, events = _feed(object_list, order)
    assert not [e for e in events if e.bacnet and e.bacnet.segment_count is not None]
    assert not _anomalies(events, "invalid_apdu")  # no decoder error, no decode of a partial message
    failed = _anomalies(events, "reassembly_failed")
    assert len(failed) == len(why)
    for e, text in zip(failed, why):
        assert e.anomaly is not None and text in (e.anomaly.message or "") and e.bacnet is not None and e.bacnet.invoke_id == 94
    assert flow.close(None) == []  # reported once: nothing more at the end


def test_retransmitted_segment_is_ignored(object_list: dict[int, tuple[bytes, Direction]]) -> None:
    _, events = _feed(object_list, [14, 15, 16, 17, 17, 15, 18, 19])
    (final,) = [e.bacnet for e in events if e.bacnet and e.bacnet.segment_count is not None]
    assert (final.segment_count, final.value_count) == (3, 426)
    assert not [e for e in events if e.anomaly is not None]


def test_late_segment_is_dropped(object_list: dict[int, tuple[bytes, Direction]]) -> None:
    _, events = _feed(object_list, [14, 15, 16, 17, 18, 19], seconds=lambda i: 0 if i < 3 else 61)
    assert not [e for e in events if e.bacnet and e.bacnet.segment_count is not None]
    late, _absorbed = _anomalies(events, "reassembly_failed")  # expired at frame 17, then 17 starts mid-message
    assert "no segment for 60 s after 1 segment(s)" in (late.anomaly.message or "") and late.evidence.frame == 17


def test_unfinished_message_reported_at_close(object_list: dict[int, tuple[bytes, Direction]]) -> None:
    flow, _ = _feed(object_list, [14, 15, 16, 17])
    (e,) = flow.close(None)
    assert e.anomaly is not None and e.anomaly.code == "reassembly_failed" and "flow ended after 2 segment(s)" in (e.anomaly.message or "")


def test_abort_discards_partial_message(object_list: dict[int, tuple[bytes, Direction]]) -> None:
    frames = dict(object_list)
    frames[99] = (bytes([0x81, 0x0A, 0x00, 0x09, 0x01, 0x00, 0x70, 94, 0x04]), Direction.TO_SERVER)  # client aborts invoke 94
    flow, events = _feed(frames, [14, 15, 16, 99])
    assert len(flow._segments) == 0 and not _anomalies(events, "reassembly_failed") and flow.close(None) == []


def test_bounds() -> None:
    r = Reassembly(max_messages=2, max_bytes=10)
    assert r.segment((1, 1, 3), 0, True, b"x" * 6, 0) == (None, [])
    _, problems = r.segment((1, 1, 3), 1, False, b"y" * 6, 1)
    assert _ == None and "larger than 10 bytes" in problems[0]  # noqa: E711
    for i in range(3):
        _, problems = r.segment((1, 10 + i, 3), 0, True, b"z", i)
    assert len(r) == 2 and "dropped the oldest (invoke id 10" in problems[0]
    assert r.segment((1, 12, 3), 1, False, b"w", 5) == ([b"z", b"w"], [])


def test_new_message_replaces_unfinished_one() -> None:
    r = Reassembly()
    r.segment((0, 7, 0), 0, True, b"a", 0)
    chunks, problems = r.segment((0, 7, 0), 0, False, b"b", 1)
    assert chunks == [b"b"] and "a new segmented message began after 1 segment(s)" in problems[0]


def test_read_range_request_from_corpus(bac_traces: list[Path]) -> None:
    frames = _datagrams(TRACES / "bacnet_error_reject_abort.pcap", "10.10.10.10")
    b = parse(frames[23][0]).pdu
    assert (b.service_name, b.object_type_name, b.instance_number, b.property_name, b.array_index) == ("read_range", "trend-log", 2, "log-buffer", None)
    assert b.value == "by_position;index=1;count=10"


READ_RANGE_BY_TIME = bytes([
    0x81, 0x0A, 0x00, 0x21, 0x01, 0x04,
    0x00, 0x05, 0x02, 0x1A,  # confirmed request, invoke 2, readRange
    0x0C, 0x05, 0x00, 0x00, 0x02,  # [0] trend-log 2
    0x19, 0x83,  # [1] log-buffer
    0x29, 0x03,  # [2] array index 3
    0x7E,  # [7] byTime {
    0xA4, 0x7C, 0x0B, 0x18, 0xFF,  # date 2024-11-24
    0xB4, 0x0A, 0x1E, 0x00, 0x00,  # time 10:30:00.00
    0x31, 0xF6,  # count -10
    0x7F,  # }
])
READ_RANGE_BY_SEQUENCE_ACK = bytes([
    0x81, 0x0A, 0x00, 0x48, 0x01, 0x00,
    0x30, 0x03, 0x1A,  # complex ack, invoke 3, readRange
    0x0C, 0x05, 0x00, 0x00, 0x02, 0x19, 0x83,  # trend-log 2, log-buffer
    0x3A, 0x05, 0xC0,  # [3] result flags: first item, last item
    0x49, 0x02,  # [4] item count 2
    0x5E,  # [5] item data {
    0x0E, 0xA4, 0x7C, 0x0B, 0x18, 0xFF, 0xB4, 0x0A, 0x00, 0x00, 0x00, 0x0F,  # record: [0] { 2024-11-24 10:00:00.00 }
    0x1E, 0x2C, 0x42, 0x20, 0x00, 0x00, 0x1F,  # [1] { [2] real 40.0 }
    0x0E, 0xA4, 0x7C, 0x0B, 0x18, 0xFF, 0xB4, 0x0A, 0x0F, 0x00, 0x00, 0x0F,  # record: 10:15
    0x1E, 0x2C, 0x42, 0x24, 0x00, 0x00, 0x1F,  # 41.0
    0x5F,  # }
    0x69, 0x07,  # [6] first sequence number 7
])


def test_read_range_by_time_and_ack() -> None:
    b = parse(READ_RANGE_BY_TIME).pdu
    assert (b.object_type_name, b.property_name, b.array_index, b.value) == ("trend-log", "log-buffer", 3, "by_time;time=2024-11-24 10:30:00.00;count=-10")
    a = parse(READ_RANGE_BY_SEQUENCE_ACK).pdu
    assert (a.apdu_type_name, a.property_name, a.value_count) == ("complex_ack", "log-buffer", 2)
    assert a.value is not None and a.value.startswith("first_sequence=7;")
