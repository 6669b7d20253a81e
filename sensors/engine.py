"""The sensor core: frames -> parsed packets -> flows -> TCP reassembly -> protocol decoders -> events."""

from __future__ import annotations


import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from pipeline.schema import Anomaly, Event
from pipeline.schema import ts as to_datetime

from .decoders.base import DecoderSpec, Direction, FrameMeta, event_id, make_event
from .decoders.ether import TRANSPORT as ETHERNET, EtherFrame
from .flows import Flow, FlowTable, flow_event, icmp_ports, make_conn
from .packet import (
    ACK, FIN, LATER_FRAGMENT, NOT_FRAGMENT, PROTO_ICMP, PROTO_ICMP6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, RST, SYN, mac_str, parse,
    parse_l2,
)  # fmt: skip
from .pcapfile import CaptureReader, ProgressHook
from .reassembly import MAX_PENDING_BYTES, Chunk, TcpStream

log = logging.getLogger(__name__)

_TO_SERVER = Direction.TO_SERVER
_TO_CLIENT = Direction.TO_CLIENT
_TRANSPORTS = {"tcp": PROTO_TCP, "udp": PROTO_UDP}
# ICMP replies: when one is the first packet seen, its receiver asked the question and is the originator.
_ICMP_REPLIES = frozenset({(PROTO_ICMP, t) for t in (0, 14, 16, 18)} | {(PROTO_ICMP6, t) for t in (129, 134, 136, 140, 145)})


@dataclass
class DecodeReport:
    """What a run saw and did; callers print `summary()` or serialize `to_dict()`."""

    file: str | None = None
    sha256: str | None = None
    format: str | None = None
    packets: int = 0
    bytes: int = 0
    non_ip: int = 0  # frames that are not IP (ARP, LLDP, GOOSE, ...) or too malformed to parse
    fragments: int = 0  # non-first IP fragments (counted, not reassembled)
    flows: int = 0
    tcp_gaps: int = 0
    missed_bytes: int = 0
    decoder_errors: int = 0
    events: Counter[str] = field(default_factory=Counter)  # by event.dataset
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    elapsed: float = 0.0  # wall-clock seconds

    def summary(self) -> str:
        rate = f", {self.packets / self.elapsed:,.0f} pkt/s" if self.elapsed > 0 else ""
        lines = [
            f"{self.file or 'live'}: {self.packets:,} packets, {self.bytes:,} bytes, {self.flows:,} flows in {self.elapsed:.2f}s{rate}",
            "events: " + (", ".join(f"{k}={v:,}" for k, v in sorted(self.events.items())) or "none"),
        ]
        extra = [f"{n}={v:,}" for n, v in (("non_ip", self.non_ip), ("fragments", self.fragments), ("tcp_gaps", self.tcp_gaps),
                                            ("missed_bytes", self.missed_bytes), ("decoder_errors", self.decoder_errors)) if v]
        if extra:
            lines.append("notes: " + ", ".join(extra))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["events"] = dict(self.events)
        return d


