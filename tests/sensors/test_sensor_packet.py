"""Link/IP/transport header parsing on frames built by scapy."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Raw

from sensors.packet import ACK, FIRST_FRAGMENT, LATER_FRAGMENT, NOT_FRAGMENT, PSH, SYN, parse

MACS = {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"}


def test_ethernet_ipv4_tcp_fields() -> None:
    frame = bytes(Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1234, dport=502, seq=1000, ack=2000, flags="PA") / Raw(b"hello"))
    p = parse(1, frame)
    assert p is not None
    assert (p.src_ip, p.dst_ip, p.proto, p.sport, p.dport) == ("192.0.2.1", "192.0.2.2", 6, 1234, 502)
    assert (p.seq, p.ack, p.flags & (PSH | ACK | SYN)) == (1000, 2000, PSH | ACK)
    assert bytes(p.payload) == b"hello"
    assert p.src_mac == bytes.fromhex("02000000000a") and p.dst_mac == bytes.fromhex("02000000000b")
    assert p.vlan == () and p.fragment == NOT_FRAGMENT
    assert p.ip_len == 20 + 20 + 5


def test_ethernet_padding_is_not_payload() -> None:
    # A 1-byte TCP payload makes a 55-byte frame that the NIC pads to 60: the padding is not stream data.
    frame = bytes(Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2) / Raw(b"x")) + b"\x00" * 5
    p = parse(1, frame)
    assert p is not None and bytes(p.payload) == b"x"


def test_vlan_stack_qinq() -> None:
    frame = bytes(Ether(**MACS) / Dot1AD(vlan=100) / Dot1Q(vlan=200) / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=5000, dport=47808) / Raw(b"\x81\x0a"))
    p = parse(1, frame)
    assert p is not None
    assert p.vlan == (100, 200)
    assert (p.proto, p.sport, p.dport, bytes(p.payload)) == (17, 5000, 47808, b"\x81\x0a")


def test_single_vlan() -> None:
    p = parse(1, bytes(Ether(**MACS) / Dot1Q(vlan=7, prio=5) / IP(src="10.1.1.1", dst="10.1.1.2") / TCP(sport=1, dport=102)))
    assert p is not None and p.vlan == (7,) and p.dport == 102


def test_ipv4_options_are_skipped() -> None:
    frame = bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR(routers=["1.1.1.1", "2.2.2.2"])]) / TCP(sport=7, dport=8) / Raw(b"abc"))
    p = parse(1, frame)
    assert p is not None and (p.sport, p.dport, bytes(p.payload)) == (7, 8, b"abc")


def test_ipv4_fragments() -> None:
    first = bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=0) / UDP(sport=1, dport=2, len=1000) / Raw(b"a" * 100))
    later = bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", frag=14, proto=17) / Raw(b"b" * 100))
    p1, p2 = parse(1, first), parse(1, later)
    assert p1 is not None and p1.fragment == FIRST_FRAGMENT and (p1.sport, p1.dport) == (1, 2)
    assert p2 is not None and p2.fragment == LATER_FRAGMENT and p2.proto == 17 and p2.sport == 0


def test_ipv6_extension_headers() -> None:
    frame = bytes(
        Ether(**MACS)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::99"])
        / IPv6ExtHdrDestOpt()
        / TCP(sport=40001, dport=20000, seq=5, flags="S")
    )
    p = parse(1, frame)
    assert p is not None
    assert (p.version, p.src_ip, p.dst_ip, p.proto, p.sport, p.dport, p.seq) == (6, "2001:db8::1", "2001:db8::2", 6, 40001, 20000, 5)
    assert p.flags & SYN


def test_ipv6_fragments() -> None:
    first = bytes(Ether(**MACS) / IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(offset=0, m=1, nh=17) / UDP(sport=9, dport=10) / Raw(b"x" * 8))
    later = bytes(Ether(**MACS) / IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(offset=2, m=0, nh=17) / Raw(b"y" * 8))
    p1, p2 = parse(1, first), parse(1, later)
    assert p1 is not None and p1.fragment == FIRST_FRAGMENT and p1.dport == 10
    assert p2 is not None and p2.fragment == LATER_FRAGMENT


def test_icmp_type_code_in_ports() -> None:
    p = parse(1, bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=1)))
    assert p is not None and (p.proto, p.sport, p.dport) == (1, 3, 1)


def test_other_linktypes() -> None:
    ip = IP(src="10.9.9.1", dst="10.9.9.2") / TCP(sport=4840, dport=50000) / Raw(b"HEL")
    v6 = IPv6(src="fe80::1", dst="fe80::2") / UDP(sport=1, dport=2) / Raw(b"z")
    cases = {
        "null-le": (0, struct.pack("<I", 2) + bytes(ip)),
        "null-be": (0, struct.pack(">I", 2) + bytes(ip)),
        "null-v6": (0, struct.pack("<I", 30) + bytes(v6)),
        "loop": (108, struct.pack(">I", 2) + bytes(ip)),
        "null-scapy": (0, bytes(Loopback(type=2) / ip)),
        "raw": (101, bytes(ip)),
        "ipv4": (228, bytes(ip)),
        "ipv6": (229, bytes(v6)),
        "sll": (113, bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02\x00\x00\x00\x00\x0c\x00\x00", proto=0x0800) / ip)),
        "sll2": (276, bytes(CookedLinuxV2(proto=0x0800, lladdrtype=1, lladdrlen=6, src=b"\x02\x00\x00\x00\x00\x0c\x00\x00") / ip)),
    }
    for name, (lt, frame) in cases.items():
        p = parse(lt, frame)
        assert p is not None, name
        if p.version == 4:
            assert (p.src_ip, p.dport, bytes(p.payload)) == ("10.9.9.1", 50000, b"HEL"), name
        else:
            assert (p.src_ip, p.dport, bytes(p.payload)) == ("fe80::1", 2, b"z"), name
    assert parse(113, cases["sll"][1]).src_mac == bytes.fromhex("02000000000c")  # type: ignore[union-attr]
    assert parse(276, cases["sll2"][1]).src_mac == bytes.fromhex("02000000000c")  # type: ignore[union-attr]


def test_non_ip_and_malformed_are_none() -> None:
    from scapy.layers.l2 import ARP

    assert parse(1, bytes(Ether(**MACS) / ARP())) is None
    good = bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2))
    assert parse(1, good[:30]) is None  # cut inside the IP header
    assert parse(1, good[:40]) is None  # cut inside the TCP header
    bad_ihl = bytearray(good)
    bad_ihl[14] = 0x42  # IHL 2 words < 20 bytes
    assert parse(1, bytes(bad_ihl)) is None
    assert parse(147, good) is None  # unsupported linktype
    assert parse(1, b"") is None


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([0, 1, 101, 108, 113, 228, 229, 276]), st.binary(max_size=120))
def test_random_bytes_never_raise(linktype: int, data: bytes) -> None:
    parse(linktype, data)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=80))
def test_every_truncation_of_a_vlan_ipv6_frame_never_raises(cut: int) -> None:
    frame = bytes(Ether(**MACS) / Dot1Q(vlan=3) / IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop() / TCP(sport=1, dport=2) / Raw(b"data"))
    parse(1, frame[:cut])
