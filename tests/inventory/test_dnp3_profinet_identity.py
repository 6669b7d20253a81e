"""Identity from DNP3 device attributes (group 0) and PROFINET DCP / IO CM, checked on traffic.

No DNP3 capture in the corpus carries g0 identity strings (the ITI dumps read only data-set counts),
and the opendnp3 outstation (yadnp3) does not serve device attributes, so the DNP3 capture here is
crafted: a TCP session in which a master reads g0v254 (all attributes) and the outstation answers
with the attributes IEEE 1815 defines for identity. Wireshark's DNP3 dissector decodes the same
capture independently; the decoder must agree with it value for value. The opendnp3 master (the
reference C++ stack) also reads the attributes from a socket outstation that sends the same bytes,
and the decoder must read what it read, from that recorded session (its real requests included).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from detection.assets import AssetTracker
from detection.inventory.identity import STRONG, claims
from detection.inventory.roles import INDUSTRIAL, Behaviour, infer_role
from pipeline.schema import Asset
from sensors.decoders.dnp3.parser import crc16
from sensors.engine import decode_file

from .conftest import CORPUS, REPO, need

MASTER = ("10.20.0.10", "02:00:0a:14:00:0a")
OUTSTATION = ("10.20.0.50", "02:00:0a:14:00:32")
# (variation, data type, value) the crafted outstation reports
ATTRIBUTES = (
    (252, 1, "Qinling Testbed"),
    (250, 1, "QT-RTU 200"),
    (242, 1, "3.2.1"),
    (243, 1, "B2"),
    (248, 1, "QT2024-00042"),
    (247, 1, "substation-7 feeder RTU"),
    (246, 1, "ASSET-0815"),
    (240, 2, 2048),
)


def _link(payload: bytes, src: int, dst: int, master: bool) -> bytes:
    """One DNP3 link frame (unconfirmed user data) carrying one transport segment (FIR|FIN)."""
    user = bytes([0xC0]) + payload
    ctrl = (0x80 if master else 0x00) | 0x40 | 0x04
    head = bytes([0x05, 0x64, len(user) + 5, ctrl]) + dst.to_bytes(2, "little") + src.to_bytes(2, "little")
    out = head + crc16(head).to_bytes(2, "little")
    for i in range(0, len(user), 16):
        block = user[i : i + 16]
        out += block + crc16(block).to_bytes(2, "little")
    return out


def _attribute(v: int, dtype: int, value: object) -> bytes:
    data = value.encode() if isinstance(value, str) else int(value).to_bytes(2, "little")  # type: ignore[call-overload]
    return bytes([0x00, v, 0x00, 0x00, 0x00, dtype, len(data)]) + data  # g0 v, qualifier 0x00, range 0-0


def craft_dnp3(path: Path) -> Path:
    read = bytes([0xC1, 0x01, 0x00, 0xFE, 0x06])  # READ g0v254, no range
    resp = bytes([0xC1, 0x81, 0x00, 0x00]) + b"".join(_attribute(*a) for a in ATTRIBUTES)
    m, o = MASTER, OUTSTATION
    a = _link(read, 1, 10, True)
    b = _link(resp, 10, 1, False)
    pkts = [
        Ether(src=m[1], dst=o[1]) / IP(src=m[0], dst=o[0]) / TCP(sport=49152, dport=20000, flags="S", seq=1000),
        Ether(src=o[1], dst=m[1]) / IP(src=o[0], dst=m[0]) / TCP(sport=20000, dport=49152, flags="SA", seq=5000, ack=1001),
        Ether(src=m[1], dst=o[1]) / IP(src=m[0], dst=o[0]) / TCP(sport=49152, dport=20000, flags="A", seq=1001, ack=5001),
        Ether(src=m[1], dst=o[1]) / IP(src=m[0], dst=o[0]) / TCP(sport=49152, dport=20000, flags="PA", seq=1001, ack=5001) / a,
        Ether(src=o[1], dst=m[1]) / IP(src=o[0], dst=m[0]) / TCP(sport=20000, dport=49152, flags="PA", seq=5001, ack=1001 + len(a)) / b,
    ]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i * 0.01
    wrpcap(str(path), pkts)
    return path


@pytest.fixture(scope="module")
def dnp3_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return craft_dnp3(tmp_path_factory.mktemp("dnp3") / "dnp3_device_attributes.pcap")


def _assets(*paths: Path) -> dict[str, Asset]:
    t = AssetTracker(oui=False)
    for p in paths:
        for e in decode_file(str(need(p))):
            t.observe(e)
    return {a.ip: a for a in t.snapshot()}


def _ident(a: Asset) -> dict[str, str]:
    return {k: getattr(a, k) for k in ("vendor", "model", "product", "firmware", "serial", "name") if getattr(a, k, None)}


# ----------------------------------------------------------------------------------------- DNP3


def test_dnp3_device_attributes_decode_as_wireshark_does(dnp3_pcap: Path, tshark: str) -> None:
    resp = [e for e in decode_file(str(dnp3_pcap)) if e.dnp3 is not None and e.dnp3.message_type == "response"]
    assert len(resp) == 1 and not resp[0].dnp3.objects_truncated
    ours = [(o.variation, p.data_type, p.text if p.text is not None else p.value) for o in resp[0].dnp3.objects for p in o.points]
    assert ours == [(v, {1: "vstr", 2: "uint"}[t], x) for v, t, x in ATTRIBUTES]
    out = subprocess.run([tshark, "-r", str(dnp3_pcap), "-Y", "dnp3.al.func == 0x81", "-T", "fields", "-E", "occurrence=a",
                          "-E", "aggregator=|", "-e", "dnp3.al.obj", "-e", "dnp3.al.datatype", "-e", "dnp3.al.da.value",
                          "-e", "dnp3.al.da.uint16"], capture_output=True, text=True, check=True).stdout.strip()
    objs, types, strings, uints = out.split("\t")
    assert [int(x, 16) & 0xFF for x in objs.split("|")] == [v for v, _, _ in ATTRIBUTES]
    assert [int(x, 16) for x in types.split("|")] == [t for _, t, _ in ATTRIBUTES]
    assert strings.split("|") == [x for _, t, x in ATTRIBUTES if t == 1]
    assert [int(x) for x in uints.split("|")] == [x for _, t, x in ATTRIBUTES if t == 2]


def test_dnp3_device_attributes_identify_the_outstation(dnp3_pcap: Path) -> None:
    cs = [c for e in decode_file(str(dnp3_pcap)) for c in claims(e)]
    got = {(c.attr, c.value) for c in cs if c.strength == STRONG}
    assert {("vendor", "Qinling Testbed"), ("product", "QT-RTU 200"), ("firmware", "3.2.1"), ("hardware", "B2"),
            ("serial", "QT2024-00042"), ("name", "substation-7 feeder RTU"), ("asset_id", "ASSET-0815")} <= got
    assert all(c.side == "source" and "g0v" in c.path for c in cs)
    assets = _assets(dnp3_pcap)
    rtu = assets[OUTSTATION[0]]
    assert _ident(rtu) == {"vendor": "Qinling Testbed", "model": "QT-RTU 200", "product": "QT-RTU 200", "firmware": "3.2.1",
                           "serial": "QT2024-00042", "name": "substation-7 feeder RTU"}
    assert {(ev.field, ev.value) for ev in rtu.evidence} >= {("hardware", "B2"), ("vendor", "Qinling Testbed")}
    assert rtu.role == "rtu" and "dnp3" in rtu.protocols
    assert not _ident(assets[MASTER[0]])  # the master's READ says nothing about who it is


def test_dnp3_attribute_requests_and_other_groups_make_no_claims() -> None:
    path = need(CORPUS / "iti-ics-security-tools" / "dnp3" / "dataset_exchange.pcap")  # g0v213/v215 counts only
    evs = [e for e in decode_file(str(path)) if e.dnp3 is not None]
    g0 = [p for e in evs for o in e.dnp3.objects or () if o.group == 0 for p in o.points or ()]
    assert g0 and {p.data_type for p in g0} == {"uint"}
    assert not [c for e in evs for c in claims(e)]


def test_dnp3_attribute_types_and_damaged_attributes() -> None:
    from sensors.decoders.dnp3.parser import parse_application

    body = (bytes([0xC0, 0x81, 0x00, 0x00]) + bytes([0, 241, 0, 0, 0, 3, 2]) + (-5).to_bytes(2, "little", signed=True)
            + bytes([0, 203, 0, 0, 0, 4, 4]) + bytes.fromhex("0000c03f") + bytes([0, 249, 0, 0, 0, 5, 2, 0xAB, 0xCD]))
    app = parse_application(body)
    assert app is not None and not app.truncated
    assert [(o.variation, p.data_type, p.value, p.octets) for o in app.objects for p in o.points] == [
        (241, "int", -5, None), (203, "flt", 1.5, None), (249, "ostr", None, "abcd")]
    cut = parse_application(bytes([0xC0, 0x81, 0x00, 0x00]) + bytes([0, 252, 0, 0, 0, 1, 40]) + b"too short")
    assert cut is not None and cut.truncated and cut.anomaly == "objects_truncated" and not cut.objects[0].points


def _fake_outstation(srv: socket.socket, wire: list[tuple[bool, bytes]], stop: threading.Event) -> None:
    """Answers an opendnp3 master: a null response to everything, the ATTRIBUTES to a read of g0v254."""
    from sensors.decoders.dnp3.parser import LinkFrame, parse_frame

    conn, _ = srv.accept()
    conn.settimeout(0.2)
    buf = b""
    while not stop.is_set():
        try:
            data = conn.recv(4096)
        except TimeoutError:
            continue
        if not data:
            break
        wire.append((True, data))
        buf += data
        while True:
            p = parse_frame(memoryview(buf))
            if p.consumed == 0:
                break
            buf = buf[p.consumed :]
            f = p.pdu
            if not isinstance(f, LinkFrame) or f.user_data is None or len(f.user_data) < 3:
                continue
            app = f.user_data[1:]
            if app[1] == 0:  # application confirm
                continue
            seq = app[0] & 0x0F
            body = b"".join(_attribute(*a) for a in ATTRIBUTES) if app[1] == 1 and app[2:5] == bytes([0, 254, 6]) else b""
            out = _link(bytes([0xC0 | seq, 0x81, 0x00, 0x00]) + body, f.destination, f.source, False)
            wire.append((False, out))
            conn.sendall(out)
    conn.close()


def _session_pcap(wire: list[tuple[bool, bytes]], path: Path) -> Path:
    """TCP segments for recorded (from master?, bytes) chunks, after a handshake."""
    m, o = MASTER, OUTSTATION
    seq = {True: 1001, False: 5001}

    def pkt(from_master: bool, flags: str, data: bytes = b"") -> Ether:
        a, b = (m, o) if from_master else (o, m)
        sp, dp = (49152, 20000) if from_master else (20000, 49152)
        p = Ether(src=a[1], dst=b[1]) / IP(src=a[0], dst=b[0]) / TCP(sport=sp, dport=dp, flags=flags, seq=seq[from_master], ack=seq[not from_master])
        seq[from_master] += len(data)
        return p / data if data else p

    pkts = [Ether(src=m[1], dst=o[1]) / IP(src=m[0], dst=o[0]) / TCP(sport=49152, dport=20000, flags="S", seq=1000),
            Ether(src=o[1], dst=m[1]) / IP(src=o[0], dst=m[0]) / TCP(sport=20000, dport=49152, flags="SA", seq=5000, ack=1001),
            pkt(True, "A")]
    pkts += [pkt(fm, "PA", data) for fm, data in wire]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i * 0.01
    wrpcap(str(path), pkts)
    return path


def test_dnp3_attributes_as_the_opendnp3_master_reads_them(tmp_path: Path) -> None:
    """The reference C++ stack's master (yadnp3) reads the same attribute encoding the decoder reads."""
    o = pytest.importorskip("opendnp3")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    wire: list[tuple[bool, bytes]] = []
    stop = threading.Event()
    th = threading.Thread(target=_fake_outstation, args=(srv, wire, stop), daemon=True)
    th.start()
    got: list[tuple[int, object]] = []
    done = threading.Event()

    class Soe(o.ISOEHandler):  # type: ignore[misc]
        def BeginFragment(self, *_a: object) -> None:
            pass

        def EndFragment(self, *_a: object) -> None:
            if got:
                done.set()

        def OnDeviceAttribute(self, info: object, aset: int, variation: int, value: object) -> None:
            t = int(value.type)  # type: ignore[attr-defined]
            got.append((variation, value.stringValue if t == 1 else value.unsignedValue))  # type: ignore[attr-defined]

    class App(o.IMasterApplication):  # type: ignore[misc]
        def AssignClassDuringStartup(self) -> bool:
            return False

    soe, app, listener = Soe(), App(), o.IChannelListener()
    manager = o.DNP3Manager(1)
    try:
        ch = manager.AddTCPClient("m", o.LogLevels(0), o.ChannelRetry.Default(), [o.IPEndpoint("127.0.0.1", srv.getsockname()[1])],
                                  "0.0.0.0", listener)
        mc = o.MasterStackConfig()
        mc.link.LocalAddr, mc.link.RemoteAddr = 1, 10
        mc.master.disableUnsolOnStartup = False
        master = ch.AddMaster("m", soe, app, mc)
        master.Enable()
        time.sleep(0.5)  # start-up integrity poll
        master.ScanAllObjects(o.GroupVariationID(0, 254), soe)
        assert done.wait(5), "the master did not read the attributes"
    finally:
        manager.Shutdown()
        stop.set()
        th.join(2)
        srv.close()
    assert got == [(v, x) for v, _, x in ATTRIBUTES]
    # the same session (the master's real requests, the outstation's answers) through the decoder
    path = _session_pcap(wire, tmp_path / "opendnp3_master.pcap")
    evs = [e for e in decode_file(str(path)) if e.dnp3 is not None and 0 in (e.dnp3.object_groups or ())]
    assert [e.dnp3.message_type for e in evs] == ["request", "response"] and evs[0].dnp3.object_types == ["g0v254"]
    resp = evs[1:]
    assert resp[0].event.action == "read" and resp[0].dnp3.request_frame == evs[0].evidence.frame
    assert [(o.variation, p.text if p.text is not None else p.value) for o in resp[0].dnp3.objects for p in o.points] == got