class Sensor:
    """Turns frames into events. Not thread-safe: one Sensor per capture or interface."""

    def __init__(
        self,
        organization_id: str | None = None,
        observer_id: str | None = None,
        registry: Mapping[str, DecoderSpec] | None = None,
        *,
        file_sha256: str | None = None,
        file: str | None = None,
        tcp_timeout: float = 300.0,
        udp_timeout: float = 60.0,
        other_timeout: float = 60.0,
        close_delay: float = 5.0,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        report: DecodeReport | None = None,
        remap: Mapping[str, str] | None = None,
    ) -> None:
        """`remap`: IPv4 /16 prefixes moved to others in every parsed packet, e.g. {"10.10": "10.11"} (a capture
        replayed as if taken on another subnet; the capture's bytes, payloads included, are not changed)."""
        if registry is None:
            from .decoders import REGISTRY  # lazily: decoders are optional for flow-only use and tests

            registry = REGISTRY
        self.organization_id = organization_id
        self.observer_id = observer_id
        self.file_sha256 = file_sha256
        self.file = file
        self.report = report if report is not None else DecodeReport(file=file, sha256=file_sha256)
        self._servers: dict[tuple[int, int], DecoderSpec] = {}
        self._ethertypes: dict[int, DecoderSpec] = {}  # layer-2 decoders (GOOSE, PROFINET) by ethertype
        self._l2: dict[str, Any] = {}  # their one instance per protocol, created at the first frame
        # UDP decoders that recognise their datagrams by content, for flows on no registered port
        # (DCE/RPC answers and callbacks come from ephemeral ports): asked once per new UDP flow.
        self._udp_probes = tuple(s for s in registry.values() if s.transport == "udp" and s.probe is not None)
        for spec in registry.values():
            if spec.transport == ETHERNET:
                for etype in spec.default_ports:
                    self._ethertypes.setdefault(etype, spec)
            proto = _TRANSPORTS.get(spec.transport)
            if proto is not None:
                for port in spec.default_ports:
                    self._servers.setdefault((proto, port), spec)
        self._timeouts = {PROTO_TCP: tcp_timeout, PROTO_UDP: udp_timeout}
        self._other_timeout = other_timeout
        self._close_delay = close_delay
        self._max_pending = max_pending_bytes
        self.flows = FlowTable()
        self._closing: list[Flow] = []
        self._clock = 0.0  # latest capture time seen; capture time, not wall time, drives timeouts (replay == live)
        self._next_close_check = 0.0
        self._next_idle_sweep = 0.0
        self._remap = _prefixes(remap) if remap else None

    # ------------------------------------------------------------ per packet

    def process(self, frame_no: int, ts: float, linktype: int, data: bytes) -> list[Event]:
        """Every event this frame completes (decoded messages, anomalies, flow records of flows it ended)."""
        rep = self.report
        rep.packets += 1
        rep.bytes += len(data)
        out: list[Event] = []
        if ts > self._clock:
            self._clock = ts
            if ts >= self._next_close_check:
                self._expire(out)
        p = parse(linktype, data)
        if p is not None and self._remap is not None:
            _remap(p, self._remap)
        if p is None:
            rep.non_ip += 1
            if self._ethertypes:
                self._layer2(frame_no, ts, linktype, data, out)
            return self._count(out)
        if p.fragment == LATER_FRAGMENT:
            rep.fragments += 1
            return self._count(out)
        proto = p.proto
        if proto == PROTO_TCP or proto == PROTO_UDP or proto == PROTO_SCTP:
            key = (p.src, p.dst, proto, p.sport, p.dport)
        elif proto == PROTO_ICMP or proto == PROTO_ICMP6:
            s, d, _ = icmp_ports(proto, p.sport, p.dport)
            key = (p.src, p.dst, proto, s, d)
        else:
            key = (p.src, p.dst, proto, 0, 0)
        flow = self.flows.get(key)
        if flow is not None:
            if ts - flow.last_ts > self._timeouts.get(proto, self._other_timeout):
                self._end(flow, out)  # idle too long: this packet starts a new flow
                flow = None
            elif flow.closed_at is not None and proto == PROTO_TCP and p.flags & (SYN | ACK) == SYN:
                self._end(flow, out)  # port reused for a new connection
                flow = None
        if flow is None:
            flow = self._new_flow(p, key, proto, ts, frame_no)
        is_orig = key == flow.key
        if ts > flow.last_ts:
            flow.last_ts = ts
        flow.last_frame = frame_no
        if is_orig:
            flow.orig_pkts += 1
            flow.orig_bytes += p.ip_len
        else:
            flow.resp_pkts += 1
            flow.resp_bytes += p.ip_len
        if proto == PROTO_TCP:
            flags = p.flags
            if flags & (FIN | RST) and flow.closed_at is None:
                if flags & RST:
                    flow.rst = True
                else:
                    flow.fin |= 1 if is_orig else 2
                if flow.rst or flow.fin == 3:
                    flow.closed_at = ts
                    self._closing.append(flow)
            if flow.stream is not None and flow.decoder is not None:
                self._tcp(flow, p.seq, p.ack, flags, p.payload, is_orig, frame_no, ts, out)
        elif flow.decoder is not None and p.payload and p.fragment == NOT_FRAGMENT:
            self._feed(flow, p.payload, is_orig, frame_no, ts, out)
        return self._count(out) if out else out

    def finish(self) -> list[Event]:
        """End of input: close every decoder and emit every remaining flow record, oldest flow first."""
        out: list[Event] = []
        for flow in list(self.flows):
            self._end(flow, out)
        self._closing.clear()
        for name, dec in self._l2.items():
            try:
                out.extend(dec.close())
            except Exception:
                self.report.decoder_errors += 1
                log.exception("layer-2 decoder %s raised at the end of %s", name, self.file or "live")
        return self._count(out)

    # ------------------------------------------------------------ flows

    def _new_flow(self, p: Any, key: tuple[bytes, bytes, int, int, int], proto: int, ts: float, frame: int) -> Flow:
        swap = False
        if proto == PROTO_TCP:
            flags = p.flags
            if flags & SYN:
                swap = bool(flags & ACK)  # SYN from the originator; SYN-ACK from the responder
            else:  # seen mid-stream: the known server port, else the lower port, is the responder
                s_known = (PROTO_TCP, p.sport) in self._servers
                d_known = (PROTO_TCP, p.dport) in self._servers
                swap = s_known and not d_known if s_known != d_known else p.sport < p.dport
        elif proto == PROTO_UDP:
            swap = (PROTO_UDP, p.sport) in self._servers and (PROTO_UDP, p.dport) not in self._servers
        elif (proto, p.sport) in _ICMP_REPLIES:
            swap = True
        src, dst, _, sport, dport = key
        if swap:
            key = (dst, src, proto, dport, sport)
            conn = make_conn(dst, src, proto, dport, sport, p.dst_mac, p.src_mac, p.vlan)
        else:
            conn = make_conn(src, dst, proto, sport, dport, p.src_mac, p.dst_mac, p.vlan)
        flow = Flow(key, conn, proto, ts, frame)
        spec = self._servers.get((proto, key[4]))
        if spec is None and (spec := self._servers.get((proto, key[3]))) is not None:
            # The host on the server port opened the connection: it still speaks as the server
            # (as tshark and Zeek decode it), so the decoder sees the roles by port.
            flow.dec_swapped = True
            flow.dec_conn = replace(
                conn, orig_ip=conn.resp_ip, orig_port=conn.resp_port, resp_ip=conn.orig_ip, resp_port=conn.orig_port,
                orig_mac=conn.resp_mac, resp_mac=conn.orig_mac,
            )
        if spec is None and proto == PROTO_UDP and self._udp_probes and p.payload:
            spec = next((s for s in self._udp_probes if s.probe(p.payload)), None)  # type: ignore[misc]
        if spec is not None:
            try:
                flow.decoder = spec.flow()
            except Exception:
                log.exception("decoder %s could not be created; flow %s decoded as flow only", spec.name, conn.community_id)
            else:
                flow.protocol = spec.name
                if proto == PROTO_TCP:
                    flow.stream = TcpStream(self._max_pending)
        self.flows.add(flow)
        return flow

    def _expire(self, out: list[Event]) -> None:
        now = self._clock
        if self._closing:
            keep = []
            for f in self._closing:
                if f.ended:
                    continue
                if now - (f.closed_at or now) >= self._close_delay:
                    self._end(f, out)
                else:
                    keep.append(f)
            self._closing = keep
        if now >= self._next_idle_sweep:
            for f in list(self.flows):
                if now - f.last_ts > self._timeouts.get(f.proto, self._other_timeout):
                    self._end(f, out)
            self._next_idle_sweep = now + 10.0
        self._next_close_check = now + 1.0

    def _end(self, flow: Flow, out: list[Event]) -> None:
        if flow.ended:
            return
        flow.ended = True
        self.flows.remove(flow)
        stream = flow.stream  # kept: a failing decoder drops flow.stream, but its gap counts still belong in the record
        if flow.decoder is not None:
            meta = self._meta(flow.last_frame, flow.last_ts, flow)
            if stream is not None:
                for is_orig in (True, False):
                    half = stream.halves[is_orig]
                    chunk = half.flush()
                    if half.skipped:
                        self._gap(flow, is_orig, half.skipped, meta, out)
                        half.skipped = 0
                    if chunk:
                        self._feed_meta(flow, chunk, is_orig, meta, out)
            dec = flow.decoder
            if dec is not None:
                try:
                    out.extend(dec.close(meta))
                except Exception as e:
                    self._failed(flow, e, meta, _TO_SERVER, out)
                # A decoder of several protocols sharing a port (ISO transport on 102: S7comm or MMS)
                # names the one this connection turned out to carry, as Zeek's conn.log service does.
                flow.protocol = getattr(dec, "application_protocol", None) or flow.protocol
        missed = stream.missed_bytes if stream is not None else 0
        self.report.missed_bytes += missed
        self.report.flows += 1
        out.append(
            flow_event(
                flow,
                file_sha256=self.file_sha256,
                file=self.file,
                observer_id=self.observer_id,
                organization_id=self.organization_id,
                missed_bytes=missed,
            )
        )

    # ------------------------------------------------------------ decoders

    def _layer2(self, frame_no: int, ts: float, linktype: int, data: bytes, out: list[Event]) -> None:
        """A non-IP frame of a registered ethertype goes to its protocol's one decoder."""
        l2 = parse_l2(linktype, data)
        if l2 is None:
            return
        etype, off, src, dst, vlan = l2
        spec = self._ethertypes.get(etype)
        if spec is None:
            return
        dec = self._l2.get(spec.name)
        if dec is None:
            dec = self._l2[spec.name] = spec.flow()
        frame = EtherFrame(
            frame=frame_no, time=to_datetime(ts), src_mac=mac_str(src), dst_mac=mac_str(dst), vlan=vlan, ethertype=etype,
            file_sha256=self.file_sha256, file=self.file, observer_id=self.observer_id, organization_id=self.organization_id,
        )
        payload = memoryview(data)[off:]
        if etype == _ETHERTYPE_ARP and self._remap is not None:
            payload = memoryview(_remap_arp(bytes(payload), self._remap))
        try:
            events = dec.feed(payload, frame)
        except Exception:  # a decoder bug costs its state (a fresh instance takes over), never the capture
            self.report.decoder_errors += 1
            log.exception("layer-2 decoder %s raised on %s frame %s; its state was reset", spec.name, self.file or "live", frame_no)
            self._l2[spec.name] = spec.flow()
            return
        if events:
            out.extend(events)

    def _meta(self, frame: int, epoch: float, flow: Flow) -> FrameMeta:
        return FrameMeta(
            frame=frame,
            time=to_datetime(epoch),
            conn=flow.dec_conn,
            file_sha256=self.file_sha256,
            file=self.file,
            observer_id=self.observer_id,
            organization_id=self.organization_id,
        )

    def _tcp(self, flow: Flow, seq: int, ack: int, flags: int, payload: memoryview, is_orig: bool, frame: int, epoch: float, out: list[Event]) -> None:
        stream = flow.stream
        assert stream is not None
        mine, theirs = stream.segment(is_orig, seq, ack, flags, payload)
        me = stream.halves[is_orig]
        other = stream.halves[not is_orig]
        if not (mine or theirs or me.skipped or other.skipped):
            return
        meta = self._meta(frame, epoch, flow)
        # The other direction first: an ack only releases bytes that were sent before this segment.
        if other.skipped:
            self._gap(flow, not is_orig, other.skipped, meta, out)
            other.skipped = 0
        if theirs:
            self._feed_meta(flow, theirs, not is_orig, meta, out)
        if me.skipped:
            self._gap(flow, is_orig, me.skipped, meta, out)
            me.skipped = 0
        if mine:
            self._feed_meta(flow, mine, is_orig, meta, out)

    def _feed(self, flow: Flow, data: memoryview, is_orig: bool, frame: int, epoch: float, out: list[Event]) -> None:
        self._feed_meta(flow, data, is_orig, self._meta(frame, epoch, flow), out)

    def _feed_meta(self, flow: Flow, data: Chunk, is_orig: bool, meta: FrameMeta, out: list[Event]) -> None:
        dec = flow.decoder
        if dec is None:
            return
        direction = _TO_SERVER if is_orig != flow.dec_swapped else _TO_CLIENT
        try:
            events = dec.feed(data if isinstance(data, memoryview) else memoryview(data), direction, meta)
        except Exception as e:  # a decoder bug must cost one flow's decoding, never the capture
            self._failed(flow, e, meta, direction, out)
            return
        if events:
            out.extend(events)

    def _gap(self, flow: Flow, is_orig: bool, nbytes: int, meta: FrameMeta, out: list[Event]) -> None:
        """Tell the decoder bytes were lost: its optional `gap(direction, nbytes, meta)`, else close it and start afresh."""
        self.report.tcp_gaps += 1
        dec = flow.decoder
        if dec is None:
            return
        direction = _TO_SERVER if is_orig != flow.dec_swapped else _TO_CLIENT
        hook = getattr(dec, "gap", None)
        try:
            if hook is not None:
                out.extend(hook(direction, nbytes, meta))
            else:
                # Without a gap hook the decoder would splice bytes from both sides of the hole into
                # one PDU; a fresh instance resynchronises at the next segment boundary instead.
                out.extend(dec.close(meta))
                flow.decoder = type(dec)()
        except Exception as e:
            self._failed(flow, e, meta, direction, out)

    def _failed(self, flow: Flow, exc: Exception, meta: FrameMeta, direction: Direction, out: list[Event]) -> None:
        self.report.decoder_errors += 1
        log.warning(
            "decoder %s raised on %s frame %s (%s); decoding of this flow disabled",
            flow.protocol, self.file or "live", meta.frame, flow.conn.community_id, exc_info=exc,
        )
        flow.decoder = None
        flow.stream = None
        ev = make_event(
            meta,
            direction,
            dataset=flow.protocol or "flow",
            action="anomaly",
            message=f"{flow.protocol} decoder failed; the rest of this flow is not decoded",
            anomaly=Anomaly(code="decoder_error", message=f"{type(exc).__name__}: {exc}"[:500]),
        )
        info = msgspec.structs.replace(ev.event, id=event_id(meta, 0, kind="decoder_error"))
        out.append(msgspec.structs.replace(ev, event=info))

    def _count(self, out: list[Event]) -> list[Event]:
        if out:
            c = self.report.events
            for e in out:
                c[e.event.dataset] += 1
        return out


