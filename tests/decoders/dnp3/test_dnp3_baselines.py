"""Our DNP3 events vs the Zeek, ICSNPP and suricata-verify expectations in the shared corpus.

- Zeek/ICSNPP dnp3.log: Zeek writes one row per response (request function kept from the last
  request of the connection, `-` when none) and one at connection end for a request left over; we
  rebuild those rows from our events and compare them as multisets (ports, functions, IIN).
- Zeek event output: application request/response headers (is_orig, control byte, function, IIN).
- ICSNPP dnp3_control.log (CROB points) and dnp3_objects.log (object headers of reads/responses).
- suricata-verify test.yaml: every EVE dnp3 record with a pcap_cnt, key by key where we carry the field.
Accepted differences: expected_differences.yml (section baselines).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from pipeline.schema import Event
from sensors.engine import decode_file

EXPECTED = Path(__file__).parent / "expected_differences.yml"
ZEEK_NAMES = {
    "initialize_application": "INITIALIZE_APPL",
    "start_application": "START_APPL",
    "stop_application": "STOP_APPL",
    "save_configuration": "SAVE_CONFIG",
    "authenticate_req_nr": "AUTHENTICATE_ERR",
}


def zname(name: str | None) -> str:
    return ZEEK_NAMES.get(name or "", (name or "-").upper())


def events(path: Path) -> list[Event]:
    return [e for e in decode_file(path) if e.event.dataset == "dnp3" and e.anomaly is None and e.dnp3 is not None]


def log_rows(path: Path) -> Iterator[dict[str, str]]:
    fields: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        if line and not line.startswith("#"):
            yield dict(zip(fields, line.split("\t")))


def orig_port(e: Event) -> int:
    assert e.network is not None and e.source is not None and e.destination is not None
    return int((e.source.port if e.network.is_orig else e.destination.port) or 0)


def zeek_rows(evs: list[Event]) -> Counter[tuple[str, ...]]:
    """Zeek's dnp3.log rows rebuilt from our events (its main.zeek state machine)."""
    rows: Counter[tuple[str, ...]] = Counter()
    state: dict[str, str] = {}
    for e in evs:
        d = e.dnp3
        assert d is not None and e.network is not None
        if d.message_type == "link":
            continue
        cid = e.network.community_id or ""
        if d.message_type == "request":
            state[cid] = zname(d.function_name)
        else:
            rows[(str(orig_port(e)), state.pop(cid, "-"), zname(d.function_name), str(d.iin))] += 1
    for cid, fc in state.items():
        port = next(str(orig_port(e)) for e in evs if e.network is not None and e.network.community_id == cid)
        rows[(port, fc, "-", "-")] += 1
    return rows


def accepted() -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in (yaml.safe_load(EXPECTED.read_text()) or {}).get("baselines", []):
        assert entry.get("why"), f"{EXPECTED}: entry {entry.get('key')} has no reason"
        out[(entry["baseline"], entry["key"])] = entry
    return out


class Diffs:
    def __init__(self) -> None:
        self.found: dict[tuple[str, str], str] = {}
        self.checked: Counter[str] = Counter()
        self.agreed: Counter[str] = Counter()

    def compare(self, baseline: str, key: str, theirs: object, ours: object) -> None:
        self.checked[baseline] += 1
        if theirs == ours:
            self.agreed[baseline] += 1
        else:
            self.found[(baseline, key)] = f"theirs={theirs!r} ours={ours!r}"

    def multiset(self, baseline: str, theirs: Counter[Any], ours: Counter[Any]) -> None:
        for key in sorted(set(theirs) | set(ours), key=str):
            self.compare(baseline, " ".join(map(str, key))[:160], theirs[key], ours[key])


# ---------------------------------------------------------------- Zeek

ZEEK_TESTS = {
    "dnp3_del_measure": "dnp3_del_measure.pcap", "dnp3_en_spon": "dnp3_en_spon.pcap", "dnp3_file_del": "dnp3_file_del.pcap",
    "dnp3_file_read": "dnp3_file_read.pcap", "dnp3_file_write": "dnp3_file_write.pcap", "dnp3_link_only": "dnp3_link_only.pcap",
    "dnp3_read": "dnp3_read.pcap", "dnp3_rec_time": "dnp3_rec_time.pcap", "dnp3_select_operate": "dnp3_select_operate.pcap",
    "dnp3_udp_en_spon": "dnp3_udp_en_spon.pcap", "dnp3_udp_read": "dnp3_udp_read.pcap",
    "dnp3_udp_select_operate": "dnp3_udp_select_operate.pcap", "dnp3_udp_write": "dnp3_udp_write.pcap",
    "dnp3_write": "dnp3_write.pcap", "events": "dnp3.pcap",
}  # fmt: skip
_REQ = re.compile(r"^dnp3_application_request_header, ([TF]), (\d+), (\d+)$")
_RESP = re.compile(r"^dnp3_application_response_header, ([TF]), (\d+), (\d+), (\d+)$")


