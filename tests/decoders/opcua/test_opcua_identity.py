"""OPC UA server identity: application descriptions (endpoints, FindServers, CreateSession) and the BuildInfo
values a Read of the Server object returns, on the testbed capture and the corpus, checked against tshark.

Only the Server object's identity nodes (ns=0 ServerStatus, BuildInfo and its members) have their values
decoded; every other Read value stays undecoded (process data is not metadata).
"""

from __future__ import annotations

import datetime as dt
import struct
import subprocess
from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.engine import decode_file

from .conftest import TRACES, UaDriver

REPO = Path(__file__).resolve().parents[3]
TESTBED = REPO / "pcaps" / "opcua" / "opcua_plant_attack.pcap"
BUILD_FIELDS = ("product_uri", "manufacturer_name", "product_name", "software_version", "build_number")
#: tshark's -e field for each application-description member
APP_FIELDS = {"application_uri": "opcua.ApplicationUri", "product_uri": "opcua.ProductUri", "application_name": "opcua.loctext.Text"}


def _ua(path: Path) -> list[Event]:
    return [e for e in decode_file(path) if e.opcua is not None and e.anomaly is None]


def _tshark(tshark: str, path: Path, flt: str, *fields: str) -> dict[int, list[list[str]]]:
    cmd = [tshark, "-r", str(path), "-Y", flt, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows: dict[int, list[list[str]]] = {}
    for line in out.splitlines():
        cols = line.split("\t")
        rows[int(cols[0])] = [c.split("|") if c else [] for c in cols[1:]]
    return rows


def test_build_info_reads_agree_with_tshark(tshark: str) -> None:
    """Every BuildInfo member the attacker reads from the testbed server: the value tshark shows in that Read response."""
    evs = _ua(TESTBED)
    got = {e.evidence.frame: e.opcua.build_info for e in evs if e.opcua.build_info is not None}
    assert len(got) >= 5
    ts = _tshark(tshark, TESTBED, "opcua.servicenodeid.numeric == 634", "opcua.String")
    seen: set[str] = set()
    for frame, bi in got.items():
        values = {k: getattr(bi, k) for k in (*BUILD_FIELDS, "build_date") if getattr(bi, k) is not None}
        assert len(values) == 1, (frame, values)  # the capture reads one member per request
        (k, v), = values.items()
        assert ts[frame][0] == [v], (frame, k, v, ts[frame])
        seen.add(k)
    assert seen == set(BUILD_FIELDS)


def test_only_identity_reads_are_decoded() -> None:
    """Reads of the plant's variables (ns=2) and of the NamespaceArray are answered without any decoded value."""
    evs = _ua(TESTBED)
    requests = {e.evidence.frame: e.opcua for e in evs if e.opcua.service_name == "ReadRequest"}
    plant = [e for e in evs if e.opcua.service_name == "ReadResponse" and e.opcua.request_frame in requests
             and all(not n.node_id.startswith("i=226") for n in requests[e.opcua.request_frame].nodes or [])]
    assert plant and all(e.opcua.build_info is None for e in plant)
    for e in evs:
        if e.opcua.build_info is not None:
            req = requests[e.opcua.request_frame]
            assert [n.node_id for n in req.nodes] in (["i=2262"], ["i=2263"], ["i=2261"], ["i=2264"], ["i=2265"])


def _descriptions(evs: list[Event]) -> dict[int, set[tuple[str | None, ...]]]:
    out: dict[int, set[tuple[str | None, ...]]] = {}
    for e in evs:
        u = e.opcua
        if u.is_response and u.endpoints:
            out[e.evidence.frame] = {(ep.application_uri, ep.product_uri, ep.application_name) for ep in u.endpoints}
        elif u.service_name == "FindServersResponse" and u.application_uri:
            out[e.evidence.frame] = {(u.application_uri, u.product_uri, u.application_name)}
    return out


@pytest.mark.parametrize("name", ["testbed", "python_opcua-client-server_minimal.pcap", "open62541_client-server_minimal.pcap",
                                  "open62541_discover_getendpoints_discover_urls.pcap"])
def test_application_descriptions_agree_with_tshark(tshark: str, name: str) -> None:
    """GetEndpoints / CreateSession endpoints and FindServers' first server: application URI, product URI, name."""
    path = TESTBED if name == "testbed" else TRACES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    mine = _descriptions(_ua(path))
    assert mine
    ts = _tshark(tshark, path, "opcua.servicenodeid.numeric == 431 || opcua.servicenodeid.numeric == 464 || opcua.servicenodeid.numeric == 425", *APP_FIELDS.values())
    assert set(mine) <= set(ts)
    for frame, descs in mine.items():
        uris, products, names = ts[frame]
        assert descs <= set(zip(uris, products, names)), (frame, descs)
    if name == "testbed":  # what tests/testbed/stacks/opcua.py set on the server (the product URI of an
        # application description stays asyncua's own; the BuildInfo's is the configured one)
        assert {d[0] for s in mine.values() for d in s} == {"urn:qinling:testbed:opcua-plc:101"}
        assert {d[2] for s in mine.values() for d in s} == {"Qinling testbed OPC UA PLC"}


# ------------------------------------------------------------------ structures, encoded by asyncua


def _msg(body: bytes, request_id: int) -> bytes:
    payload = struct.pack("<IIII", 1, 1, request_id, request_id) + body
    return b"MSGF" + struct.pack("<I", 8 + len(payload)) + payload


def _encode(obj: object) -> bytes:
    """A service message body (asyncua's request/response classes start with their encoding TypeId)."""
    pytest.importorskip("asyncua")
    from asyncua.ua.ua_binary import struct_to_binary

    return struct_to_binary(obj)


def test_build_info_structure_and_server_status_are_decoded(ua: UaDriver) -> None:
    """A Read of BuildInfo (i=2260, a structure) and ServerStatus (i=2256) next to a process value in one request."""
    from asyncua import ua as u

    when = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    info = u.BuildInfo(ProductUri="urn:vendor:plc", ManufacturerName="ACME Automation", ProductName="X-100",
                       SoftwareVersion="4.2", BuildNumber="77", BuildDate=when)
    status = u.ServerStatusDataType(StartTime=when, CurrentTime=when, BuildInfo=info)
    read = u.ReadRequest()
    read.Parameters.NodesToRead = [u.ReadValueId(NodeId=u.NodeId(n), AttributeId=13) for n in (2260, 2256)]
    read.Parameters.NodesToRead.insert(1, u.ReadValueId(NodeId=u.NodeId("Temperature", 2), AttributeId=13))
    resp = u.ReadResponse()
    resp.Results = [u.DataValue(u.Variant(info)), u.DataValue(u.Variant(21.5)), u.DataValue(u.Variant(status))]
    assert ua.req(_msg(_encode(read), 9))[0].opcua.node_count == 3
    ev = ua.resp(_msg(_encode(resp), 9))[0]
    assert ev.anomaly is None and ev.opcua.node_count == 3
    bi = ev.opcua.build_info
    assert (bi.manufacturer_name, bi.product_name, bi.product_uri, bi.software_version, bi.build_number, bi.build_date) == (
        "ACME Automation", "X-100", "urn:vendor:plc", "4.2", "77", when)


def test_a_read_response_without_identity_request_is_not_decoded(ua: UaDriver) -> None:
    """The same response, its request unseen (or reading other nodes): no value is decoded."""
    from asyncua import ua as u

    resp = u.ReadResponse()
    resp.Results = [u.DataValue(u.Variant(u.BuildInfo(ManufacturerName="ACME")))]
    read = u.ReadRequest()
    read.Parameters.NodesToRead = [u.ReadValueId(NodeId=u.NodeId("Vendor", 2), AttributeId=13)]
    ua.req(_msg(_encode(read), 3))
    assert ua.resp(_msg(_encode(resp), 3))[0].opcua.build_info is None
    assert ua.resp(_msg(_encode(resp), 4))[0].opcua.build_info is None


def test_a_truncated_identity_response_keeps_what_was_read(ua: UaDriver) -> None:
    """Two identity values, the second cut short: the first is kept, the message flagged invalid_pdu."""
    from asyncua import ua as u

    read = u.ReadRequest()
    read.Parameters.NodesToRead = [u.ReadValueId(NodeId=u.NodeId(n), AttributeId=13) for n in (2263, 2260)]
    resp = u.ReadResponse()
    resp.Results = [u.DataValue(u.Variant("ACME")),
                    u.DataValue(u.Variant(u.BuildInfo(ProductUri="urn:p", ManufacturerName="Other", ProductName="Y")))]
    ua.req(_msg(_encode(read), 5))
    body = _encode(resp)
    evs = ua.resp(_msg(body[:-40], 5))
    assert [e.anomaly.code for e in evs if e.anomaly is not None] == ["invalid_pdu"]
    bi = evs[0].opcua.build_info
    assert (bi.manufacturer_name, bi.product_uri, bi.product_name) == ("ACME", None, None)


@pytest.mark.parametrize("name", ["testbed", "opcua_with-gap_with-handshake.pcap"])
def test_namespace_array_reads_agree_with_tshark(tshark: str, name: str) -> None:
    """The Server object's NamespaceArray (i=2255) a client reads at connect; in the corpus trace it is read among
    18 other nodes of a Softing/Siemens server, whose other values stay undecoded."""
    path = TESTBED if name == "testbed" else TRACES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    got = {e.evidence.frame: e.opcua.namespace_uris for e in _ua(path) if e.opcua.namespace_uris}
    assert got
    ts = _tshark(tshark, path, "opcua.servicenodeid.numeric == 634", "opcua.String")
    for frame, uris in got.items():
        assert ts[frame][0] == uris, frame
    if name != "testbed":
        assert "urn:SiemensV2toOPCUA" in next(iter(got.values()))
