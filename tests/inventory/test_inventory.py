"""Inventory from traffic: identity with evidence, roles, exposures, on the testbed and corpus captures.

Expected identity values are what the traffic announces; tshark (and ICSNPP's s7comm_known_devices
log for s7ident.pcap) read the same frames.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from detection.assets import AssetTracker
from pipeline import schema

from .conftest import ATK, ATTACK, CORPUS, ENG, HMI, NORMAL, PLC1, PLC2, events, inventory, need


def _ev(a: schema.Asset, field: str) -> list[tuple[str, str, int | None]]:
    return [(e.value, e.source, e.frame) for e in a.evidence if e.field == field]


def test_testbed_plc_identity_with_evidence() -> None:
    inv = inventory(ATTACK)
    plc = inv[PLC1]
    assert (plc.vendor, plc.vendor_key, plc.vendor_zh) == ("Qinling Testbed", "qinling-testbed", "秦岭测试床")
    assert (plc.model, plc.firmware, plc.revision) == ("QN-PLC", "1.0", "1.0")
    assert plc.product == "Qinling simulated PLC" and plc.name == "plant-seed-101"
    # read code 1 answer in frame 291, read code 2 in frame 294 (labels: recon_device_id, frames 286-298)
    assert _ev(plc, "vendor") == [("Qinling Testbed", "modbus.device_id.vendor_name", 291),
                                  ("Qinling Testbed", "modbus.device_id.vendor_name", 294)]
    assert ("QN-PLC", "modbus.device_id.product_code", 291) in _ev(plc, "model")
    assert ("1.0", "modbus.device_id.revision", 291) in _ev(plc, "firmware")
    ev = next(e for e in plc.evidence if e.field == "vendor")
    assert ev.file == "modbus_plant_attack.pcap" and ev.event_id and ev.strength == 3
    by_id = {e.event.id: e for e in events(str(ATTACK))}
    assert by_id[ev.event_id].evidence.frame == 291  # type: ignore[union-attr]
    assert schema.decode_asset(schema.encode(plc)) == plc


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_testbed_identity_agrees_with_tshark() -> None:
    out = subprocess.run(["tshark", "-r", str(ATTACK), "-Y", "frame.number==291", "-T", "fields", "-e", "ip.src",
                          "-e", "modbus.object_str_value"], capture_output=True, text=True, check=True).stdout.strip().split("\t")
    plc = inventory(ATTACK)[PLC1]
    assert out == [PLC1, f"{plc.vendor},{plc.model},{plc.firmware}"]


def test_testbed_roles_and_exposures() -> None:
    for capture in (NORMAL, ATTACK):
        inv = inventory(capture)
        assert inv[HMI].role == "hmi", capture
        assert inv[ENG].role == "engineering_station", capture
        assert inv[PLC1].role == inv[PLC2].role == "plc"
        assert inv[PLC1].exposures == ["modbus"] and inv[HMI].exposures == []
        assert inv[PLC1].zone == "10.10.1.0/24"
    inv = inventory(ATTACK)
    reason = next(e.reason for e in inv[HMI].evidence if e.field == "role")
    assert reason is not None and "polls 2 device(s) periodically" in reason
    assert inv[ATK].role == "engineering_station"  # it downloads programs and changes modes: acts as one
    assert inv[PLC2].vendor is None  # plc2 never announced itself: nothing is invented


def test_s7_identity_s7ident() -> None:
    a = inventory(CORPUS / "icsnpp-s7comm/traces/s7ident.pcap")["172.17.0.2"]
    assert (a.vendor, a.vendor_zh, a.model, a.firmware, a.serial, a.product, a.role) == (
        "Siemens", "西门子", "6ES7 315-2EH14-0AB0", "V3.2.6", "S C-C2UR28922012", "CPU 315-2 PN/DP", "plc")
    assert ("6ES7 315-2EH14-0AB0", "s7comm.module_order_number", 11) in _ev(a, "model")
    assert ("S C-C2UR28922012", "s7comm.serial_number", 13) in _ev(a, "serial")
    assert a.exposures == ["s7comm"]


def test_s7_identity_gymgit_tia_go_online() -> None:
    a = inventory(CORPUS / "gymgit-s7-pcaps/tia_s300_goOnline.pcapng")["134.217.61.211"]
    assert (a.vendor_key, a.model, a.firmware, a.serial, a.name) == (
        "siemens", "6ES7 315-2EH14-0AB0", "V3.2.7", "S C-B1U393142011", "PLC_1")
    assert a.oui_vendor == "Siemens AG"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_cip_identity_enip_example_agrees_with_tshark() -> None:
    path = need(CORPUS / "icsnpp-enip/traces/enip_cip_example.pcap")
    a = inventory(path)["10.1.1.164"]
    assert (a.vendor, a.vendor_key, a.model, a.firmware, a.serial) == (
        "Rockwell Automation", "rockwell", "1756-ENBT/A", "4.3", "0x00524d8e")
    assert a.role == "field_device"  # CIP device type: Communications Adapter
    assert ("Rockwell Automation/Allen-Bradley", "enip.identity.vendor_name", 372) in _ev(a, "vendor")
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "frame.number==372", "-T", "fields", "-e", "enip.lir.name",
                          "-e", "enip.lir.serial", "-e", "enip.lir.vendor"], capture_output=True, text=True, check=True).stdout.split()
    assert out == [a.model, a.serial, "0x0001"]  # CIP vendor 1: Rockwell Automation/Allen-Bradley


def test_bacnet_device_object_and_i_am() -> None:
    inv = inventory(CORPUS / "icsnpp-bacnet/traces/bacnet_example.pcap")
    a = inv["172.20.32.100"]
    assert (a.model, a.firmware, a.name, a.role) == ("GHU-026", "5.6.1", "PLC_93", "field_device")
    assert any(src.startswith("bacnet.") and "(firmware-revision)" in src for _, src, _ in _ev(a, "firmware"))
    assert a.vendor == "PowerCold Comfort Air Solutions"  # I-Am vendor id 138, named by the ASHRAE vendor table
    assert a.exposures == ["bacnet"]
    assert "172.20.32.255" not in inv  # directed broadcast is no asset


def test_opcua_security_none_exposure() -> None:
    a = inventory(CORPUS / "icsnpp-opcua-binary/traces/open62541_client-server_minimal.pcap")["::1"]
    assert "opcua_security_none" in a.exposures
    assert any(e.value == "urn:open62541.server.application" for e in a.evidence)


def test_oui_vendor_is_a_hint_and_router_macs_are_ignored() -> None:
    from pipeline.schema import Endpoint, EventInfo, Evidence, Network

    from .conftest import EMPTY_OUI  # noqa: F401 - documented alternative
    from detection.inventory.oui import parse_manuf

    oui = parse_manuf("00:1C:47\tHangzhou\tHangzhou Hollysys Automation Co., Ltd\n00:00:BC\tRockwell\tRockwell Automation\n")
    t = AssetTracker("p", oui=oui)
    import datetime as dt

    def flow(src: str, smac: str, dst: str) -> schema.Event:
        return schema.Event(timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), event=EventInfo(kind="event", dataset="flow", action="flow"),
                            source=Endpoint(ip=src, mac=smac, port=40000), destination=Endpoint(ip=dst, port=502, mac="00:00:bc:00:00:09"),
                            network=Network(transport="tcp", protocol="modbus"), evidence=Evidence(file="x.pcap", frame=1))

    t.observe(flow("10.0.0.1", "00:1c:47:00:00:01", "10.0.0.9"))
    for ip in ("192.168.5.1", "192.168.5.2", "192.168.5.3"):  # three IPs behind one router MAC
        t.observe(flow(ip, "00:1c:47:00:00:99", "10.0.0.9"))
    inv = {a.ip: a for a in t.snapshot()}
    assert (inv["10.0.0.1"].vendor, inv["10.0.0.1"].vendor_zh, inv["10.0.0.1"].oui_vendor) == ("Hollysys", "和利时", "Hangzhou Hollysys Automation Co., Ltd")
    assert [(e.source, e.strength) for e in inv["10.0.0.1"].evidence if e.field == "vendor"] == [("oui", 1)]
    assert inv["192.168.5.1"].vendor is None and inv["192.168.5.1"].oui_vendor is None
    assert inv["10.0.0.9"].role == "unknown"
