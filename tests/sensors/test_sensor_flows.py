"""Flow records and Community ID: known vectors, synthetic flows, and agreement with Zeek's conn.log on the corpus."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import jsonschema
import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from pipeline import schema
from sensors.decoders.base import Direction
from sensors.engine import DecodeReport, Sensor, decode_file
from sensors.flows import community_id_str
from tests.sensors.sensor_helpers import recording_spec, tcp_frame, udp_frame

# Community ID v1 vectors. The first is the spec's own example; the others were computed by
# Wireshark 4.0's independent implementation (`tshark --enable-protocol communityid`) on frames
# built with scapy, covering both orderings, ICMP request/reply pairing and one-way ICMP.
VECTORS = [
    (("128.232.110.120", "66.35.250.204", 6, 34855, 80), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (("66.35.250.204", "128.232.110.120", 6, 80, 34855), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (("127.0.0.1", "127.0.0.1", 6, 47785, 502), "1:tK87CmbOhu6vMK7mRWXitH/cuJg="),
    (("192.168.1.6", "3.15.227.20", 6, 37699, 502), "1:W/Rh9OS/hPOJK0H6MofFv7rYIdk="),
    (("10.0.0.9", "10.0.0.1", 1, 8, 0), "1:Oc8V53+VyAtwe+q2dsNIaKJNtI0="),  # echo request
    (("10.0.0.1", "10.0.0.9", 1, 0, 0), "1:Oc8V53+VyAtwe+q2dsNIaKJNtI0="),  # its reply
    (("10.0.0.9", "10.0.0.1", 1, 3, 1), "1:FutSOBs/xBc7wkuFbYH/sZyfZw8="),  # one-way: not reordered
    (("10.0.0.1", "10.0.0.9", 1, 3, 1), "1:RccclMw84o6RNTZIu2Ch2WkkE+0="),
    (("10.0.0.9", "10.0.0.1", 1, 11, 0), "1:oFLj5mYMjxTDpzNKh2pHbIrmABs="),
    (("fe80::9", "fe80::1", 58, 128, 0), "1:zZ8+9ix/l89oe/V9XyX2QbhD3/M="),
    (("fe80::1", "fe80::9", 58, 129, 0), "1:zZ8+9ix/l89oe/V9XyX2QbhD3/M="),
    (("fe80::9", "fe80::1", 58, 135, 0), "1:kLvM2Ye8x2nSIHUN7zu/jki5RfA="),  # neighbour solicitation
    (("2001:db8::9", "2001:db8::1", 17, 5000, 53), "1:MFfkrfUNbDKfhmNfBo1U8yNwi9I="),
    (("10.0.0.9", "10.0.0.1", 132, 7, 9), "1:gjIZUxBTDaw6DCj8kV4StP10ktE="),  # SCTP
    (("10.0.0.9", "10.0.0.1", 47, 0, 0), "1:SapCeQDx496z5gW0IxiML5v2lEE="),  # GRE: no ports
    (("10.0.0.1", "10.0.0.1", 17, 9000, 80), "1:8wvSW/T4C5FhrFoX6IOrznU0514="),  # same address: ports order
]


@pytest.mark.parametrize(("tpl", "expected"), VECTORS)
def test_community_id_vectors(tpl: tuple[str, str, int, int, int], expected: str) -> None:
    assert community_id_str(*tpl) == expected


def test_community_id_seed_changes_hash() -> None:
    assert community_id_str("1.2.3.4", "5.6.7.8", 6, 1, 2, seed=1) != community_id_str("1.2.3.4", "5.6.7.8", 6, 1, 2)


def _validator() -> jsonschema.protocols.Validator:
    sch = schema.json_schema()
    return jsonschema.validators.validator_for(sch)(sch)


def test_udp_datagrams_fed_with_direction_and_flow_record() -> None:
    spec, rec = recording_spec(transport="udp")
    sensor = Sensor("org-1", "sensor-1", {"rec": spec})
    out = []
    frames = [udp_frame(b"q1"), udp_frame(b"r1", to_server=False), udp_frame(b"q2")]
    for i, f in enumerate(frames, 1):
        out += sensor.process(i, 100.0 + i, 1, f)
    out += sensor.finish()
    assert rec.feeds == [(Direction.TO_SERVER, b"q1", 1), (Direction.TO_CLIENT, b"r1", 2), (Direction.TO_SERVER, b"q2", 3)]
    (flow,) = out
    assert (flow.event.dataset, flow.event.action, flow.network.transport, flow.network.protocol) == ("flow", "flow", "udp", "rec")
    assert (flow.source.ip, flow.source.port, flow.source.packets, flow.destination.packets) == ("10.0.0.2", 40000, 2, 1)
    assert flow.source.mac == "02:00:00:00:00:02"
    assert flow.network.packets == 3 and flow.network.bytes == flow.source.bytes + flow.destination.bytes == 3 * (20 + 8 + 2)
    assert flow.evidence.frame == 1 and flow.evidence.frames == [1, 3] and flow.evidence.sensor == "sensor-1"
    assert flow.event.id == "sensor-1-1-flow0"
    assert flow.event.duration == 2_000_000_000
    assert flow.organization.id == "org-1" and flow.observer.id == "sensor-1"
    _validator().validate(json.loads(schema.encode(flow)))


def test_udp_originator_is_the_client_of_a_known_server_port() -> None:
    spec, _ = recording_spec(transport="udp")
    sensor = Sensor(None, None, {"rec": spec})
    sensor.process(1, 1.0, 1, udp_frame(b"r", to_server=False))  # the server speaks first
    (flow,) = sensor.finish()
    assert (flow.source.port, flow.destination.port) == (40000, 5020)


def test_icmp_echo_is_one_flow_and_unreach_another() -> None:
    mk = lambda s, d, **kw: bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=s, dst=d) / ICMP(**kw))  # noqa: E731
    sensor = Sensor(None, "s", {})
    frames = [mk("10.0.0.9", "10.0.0.1", type=8), mk("10.0.0.1", "10.0.0.9", type=0), mk("10.0.0.1", "10.0.0.9", type=3, code=3)]
    for i, f in enumerate(frames, 1):
        sensor.process(i, 1.0 + i, 1, f)
    flows = sensor.finish()
    assert [(f.source.ip, f.network.transport, f.network.packets, f.source.port) for f in flows] == [
        ("10.0.0.9", "icmp", 2, None),
        ("10.0.0.1", "icmp", 1, None),
    ]
    assert flows[0].network.community_id == "1:Oc8V53+VyAtwe+q2dsNIaKJNtI0="


def test_idle_timeout_splits_and_close_emits_before_end_of_capture() -> None:
    sensor = Sensor(None, "s", {}, udp_timeout=10.0)
    got = sensor.process(1, 0.0, 1, udp_frame(b"a"))
    got += sensor.process(2, 5.0, 1, udp_frame(b"b"))
    got += sensor.process(3, 30.0, 1, udp_frame(b"c"))  # 25 s idle: new flow, old one reported now
    assert [(e.event.dataset, e.network.packets) for e in got] == [("flow", 2)]
    # A TCP connection closed by FIN both ways is reported a few seconds later, not at the end.
    seq = [
        tcp_frame(seq=1, flags="S"),
        tcp_frame(seq=9, ack=2, flags="SA", to_server=False),
        tcp_frame(seq=2, ack=10, flags="FA"),
        tcp_frame(seq=10, ack=3, flags="FA", to_server=False),
        tcp_frame(seq=3, ack=11, flags="A"),
    ]
    for i, f in enumerate(seq, 4):
        got += sensor.process(i, 30.0 + i * 0.1, 1, f)
    got += sensor.process(9, 40.0, 1, udp_frame(b"d"))
    tcp = [e for e in got if e.network.transport == "tcp"]
    assert len(tcp) == 1 and tcp[0].network.packets == 5 and tcp[0].evidence.frames == [4, 8]
    rest = sensor.finish()
    assert [(e.network.transport, e.network.packets) for e in rest] == [("udp", 2)]
    assert sensor.report.flows == 3


def test_port_reuse_after_close_starts_a_new_flow() -> None:
    sensor = Sensor(None, "s", {})
    frames = [
        tcp_frame(seq=1, flags="S"),
        tcp_frame(seq=9, ack=2, flags="SA", to_server=False),
        tcp_frame(seq=2, ack=10, flags="R"),
        tcp_frame(seq=500, flags="S"),  # same 5-tuple, new connection, within the close delay
    ]
    flows = []
    for i, f in enumerate(frames, 1):
        flows += sensor.process(i, 1.0 + i * 0.01, 1, f)
    assert [f.evidence.frames for f in flows] == [[1, 3]]  # reported when the new SYN arrives
    flows += sensor.finish()
    assert [f.evidence.frames for f in flows] == [[1, 3], [4, 4]]
    assert flows[0].event.id != flows[1].event.id


# ------------------------------------------------------------------ corpus vs Zeek conn.log


def _zeek_conn(path: Path) -> list[dict[str, str]]:
    fields = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service"]  # what zeek-cut baselines keep
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"))))
    return rows


def _zeek_proto(transport: str | None) -> str:
    """Zeek's conn.log `proto`: ICMPv6 is "icmp", anything but TCP/UDP/ICMP is "unknown_transport"."""
    if transport == "ipv6-icmp":
        return "icmp"
    return transport if transport in ("tcp", "udp", "icmp") else "unknown_transport"


