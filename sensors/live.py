"""Live capture: scapy's sniffer feeds raw frames from an interface into the same Sensor as files."""

from __future__ import annotations

import logging
import threading
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


def linktype_of(pkt: Any) -> int:
    """The pcap linktype of a sniffed packet, from the link-layer class the socket dissected it as."""
    lt = conf.l2types.layer2num.get(type(pkt))
    return 1 if lt is None else int(lt)  # Linux packet sockets deliver Ethernet framing on most interfaces, `lo` included


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

    def on_packet(pkt: Any) -> None:
        if stopped.is_set():
            return
        try:
            events = process(report.packets + 1, float(pkt.time), linktype_of(pkt), bytes(pkt))
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
        timeout=timeout,
        stop_filter=lambda _p: stopped.is_set(),
        started_callback=on_started,
        quiet=True,
    )
    sniffer.start()
    thread = sniffer.thread
    assert thread is not None
    try:
        while thread.is_alive():
            if stopped.wait(_POLL):
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