def _prefixes(remap: Mapping[str, str]) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for old, new in remap.items():
        a, b = (bytes(int(x) for x in v.split(".")) for v in (old, new))
        if len(a) != 2 or len(b) != 2:
            raise ValueError(f"remap {old!r} -> {new!r}: give IPv4 /16 prefixes such as 10.10")
        out[a] = b
    return out


_ETHERTYPE_ARP = 0x0806


def _remap_arp(arp: bytes, m: dict[bytes, bytes]) -> bytes:
    """An IPv4-over-Ethernet ARP packet with its sender and target addresses moved like an IP header's."""
    if len(arp) < 28 or arp[2:4] != b"\x08\x00" or arp[4] != 6 or arp[5] != 4:
        return arp
    out = bytearray(arp)
    for at in (14, 24):  # sender protocol address, target protocol address
        new = m.get(bytes(out[at : at + 2]))
        if new is not None:
            out[at : at + 2] = new
    return bytes(out)


def _remap(p: Any, m: dict[bytes, bytes]) -> None:
    if p.version == 4:
        new = m.get(p.src[:2])
        if new is not None:
            p.src = new + p.src[2:]
        new = m.get(p.dst[:2])
        if new is not None:
            p.dst = new + p.dst[2:]


def decode_file(
    path: str | os.PathLike[str],
    *,
    organization_id: str | None = None,
    observer_id: str | None = None,
    registry: Mapping[str, DecoderSpec] | None = None,
    report: DecodeReport | MutableMapping[str, Any] | None = None,
    on_progress: ProgressHook | None = None,
    **sensor_options: Any,
) -> Iterator[Event]:
    """Every event of a capture file, in frame order, flow records as flows end.

    Opens the file immediately, so a missing or non-capture file raises CaptureFileError here,
    not at the first `next()`. Pass a DecodeReport to read counts and warnings afterwards (a
    dict is also accepted and receives `DecodeReport.to_dict()` when the run ends).
    `on_progress(bytes_read, file_size)` drives a progress bar.
    """
    reader = CaptureReader(path, on_progress=on_progress)
    rep = report if isinstance(report, DecodeReport) else DecodeReport()
    rep.file, rep.sha256, rep.format = reader.name, reader.sha256, reader.format
    sensor = Sensor(organization_id, observer_id, registry, file_sha256=reader.sha256, file=reader.name, report=rep, **sensor_options)
    return _run(reader, sensor, rep, report if isinstance(report, MutableMapping) else None)


def _run(reader: CaptureReader, sensor: Sensor, rep: DecodeReport, out: MutableMapping[str, Any] | None) -> Iterator[Event]:
    started = time.perf_counter()
    process = sensor.process
    try:
        with reader:
            for frame, stamp, linktype, data in reader:
                events = process(frame, stamp, linktype, data)
                if events:
                    yield from events
            yield from sensor.finish()
    finally:
        rep.warnings.extend(w for w in reader.warnings if w not in rep.warnings)
        rep.truncated = reader.truncated
        rep.elapsed = time.perf_counter() - started
        if out is not None:
            out.update(rep.to_dict())