def _endpoints(a: str, ap: int, b: str, bp: int, proto: str) -> tuple[frozenset[tuple[str, int]], str]:
    return frozenset({(a, ap), (b, bp)}), proto


def test_modbus_trace_flows_equal_zeek_conn_log(corpus: Path) -> None:
    """Same flows, same originators, same packet and IP byte counts as Zeek (icsnpp-modbus basic test)."""
    rows = _zeek_conn(corpus / "icsnpp-modbus/baseline/analyzer.basic/conn.log")
    report = DecodeReport()
    flows = [e for e in decode_file(corpus / "icsnpp-modbus/traces/modbus_example.pcap", registry={}, report=report) if e.event.dataset == "flow"]
    zeek = sorted(
        (r["id.orig_h"], int(r["id.orig_p"]), r["id.resp_h"], int(r["id.resp_p"]), r["proto"],
         int(r["orig_pkts"]), int(r["orig_ip_bytes"]), int(r["resp_pkts"]), int(r["resp_ip_bytes"]))
        for r in rows
    )  # fmt: skip
    ours = sorted(
        (f.source.ip, f.source.port, f.destination.ip, f.destination.port, f.network.transport,
         f.source.packets, f.source.bytes, f.destination.packets, f.destination.bytes)
        for f in flows
    )  # fmt: skip
    assert ours == zeek
    assert report.packets == 100 and report.flows == 2 and not report.warnings
    assert all(f.evidence.file == "modbus_example.pcap" and f.evidence.file_sha256 == report.sha256 for f in flows)


