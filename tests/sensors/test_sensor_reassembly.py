"""TCP reassembly: every byte delivered once, in order, through out-of-order, retransmitted and overlapping segments."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sensors.sensor_helpers import LP_SPEC, recording_spec, tcp_frame
from sensors.decoders.base import Direction
from sensors.engine import Sensor
from sensors.packet import ACK, FIN, PSH, SYN
from sensors.reassembly import HalfStream, rel

ISN_C = 1000
ISN_S = 5000


def run(frames: list[bytes], registry: dict, t0: float = 1_700_000_000.0) -> tuple[Sensor, list]:
    sensor = Sensor("org", "obs", registry)
    events = []
    for i, f in enumerate(frames, 1):
        events += sensor.process(i, t0 + i * 0.001, 1, f)
    events += sensor.finish()
    return sensor, events


def handshake() -> list[bytes]:
    return [
        tcp_frame(seq=ISN_C, flags="S"),
        tcp_frame(seq=ISN_S, ack=ISN_C + 1, flags="SA", to_server=False),
        tcp_frame(seq=ISN_C + 1, ack=ISN_S + 1, flags="A"),
    ]


def test_rel_wraps_mod_2_32() -> None:
    assert rel(5, 0xFFFFFFFB) == 10
    assert rel(0xFFFFFFFB, 5) == -10
    assert rel(7, 7) == 0


def test_out_of_order_retransmitted_overlapping_deliver_each_byte_once() -> None:
    spec, rec = recording_spec()
    data = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    s = ISN_C + 1
    frames = handshake() + [
        tcp_frame(data[10:20], seq=s + 10, ack=ISN_S + 1),  # ahead of a gap: buffered
        tcp_frame(data[0:5], seq=s, ack=ISN_S + 1),  # fills part of the gap
        tcp_frame(data[0:5], seq=s, ack=ISN_S + 1),  # retransmission: nothing new
        tcp_frame(data[3:12], seq=s + 3, ack=ISN_S + 1),  # overlaps both sides, fills the gap
        tcp_frame(data[15:26], seq=s + 15, ack=ISN_S + 1),  # overlaps delivered bytes, then new ones
        tcp_frame(data[20:26], seq=s + 20, ack=ISN_S + 1),  # wholly old
    ]
    sensor, _ = run(frames, {"rec": spec})
    assert rec.stream(Direction.TO_SERVER) == data
    assert [f for _, _, f in rec.feeds] == [5, 7, 8]  # the frame that completed each delivery
    assert rec.gaps == [] and sensor.report.tcp_gaps == 0


def test_pdu_split_across_segments_and_several_per_segment() -> None:
    pdus = [len(b).to_bytes(2, "big") + b for b in (b"one", b"two", b"three", b"four")]
    wire = b"".join(pdus)
    s = ISN_C + 1
    cut1, cut2 = 4, 19  # inside the first PDU's body, inside the fourth PDU
    frames = handshake() + [
        tcp_frame(wire[:cut1], seq=s, ack=ISN_S + 1),
        tcp_frame(wire[cut1:cut2], seq=s + cut1, ack=ISN_S + 1),  # completes one, carries two, starts four
        tcp_frame(wire[cut2:], seq=s + cut2, ack=ISN_S + 1),
    ]
    _, events = run(frames, {"lp": LP_SPEC})
    msgs = [(e.message, e.evidence.frame) for e in events if e.event.dataset == "lp"]
    assert msgs == [("one", 5), ("two", 5), ("three", 5), ("four", 6)]
    assert len({e.event.id for e in events}) == len(events)


def test_both_directions_and_fin_close() -> None:
    spec, rec = recording_spec()
    s, r = ISN_C + 1, ISN_S + 1
    frames = handshake() + [
        tcp_frame(b"req1", seq=s, ack=r),
        tcp_frame(b"resp1", seq=r, ack=s + 4, to_server=False),
        tcp_frame(b"", seq=s + 4, ack=r + 5, flags="FA"),
        tcp_frame(b"", seq=r + 5, ack=s + 5, flags="FA", to_server=False),
        tcp_frame(b"", seq=s + 5, ack=r + 6, flags="A"),
    ]
    sensor, events = run(frames, {"rec": spec})
    assert rec.stream(Direction.TO_SERVER) == b"req1"
    assert rec.stream(Direction.TO_CLIENT) == b"resp1"
    assert rec.closed == 1 and rec.gaps == []
    flows = [e for e in events if e.event.dataset == "flow"]
    assert len(flows) == 1
    assert (flows[0].source.packets, flows[0].destination.packets) == (5, 3)
    assert flows[0].network.protocol == "rec"


def test_sequence_wraparound() -> None:
    spec, rec = recording_spec()
    isn = 0xFFFFFFF0
    frames = [
        tcp_frame(seq=isn, flags="S"),
        tcp_frame(seq=ISN_S, ack=isn + 1, flags="SA", to_server=False),
        tcp_frame(b"0123456789", seq=isn + 1, ack=ISN_S + 1),
        tcp_frame(b"abcdefghij", seq=(isn + 21) & 0xFFFFFFFF, ack=ISN_S + 1),  # after the wrap, out of order
        tcp_frame(b"ABCDEFGHIJ", seq=(isn + 11) & 0xFFFFFFFF, ack=ISN_S + 1),  # straddles 2^32
    ]
    run(frames, {"rec": spec})
    assert rec.stream(Direction.TO_SERVER) == b"0123456789ABCDEFGHIJabcdefghij"


def test_mid_stream_pickup_orients_by_server_port() -> None:
    spec, rec = recording_spec()
    frames = [
        tcp_frame(b"resp", seq=9000, ack=777, to_server=False),  # first packet seen is the server's
        tcp_frame(b"req", seq=777, ack=9004),
    ]
    _, events = run(frames, {"rec": spec})
    assert rec.stream(Direction.TO_CLIENT) == b"resp"
    assert rec.stream(Direction.TO_SERVER) == b"req"
    flow = next(e for e in events if e.event.dataset == "flow")
    assert (flow.source.ip, flow.source.port, flow.destination.port) == ("10.0.0.2", 40000, 5020)


def test_mid_stream_without_known_port_lower_port_is_responder() -> None:
    frames = [tcp_frame(b"x", seq=1, ack=1, to_server=False)]  # 5020 -> 40000, no decoder registered
    _, events = run(frames, {})
    flow = events[-1]
    assert (flow.source.port, flow.destination.port) == (40000, 5020)
    assert flow.network.protocol is None


def test_gap_skipped_when_buffer_limit_exceeded() -> None:
    spec, rec = recording_spec()
    sensor = Sensor("org", "obs", {"rec": spec}, max_pending_bytes=100)
    s = ISN_C + 1
    frames = handshake() + [tcp_frame(b"a" * 10, seq=s, ack=ISN_S + 1)]
    # 50 bytes lost at s+10; then 3 x 40 bytes arrive: the third overflows the buffer.
    frames += [tcp_frame(bytes([ord("b") + i]) * 40, seq=s + 60 + 40 * i, ack=ISN_S + 1) for i in range(3)]
    for i, f in enumerate(frames, 1):
        sensor.process(i, 1.0 + i, 1, f)
    sensor.finish()
    assert rec.stream(Direction.TO_SERVER) == b"a" * 10 + b"b" * 40 + b"c" * 40 + b"d" * 40
    assert rec.gaps == [(Direction.TO_SERVER, 50, 7)]
    assert sensor.report.tcp_gaps == 1 and sensor.report.missed_bytes == 50


def test_gap_skipped_when_peer_acks_bytes_we_never_saw() -> None:
    spec, rec = recording_spec()
    s, r = ISN_C + 1, ISN_S + 1
    frames = handshake() + [
        tcp_frame(b"12345", seq=s, ack=r),
        # s+5 .. s+15 lost by the capture; the server acknowledges it all, then the client goes on
        tcp_frame(b"", seq=r, ack=s + 15, flags="A", to_server=False),
        tcp_frame(b"after", seq=s + 15, ack=r),
    ]
    sensor, events = run(frames, {"rec": spec})
    assert rec.gaps == [(Direction.TO_SERVER, 10, 5)]
    assert rec.feeds == [(Direction.TO_SERVER, b"12345", 4), (Direction.TO_SERVER, b"after", 6)]
    assert next(e for e in events if e.event.dataset == "flow").labels == {"missed_bytes": "10"}


def test_decoder_without_gap_hook_is_restarted_after_a_gap() -> None:
    spec, rec = recording_spec(with_gap=False)
    s, r = ISN_C + 1, ISN_S + 1
    frames = handshake() + [
        tcp_frame(b"12345", seq=s, ack=r),
        tcp_frame(b"", seq=r, ack=s + 15, flags="A", to_server=False),
        tcp_frame(b"after", seq=s + 15, ack=r),
    ]
    run(frames, {"rec": spec})
    assert rec.instances == 2 and rec.closed == 2
    assert rec.stream(Direction.TO_SERVER) == b"12345after"


def test_rst_flushes_buffered_data_and_stops() -> None:
    spec, rec = recording_spec()
    s, r = ISN_C + 1, ISN_S + 1
    frames = handshake() + [
        tcp_frame(b"late", seq=s + 4, ack=r),  # waits for s..s+4, which never comes
        tcp_frame(b"", seq=r, flags="R", to_server=False),
        tcp_frame(b"ignored", seq=s + 8, ack=r),  # after RST
    ]
    run(frames, {"rec": spec})
    assert rec.stream(Direction.TO_SERVER) == b"late"
    assert rec.gaps == [(Direction.TO_SERVER, 4, 5)]


def test_decoder_exception_becomes_anomaly_and_disables_decoder() -> None:
    spec, rec = recording_spec(raise_on=b"BAD")
    s, r = ISN_C + 1, ISN_S + 1
    frames = handshake() + [
        tcp_frame(b"ok", seq=s, ack=r),
        tcp_frame(b"BAD", seq=s + 2, ack=r),
        tcp_frame(b"more", seq=s + 5, ack=r),
    ]
    sensor, events = run(frames, {"rec": spec})
    errs = [e for e in events if e.anomaly is not None]
    assert len(errs) == 1
    err = errs[0]
    assert (err.anomaly.code, err.event.dataset, err.event.action, err.evidence.frame) == ("decoder_error", "rec", "anomaly", 5)
    assert "ValueError: boom" in (err.anomaly.message or "")
    assert rec.stream(Direction.TO_SERVER) == b"ok"  # nothing fed after the failure
    assert sensor.report.decoder_errors == 1
    flow = next(e for e in events if e.event.dataset == "flow")
    assert flow.source.packets == 5  # flow accounting goes on
    assert len({e.event.id for e in events}) == len(events)


def test_halfstream_fin_consumes_one_sequence_number() -> None:
    h = HalfStream()
    assert h.segment(100, SYN, memoryview(b"")) is None
    assert bytes(h.segment(101, PSH | ACK, memoryview(b"abc")) or b"") == b"abc"
    assert h.segment(104, FIN | ACK, memoryview(b"")) is None
    assert h.closed and h.next_seq == 105
    assert h.peer_ack(105) is None and h.gaps == 0


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=300),
    cuts=st.lists(st.integers(min_value=1, max_value=299), max_size=12),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    isn=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_any_segmentation_order_and_duplication_delivers_the_stream_once(data: bytes, cuts: list[int], seed: int, isn: int) -> None:
    rng = random.Random(seed)
    points = sorted({c for c in cuts if c < len(data)})
    bounds = [0, *points, len(data)]
    segs = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    # Overlapping re-sends: a segment spanning two neighbours, plus plain duplicates.
    if len(segs) > 1:
        i = rng.randrange(len(segs) - 1)
        segs.append((segs[i][0], segs[i + 1][1]))
    segs += rng.sample(segs, k=min(3, len(segs)))
    first = segs[0]
    rest = segs[1:]
    rng.shuffle(rest)
    h = HalfStream()
    h.segment(isn, SYN, memoryview(b""))
    out = bytearray()
    for a, b in [first, *rest]:
        got = h.segment((isn + 1 + a) & 0xFFFFFFFF, PSH | ACK, memoryview(data[a:b]))
        if got:
            out += got
    assert bytes(out) == data
    assert h.pending == {} and h.gaps == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.sampled_from(["S", "SA", "A", "PA", "FA", "R", "F"]), st.booleans(), st.binary(max_size=40)), max_size=25))
def test_arbitrary_segment_sequences_never_raise(segs: list[tuple[int, str, bool, bytes]]) -> None:
    spec, rec = recording_spec()
    sensor = Sensor(None, "s", {"rec": spec})
    for i, (seq, flags, to_server, payload) in enumerate(segs, 1):
        sensor.process(i, float(i), 1, tcp_frame(payload, seq=seq, ack=seq ^ 0x5A5A, flags=flags, to_server=to_server))
    events = sensor.finish()
    assert sensor.report.decoder_errors == 0
    assert sum(1 for e in events if e.event.dataset == "flow") >= (1 if segs else 0)