def zeek(corpus: Path, d: Diffs) -> None:
    for test, trace in ZEEK_TESTS.items():
        base = corpus / "zeek" / "baseline" / f"scripts.base.protocols.dnp3.{test}"
        evs = events(corpus / "zeek" / "traces" / "dnp3" / trace)
        if (base / "dnp3.log").is_file():
            theirs = Counter((r["id.orig_p"], r["fc_request"], r["fc_reply"], r["iin"]) for r in log_rows(base / "dnp3.log"))
            d.multiset(f"zeek/{test}/dnp3.log", theirs, zeek_rows(evs))
        out: Counter[tuple[str, ...]] = Counter()
        for line in (base / "output").read_text().splitlines():
            if m := _REQ.match(line):
                out[("request", *m.groups())] += 1
            elif m := _RESP.match(line):
                out[("response", *m.groups())] += 1
        ours: Counter[tuple[str, ...]] = Counter()
        for e in evs:
            x = e.dnp3
            assert x is not None and e.network is not None
            if x.message_type == "link":
                continue
            ctl = str((0x80 if x.app_fir else 0) | (0x40 if x.app_fin else 0) | (0x20 if x.app_con else 0) | (0x10 if x.app_uns else 0) | (x.sequence or 0))
            orig = "T" if e.network.is_orig else "F"
            if x.iin is None:
                ours[("request", orig, ctl, str(x.function_code))] += 1
            else:
                ours[("response", orig, ctl, str(x.function_code), str(x.iin))] += 1
        d.multiset(f"zeek/{test}/output", out, ours)


# ---------------------------------------------------------------- ICSNPP

ICSNPP_OBJECTS = {(60, 1): "Class 0 Data", (60, 2): "Class 1 Data", (60, 3): "Class 2 Data", (60, 4): "Class 3 Data",
                  (1, 2): "Binary Input With Status", (10, 2): "Binary Output Status", (30, 2): "16-Bit Analog Input",
                  (40, 2): "16-Bit Analog Output Status"}  # fmt: skip


def icsnpp(corpus: Path, d: Diffs) -> None:
    base = corpus / "icsnpp-dnp3" / "baseline" / "analyzer.basic"
    evs = events(corpus / "icsnpp-dnp3" / "traces" / "dnp3_example.pcap")
    theirs = Counter((r["id.orig_p"], r["fc_request"], r["fc_reply"], r["iin"]) for r in log_rows(base / "dnp3.log"))
    d.multiset("icsnpp/dnp3.log", theirs, zeek_rows(evs))
    control: Counter[tuple[str, ...]] = Counter()
    for r in log_rows(base / "dnp3_control.log"):
        control[(r["is_orig"], r["block_type"], r["function_code"], r["index_number"], r["trip_control_code"], r["operation_type"], r["clear_bit"], r["execute_count"], r["on_time"], r["off_time"], r["status_code"])] += 1
    ours: Counter[tuple[str, ...]] = Counter()
    objects: Counter[tuple[str, ...]] = Counter()
    for e in evs:
        x = e.dnp3
        assert x is not None and e.network is not None
        orig = "T" if e.network.is_orig else "F"
        for o in x.objects or ():
            if o.group == 12 and o.variation == 1:
                for p in o.points or ():
                    ours[(orig, "Control Relay Output Block", zname(x.function_name), str(p.index), (p.trip_close_name or "").title(), (p.operation_name or "").replace("_", " ").title(),
                          "T" if p.clear else "F", str(p.count), str(p.on_time), str(p.off_time), (p.status_name or "").title() if x.message_type != "request" else "-")] += 1  # fmt: skip
            elif x.function_name in ("read", "response"):
                name = ICSNPP_OBJECTS.get((o.group, o.variation), f"g{o.group}v{o.variation}")
                rng = (str(o.count), str(o.range_start), str(o.range_stop)) if o.range_start is not None else ("-", "-", "-")
                objects[(orig, zname(x.function_name), name, *rng)] += 1
    d.multiset("icsnpp/dnp3_control.log", control, ours)
    theirs_o = Counter((r["is_orig"], r["function_code"], r["object_type"], r["object_count"], r["range_low"], r["range_high"]) for r in log_rows(base / "dnp3_objects.log"))
    d.multiset("icsnpp/dnp3_objects.log", theirs_o, objects)


# ---------------------------------------------------------------- suricata-verify

_IDX = re.compile(r"\[(\d+)\]")


