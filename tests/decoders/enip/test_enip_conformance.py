"""Our EtherNet/IP + CIP events vs tshark, ICSNPP (Zeek) baselines and suricata-verify expectations on the shared corpus.

Each comparison prints an agreement table (run with -s to see it). Accepted differences live in
expected_differences.yml with their reasons; a test fails on an unlisted difference and on a listed
one that no longer occurs.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml

from pipeline import schema
from tests.decoders.enip.conftest import ENIP_TRACES

EXPECTED: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "expected_differences.yml").read_text(encoding="utf-8"))
TABLE: list[str] = []

Rec = tuple[Any, ...]


def _agree(name: str, ours: Counter[Rec], theirs: Counter[Rec]) -> tuple[list[Rec], list[Rec]]:
    both = sum((ours & theirs).values())
    total = max(sum(ours.values()), sum(theirs.values()), 1)
    TABLE.append(f"{name:<70} ours={sum(ours.values()):>6} peer={sum(theirs.values()):>6} agree={both:>6} ({100.0 * both / total:6.2f}%)")
    print(TABLE[-1])
    return sorted((ours - theirs).elements()), sorted((theirs - ours).elements())


def _check(key: str, only_ours: list[Rec], only_peer: list[Rec]) -> None:
    """Differences must be exactly those listed under `key` (by count) in expected_differences.yml."""
    exp = (EXPECTED.get(key) or {})
    assert len(only_ours) == exp.get("only_ours", 0), f"{key}: only ours {only_ours[:10]} (expected {exp.get('only_ours', 0)}: {exp.get('reason')})"
    assert len(only_peer) == exp.get("only_peer", 0), f"{key}: only peer {only_peer[:10]} (expected {exp.get('only_peer', 0)}: {exp.get('reason')})"


# ---------------------------------------------------------------- tshark


# tshark gives TCP port 1102 (the client's ephemeral port here) to another dissector, which wins over
# 44818 because it is the lower port: it then decodes no EtherNet/IP at all. Decode-as fixes that.
TSHARK_ARGS = {"iti-ics-security-tools/openics/EIP-ControlProtocolChangeAttempt.pcap": ["-d", "tcp.port==1102,enip"]}


def _tshark(tshark: str, path: Path, extra: list[str]) -> tuple[Counter[Rec], Counter[Rec], Counter[Rec]]:
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), *extra, "-Y", "enip or cipio", "-T", "fields", "-E", "occurrence=a",
         "-e", "frame.number", "-e", "enip.command", "-e", "cip.sc", "-e", "cip.rr", "-e", "cipio", "-e", "udp.port"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    enip: Counter[Rec] = Counter()
    cip: Counter[Rec] = Counter()
    io: Counter[Rec] = Counter()
    for line in out.splitlines():
        frame, cmds, scs, rrs, _cipio, uports = (line.split("\t") + [""] * 6)[:6]
        f = int(frame)
        if "2222" in uports.split(","):
            io[(f,)] += 1
            continue
        for c in filter(None, cmds.split(",")):
            enip[(f, int(c, 16))] += 1
        rr = rrs.split(",")
        for k, s in enumerate(filter(None, scs.split(","))):
            cip[(f, int(s, 16), int(rr[k], 16) if k < len(rr) and rr[k] else -1)] += 1
    return enip, cip, io


def _ours(events: tuple[Any, ...]) -> tuple[Counter[Rec], Counter[Rec], Counter[Rec]]:
    enip: Counter[Rec] = Counter()
    cip: Counter[Rec] = Counter()
    io: Counter[Rec] = Counter()
    for e in events:
        if e.anomaly is not None or e.evidence is None:
            continue
        f = e.evidence.frame
        if e.event.dataset == "cip_io":
            io[(f,)] += 1
        elif e.event.dataset == "enip" and e.enip is not None:
            if e.cip is None or (e.cip.embedded_in is None and e.cip.index is None):
                enip[(f, e.enip.command_code)] += 1
            if e.cip is not None:
                cip[(f, e.cip.service_code, 1 if e.cip.message_type == "response" else 0)] += 1
    return enip, cip, io


@pytest.mark.tshark
@pytest.mark.parametrize("trace", ENIP_TRACES)
def test_agrees_with_tshark(corpus: Path, tshark: str, decoded: Any, trace: str) -> None:
    path = corpus / trace
    if not path.is_file():
        pytest.skip(f"{trace} not present")
    t_enip, t_cip, t_io = _tshark(tshark, path, TSHARK_ARGS.get(trace, []))
    o_enip, o_cip, o_io = _ours(decoded(path))
    for what, o, t in (("enip", o_enip, t_enip), ("cip", o_cip, t_cip), ("cip_io", o_io, t_io)):
        if not o and not t:
            continue
        a, b = _agree(f"tshark {what:<6} {trace}", o, t)
        _check(f"tshark {what} {trace}", a, b)


# ---------------------------------------------------------------- ICSNPP baselines


def _rows(p: Path) -> list[list[str]]:
    return [ln.rstrip("\n").split("\t") for ln in p.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]


def _h(x: str) -> Any:
    return None if x in ("-", "") else int(x, 16) if x.startswith("0x") else int(x) if x.isdigit() else x


BASELINES = [
    ("icsnpp-enip/traces/enip_cip_example.pcap", "icsnpp-enip/baseline/analyzer.basic"),
    ("icsnpp-enip/traces/multiple_service_packet_cip.pcapng", "icsnpp-enip/baseline/analyzer.multiple_service_request"),
    ("icsnpp-enip/traces/set_attribute_single_service_cip.pcapng", "icsnpp-enip/baseline/analyzer.set_attr_single_service"),
]


@pytest.mark.parametrize(("trace", "base"), BASELINES, ids=[b.rsplit("/", 1)[1] for _, b in BASELINES])
def test_agrees_with_icsnpp(corpus: Path, decoded: Any, trace: str, base: str) -> None:
    events = decoded(corpus / trace)
    bdir = corpus / base
    # enip.log: is_orig, command, length, session handle, status, sender context, options
    peer: Counter[Rec] = Counter()
    for r in _rows(bdir / "enip.log"):
        peer[(r[6] == "T", _h(r[11]), int(r[13]), _h(r[14]), r[15], r[16][2:], _h(r[17]))] += 1
    ours: Counter[Rec] = Counter()
    for e in events:
        n = e.enip
        if e.event.dataset == "enip" and n is not None and e.anomaly is None and (e.cip is None or (e.cip.embedded_in is None and e.cip.index is None)):
            ours[(e.network.is_orig, n.command_code, n.length, n.session_handle, "Success" if n.status_code == 0 else n.status_name, n.sender_context, n.options)] += 1
    _check(f"icsnpp enip.log {base}", *_agree(f"icsnpp enip.log {base}", ours, peer))
    # cip.log: is_orig, sequence count, direction, service, status, class, instance, attribute (the last three on requests)
    peer = Counter()
    for r in _rows(bdir / "cip.log"):
        peer[(r[6] == "T", _h(r[11]), r[12], _h(r[13]), _h(r[15]), _h(r[19]), _h(r[21]), _h(r[22]))] += 1
    ours = Counter()
    for e in events:
        c = e.cip
        if c is None or e.anomaly is not None or c.service_name == "unconnected_send":
            continue
        req = c.message_type == "request"
        ours[(e.network.is_orig, c.sequence_count, c.message_type, c.service_code, c.status_code,
              c.class_id if req else None, c.instance_id if req else None, c.attribute_id if req else None)] += 1
    _check(f"icsnpp cip.log {base}", *_agree(f"icsnpp cip.log {base}", ours, peer))
    if (bdir / "cip_io.log").is_file():
        peer = Counter((r[6] == "T", _h(r[11]), int(r[12]), int(r[13]), r[14]) for r in _rows(bdir / "cip_io.log"))
        ours = Counter((e.network.is_orig, e.enip.connection_id, e.enip.sequence_number, e.enip.io_data_length, e.enip.io_data)
                       for e in events if e.event.dataset == "cip_io" and e.enip is not None and e.anomaly is None)
        _check(f"icsnpp cip_io.log {base}", *_agree(f"icsnpp cip_io.log {base}", ours, peer))
    if (bdir / "cip_identity.log").is_file():
        peer = Counter(tuple(r[6:7] + r[11:]) for r in _rows(bdir / "cip_identity.log"))
        ours = Counter()
        for e in events:
            i = e.enip.identity if e.enip is not None else None
            if i is None:
                continue
            ours[("T" if e.network.is_orig else "F", str(i.encapsulation_version), i.socket_address, str(i.socket_port), str(i.vendor_id), i.vendor_name,
                  str(i.device_type), i.device_type_name, str(i.product_code), i.revision, f"0x{i.status:04x}", i.serial_number, i.product_name,
                  f"0x{i.state:04x}")] += 1
        _check(f"icsnpp cip_identity.log {base}", *_agree(f"icsnpp cip_identity.log {base}", ours, peer))


# ---------------------------------------------------------------- suricata-verify


def test_agrees_with_suricata_verify(corpus: Path, decoded: Any) -> None:
    """The EVE `enip` records suricata-verify expects (enip-frames, enip-log-identity), as counts of matching events."""
    ex = decoded(corpus / "suricata-verify/tests/enip-keywords/enip_cip_example.pcap")
    # enip-frames: 41 requests Multiple Service Packet to Message Router class 2 instance 1
    msp = sum(1 for e in ex if e.cip is not None and e.anomaly is None and e.cip.message_type == "request"
              and e.cip.service_name == "multiple_service_packet" and e.cip.class_id == 2 and e.cip.instance_id == 1)
    # enip-log-identity: 1 list_identity transaction, response success, identity 4.3 / 1756-ENBT/A / Rockwell
    ident = decoded(corpus / "suricata-verify/tests/enip-alert/enip_test1.pcap")
    ids = [e for e in ident if e.enip is not None and e.enip.identity is not None and e.enip.command_name == "list_identity"
           and e.enip.status_code == 0 and e.enip.request_frame is not None]
    got = {"enip-frames msp": msp, "enip-log-identity": len(ids)}
    TABLE.append(f"suricata-verify {got} (expected 41 and 1)")
    print(TABLE[-1])
    assert got == {"enip-frames msp": 41, "enip-log-identity": 1}
    i = ids[0].enip.identity
    assert (i.revision, i.product_name, i.vendor_name) == ("4.3", "1756-ENBT/A", "Rockwell Automation/Allen-Bradley")


# ---------------------------------------------------------------- every capture decodes; events validate


@pytest.mark.parametrize("trace", ENIP_TRACES)
def test_decodes_and_validates(corpus: Path, decoded: Any, trace: str) -> None:
    path = corpus / trace
    if not path.is_file():
        pytest.skip(f"{trace} not present")
    events = decoded(path)
    validator = jsonschema.Draft202012Validator(schema.json_schema())
    mine = [e for e in events if e.event.dataset in ("enip", "cip_io")]
    for e in mine[:400]:  # cap the per-file cost: the schema is the same for every event
        validator.validate(msgspec.json.decode(schema.encode(e)))
    assert not [e for e in mine if e.anomaly is not None and e.anomaly.code == "decoder_error"]


def test_print_table() -> None:
    print("\n".join(TABLE))
