"""GOOSE parser on annotated bytes, sequence classification, and the engine's layer-2 path (VLAN tags,
Linux cooked captures, a raising decoder) on frames written to a pcap."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from pipeline.protocols.goose import Goose
from sensors.decoders import REGISTRY
from sensors.decoders.base import DecoderSpec
from sensors.decoders.ether import EtherFrame
from sensors.decoders.goose import SPEC, GooseDecoder, classify, parse
from sensors.engine import DecodeReport, decode_file

FRAME = bytes([
    0x00, 0x01,              # APPID 1
    0x00, 0x2D,              # length 45 (APPID to end)
    0x80, 0x00,              # reserved 1: simulation bit set
    0x00, 0x00,              # reserved 2
    0x61, 0x23,              # goosePdu, 35 octets
    0x80, 0x05, *b"I/G$1",   # gocbRef
    0x81, 0x02, 0x07, 0xD0,  # timeAllowedtoLive 2000
    0x82, 0x01, *b"D",       # datSet
    0x84, 0x08, 0x5F, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x0A,  # t: 0x5F000000 s = 2020-07-04T04:05:20Z, fraction 0x800000 = .5 s, quality 0x0a
    0x85, 0x01, 0x03,        # stNum 3
    0x86, 0x01, 0x00,        # sqNum 0
    0x87, 0x01, 0xFF,        # simulation TRUE
    0x88, 0x01, 0x01,        # confRev 1
    0x89, 0x01, 0x00,        # ndsCom FALSE
    0x8A, 0x01, 0x00,        # numDatSetEntries 0
])
FRAME = FRAME[:9] + bytes([len(FRAME) - 10]) + FRAME[10:]  # the goosePdu length as built
FRAME = FRAME[:2] + len(FRAME).to_bytes(2, "big") + FRAME[4:]


def test_header_and_members() -> None:
    g = parse(FRAME)
    assert (g.appid, g.length, g.simulation_bit, g.gocb_ref, g.time_allowed_to_live, g.dat_set) == (1, len(FRAME), True, "I/G$1", 2000, "D")
    assert (g.st_num, g.sq_num, g.simulation, g.conf_rev, g.nds_com, g.num_dat_set_entries) == (3, 0, True, 1, False, 0)
    assert g.t == "2020-07-04T04:05:20.500000Z" and g.t_quality == 0x0A
    assert (g.parse_status, g.parse_error) == ("partial", "missing_all_data")


def test_truncated_and_garbage() -> None:
    assert (parse(FRAME[:20]).parse_status, parse(FRAME[:20]).parse_error) == ("failed", "truncated_packet")
    assert parse(FRAME[:8] + b"\x30\x00").parse_error == "malformed_asn1"
    assert parse(b"\x00").parse_error == "truncated_packet"


def _g(st: int, sq: int, h: str = "a", t: str = "t") -> Goose:
    return Goose(appid=1, parse_status="ok", gocb_ref="x", st_num=st, sq_num=sq, all_data_hash=h, t=t)


def test_sequence_classes() -> None:
    dec = GooseDecoder()
    seen = []
    for g in (_g(5, 0), _g(5, 1), _g(6, 0, "b"), _g(6, 1, "c"), _g(6, 3, "c"), _g(6, 2, "c"), _g(9, 0, "c"), _g(8, 0, "c"), _g(1, 0, "c"),
              _g(1, 0, "c")):
        prev = dec._state.get((1, "x"))
        seen.append(classify(prev, g))
        dec._remember((1, "x"), g, "m")
    assert seen == ["first", "retransmission", "state_change", "same_st_data_changed", "sq_gap", "sq_rollback", "st_jump", "st_rollback",
                    "restart", "retransmission"]
    # stNum wraps at 2^32: 0xFFFFFFFF -> 0 is the next state, not a rollback (IEC 61850-8-1 18.1.2.5)
    dec2 = GooseDecoder()
    dec2._remember((1, "x"), _g(0xFFFFFFFF, 4), "m")
    assert classify(dec2._state[(1, "x")], _g(0, 0), "m") == "state_change"
    # the same control block from another MAC: a second publisher, whatever its counters say
    assert classify(dec2._state[(1, "x")], _g(0, 0), "evil") == "publisher_changed"


def test_engine_layer2_path(tmp_path: Path) -> None:
    body = FRAME
    frames = [
        Ether(src="00:00:00:00:00:01", dst="01:0c:cd:01:00:01", type=0x88B8) / Raw(body),
        Ether(src="00:00:00:00:00:02", dst="01:0c:cd:01:00:01") / Dot1Q(vlan=10, type=0x88B8) / Raw(body),
        Ether(src="00:00:00:00:00:03", dst="01:0c:cd:01:00:01") / Dot1AD(vlan=100) / Dot1Q(vlan=20, type=0x88B8) / Raw(body),
        Ether(src="00:00:00:00:00:04", dst="01:0c:cd:01:00:01", type=0x88B9) / Raw(body),  # GSE management: not registered
        Ether(src="00:00:00:00:00:05", dst="00:00:00:00:00:06") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"x"),
    ]
    path = tmp_path / "l2.pcap"
    wrpcap(str(path), frames)
    rep = DecodeReport()
    events = [e for e in decode_file(path, report=rep) if e.event.dataset == "goose"]
    assert [(e.evidence.frame, e.source.mac, e.network.vlan_id) for e in events] == [  # type: ignore[union-attr]
        (1, "00:00:00:00:00:01", None), (2, "00:00:00:00:00:02", [10]), (3, "00:00:00:00:00:03", [100, 20])]
    assert all(e.source.ip is None and e.network.transport is None and e.related is None for e in events)  # type: ignore[union-attr]
    assert rep.non_ip == 4 and rep.flows == 1 and rep.decoder_errors == 0
    cooked = tmp_path / "sll.pcap"
    wrpcap(str(cooked), [CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x00\x00\x00\x00\x00\x07\x00\x00", proto=0x88B8) / Raw(body)])
    (e,) = [e for e in decode_file(cooked) if e.event.dataset == "goose"]
    assert e.source is not None and e.source.mac == "00:00:00:00:00:07" and e.goose is not None and e.goose.st_num == 3


class _Boom:
    def feed(self, data: memoryview, frame: EtherFrame) -> list[object]:
        raise RuntimeError("bug")

    def close(self) -> list[object]:
        return []


def test_a_raising_layer2_decoder_costs_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "boom.pcap"
    wrpcap(str(path), [Ether(type=0x88B8) / Raw(FRAME)] * 3)
    rep = DecodeReport()
    events = list(decode_file(path, registry={"goose": DecoderSpec("goose", SPEC.default_ports, SPEC.transport, _Boom)}, report=rep))
    assert events == [] and rep.decoder_errors == 3 and rep.packets == 3


def test_registered_by_ethertype() -> None:
    assert REGISTRY["goose"] is SPEC and SPEC.transport == "ethernet" and SPEC.default_ports == (0x88B8,)
    assert REGISTRY["profinet_rt"].default_ports == (0x8892,) and REGISTRY["profinet"].probe is not None