def suricata_value(e: Event, key: str) -> object:
    """Our value for one EVE key (`_MISSING` where we do not carry that field)."""
    x = e.dnp3
    assert x is not None
    idx = [int(i) for i in _IDX.findall(key)]
    k = _IDX.sub("[]", key)
    simple: dict[str, object] = {
        "dnp3.src": x.source, "dnp3.dst": x.destination, "dnp3.type": x.message_type,
        "dnp3.control.dir": x.link_dir, "dnp3.control.pri": x.link_prm, "dnp3.control.fcb": bool(x.link_fcb),
        "dnp3.control.fcv": bool(x.link_fcv or x.link_dfc), "dnp3.control.function_code": x.link_function_code,
        "dnp3.application.function_code": x.function_code, "dnp3.application.control.sequence": x.sequence,
        "dnp3.application.control.fir": x.app_fir, "dnp3.application.control.fin": x.app_fin,
        "dnp3.application.control.con": x.app_con, "dnp3.application.control.uns": x.app_uns,
        "dnp3.application.complete": True,
    }  # fmt: skip
    if k in simple:
        return simple[k]
    if k in ("dnp3.iin.indicators[]", "dnp3.response.iin.indicators[]"):
        names = x.iin_names or []
        return names[idx[0]] if idx[0] < len(names) else None
    if not k.startswith("dnp3.application.objects[]"):
        return _MISSING
    objs = x.objects or []
    if idx[0] >= len(objs):
        return None
    o = objs[idx[0]]
    field = k.split(".")[-1]
    if ".points[]." not in k:
        return {"group": o.group, "variation": o.variation, "qualifier": o.qualifier, "prefix_code": o.prefix_code, "range_code": o.range_code,
                "start": o.range_start or 0, "stop": o.range_stop or 0, "count": o.count or 0}.get(field, _MISSING)  # fmt: skip
    pts = o.points or []
    if o.group != 12 or idx[1] >= len(pts):
        return _MISSING  # we decode points of g12 only among the groups suricata-verify checks
    p = pts[idx[1]]
    return {"index": p.index, "prefix": p.index, "count": p.count, "cr": int(bool(p.clear)), "qu": int(bool(p.queue)), "op_type": p.operation_type,
            "tcc": p.trip_close_code, "ontime": p.on_time, "offtime": p.off_time, "status_code": p.status_code}.get(field, _MISSING)  # fmt: skip


_MISSING = object()


def suricata(corpus: Path, d: Diffs) -> None:
    root = corpus / "suricata-verify" / "tests" / "dnp3"
    for test_yaml in sorted(root.glob("*/test.yaml")):
        spec = yaml.safe_load(test_yaml.read_text()) or {}
        pcap = test_yaml.parent / spec["pcap"] if spec.get("pcap") else next(iter(sorted(test_yaml.parent.glob("*.pcap"))), None)
        if pcap is None or not pcap.is_file():
            continue
        name = f"suricata/{test_yaml.parent.name}"
        evs: list[Event] | None = None
        used: set[int] = set()
        for check in spec.get("checks") or []:
            flt = (check or {}).get("filter") or {}
            match = flt.get("match") or {}
            if match.get("event_type") != "dnp3":
                continue
            if evs is None:
                evs = [e for e in events(pcap) if e.dnp3 is not None and e.dnp3.message_type != "link"]
            if "pcap_cnt" not in match:
                want = {k: v for k, v in match.items() if k.startswith("dnp3.")}
                n = sum(1 for e in evs if all(suricata_value(e, k) == v for k, v in want.items()))
                d.compare(name, f"count {want}", flt.get("count"), n)
                continue
            # Suricata (IDS mode) parses TCP data when the peer ACKs it: pcap_cnt is the packet that
            # acknowledged the message, so the message is ours latest at or before that packet.
            frame = match["pcap_cnt"]
            cands = [e for e in evs if e.evidence is not None and (e.evidence.frame or 0) <= frame and e.dnp3 is not None
                     and e.dnp3.function_code == match.get("dnp3.application.function_code") and id(e) not in used]  # fmt: skip
            if not cands:
                d.compare(name, f"frame {frame} record", "present", "absent")
                continue
            e = max(cands, key=lambda ev: ev.evidence.frame if ev.evidence and ev.evidence.frame else 0)
            used.add(id(e))
            for k, v in match.items():
                if not k.startswith("dnp3."):
                    continue
                ours = suricata_value(e, k)
                if ours is _MISSING:
                    continue
                d.compare(name, f"frame {frame} {k}", v, ours)


def test_dnp3_agrees_with_zeek_icsnpp_suricata(corpus: Path) -> None:
    d = Diffs()
    zeek(corpus, d)
    icsnpp(corpus, d)
    suricata(corpus, d)
    allowed = accepted()
    width = max(len(b) for b in d.checked)
    print(f"\n{'baseline':<{width}}  checked  agree  accepted  unexplained")
    for b in d.checked:
        acc = sum(1 for (bb, k) in d.found if bb == b and (bb, k) in allowed)
        bad = sum(1 for (bb, k) in d.found if bb == b and (bb, k) not in allowed)
        print(f"{b:<{width}}  {d.checked[b]:>7}  {d.agreed[b]:>5}  {acc:>8}  {bad:>11}")
    total, agree = sum(d.checked.values()), sum(d.agreed.values())
    print(f"{'TOTAL':<{width}}  {total:>7}  {agree:>5}   ({agree / max(total, 1):.2%})")
    unexplained = [f"{b} | {k} | {v}" for (b, k), v in sorted(d.found.items()) if (b, k) not in allowed]
    stale = sorted(k for k in allowed if k not in d.found)
    assert not unexplained, "differences not in expected_differences.yml (baselines):\n" + "\n".join(unexplained)
    assert not stale, f"baseline entries in expected_differences.yml that no longer happen: {stale}"
