"""Random and truncated bytes never make the GOOSE decoder (or the layer-2 frame parser) raise."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings, strategies as st

from sensors.decoders.ether import EtherFrame
from pipeline.protocols.goose import GooseValue
from sensors.decoders.goose import GooseDecoder, parse
from sensors.decoders.goose.parser import _values
from sensors.packet import parse_l2

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _pdu() -> bytes:
    def tlv(tag: int, value: bytes) -> bytes:
        return bytes([tag, len(value)]) + value

    body = (tlv(0x80, b"IED1/LLN0$GO$gcb01") + tlv(0x81, b"\x07\xd0") + tlv(0x82, b"IED1/LLN0$DS1") + tlv(0x83, b"G1")
            + tlv(0x84, b"\x5f\x00\x00\x00\x80\x00\x00\x0a") + tlv(0x85, b"\x05") + tlv(0x86, b"\x02") + tlv(0x87, b"\x00")
            + tlv(0x88, b"\x01") + tlv(0x89, b"\x00") + tlv(0x8A, b"\x03")
            + tlv(0xAB, tlv(0x83, b"\x01") + tlv(0xA2, tlv(0x85, b"\xff") + tlv(0x87, b"\x08\x41\x20\x00\x00")) + tlv(0x84, b"\x03\x00")))
    pdu = bytes([0x61, len(body)]) + body
    return (0x3001).to_bytes(2, "big") + (8 + len(pdu)).to_bytes(2, "big") + b"\x00\x00\x00\x00" + pdu


GOOD = _pdu()  # a GOOSE frame body (after the ethertype) to cut and mutate


def _frame(n: int) -> EtherFrame:
    return EtherFrame(frame=n, time=T0, src_mac="00:01:02:03:04:05", dst_mac="01:0c:cd:01:00:01", vlan=(), ethertype=0x88B8)


def test_the_seed_frame_parses() -> None:
    g = parse(GOOD)
    assert g.parse_status == "ok" and g.st_num == 5 and g.all_data and [v.index for v in g.all_data] == ["0", "1", "1.0", "1.1", "2"]
    assert g.all_data[3].value == 10.0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    dec = GooseDecoder()
    assert len(dec.feed(memoryview(data), _frame(1))) == 1
    parse(data)
    parse(GOOD[:8] + data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD)), st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=0, max_value=255))
def test_truncated_and_mutated(cut: int, pos: int, byte: int) -> None:
    dec = GooseDecoder()
    dec.feed(memoryview(GOOD[:cut]), _frame(1))
    mutated = bytearray(GOOD)
    mutated[pos] = byte
    (ev,) = dec.feed(memoryview(bytes(mutated)), _frame(2))
    assert ev.goose is not None or ev.anomaly is not None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 113, 276, 0, 101]), st.binary(max_size=64))
def test_layer2_frame_parser(linktype: int, data: bytes) -> None:
    r = parse_l2(linktype, data)
    assert r is None or r[1] <= len(data)


def test_oversized_integers_do_not_reach_the_event() -> None:
    """stNum of 9 octets is malformed (no 64-bit field holds it); an allData integer that wide stays hex."""
    big_st = GOOD.replace(bytes([0x85, 0x01, 0x05]), bytes([0x85, 0x09]) + b"\x01" * 9)
    body = big_st[8:]
    fixed = big_st[:2] + len(big_st).to_bytes(2, "big") + big_st[4:8] + bytes([0x61, body[1] + 8]) + body[2:]
    assert parse(fixed).parse_error == "malformed_asn1"
    values: list[GooseValue] = []
    data = bytes([0x85, 0x09]) + b"\x01" * 9 + bytes([0x86, 0x08]) + b"\xff" * 8
    _values(data, 0, len(data), "", 1, values)
    assert [(v.type, v.value) for v in values] == [("integer", "01" * 9), ("unsigned", "ff" * 8)]
