"""Live capture: scapy's sniffer feeds raw frames from an interface into the same Sensor as files."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from scapy.config import conf
from scapy.error import Scapy_Exception
from scapy.sendrecv import AsyncSniffer

from pipeline.schema import Event

from .decoders.base import DecoderSpec
from .engine import DecodeReport, Sensor
from .exceptions import CaptureInterfaceError

log = logging.getLogger(__name__)

_POLL = 0.1  # seconds between checks of stop_event while no packet arrives


_SNAPLEN = 262144  # > loopback's 64 KiB MTU plus link header: a frame is never cut by the read
_ARPHRD_LOOPBACK = 772
# Linux ARPHRD_* of the capture socket -> pcap linktype of the frames it delivers.
_ARPHRD_LINKTYPE = {1: 1, _ARPHRD_LOOPBACK: 1, 65534: 101, 776: 101, 778: 101}


def linktype_of(pkt: Any) -> int:
    """The pcap linktype of a packet scapy dissected, from its link-layer class (Ethernet when unknown)."""
    lt = conf.l2types.layer2num.get(type(pkt))
    return 1 if lt is None else int(lt)


def _quiet_guess(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Unable to guess type")


def _raw_listen_socket(linktypes: dict[str, int]) -> type:
    """A Linux packet socket that hands frames over undissected, dropping loopback's outgoing copies.

    scapy would dissect every frame into layers we never read, and on `lo` it sees each packet
    twice (outgoing and incoming); libpcap drops the outgoing copy there, and so do we.
    """
    from scapy.arch.linux import L2ListenSocket, get_last_packet_timestamp

    class RawListenSocket(L2ListenSocket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # scapy warns it cannot guess `lo`'s link type (ARPHRD_LOOPBACK); we set it ourselves below.
            scapy_log = logging.getLogger("scapy.runtime")
            scapy_log.addFilter(_quiet_guess)
            try:
                super().__init__(*args, **kwargs)
            finally:
                scapy_log.removeFilter(_quiet_guess)
            hatype = self.ins.getsockname()[3]
            self.linktype = _ARPHRD_LINKTYPE.get(hatype, 1)
            self.loopback = hatype == _ARPHRD_LOOPBACK
            self.LL = conf.raw_layer
            linktypes[str(self.iface)] = self.linktype  # frames name their interface, not their socket

        def recv_raw(self, x: int = _SNAPLEN) -> tuple[Any, bytes | None, float | None]:
            pkt, sa_ll, stamp = self._recv_raw(self.ins, _SNAPLEN)
            if self.loopback and sa_ll[2] == socket.PACKET_OUTGOING:
                return None, None, None
            if stamp is None:
                stamp = get_last_packet_timestamp(self.ins)
            return self.LL, pkt, stamp

    return RawListenSocket


def sniff_events(
    iface: str | None,
    bpf: str | None,
    on_events: Callable[[list[Event]], None],
    stop_event: threading.Event | None = None,
    count: int | None = None,
    timeout: float | None = None,
    *,
    sensor: Sensor | None = None,
    organization_id: str | None = None,
    observer_id: str | None = None,
    registry: Mapping[str, DecoderSpec] | None = None,
    on_started: Callable[[], None] | None = None,
) -> DecodeReport:
    """Sniff `iface` (BPF `bpf`) until `stop_event` is set, `count` packets, or `timeout` seconds; blocks.

    Each batch of events a packet completes goes to `on_events` (called from the sniffer thread);
    at the end the flow records of still-open flows follow. `on_started` is called once the capture
    socket is open, so a caller can start traffic without losing the first packets. Frame numbers
    are the sensor's packet counter and evidence names the sensor (no capture file).
    """
    if sensor is None:
        sensor = Sensor(organization_id, observer_id or f"live:{iface or 'default'}", registry)
    report = sensor.report
    process = sensor.process
    failures: list[BaseException] = []
    stopped = stop_event or threading.Event()

    linktypes: dict[str, int] = {}
    raw_socket = _raw_listen_socket(linktypes) if sys.platform.startswith("linux") else None

    def on_packet(pkt: Any) -> None:
        if stopped.is_set():
            return
        try:
            lt = linktypes.get(str(pkt.sniffed_on)) if raw_socket is not None else None
            linktype = lt if lt is not None else linktype_of(pkt)
            events = process(report.packets + 1, float(pkt.time), linktype, bytes(pkt))
            if events:
                on_events(events)
        except BaseException as e:  # scapy would swallow it and close the socket: keep it for the caller instead
            failures.append(e)
            stopped.set()

    sniffer = AsyncSniffer(
        iface=iface,
        filter=bpf,
        prn=on_packet,
        store=False,
        count=count or 0,
        stop_filter=lambda _p: stopped.is_set(),
        started_callback=on_started,
        quiet=True,
        **({"L2socket": raw_socket} if raw_socket is not None else {}),
    )
    sniffer.start()
    thread = sniffer.thread
    assert thread is not None
    deadline = None if timeout is None else time.monotonic() + timeout  # AsyncSniffer refuses `timeout`: we keep time
    try:
        while thread.is_alive():
            if stopped.wait(_POLL) or (deadline is not None and time.monotonic() >= deadline):
                stopped.set()
                try:
                    if sniffer.running:
                        sniffer.stop(join=False)
                except Scapy_Exception:
                    pass  # finished on its own between the check and the stop
                break
        thread.join()
    finally:
        if thread.is_alive():
            thread.join(1.0)
    if sniffer.exception is not None:
        raise CaptureInterfaceError(
            f"cannot sniff interface {iface or '(default)'} with filter {bpf!r}: {sniffer.exception}. "
            "Check the interface name (`ip link`), the BPF syntax (`tcpdump -d FILTER`) and that this user may capture (root or CAP_NET_RAW)"
        ) from sniffer.exception
    final = sensor.finish()
    if final:
        on_events(final)
    if failures:
        raise failures[0]
    return report
