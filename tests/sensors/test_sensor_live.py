"""Live capture on loopback: a real pymodbus server and client, sniffed through sensors.live into the Sensor."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any

import pytest

from pipeline.schema import Event
from sensors.exceptions import CaptureInterfaceError
from sensors.live import sniff_events

pytestmark = pytest.mark.netns


def _modbus_registry(port: int) -> dict[str, Any]:
    """The real Modbus decoder, registered on the test server's port instead of 502."""
    try:
        from sensors.decoders.modbus import SPEC
    except ImportError:  # pragma: no cover - the decoder ships with the sensor; this guards partial checkouts
        pytest.skip("sensors.decoders.modbus not importable")
    return {SPEC.name: dataclasses.replace(SPEC, default_ports=(port,))}


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (raw sockets)")
def test_live_modbus_on_loopback(modbus_server: int) -> None:
    from pymodbus.client import ModbusTcpClient

    port = modbus_server
    registry = _modbus_registry(port)
    events: list[Event] = []
    lock = threading.Lock()
    started = threading.Event()
    stop = threading.Event()
    result: dict[str, Any] = {}

    def on_events(batch: list[Event]) -> None:
        with lock:
            events.extend(batch)

    def sniff() -> None:
        try:
            result["report"] = sniff_events(
                "lo", f"tcp port {port}", on_events, stop_event=stop, timeout=60,
                observer_id="sensor-lo", organization_id="org", registry=registry, on_started=started.set,
            )  # fmt: skip
        except BaseException as e:  # surfaced in the test thread below
            result["error"] = e

    sniffer = threading.Thread(target=sniff, name="sniffer", daemon=True)
    sniffer.start()
    assert started.wait(10), "sniffer did not start"
    time.sleep(0.2)  # the socket is open at started; give the BPF attach a moment on slow machines

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
    assert client.connect()
    try:
        assert not client.read_holding_registers(0, count=5, device_id=1).isError()
        assert not client.write_register(3, 1234, device_id=1).isError()
        assert not client.read_coils(0, count=8, device_id=1).isError()
        assert not client.write_coil(2, True, device_id=1).isError()
    finally:
        client.close()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if sum(1 for e in events if e.event.dataset == "modbus") >= 8:
                break
        time.sleep(0.05)
    time.sleep(0.3)  # let the FIN exchange arrive
    stop.set()
    sniffer.join(15)
    assert not sniffer.is_alive()
    if "error" in result:
        raise result["error"]

    modbus = [e for e in events if e.event.dataset == "modbus"]
    fcs = [(e.modbus.function_code, e.modbus.message_type) for e in modbus if e.modbus is not None]
    assert fcs == [(3, "request"), (3, "response"), (6, "request"), (6, "response"), (1, "request"), (1, "response"), (5, "request"), (5, "response")]
    req = modbus[0]
    assert (req.destination.ip, req.destination.port, req.source.ip) == ("127.0.0.1", port, "127.0.0.1")
    assert req.evidence.sensor == "sensor-lo" and req.evidence.file_sha256 is None and req.evidence.frame >= 4
    assert req.network.community_id and req.network.community_id.startswith("1:")
    assert {e.event.action for e in modbus} >= {"read", "write"}
    flows = [e for e in events if e.event.dataset == "flow"]
    assert len(flows) == 1 and flows[0].network.protocol == "modbus" and flows[0].destination.port == port
    assert flows[0].network.community_id == req.network.community_id
    report = result["report"]
    assert report.packets >= 14 and report.decoder_errors == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (raw sockets)")
def test_unknown_interface_raises_interface_error() -> None:
    with pytest.raises(CaptureInterfaceError, match="no-such-if0"):
        sniff_events("no-such-if0", None, lambda evs: None, timeout=2, registry={})