# trace -> conn.log baseline (which Zeek test read which trace: each folder's BASELINE_NOTES.md).
ZEEK_CONN = {
    "icsnpp-enip/traces/enip_cip_example.pcap": "icsnpp-enip/baseline/analyzer.basic/conn.log",
    "icsnpp-dnp3/traces/dnp3_example.pcap": "icsnpp-dnp3/baseline/analyzer.basic/conn.log",
    "icsnpp-opcua-binary/traces/open62541_client-server_mainloop.pcap": "icsnpp-opcua-binary/baseline/analyzer.basic/conn.log",
    "icsnpp-bacnet/traces/bacnet_example.pcap": "icsnpp-bacnet/baseline/analyzer.basic/conn.log",
    "icsnpp-bacnet/traces/bacnet_services.pcap": "icsnpp-bacnet/baseline/analyzer.services/conn.log",
    "icsnpp-s7comm/traces/snap7.pcap": "icsnpp-s7comm/baseline/analyzer.snap7/conn.log",
    "icsnpp-s7comm/traces/s7comm_plus.pcap": "icsnpp-s7comm/baseline/analyzer.s7comm_plus/conn.log",
    "icsnpp-genisys/traces/genisys.pcap": "icsnpp-genisys/baseline/analyzer.basic/conn.log",
    "icsnpp-synchrophasor/traces/C37.118_1PMU_UDP.pcap": "icsnpp-synchrophasor/baseline/analyzer.1PMU_UDP/conn.log",
    "icsnpp-synchrophasor/traces/C37.118_2PMUsInSync_TCP.pcap": "icsnpp-synchrophasor/baseline/analyzer.2PMUsInSync_TCP/conn.log",
    "icsnpp-profinet-io-cm/traces/profinet_io_cm.pcap": "icsnpp-profinet-io-cm/baseline/tests.profinet_io_cm/conn.log",
    "icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_1.pcap": "icsnpp-profinet-io-cm/baseline/tests.profinet_io_cm_mixed_1/conn.log",
    "icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_2.pcapng": "icsnpp-profinet-io-cm/baseline/tests.profinet_io_cm_mixed_2/conn.log",
    "icsnpp-profinet-io-cm/traces/profinet_io_cm_connect.pcapng": "icsnpp-profinet-io-cm/baseline/tests.profinet_io_cm_connect/conn.log",
    "icsnpp-bsap/traces/bsap-ip_example.pcap": "icsnpp-bsap/baseline/analyzer.ip/conn.log",
    "icsnpp-hart-ip/traces/hart-ip.pcap": "icsnpp-hart-ip/baseline/tests.hart_ip/conn.log",
    "zeek/traces/modbus/modbus-and-non-modbus-p502.pcap": "zeek/baseline/scripts.base.protocols.modbus.modbus_and_non_modbus_on_port_502/conn.log",
}

