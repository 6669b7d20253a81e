"""Fast struct-based parsing of link, IP and transport headers: just what flows and reassembly need."""

from __future__ import annotations

import socket
from struct import Struct

# Frames carry these after the link header; anything else (ARP, LLDP, GOOSE, ...) is not an IP packet.
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
_MPLS = frozenset({0x8847, 0x8848})

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132
TRANSPORT_NAMES = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP6: "ipv6-icmp", PROTO_SCTP: "sctp", 2: "igmp", 47: "gre", 50: "esp", 51: "ah", 89: "ospf", 112: "vrrp"}

# IPv6 extension headers we step over to reach the transport header.
_V6_EXT = frozenset({0, 43, 60, 135, 139, 140})
_V6_FRAG = 44
_V6_AH = 51
_V6_NONE = 59

# TCP flags (byte 13 of the header).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

# Fragment state of the IP packet.
NOT_FRAGMENT = 0
FIRST_FRAGMENT = 1  # carries the transport header, but the payload is partial
LATER_FRAGMENT = 2  # no transport header: counted, not decoded (no IP reassembly yet)

_H = Struct("!H")
_HH = Struct("!HH")
_I = Struct("!I")
_L = Struct("<I")
_TCP = Struct("!HHIIBB")
_UDP = Struct("!HHH")
_IP4 = Struct("!BxHxxHBB")  # ver/ihl, total length, flags/fragment offset, ttl, proto
_IP6 = Struct("!HBB")  # payload length, next header, hop limit (read at offset 4)

_NO_VLAN: tuple[int, ...] = ()


class Packet:
    """One parsed IP packet. Addresses are raw bytes: converting them to text is done once per flow, not per packet."""

    __slots__ = (
        "src_mac", "dst_mac", "vlan", "version", "src", "dst", "proto", "ip_len",
        "fragment", "sport", "dport", "flags", "seq", "ack", "payload",
    )  # fmt: skip

    def __init__(self) -> None:
        self.src_mac: bytes | None = None
        self.dst_mac: bytes | None = None
        self.vlan: tuple[int, ...] = _NO_VLAN
        self.version = 4
        self.src = b""
        self.dst = b""
        self.proto = 0
        self.ip_len = 0  # IP header + payload, as sent (what network.bytes counts)
        self.fragment = NOT_FRAGMENT
        self.sport = 0  # ICMP: type
        self.dport = 0  # ICMP: code
        self.flags = 0
        self.seq = 0
        self.ack = 0
        self.payload: memoryview = _EMPTY

    @property
    def src_ip(self) -> str:
        return ip_str(self.src)

    @property
    def dst_ip(self) -> str:
        return ip_str(self.dst)

    def __repr__(self) -> str:
        return (
            f"Packet({self.src_ip}:{self.sport} > {self.dst_ip}:{self.dport} proto={self.proto} "
            f"vlan={list(self.vlan)} flags={self.flags:#04x} seq={self.seq} len={len(self.payload)})"
        )


_EMPTY = memoryview(b"")


