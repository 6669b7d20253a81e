"""The OPC UA rules on decoded traffic: corpus captures, plus byte-built flows for the rate rules."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event
from sensors.decoders.base import Conn, Direction, FrameMeta
from sensors.decoders.opcua import OpcuaFlow

REPO = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(sorted((REPO / "rules" / "opcua").glob("*.yml")))


def _alerts(pack: RuleSet, events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for a in DetectionEngine(pack, organization_id="test").process_many(events):
        assert a.rule is not None
        out.setdefault(a.rule.id, []).append(a)
    return out


def _frames(alert: Event) -> set[int]:
    return set(alert.evidence.frames or []) if alert.evidence else set()


def _msgs(events: list[Event], name: str) -> set[int]:
    return {e.evidence.frame or 0 for e in events if e.opcua is not None and e.opcua.service_name == name and e.evidence}


def test_mainloop_capture(pack: RuleSet, ua_traces: list[Path], ua_decode) -> None:  # type: ignore[no-untyped-def]
    path = next(p for p in ua_traces if p.name == "open62541_client-server_mainloop.pcap")
    events = ua_decode(path)
    alerts = _alerts(pack, events)
    assert set(alerts) == {"qn-opcua-0001", "qn-opcua-0003", "qn-opcua-0004"}
    (opn,) = alerts["qn-opcua-0001"]
    assert _frames(opn) <= _msgs(events, "OpenSecureChannelRequest")
    (write,) = alerts["qn-opcua-0003"]  # suppressed after the first of two writes
    assert _frames(write) <= _msgs(events, "WriteRequest")
    (call,) = alerts["qn-opcua-0004"]
    assert _frames(call) <= _msgs(events, "CallRequest")
    # benign traffic of the same capture (reads, browses, publishes) raised nothing else
    flagged = set().union(*(_frames(a) for lst in alerts.values() for a in lst))
    assert not flagged & (_msgs(events, "ReadRequest") | _msgs(events, "BrowseRequest") | _msgs(events, "PublishRequest"))


def test_anonymous_session(pack: RuleSet, ua_traces: list[Path], ua_decode) -> None:  # type: ignore[no-untyped-def]
    path = next(p for p in ua_traces if p.name == "python_opcua-client-server_encrypted.pcap")
    events = ua_decode(path)
    alerts = _alerts(pack, events)
    (anon,) = alerts["qn-opcua-0002"]
    assert _frames(anon) <= _msgs(events, "ActivateSessionRequest")
    assert "qn-opcua-0003" not in alerts


# ---------------------------------------------------------------- byte-built flows


def _s(b: bytes | None) -> bytes:
    return struct.pack("<i", -1) if b is None else struct.pack("<i", len(b)) + b


_REQ_HEADER = b"\x00\x00" + struct.pack("<qIIi", 0, 1, 0, -1) + struct.pack("<I", 1000) + b"\x00\x00\x00"
_OPN = (b"OPN", struct.pack("<I", 0) + _s(b"http://opcfoundation.org/UA/SecurityPolicy#None") + _s(None) + _s(None)
        + struct.pack("<II", 1, 1) + b"\x01\x00" + struct.pack("<H", 446) + _REQ_HEADER + struct.pack("<III", 0, 0, 1) + _s(b"") + struct.pack("<I", 60000))


def _msg(mtype: bytes, body: bytes) -> bytes:
    return mtype + b"F" + struct.pack("<I", 8 + len(body)) + body


def _flow(client: str, messages: list[tuple[Direction, bytes]], step_ms: int = 100) -> list[Event]:
    conn = Conn(client, 50000, "10.10.1.101", 4840, "tcp", f"1:{client}")
    flow = OpcuaFlow()
    out: list[Event] = []
    for i, (d, data) in enumerate(messages, 1):
        meta = FrameMeta(frame=i, time=T0 + dt.timedelta(milliseconds=i * step_ms), conn=conn, file_sha256="1" * 64, file="built.pcap")
        out += flow.feed(memoryview(data), d, meta)
    return out


def _service(rid: int, type_id: int, body: bytes = b"") -> bytes:
    return _msg(b"MSG", struct.pack("<IIII", 1, 1, rid, rid) + b"\x01\x00" + struct.pack("<H", type_id) + _REQ_HEADER + body)


def test_discovery_scan_from_unknown_host(pack: RuleSet) -> None:
    scan = [(Direction.TO_SERVER, _msg(*_OPN))] + [(Direction.TO_SERVER, _service(i, 428, _s(b"opc.tcp://x"))) for i in range(2, 30)]
    alerts = _alerts(pack, _flow("192.168.50.9", scan))
    assert len(alerts["qn-opcua-0005"]) == 1
    # the HMI browsing as often raises nothing (it is in $opcua_clients)
    assert "qn-opcua-0005" not in _alerts(pack, _flow("10.10.1.10", scan))
    # a few requests from an unknown host stay under the threshold
    assert "qn-opcua-0005" not in _alerts(pack, _flow("192.168.50.9", scan[:10]))


def test_security_failure_storm(pack: RuleSet) -> None:
    err = _msg(b"ERR", struct.pack("<I", 0x801F0000) + _s(b"user access denied"))
    hello = _msg(b"HEL", struct.pack("<5I", 0, 65535, 65535, 0, 0) + _s(b"opc.tcp://plc:4840"))
    storm = [(Direction.TO_SERVER, hello), (Direction.TO_CLIENT, err)] * 8
    alerts = _alerts(pack, _flow("192.168.50.9", storm))
    (a,) = alerts["qn-opcua-0006"]
    assert a.destination is not None and a.destination.ip == "192.168.50.9"
    assert "qn-opcua-0006" not in _alerts(pack, _flow("192.168.50.9", storm[:6]))