# ------------------------------------------------------------------------------------- PROFINET

PN_CRAFTED = REPO / "pcaps" / "profinet" / "profinet_plant_attack.pcap"
PN_CORPUS = CORPUS / "icsnpp-profinet-io-cm" / "traces"
PN_ITI = CORPUS / "iti-ics-security-tools" / "profinet"


def _tshark_dcp(tshark: str, path: Path) -> list[dict[str, str]]:
    """DCP Identify responses as Wireshark decodes them."""
    fields = ["eth.src", "pn_dcp.suboption_ip_ip", "pn_dcp.suboption_device_role", "pn_dcp.suboption_device_nameofstation",
              "pn_dcp.suboption_device_devicevendorvalue", "pn_dcp.suboption_vendor_id", "pn_dcp.suboption_device_id"]
    out = subprocess.run([tshark, "-r", str(path), "-Y", "pn_dcp.service_id == 5 && pn_dcp.service_type == 1", "-T", "fields",
                          *[x for f in fields for x in ("-e", f)]], capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines() if line.strip()]


def test_dcp_identify_identifies_the_device_at_the_ip_it_announces(tshark: str) -> None:
    rows = _tshark_dcp(tshark, need(PN_CRAFTED))
    assert rows and {r["pn_dcp.suboption_ip_ip"] for r in rows} == {"10.10.1.201"}
    r = rows[0]
    dev = _assets(PN_CRAFTED)["10.10.1.201"]
    assert dev.mac == r["eth.src"]
    assert dev.name == r["pn_dcp.suboption_device_nameofstation"] == "io-dev-1"
    assert dev.model == r["pn_dcp.suboption_device_devicevendorvalue"] == "ET200SP"
    assert int(r["pn_dcp.suboption_vendor_id"], 16) == 0x002A and dev.vendor == "Siemens" and dev.vendor_key == "siemens"
    dev_id = f"{int(r['pn_dcp.suboption_vendor_id'], 16):04x}:{int(r['pn_dcp.suboption_device_id'], 16):04x}"
    assert ("device_id", dev_id) in {(ev.field, ev.value) for ev in dev.evidence}
    assert "profinet" in dev.protocols and dev.role == "field_device"
    assert {ev.source for ev in dev.evidence if ev.field == "name"} == {"profinet.station_name"} and all(ev.frame for ev in dev.evidence if ev.source.startswith("profinet."))


