"""Asset tracker: roles from who asks and who answers, vendor from device identification, counts."""

from __future__ import annotations

from collections.abc import Callable

from detection.assets import AssetTracker
from detection.engine import DetectionEngine
from detection.rules import RuleSet
from pipeline import schema
from pipeline.schema import DeviceIdentification, Event

HMI, ATK, PLC1 = "10.10.1.10", "10.10.1.66", "10.10.1.101"
EventFactory = Callable[..., Event]


def test_roles_ports_units_peers_and_times(ev: EventFactory) -> None:
    tracker = AssetTracker("plant")
    tracker.observe(ev(0, HMI, PLC1))
    tracker.observe(ev(0.01, PLC1, HMI, message_type="response", values=[1, 2]))
    tracker.observe(ev(5, HMI, PLC1, fc=1))
    hmi, plc = tracker.snapshot()
    assert (hmi.id, hmi.ip, hmi.roles, hmi.ports, hmi.unit_ids, hmi.peers) == (f"plant:{HMI}", HMI, ["modbus_master"], [], [], [PLC1])
    assert (plc.id, plc.roles, plc.ports, plc.unit_ids, plc.peers, plc.protocols) == (
        f"plant:{PLC1}", ["modbus_slave"], [502], [1], [HMI], ["modbus"])
    assert hmi.events == 3 and plc.events == 3
    assert plc.first_seen < plc.last_seen and hmi.mac == "02:00:00:00:00:01"
    assert plc.organization is not None and plc.organization.id == "plant"
    assert schema.decode_asset(schema.encode(plc)) == plc


def test_vendor_product_revision_from_device_identification(ev: EventFactory) -> None:
    tracker = AssetTracker("plant")
    ident = DeviceIdentification(read_code=1, vendor_name="Schneider Electric", product_code="BMX P34 2020", revision="v3.20")
    tracker.observe(ev(0, ATK, PLC1, fc=43, action="identify", sub=14, address=None))
    tracker.observe(ev(0.1, PLC1, ATK, fc=43, action="identify", sub=14, address=None, message_type="response", device_id=ident))
    plc = tracker.asset(PLC1)
    assert plc is not None and (plc.vendor, plc.product, plc.revision) == ("Schneider Electric", "BMX P34 2020", "v3.20")
    # A later, emptier answer does not erase what is known; product_name wins over product_code.
    ident2 = DeviceIdentification(read_code=2, product_name="Modicon M340")
    tracker.observe(ev(1, PLC1, ATK, fc=43, action="identify", sub=14, address=None, message_type="response", device_id=ident2))
    plc = tracker.asset(PLC1)
    assert plc is not None and (plc.vendor, plc.product, plc.revision) == ("Schneider Electric", "Modicon M340", "v3.20")


def test_alert_counts_and_organization_fallback(ev: EventFactory, pack: RuleSet) -> None:
    tracker = AssetTracker()  # no organization: the events' own ("plant")
    engine = DetectionEngine(pack)
    for e in [ev(0, ATK, PLC1, fc=8, action="mode_change", sub=4, address=None)]:
        tracker.observe(e)
        for alert in engine.process(e):
            tracker.observe(alert)  # alerts are counted, not treated as traffic
    atk, plc = tracker.snapshot()
    assert atk.id == f"plant:{ATK}" and atk.alerts == plc.alerts >= 2  # listen-only + new master
    assert atk.events == 1


def test_multicast_and_unspecified_are_not_assets(make_event: EventFactory) -> None:
    tracker = AssetTracker("plant")
    tracker.observe(make_event(0, "0.0.0.0", "224.0.0.22", dataset="flow", action="flow"))
    tracker.observe(make_event(0, HMI, "255.255.255.255", dataset="flow", action="flow"))
    assert [a.ip for a in tracker.snapshot()] == [HMI]
    assert len(tracker) == 1
