"""Flow table keyed by 5-tuple, Community ID v1, and the flow records (event.dataset "flow") it emits."""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Iterator

from pipeline.schema import Endpoint, Event, EventInfo, Evidence, Network, Observer, Organization, Related, ts

from .decoders.base import Conn, FlowDecoder, FrameMeta, event_id
from .packet import PROTO_ICMP, PROTO_ICMP6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, TRANSPORT_NAMES, ip_str, mac_str
from .reassembly import TcpStream

# ICMP types that have a counterpart in the other direction (Community ID spec): the pair then
# hashes like a port pair, so request and reply share one id. Other types are one-way.
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 139: 140, 140: 139, 144: 145, 145: 144}
_PORT_PROTOS = frozenset({PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_ICMP, PROTO_ICMP6})
_HH = struct.Struct("!HH")


def icmp_ports(proto: int, icmp_type: int, icmp_code: int) -> tuple[int, int, bool]:
    """(port-like source, port-like destination, one_way) for an ICMP message, per the Community ID spec."""
    pairs = _ICMP4_PAIRS if proto == PROTO_ICMP else _ICMP6_PAIRS
    peer = pairs.get(icmp_type)
    if peer is None:
        return icmp_type, icmp_code, True
    return icmp_type, peer, False


def community_id(src: bytes, dst: bytes, proto: int, sport: int = 0, dport: int = 0, seed: int = 0, *, one_way: bool = False) -> str:
    """Community ID v1 of a flow from raw addresses (4 or 16 bytes). For ICMP pass the `icmp_ports` values."""
    # Order the endpoints so both directions hash alike; one-way ICMP keeps the order it was seen in.
    if not one_way and (src > dst or (src == dst and sport > dport)):
        src, dst, sport, dport = dst, src, dport, sport
    data = struct.pack("!H", seed) + src + dst + bytes((proto, 0))
    if proto in _PORT_PROTOS:
        data += _HH.pack(sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def community_id_str(src_ip: str, dst_ip: str, proto: int, sport: int = 0, dport: int = 0, seed: int = 0) -> str:
    """Community ID v1 from textual addresses; ICMP type/code go in sport/dport."""
    fam = socket.AF_INET6 if ":" in src_ip else socket.AF_INET
    s, d = socket.inet_pton(fam, src_ip), socket.inet_pton(fam, dst_ip)
    one_way = False
    if proto in (PROTO_ICMP, PROTO_ICMP6):
        sport, dport, one_way = icmp_ports(proto, sport, dport)
    return community_id(s, d, proto, sport, dport, seed, one_way=one_way)


class Flow:
    """Counters and state of one flow, oriented from its originator."""

    __slots__ = (
        "key", "proto", "orig", "orig_port", "resp", "resp_port", "conn", "first_ts", "last_ts",
        "first_frame", "last_frame", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes",
        "decoder", "protocol", "stream", "fin", "rst", "closed_at", "ended", "dec_conn", "dec_swapped",
    )  # fmt: skip

    def __init__(self, key: tuple[bytes, bytes, int, int, int], conn: Conn, proto: int, ts: float, frame: int) -> None:
        self.key = key  # (orig addr, resp addr, proto, orig port, resp port)
        self.orig, self.resp, self.proto, self.orig_port, self.resp_port = key
        self.conn = conn
        self.first_ts = self.last_ts = ts
        self.first_frame = self.last_frame = frame
        self.orig_pkts = self.orig_bytes = self.resp_pkts = self.resp_bytes = 0
        self.decoder: FlowDecoder | None = None
        self.protocol: str | None = None  # application decoder name, kept after the decoder is disabled
        self.stream: TcpStream | None = None
        self.fin = 0  # bit 1: originator sent FIN, bit 2: responder sent FIN
        self.rst = False
        self.closed_at: float | None = None  # capture time the connection ended (FIN both ways or RST)
        self.ended = False
        # The decoder's view: client = the side not on the server port. It differs from the flow's
        # originator when the host on the server port opened the connection (seen in the wild).
        self.dec_conn = conn
        self.dec_swapped = False


def make_conn(src: bytes, dst: bytes, proto: int, sport: int, dport: int, src_mac: bytes | None, dst_mac: bytes | None, vlan: tuple[int, ...]) -> Conn:
    """The Conn for a new flow whose originator is `src`."""
    one_way = False
    csport, cdport = sport, dport
    if proto in (PROTO_ICMP, PROTO_ICMP6):
        csport, cdport, one_way = icmp_ports(proto, sport, dport)
    return Conn(
        orig_ip=ip_str(src),
        orig_port=sport,
        resp_ip=ip_str(dst),
        resp_port=dport,
        transport=TRANSPORT_NAMES.get(proto, str(proto)),
        community_id=community_id(src, dst, proto, csport, cdport, one_way=one_way),
        orig_mac=mac_str(src_mac),
        resp_mac=mac_str(dst_mac),
        vlan_id=vlan,
    )


class FlowTable:
    """5-tuple -> Flow. Each flow is entered under both directions' keys so a lookup is one dict probe."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[bytes, bytes, int, int, int], Flow] = {}
        self.count = 0  # flows created

    def get(self, key: tuple[bytes, bytes, int, int, int]) -> Flow | None:
        return self._by_key.get(key)

    def add(self, flow: Flow) -> None:
        o, r, p, op, rp = flow.key
        self._by_key[flow.key] = flow
        self._by_key[(r, o, p, rp, op)] = flow
        self.count += 1

    def remove(self, flow: Flow) -> None:
        o, r, p, op, rp = flow.key
        for k in (flow.key, (r, o, p, rp, op)):
            if self._by_key.get(k) is flow:
                del self._by_key[k]

    def __iter__(self) -> Iterator[Flow]:
        """Each live flow once, oldest first."""
        for k, f in self._by_key.items():
            if k is f.key:
                yield f

    def __len__(self) -> int:
        return len(self._by_key) // 2


def flow_event(
    flow: Flow,
    *,
    file_sha256: str | None,
    file: str | None,
    observer_id: str | None,
    organization_id: str | None,
    missed_bytes: int = 0,
) -> Event:
    """The flow record: one per flow, emitted when it ends (FIN/RST, idle timeout, end of capture)."""
    c = flow.conn
    meta = FrameMeta(frame=flow.first_frame, time=ts(flow.first_ts), conn=c, file_sha256=file_sha256, file=file, observer_id=observer_id)
    has_ports = flow.proto in (PROTO_TCP, PROTO_UDP, PROTO_SCTP)
    labels = {"missed_bytes": str(missed_bytes)} if missed_bytes else None
    return Event(
        timestamp=meta.time,
        event=EventInfo(
            kind="event",
            dataset="flow",
            action="flow",
            id=event_id(meta, 0, kind="flow"),
            start=meta.time,
            end=ts(flow.last_ts),
            duration=int(round((flow.last_ts - flow.first_ts) * 1e9)),
        ),
        source=Endpoint(ip=c.orig_ip, port=c.orig_port if has_ports else None, mac=c.orig_mac, bytes=flow.orig_bytes, packets=flow.orig_pkts),
        destination=Endpoint(ip=c.resp_ip, port=c.resp_port if has_ports else None, mac=c.resp_mac, bytes=flow.resp_bytes, packets=flow.resp_pkts),
        network=Network(
            transport=c.transport,
            protocol=flow.protocol,
            type="ipv6" if len(flow.orig) == 16 else "ipv4",
            community_id=c.community_id,
            vlan_id=list(c.vlan_id) or None,
            bytes=flow.orig_bytes + flow.resp_bytes,
            packets=flow.orig_pkts + flow.resp_pkts,
        ),
        observer=Observer(id=observer_id) if observer_id else None,
        organization=Organization(id=organization_id) if organization_id else None,
        evidence=Evidence(
            file_sha256=file_sha256,
            file=file,
            frame=flow.first_frame,
            frames=[flow.first_frame, flow.last_frame],
            sensor=observer_id if file_sha256 is None else None,
        ),
        related=Related(ip=sorted({c.orig_ip, c.resp_ip})),
        labels=labels,
    )