def ip_str(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def mac_str(raw: bytes | None) -> str | None:
    return None if raw is None else raw.hex(":")


def parse(linktype: int, data: bytes) -> Packet | None:
    """Parse one frame. None for anything that is not an IP packet we can read (non-IP, short, malformed); never raises."""
    try:
        return _parse(linktype, data)
    except Exception:  # a malformed frame is data, not an error: the struct reads above are bounds-checked, this is a backstop
        return None


def _parse(linktype: int, data: bytes) -> Packet | None:
    n = len(data)
    src_mac = dst_mac = None
    vlan = _NO_VLAN
    if linktype == 1:  # Ethernet
        if n < 14:
            return None
        etype = _H.unpack_from(data, 12)[0]
        off = 14
        if etype in _VLAN_TPIDS:
            ids = []
            while etype in _VLAN_TPIDS:
                if n < off + 4:
                    return None
                tci, etype = _HH.unpack_from(data, off)
                ids.append(tci & 0x0FFF)
                off += 4
            vlan = tuple(ids)
        dst_mac = data[0:6]
        src_mac = data[6:12]
    elif linktype == 113:  # Linux cooked v1: the address is the sender's link address
        if n < 16:
            return None
        hatype, alen = _HH.unpack_from(data, 2)
        etype = _H.unpack_from(data, 14)[0]
        off = 16
        if hatype == 1 and alen == 6:
            src_mac = data[6:12]
    elif linktype == 276:  # Linux cooked v2
        if n < 20:
            return None
        etype = _H.unpack_from(data, 0)[0]
        if _H.unpack_from(data, 8)[0] == 1 and data[11] == 6:
            src_mac = data[12:18]
        off = 20
    elif linktype in (0, 108):  # BSD loopback: 4-byte address family, host order for NULL, network order for LOOP
        if n < 4:
            return None
        fam = _I.unpack_from(data, 0)[0] if linktype == 108 else _L.unpack_from(data, 0)[0]
        if linktype == 0 and fam > 0xFFFF:  # written by a big-endian host
            fam = _I.unpack_from(data, 0)[0]
        if fam == 2:
            etype = ETH_IPV4
        elif fam in (10, 24, 28, 30):  # AF_INET6 differs per OS (Linux, NetBSD/OpenBSD, FreeBSD, macOS)
            etype = ETH_IPV6
        else:
            return None
        off = 4
    elif linktype in (101, 228, 229, 12, 14):  # raw IP (12/14 are old DLT values some writers still use)
        if n < 1:
            return None
        etype = ETH_IPV4 if data[0] >> 4 == 4 else ETH_IPV6
        off = 0
    else:
        return None

    # VLAN tags inside cooked captures, then MPLS labels: both only stand between us and the IP header.
    while etype in _VLAN_TPIDS and linktype != 1:
        if n < off + 4:
            return None
        tci, etype = _HH.unpack_from(data, off)
        vlan = vlan + (tci & 0x0FFF,)
        off += 4
    if etype in _MPLS:
        while True:
            if n < off + 4:
                return None
            label = _I.unpack_from(data, off)[0]
            off += 4
            if label & 0x100:  # bottom of stack
                break
        if n <= off:
            return None
        etype = ETH_IPV4 if data[off] >> 4 == 4 else ETH_IPV6

    p = Packet()
    p.src_mac = src_mac
    p.dst_mac = dst_mac
    p.vlan = vlan
    if etype == ETH_IPV4:
        if n < off + 20:
            return None
        vihl, total, frag, _ttl, proto = _IP4.unpack_from(data, off)
        if vihl >> 4 != 4:
            return None
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or n < off + ihl:
            return None
        # total == 0 happens with segmentation offload; trailing bytes past `total` are Ethernet padding.
        if total == 0:
            total = n - off
        elif total < ihl:
            return None
        end = min(off + total, n)
        p.src = data[off + 12 : off + 16]
        p.dst = data[off + 16 : off + 20]
        p.proto = proto
        p.ip_len = total
        l4 = off + ihl
        if frag & 0x1FFF:
            p.fragment = LATER_FRAGMENT
            return p
        if frag & 0x2000:
            p.fragment = FIRST_FRAGMENT
    elif etype == ETH_IPV6:
        if n < off + 40:
            return None
        if data[off] >> 4 != 6:
            return None
        plen, proto, _hop = _IP6.unpack_from(data, off + 4)
        p.version = 6
        p.src = data[off + 8 : off + 24]
        p.dst = data[off + 24 : off + 40]
        total = plen + 40 if plen else n - off  # jumbograms (plen 0) run to the end of the frame
        p.ip_len = total
        end = min(off + total, n)
        l4 = off + 40
        while True:
            if proto in _V6_EXT:
                if end < l4 + 8:
                    return None
                nxt = data[l4]
                l4 += (data[l4 + 1] + 1) * 8
                proto = nxt
            elif proto == _V6_FRAG:
                if end < l4 + 8:
                    return None
                nxt = data[l4]
                fo = _H.unpack_from(data, l4 + 2)[0]
                l4 += 8
                proto = nxt
                if fo & 0xFFF8:
                    p.proto = proto
                    p.fragment = LATER_FRAGMENT
                    return p
                if fo & 1:
                    p.fragment = FIRST_FRAGMENT
            elif proto == _V6_AH:
                if end < l4 + 8:
                    return None
                nxt = data[l4]
                l4 += (data[l4 + 1] + 2) * 4
                proto = nxt
            else:
                break
        p.proto = proto
        if proto == _V6_NONE:
            return p
    else:
        return None

    if proto == PROTO_TCP:
        if end < l4 + 20:
            return None
        p.sport, p.dport, p.seq, p.ack, doff, p.flags = _TCP.unpack_from(data, l4)
        hl = (doff >> 4) * 4
        if hl < 20 or end < l4 + hl:
            return None
        if end > l4 + hl:
            p.payload = memoryview(data)[l4 + hl : end]
    elif proto == PROTO_UDP:
        if end < l4 + 8:
            return None
        p.sport, p.dport, ulen = _UDP.unpack_from(data, l4)
        if ulen < 8 and not (ulen == 0 and p.version == 6):  # IPv6 jumbograms carry UDP length 0
            return None
        uend = min(l4 + ulen, end) if ulen else end
        if uend > l4 + 8:
            p.payload = memoryview(data)[l4 + 8 : uend]
    elif proto == PROTO_ICMP or proto == PROTO_ICMP6:
        if end < l4 + 4:
            return None
        p.sport = data[l4]
        p.dport = data[l4 + 1]
        if end > l4 + 4:
            p.payload = memoryview(data)[l4 + 4 : end]
    elif proto == PROTO_SCTP:
        if end < l4 + 12:
            return None
        p.sport, p.dport = _HH.unpack_from(data, l4)
    return p


def parse_l2(linktype: int, data: bytes) -> tuple[int, int, bytes | None, bytes | None, tuple[int, ...]] | None:
    """(ethertype, payload offset, source MAC, destination MAC, VLAN ids) of an Ethernet or Linux cooked frame.

    For the layer-2 industrial protocols (GOOSE, PROFINET RT/DCP); called only for frames `parse`
    rejected, so IP traffic never pays for it. None for other link types, 802.3 length fields and
    short frames; never raises.
    """
    n = len(data)
    src = dst = None
    if linktype == 1:
        if n < 14:
            return None
        etype = _H.unpack_from(data, 12)[0]
        off = 14
        dst, src = data[0:6], data[6:12]
    elif linktype == 113:
        if n < 16:
            return None
        hatype, alen = _HH.unpack_from(data, 2)
        etype = _H.unpack_from(data, 14)[0]
        off = 16
        if hatype == 1 and alen == 6:
            src = data[6:12]
    elif linktype == 276:
        if n < 20:
            return None
        etype = _H.unpack_from(data, 0)[0]
        if _H.unpack_from(data, 8)[0] == 1 and data[11] == 6:
            src = data[12:18]
        off = 20
    else:
        return None
    vlan = _NO_VLAN
    while etype in _VLAN_TPIDS:
        if n < off + 4:
            return None
        tci, etype = _HH.unpack_from(data, off)
        vlan = vlan + (tci & 0x0FFF,)
        off += 4
    if etype < 0x0600:  # an 802.3 length, not an ethertype (LLC/SNAP frames)
        return None
    return etype, off, src, dst, vlan
