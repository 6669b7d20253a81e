"""IEC 104 on every corpus capture: per-APDU agreement with tshark, decode without exception, schema-valid events.

An APDU is compared as (frame, APCI type, N(S)/U function, N(R), type id, cause, common address,
number of objects, IOAs). Several APDUs per frame are matched as a multiset. Accepted differences
live in expected_differences.yml (`tshark`) with their reasons.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from pipeline.schema import Event, json_schema
from sensors.engine import decode_file

pytestmark = pytest.mark.tshark

Key = tuple[Any, ...]


def _first(it: dict[str, list[str]], k: str) -> int | None:
    v = it.get(k)
    return int(v[0], 0) if v else None


def _ts_key(it: dict[str, list[str]]) -> Key:
    t = _first(it, "iec60870_104.type")
    typ = {0: "I", 1: "S", 3: "U"}.get(-1 if t is None else t, "?")
    if typ == "I":
        return ("I", _first(it, "iec60870_104.tx"), _first(it, "iec60870_104.rx"), _first(it, "iec60870_asdu.typeid"),
                _first(it, "iec60870_asdu.causetx"), _first(it, "iec60870_asdu.addr"), _first(it, "iec60870_asdu.numix"),
                tuple(int(x) for x in it.get("iec60870_asdu.ioa", [])))  # fmt: skip
    if typ == "S":
        return ("S", None, _first(it, "iec60870_104.rx"), None, None, None, None, ())
    if typ == "U":
        return ("U", _first(it, "iec60870_104.utype"), None, None, None, None, None, ())
    return ("?", None, None, None, None, None, None, ())


def tshark_apdus(tshark: str, path: Path) -> Counter[Key]:
    out = subprocess.run([tshark, "-n", "-r", str(path), "-T", "pdml", "-Y", "iec60870_104"], capture_output=True, check=True, timeout=300).stdout
    res: Counter[Key] = Counter()
    for pkt in ET.fromstring(out).iter("packet"):
        frame = 0
        items: list[dict[str, list[str]]] = []
        for proto in pkt.findall("proto"):
            name = proto.get("name")
            if name == "geninfo":
                frame = int(next(f.get("show") or "0" for f in proto.iter("field") if f.get("name") == "num"))
            elif name == "iec60870_104":
                items.append({})
            if name in ("iec60870_104", "iec60870_asdu") and items:
                for f in proto.iter("field"):
                    items[-1].setdefault(f.get("name") or "", []).append(f.get("show") or "")
        for it in items:
            res[(frame, *_ts_key(it))] += 1
    return res


def our_apdus(events: list[Event]) -> tuple[Counter[Key], Counter[str]]:
    res: Counter[Key] = Counter()
    anomalies: Counter[str] = Counter()
    for e in events:
        if e.event.dataset != "iec104" or e.iec104 is None or e.evidence is None:
            continue
        p, frame = e.iec104, e.evidence.frame
        if e.anomaly is not None:
            anomalies[e.anomaly.code] += 1
            if p.apci_type == "?":  # a bad APCI length: tshark shows these as APDUs of unknown type
                res[(frame, "?", None, None, None, None, None, None, ())] += 1
            continue
        if p.apci_type == "U":
            k: Key = ("U", (p.u_function_code or 0) >> 2, None, None, None, None, None, ())
        elif p.apci_type == "S":
            k = ("S", None, p.recv_seq, None, None, None, None, ())
        else:
            k = ("I", p.send_seq, p.recv_seq, p.type_id, p.cot, p.common_address, p.num_objects, tuple(o.ioa for o in p.objects or ()))
        res[(frame, *k)] += 1
    anomalies.update(e.anomaly.code for e in events if e.anomaly is not None and e.event.dataset == "iec104" and e.iec104 is None)
    return res, anomalies


@pytest.fixture(scope="module")
def decoded(iec104_traces: list[tuple[str, Path]]) -> dict[str, list[Event]]:
    assert iec104_traces
    return {name: list(decode_file(path)) for name, path in iec104_traces}


def test_iec104_agrees_with_tshark(tshark: str, iec104_traces: list[tuple[str, Path]], decoded: dict[str, list[Event]], expected_differences: dict[str, Any]) -> None:
    allowed = {(e["file"], int(f), e["side"]): e for e in expected_differences.get("tshark", []) for f in e["frames"]}
    used: set[tuple[str, int, str]] = set()
    unexplained: list[str] = []
    rows = []
    for name, path in iec104_traces:
        theirs = tshark_apdus(tshark, path)
        ours, anomalies = our_apdus(decoded[name])
        only_t, only_o = theirs - ours, ours - theirs
        acc = 0
        for side, diff in (("only_tshark", only_t), ("only_ours", only_o)):
            for k, n in sorted(diff.items(), key=repr):
                key = (name, k[0], side)
                if key in allowed:
                    used.add(key)
                    acc += n
                else:
                    unexplained.append(f"{name} frame {k[0]}: {side} {k[1:]} (x{n})")
        rows.append((name, sum(theirs.values()), sum(ours.values()), sum((theirs & ours).values()), sum(only_t.values()), sum(only_o.values()), acc, sum(anomalies.values())))
    w = max(len(r[0]) for r in rows)
    print(f"\n{'trace':<{w}}  tshark    ours  agree  only_t  only_o  accepted  anomalies")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>5}  {r[4]:>6}  {r[5]:>6}  {r[6]:>8}  {r[7]:>9}")
    tot = [sum(r[i] for r in rows) for i in range(1, 8)]  # type: ignore[misc]
    print(f"{'TOTAL':<{w}}  {tot[0]:>6}  {tot[1]:>6}  {tot[2]:>5}  {tot[3]:>6}  {tot[4]:>6}  {tot[5]:>8}  {tot[6]:>9}")
    stale = sorted(k for k in allowed if k not in used)
    assert not unexplained, "differences from tshark not in expected_differences.yml:\n" + "\n".join(unexplained)
    assert not stale, f"entries in expected_differences.yml (tshark) that no longer happen: {stale}"
    assert tot[2] >= 0.99 * tot[0]


def test_every_capture_decodes_to_schema_valid_events(decoded: dict[str, list[Event]]) -> None:
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    total = 0
    for name, events in decoded.items():
        mine = [e for e in events if e.event.dataset == "iec104"]
        assert mine, f"{name}: no iec104 events"
        for e in mine:
            errors = list(validator.iter_errors(msgspec.to_builtins(e)))
            assert not errors, f"{name} frame {e.evidence.frame if e.evidence else '?'}: {errors[0].message}"
            total += 1
    assert total > 400


def test_actions_on_the_zeek_capture(decoded: dict[str, list[Event]]) -> None:
    events = [e for e in decoded.get("zeek-iec104/traces/iec104.pcap", []) if e.event.dataset == "iec104"]
    if not events:
        pytest.skip("zeek-iec104 capture absent")
    acts = Counter(e.event.action for e in events)
    assert acts["interrogation"] and acts["operate"] and acts["keepalive"] and acts["session"]
    paired = [e for e in events if e.iec104 is not None and e.iec104.request_frame is not None]
    assert paired and all(e.event.duration is not None and e.event.outcome in ("success", "failure") for e in paired)
