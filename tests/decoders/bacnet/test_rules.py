"""The BACnet rules on decoded traffic: corpus captures, plus a byte-built Who-Is sweep."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event
from sensors.decoders.bacnet import BacnetFlow
from sensors.decoders.base import Conn, Direction, FrameMeta

REPO = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(sorted((REPO / "rules" / "bacnet").glob("*.yml")))


def _alerts(pack: RuleSet, events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for a in DetectionEngine(pack, organization_id="test").process_many(events):
        assert a.rule is not None
        out.setdefault(a.rule.id, []).append(a)
    return out


def _flagged(alerts: dict[str, list[Event]], rule: str) -> set[int]:
    return {f for a in alerts.get(rule, []) for f in (a.evidence.frames or [] if a.evidence else [])}


def _frames(events: list[Event], **want: object) -> set[int]:
    return {e.evidence.frame or 0 for e in events if e.bacnet is not None and e.anomaly is None and e.evidence
            and all(getattr(e.bacnet, k) == v for k, v in want.items())}


def test_services_capture(pack: RuleSet, bac_traces: list[Path], bac_decode) -> None:  # type: ignore[no-untyped-def]
    events = bac_decode(next(p for p in bac_traces if p.name == "bacnet_services.pcap"))
    alerts = _alerts(pack, events)
    reinit = _frames(events, service_name="reinitialize_device", apdu_type=0)
    assert _flagged(alerts, "qn-bacnet-0001") and _flagged(alerts, "qn-bacnet-0001") <= reinit
    dcc_disable = _frames(events, service_name="device_communication_control", enable_disable="disable")
    assert _flagged(alerts, "qn-bacnet-0002") and _flagged(alerts, "qn-bacnet-0002") <= dcc_disable
    pv_writes = _frames(events, apdu_type=0, property_name="present-value", service_name="write_property")
    assert _flagged(alerts, "qn-bacnet-0003") and _flagged(alerts, "qn-bacnet-0003") <= pv_writes
    assert _flagged(alerts, "qn-bacnet-0004") <= {f for f in pv_writes | _frames(events, apdu_type=0, service_name="write_property")}
    assert all((a.message or "").find("priority 1") >= 0 or (a.message or "").find("priority 2") >= 0 for a in alerts["qn-bacnet-0004"])
    assert _flagged(alerts, "qn-bacnet-0006") <= _frames(events, service_name="atomic_write_file", apdu_type=0)
    # benign traffic of the same capture: thousands of reads and I-Ams, enabling DCC, file reads
    benign = (_frames(events, service_name="read_property") | _frames(events, service_name="i_am")
              | _frames(events, service_name="atomic_read_file") | _frames(events, enable_disable="enable"))
    everything = set().union(*(_flagged(alerts, r) for r in alerts))
    assert not everything & benign


def test_create_delete_object(pack: RuleSet, bac_traces: list[Path], bac_decode) -> None:  # type: ignore[no-untyped-def]
    events = bac_decode(next(p for p in bac_traces if p.name == "bacnet_error_reject_abort.pcap"))
    alerts = _alerts(pack, events)
    assert _flagged(alerts, "qn-bacnet-0007") == _frames(events, service_name="create_object", apdu_type=0) | _frames(events, service_name="delete_object", apdu_type=0)
    assert len(alerts["qn-bacnet-0007"]) == 2


def test_segmented_capture_raises_nothing(pack: RuleSet, bac_traces: list[Path], bac_decode) -> None:  # type: ignore[no-untyped-def]
    """Who-Is, Who-Has, I-Am, I-Have, time sync and a segmented read: all normal."""
    assert _alerts(pack, bac_decode(next(p for p in bac_traces if p.name == "bacnet_segmented_data.pcap"))) == {}


WHO_IS_RANGE = bytes([0x81, 0x0B, 0x00, 0x0C, 0x01, 0x00, 0x10, 0x08, 0x09, 0x00, 0x19, 0x00])  # limits patched below


def _sweep(client: str, n: int) -> list[Event]:
    flow = BacnetFlow()
    conn = Conn(client, 47808, "10.10.1.255", 47808, "udp", f"1:{client}")
    out: list[Event] = []
    for i in range(n):
        d = bytearray(WHO_IS_RANGE)
        d[9] = d[11] = i  # Who-Is device i..i
        meta = FrameMeta(frame=i + 1, time=T0 + dt.timedelta(milliseconds=200 * i), conn=conn, file_sha256="2" * 64, file="built.pcap")
        out += flow.feed(memoryview(bytes(d)), Direction.TO_SERVER, meta)
    return out


def test_who_is_sweep(pack: RuleSet) -> None:
    events = _sweep("192.168.50.9", 40)
    assert events[5].bacnet is not None and events[5].bacnet.low_limit == 5
    assert len(_alerts(pack, events)["qn-bacnet-0005"]) == 1
    assert _alerts(pack, _sweep("10.10.1.20", 40)) == {}  # the engineering station discovering devices
    assert _alerts(pack, _sweep("192.168.50.9", 5)) == {}  # a few from an unknown host: under the threshold