def test_dcp_identify_on_corpus_captures(tshark: str) -> None:
    for path, ip, name, model, role in (
            (PN_ITI / "profinet-wireshark-bug.pcap", "192.168.0.11", None, "S7-300EC", "profinet_io_controller"),
            (PN_ITI / "PROFINET-RT-DCP" / "ChangeIPUsingDCP.pcap", "192.168.0.6", "X208-BORD", "INC", "profinet_io_device"),
            (PN_CORPUS / "profinet_io_cm_mixed_2.pcapng", "192.168.1.2", "versamax-pns11", "IC200PNS001", "profinet_io_device")):
        rows = [r for r in _tshark_dcp(tshark, need(path)) if r["pn_dcp.suboption_ip_ip"] == ip]
        assert rows, path
        a = _assets(path)[ip]
        assert a.model == model == rows[0]["pn_dcp.suboption_device_devicevendorvalue"], path
        assert a.mac == rows[0]["eth.src"]
        assert a.role == ("plc" if role == "profinet_io_controller" else "field_device"), path
        if name is not None:
            assert a.name == name == rows[0]["pn_dcp.suboption_device_nameofstation"]
        assert {1: "profinet_io_device", 2: "profinet_io_controller"}[int(rows[0]["pn_dcp.suboption_device_role"], 16)] == role
        assert role in {ev.value for ev in a.evidence if ev.field == "device_type" and ev.source == "profinet.device_role"}, path
        vid = int(rows[0]["pn_dcp.suboption_vendor_id"], 16)
        assert a.vendor == ("Siemens" if vid == 0x2A else f"PROFINET vendor 0x{vid:04x}"), path


