"""The registry: one protocol may be registered on several transports under one name."""

from __future__ import annotations

from pathlib import Path

from sensors.decoders import REGISTRY
from sensors.engine import decode_file


def test_keys_are_unique_and_names_are_protocols() -> None:
    names = {spec.name for spec in REGISTRY.values()}
    assert {"modbus", "dnp3", "s7comm", "iec104", "enip", "cip_io", "opcua", "bacnet", "mqtt"} <= names
    assert {(spec.name, spec.transport) for spec in REGISTRY.values() if spec.name == "dnp3"} == {("dnp3", "tcp"), ("dnp3", "udp")}


def test_dnp3_over_udp_flows_and_events_say_dnp3(shared_dir: Path) -> None:
    events = list(decode_file(shared_dir / "corpus/zeek/traces/dnp3/dnp3_udp_read.pcap"))
    flows = [e for e in events if e.event.dataset == "flow"]
    assert flows and all(f.network.protocol == "dnp3" and f.network.transport == "udp" for f in flows)  # type: ignore[union-attr]
    assert any(e.event.dataset == "dnp3" and e.dnp3 is not None for e in events)