# Accepted differences: flows (as endpoint pair + transport) Zeek logs that we do not, with the reason.
_NBNS = (frozenset({("169.254.216.43", 137), ("169.254.255.255", 137)}), "udp")
EXPECTED_ZEEK_ONLY: dict[str, tuple[dict[tuple[frozenset[tuple[str, int]], str], int], str]] = {
    "icsnpp-opcua-binary/traces/open62541_client-server_mainloop.pcap": (
        {(frozenset({("127.0.0.1", 62228), ("127.0.0.1", 63329)}), "udp"): 1},
        "the baseline has a DNS exchange that is not in the stored trace (tshark sees one UDP frame, port 63974)",
    ),
    "icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_1.pcap": (
        {_NBNS: 6},
        "Zeek's DNS analyzer gives NetBIOS-NS a 10 s session timeout (dns_session_timeout); our UDP idle timeout is 60 s",
    ),
    "icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_2.pcapng": ({_NBNS: 6}, "as profinet_io_cm_mixed_1 (same traffic)"),
}


@pytest.mark.parametrize("trace", sorted(ZEEK_CONN))
def test_corpus_flows_agree_with_zeek_conn_log(corpus: Path, trace: str) -> None:
    """Every flow Zeek logs (by endpoints and transport; ICMP without type/code) is ours, and no more.

    Orientation is not compared: without the protocol's decoder registered we fall back to
    "lower port is the responder", where Zeek knows e.g. EtherNet/IP's port.
    """
    rows = _zeek_conn(corpus / ZEEK_CONN[trace])
    zeek = collections.Counter(
        _endpoints(r["id.orig_h"], 0 if r["proto"] == "icmp" else int(r["id.orig_p"]), r["id.resp_h"], 0 if r["proto"] == "icmp" else int(r["id.resp_p"]), r["proto"])
        for r in rows
    )
    report = DecodeReport()
    ours = collections.Counter(
        _endpoints(f.source.ip, f.source.port or 0, f.destination.ip, f.destination.port or 0, _zeek_proto(f.network.transport))
        for f in decode_file(corpus / trace, registry={}, report=report)
        if f.event.dataset == "flow"
    )
    expected_missing, _reason = EXPECTED_ZEEK_ONLY.get(trace, ({}, ""))
    assert dict(zeek - ours) == expected_missing
    assert dict(ours - zeek) == {}
    assert not report.truncated


# ------------------------------------------------------------------ corpus vs tshark's Community ID

TSHARK_CID_TRACES = [
    "icsnpp-modbus/traces/modbus_example.pcap",
    "icsnpp-opcua-binary/traces/open62541_client-server-getEndpoints.pcap",  # linktype NULL, IPv6
    "icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_1.pcap",  # UDP broadcast, ICMPv6, IGMP
    "icsnpp-hart-ip/traces/hart-ip.pcap",  # ICMP port unreachable
    "icsnpp-enip/traces/enip_cip_example.pcap",
]


@pytest.mark.tshark
@pytest.mark.parametrize("trace", TSHARK_CID_TRACES)
def test_community_ids_agree_with_tshark(corpus: Path, trace: str) -> None:
    """The set of TCP/UDP Community IDs Wireshark computes per frame equals the set over our flow records."""
    import shutil
    import subprocess

    if shutil.which("tshark") is None:
        pytest.skip("tshark not on PATH")
    out = subprocess.run(
        ["tshark", "-n", "-r", str(corpus / trace), "--enable-protocol", "communityid", "-Y", "(tcp or udp) and not icmp and not icmpv6",
         "-T", "fields", "-e", "communityid"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    theirs = {line for line in out.stdout.split() if line}
    ours = {
        e.network.community_id
        for e in decode_file(corpus / trace, registry={})
        if e.event.dataset == "flow" and e.network.transport in ("tcp", "udp")
    }
    assert theirs and ours == theirs