def test_io_cm_object_uuid_names_the_device_not_the_controller(tshark: str) -> None:
    path = need(PN_CORPUS / "profinet_io_cm_connect.pcapng")
    dev_if = "dea00001-6c97-11d1-8271-00a02442df7d"  # PNIO device interface
    out = subprocess.run([tshark, "-r", str(path), "-Y", f"dcerpc.pkt_type == 0 && dcerpc.opnum == 0 && dcerpc.dg_if_id == {dev_if}",
                          "-T", "fields", "-e", "ip.dst", "-e", "dcerpc.obj_id"], capture_output=True, text=True, check=True).stdout
    devices: dict[str, set[int]] = {}
    for line in out.splitlines():
        dst, obj = line.split("\t")
        devices.setdefault(dst, set()).add(int(obj.replace("-", "")[-4:], 16))  # the object UUID ends with the vendor id
    assert len(devices) >= 5 and any(0x002A in v for v in devices.values())
    assets = _assets(path)
    for ip, vids in devices.items():
        got = {ev.value for ev in assets[ip].evidence if ev.field == "vendor" and ev.source == "profinet.vendor_id"}
        assert got == {"Siemens" if v == 0x2A else f"PROFINET vendor 0x{v:04x}" for v in vids}, ip
    assert assets["192.168.0.2"].vendor == "Siemens" and assets["192.168.0.2"].role == "field_device"
    controllers = {e.source.ip for e in decode_file(str(path)) if e.profinet is not None and e.profinet.operation_name == "connect"
                   and e.profinet.rpc_packet_type_name == "request"} - set(devices)
    assert controllers and not any(ev.source.startswith("profinet.") for c in controllers for ev in assets[c].evidence)


