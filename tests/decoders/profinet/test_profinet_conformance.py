"""PROFINET decoders vs tshark (DCP and IO CM, per frame) and vs the ICSNPP profinet_io_cm.log baselines
(per DCE/RPC PDU) on every corpus trace; prints agreement tables, asserts >= 99% and that every
difference is the one listed (with its reason) in expected_differences.yml."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.schema import Event, json_schema, to_dict
from sensors.engine import DecodeReport, decode_file

HERE = Path(__file__).resolve().parent
EXPECTED = yaml.safe_load((HERE / "expected_differences.yml").read_text(encoding="utf-8"))
CM = "icsnpp-profinet-io-cm"
TRACES = [f"{CM}/traces/{n}" for n in (
    "profinet_io_cm.pcap", "profinet_io_cm_connect.pcapng", "profinet_io_cm_connect_minimal.pcapng", "profinet_io_cm_control.pcapng",
    "profinet_io_cm_device.pcapng", "profinet_io_cm_mixed_1.pcap", "profinet_io_cm_mixed_2.pcapng", "profinet_io_cm_read.pcapng",
    "profinet_io_cm_release.pcapng", "profinet_io_cm_write.pcapng")] + [
    "iti-ics-security-tools/profinet/profinet.pcap", "iti-ics-security-tools/profinet/Profinet_Failed.pcap",
    "iti-ics-security-tools/profinet/profinet-wireshark-bug.pcap", "iti-ics-security-tools/profinet/PROFINET-RT-DCP/ChangeIPUsingDCP.pcap",
    "iti-ics-security-tools/profinet/PROFINET-RT-DCP/PROFINET-RT.pcap"]
_cache: dict[Path, list[Event]] = {}


def _events(path: Path) -> list[Event]:
    if path not in _cache:
        rep = DecodeReport()
        _cache[path] = [e for e in decode_file(path, report=rep) if e.event.dataset == "profinet"]
        assert rep.decoder_errors == 0, path
    return _cache[path]


@pytest.fixture(scope="module")
def traces(corpus: Path) -> list[Path]:
    paths = [corpus / t for t in TRACES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"corpus traces missing: {missing[0]}")
    return paths


def _table(title: str, rows: list[tuple[str, int, int]]) -> float:
    print(f"\n{title}\n{'trace':45} {'agree':>7} {'differ':>7}")
    for name, a, d in rows:
        print(f"{name:45} {a:7d} {d:7d}")
    ta, td = sum(r[1] for r in rows), sum(r[2] for r in rows)
    pct = 100.0 * ta / max(ta + td, 1)
    print(f"{'total':45} {ta:7d} {td:7d}  agreement {pct:.2f}%")
    return pct


def _check(section: str, found: dict[str, int]) -> None:
    want = {d["file"]: int(d["count"]) for d in EXPECTED.get(section) or []}
    found = {k: v for k, v in found.items() if v}
    problems = [f"unlisted difference {k}: {v}" for k, v in found.items() if k not in want]
    problems += [f"listed difference {k}: count {v} but found {found.get(k, 0)}" for k, v in want.items() if found.get(k) != v]
    assert not problems, "\n".join(problems)


def test_every_trace_decodes_and_validates(traces: list[Path]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in traces:
        for e in _events(path)[::5]:
            errors = sorted(validator.iter_errors(to_dict(e)), key=str)
            assert not errors, f"{path.name} frame {e.evidence.frame if e.evidence else '?'}: {errors[0].message}"


def _mine(e: Event) -> tuple[object, ...]:
    p = e.profinet
    assert p is not None
    if p.service == "io_cm":
        return ("io_cm", p.rpc_packet_type, p.operation_number, p.sequence_number, p.activity_uuid)
    if p.service == "rt_alarm":
        return ("rt_alarm", p.rta_pdu_type, p.alarm_type)
    return ("dcp", p.dcp_service_id, p.dcp_service_type, p.xid)


def test_against_tshark(traces: list[Path], tshark: str) -> None:
    rows, found = [], {}
    for path in traces:
        mine: dict[int, list[tuple[object, ...]]] = {}
        for e in _events(path):
            if e.profinet is not None and e.anomaly is None:
                mine.setdefault(e.evidence.frame or 0, []).append(_mine(e))  # type: ignore[union-attr]
        out = subprocess.run(
            [tshark, "-r", str(path), "-Y", "pn_dcp or dcerpc.ver == 4 or pn_rt.frame_id == 0xfc01 or pn_rt.frame_id == 0xfe01", "-T", "fields", "-E", "occurrence=f",
             "-e", "frame.number", "-e", "dcerpc.pkt_type", "-e", "dcerpc.opnum", "-e", "dcerpc.dg_seqnum", "-e", "dcerpc.dg_act_id",
             "-e", "pn_dcp.service_id", "-e", "pn_dcp.service_type", "-e", "pn_dcp.xid", "-e", "pn_io.pdu_type.type", "-e", "pn_io.alarm_type"],
            capture_output=True, text=True, check=True, timeout=120).stdout
        agree = differ = 0
        seen = set()
        for line in out.splitlines():
            fr, pt, op, sq, act, sid, st, xid, rta, alarm = (line.split("\t") + [""] * 10)[:10]
            n = int(fr)
            seen.add(n)
            if rta:
                theirs = ("rt_alarm", int(rta, 16), int(alarm, 16) if alarm.startswith("0x") else (int(alarm) if alarm else None))
            elif sid:
                theirs: tuple[object, ...] = ("dcp", int(sid), int(st), int(xid, 16) if xid.startswith("0x") else int(xid))
            else:
                ptype = int(pt)
                theirs = ("io_cm", ptype, int(op) if op and ptype in (0, 2, 3) else None, int(sq) if sq else None, act or None)
            if theirs in mine.get(n, []):
                agree += 1
            else:
                differ += 1
                print(f"  {path.name} frame {n}: tshark {theirs} mine {mine.get(n)}")
        extra = set(mine) - seen
        differ += len(extra)
        rows.append((path.name, agree, differ))
        found[path.name] = differ
    assert _table("PROFINET vs tshark (DCP: service, type, xid; alarms: RTA PDU type, alarm type; IO CM: packet type, opnum, sequence, activity)", rows) >= 99.0
    _check("tshark", found)


def _log(path: Path) -> list[dict[str, str]]:
    fields: list[str] = []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif not line.startswith("#") and line.strip():
            rows.append(line.split("\t"))
    return [dict(zip(fields, r)) if fields else {"_": "\t".join(r)} for r in rows]


_OPS = {"connect": "Connect", "release": "Release", "read": "Read", "write": "Write", "control": "Control", "read_implicit": "Read Implicit"}
_TYPES = {"request": "Request", "response": "Response", "fault": "Fault", "ping": "Ping", "working": "Working", "nocall": "No call Response to Ping",
          "reject": "Reject", "ack": "Ack", "cl_cancel": "Cl_cancel", "fack": "Fragment Acknowledge", "cancel_ack": "Cancel_ack"}


def test_against_icsnpp(traces: list[Path], corpus: Path) -> None:
    """ICSNPP's log (zeek-cut: orig/resp, source/destination, proto, rpc_version, packet_type, flags ...,
    sequence_num, operation_num, interface_hint, activity_hint, len_of_body, fragment_num, ...)."""
    rows, found = [], {}
    for path in traces[:10]:
        base = corpus / CM / "baseline" / f"tests.{path.name.split('.')[0]}" / "profinet_io_cm.log"
        theirs = Counter()
        for r in _log(base):
            c = r["_"].split("\t")
            # zeek-cut columns (BASELINE_NOTES.md), 0-based: 4-7 source/destination host and port, 10 packet_type,
            # 30 sequence_num, 31 operation_num, 34 len_of_body, 35 fragment_num
            theirs[(c[4], c[5], c[6], c[7], c[10], c[30], c[31], c[34], c[35])] += 1
        mine = Counter()
        for e in _events(path):
            p = e.profinet
            if p is None or p.service != "io_cm" or e.anomaly is not None:
                continue
            assert e.source is not None and e.destination is not None
            op = _OPS.get(p.operation_name or "", "-") if p.operation_name else None
            mine[(e.source.ip, str(e.source.port), e.destination.ip, str(e.destination.port), _TYPES.get(p.rpc_packet_type_name or "", "?"),
                  str(p.sequence_number), op, str(p.body_length), str(p.fragment_number))] += 1
        # ICSNPP names the opnum of every PDU; we only of requests, responses and faults
        for k in list(theirs):
            if k[4] not in ("Request", "Response", "Fault"):
                theirs[k[:6] + (None,) + k[7:]] += theirs.pop(k)
        agree = sum((theirs & mine).values())
        differ = sum((theirs - mine).values()) + sum((mine - theirs).values())
        for k, v in (theirs - mine).items():
            print(f"  {path.name} missing {v}x {k}")
        for k, v in (mine - theirs).items():
            print(f"  {path.name} extra {v}x {k}")
        rows.append((path.name, agree, differ))
        found[path.name] = differ
    assert _table("PROFINET IO CM vs ICSNPP profinet_io_cm.log (per PDU: endpoints, type, sequence, opnum, body length, fragment)", rows) >= 99.0
    _check("icsnpp", found)