# ---------------------------------------------------------------------------------------- roles


def test_new_protocols_count_as_industrial_and_give_roles() -> None:
    assert {"mms", "goose", "fins", "profinet", "s7comm"} <= INDUSTRIAL
    assert infer_role(Behaviour(answered=3, served={"mms"}))[0] == "ied"
    assert infer_role(Behaviour(answered=3, served={"fins"}))[0] == "plc"
    assert infer_role(Behaviour(answered=3, served={"profinet"}))[0] == "field_device"
    assert infer_role(Behaviour(answered=3, served={"profinet", "s7comm"}))[0] == "plc"  # an S7 CPU also answers DCP
    assert infer_role(Behaviour(answered=1, served={"profinet"}, device_types={"profinet_io_controller"}))[0] == "plc"


def test_roles_on_corpus_traffic() -> None:
    fins = _assets(CORPUS / "icsnpp-omron-fins" / "traces" / "omron_fins_tcp_commands_responses.pcap")
    servers = [a for a in fins.values() if "fins" in a.protocols and a.ports]
    assert servers and all(a.role == "plc" for a in servers)
    mms = _assets(CORPUS / "iti-ics-security-tools" / "IEC61850" / "piccolo.pcap")
    ieds = [a for a in mms.values() if 102 in a.ports]
    assert ieds and all(a.role == "ied" for a in ieds)
    assert any(a.role != "ied" for a in mms.values())  # the MMS client is not an IED


# ------------------------------------------------------------------------------- pcaps/README.md


def test_readme_lists_the_crafted_captures_with_their_generator(tmp_path: Path) -> None:
    from tests.testbed.verify import write_readme

    root = tmp_path / "pcaps"
    for proto in ("goose", "profinet", "modbus"):
        for f in (REPO / "pcaps" / proto).glob(f"{proto}_plant_attack.*"):
            (root / proto).mkdir(parents=True, exist_ok=True)
            (root / proto / f.name).symlink_to(f)
    text = write_readme(root).read_text(encoding="utf-8")
    for proto in ("goose", "profinet"):
        row = next(line for line in text.splitlines() if line.startswith(f"| [`{proto}/{proto}_plant_attack.pcap`]"))
        assert "crafted with scapy" in row and f"{proto}_plant_attack.labels.yml" in row
        assert f".venv/bin/python -m tests.decoders.{proto}.scenario pcaps/{proto}" in text
        assert f"tests.testbed run {proto}_plant_attack" not in text
    modbus = next(line for line in text.splitlines() if line.startswith("| [`modbus/modbus_plant_attack.pcap`]"))
    assert "crafted" not in modbus and "tests.testbed run modbus_plant_attack" in text


def test_roles_on_the_mms_testbed_capture() -> None:
    """The libiec61850 IEDs of the testbed are IEDs; the station HMI that polls them is not."""
    import yaml

    pcap = need(REPO / "pcaps" / "mms" / "mms_plant_attack.pcap")
    hosts = yaml.safe_load(pcap.with_name("mms_plant_attack.labels.yml").read_text(encoding="utf-8"))["hosts"]
    assets = _assets(pcap)
    assert {assets[hosts[h]["ip"]].role for h in ("plc1", "plc2")} == {"ied"}
    assert assets[hosts["hmi"]["ip"]].role == "hmi"
