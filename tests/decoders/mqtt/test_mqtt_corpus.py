"""MQTT on every corpus capture: per-packet agreement with tshark, Zeek's mqtt_*.log baselines,
decoding without exception and schema-valid events. Accepted differences: expected_differences.yml."""

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

Key = tuple[Any, ...]
ZEEK_BASE = "zeek/baseline/scripts.base.protocols.mqtt.mqtt"


def tshark_packets(tshark: str, path: Path) -> Counter[Key]:
    out = subprocess.run([tshark, "-n", "-r", str(path), "-T", "pdml", "-Y", "mqtt"], capture_output=True, check=True, timeout=300).stdout
    res: Counter[Key] = Counter()
    for pkt in ET.fromstring(out).iter("packet"):
        frame = 0
        for proto in pkt.findall("proto"):
            name = proto.get("name")
            if name == "geninfo":
                frame = int(next(f.get("show") or "0" for f in proto.iter("field") if f.get("name") == "num"))
            elif name == "mqtt":
                f: dict[str, str] = {}
                for fld in proto.iter("field"):
                    f.setdefault(fld.get("name") or "", fld.get("show") or "")
                mid = f.get("mqtt.msgid")
                res[(frame, int(f.get("mqtt.msgtype", "-1")), int(f.get("mqtt.len", "-1")), int(mid) if mid else None, f.get("mqtt.topic"))] += 1
    return res


def our_packets(events: list[Event]) -> Counter[Key]:
    res: Counter[Key] = Counter()
    for e in events:
        m = e.mqtt
        if e.event.dataset == "mqtt" and e.anomaly is None and m is not None and e.evidence is not None:
            topic = m.topic if m.topic is not None else (m.topics[0].topic if m.topics else None)  # tshark: first filter
            res[(e.evidence.frame, m.message_type, m.remaining_length, m.packet_id, topic)] += 1
    return res


@pytest.mark.tshark
def test_mqtt_agrees_with_tshark(tshark: str, traces: list[tuple[str, Path]], decoded: dict[str, list[Event]], expected_differences: dict[str, Any]) -> None:
    allowed = {(e["file"], int(f), e["side"]): e for e in expected_differences.get("tshark", []) for f in e["frames"]}
    used: set[tuple[str, int, str]] = set()
    unexplained: list[str] = []
    rows = []
    for name, path in traces:
        theirs, ours = tshark_packets(tshark, path), our_packets(decoded[name])
        only_t, only_o = theirs - ours, ours - theirs
        acc = 0
        for side, diff in (("only_tshark", only_t), ("only_ours", only_o)):
            for k, n in sorted(diff.items(), key=repr):
                key = (name, k[0], side)
                if key in allowed:
                    used.add(key)
                    acc += n
                else:
                    unexplained.append(f"{name} frame {k[0]}: {side} type={k[1]} len={k[2]} id={k[3]} topic={k[4]!r} (x{n})")
        anomalies = sum(1 for e in decoded[name] if e.anomaly is not None and e.event.dataset == "mqtt")
        rows.append((name, sum(theirs.values()), sum(ours.values()), sum((theirs & ours).values()), sum(only_t.values()), sum(only_o.values()), acc, anomalies))
    w = max(len(r[0]) for r in rows)
    print(f"\n{'trace':<{w}}  tshark    ours  agree  only_t  only_o  accepted  anomalies")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>5}  {r[4]:>6}  {r[5]:>6}  {r[6]:>8}  {r[7]:>9}")
    tot = [sum(r[i] for r in rows) for i in range(1, 8)]  # type: ignore[misc]
    print(f"{'TOTAL':<{w}}  {tot[0]:>6}  {tot[1]:>6}  {tot[2]:>5}  {tot[3]:>6}  {tot[4]:>6}  {tot[5]:>8}  {tot[6]:>9}")
    assert not unexplained, "differences from tshark not in expected_differences.yml:\n" + "\n".join(unexplained)
    assert not sorted(k for k in allowed if k not in used), "stale tshark entries in expected_differences.yml"


def _zeek_log(path: Path) -> list[dict[str, str]]:
    fields: list[str] = []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"))))
    return rows


_VERSION = {3: "3.1", 4: "3.1.1", 5: "5.0"}
_QOS = {0: "at most once", 1: "at least once", 2: "exactly once"}


def test_mqtt_agrees_with_zeek_logs(corpus: Path, decoded: dict[str, list[Event]]) -> None:
    base = corpus / ZEEK_BASE
    if not base.is_dir():
        pytest.skip("zeek mqtt baselines absent")
    events = [e for e in decoded["zeek/traces/mqtt.pcap"] if e.event.dataset == "mqtt" and e.anomaly is None and e.mqtt is not None]
    by_frame = {e.evidence.frame: e for e in events if e.evidence}

    def client(e: Event) -> tuple[str, str]:
        ep = e.source if e.network and e.network.is_orig else e.destination
        return (str(ep.ip), str(ep.port)) if ep else ("", "")

    tables: dict[str, tuple[Counter[Key], Counter[Key]]] = {}
    zc = Counter((r["id.orig_h"], r["id.orig_p"], r["proto_name"], r["proto_version"], r["client_id"], r["connect_status"]) for r in _zeek_log(base / "mqtt_connect.log"))
    oc: Counter[Key] = Counter()
    for e in events:
        m = e.mqtt
        if m and m.message_type_name == "connack" and m.request_frame in by_frame:
            c = by_frame[m.request_frame].mqtt
            status = "Connection Accepted" if m.reason_code == 0 else str(m.reason_name)
            oc[(*client(e), c.protocol_name, _VERSION.get(c.protocol_version or 0), c.client_id, status)] += 1  # type: ignore[union-attr]
    tables["mqtt_connect.log"] = (zc, oc)
    zp = Counter((r["id.orig_h"], r["id.orig_p"], r["from_client"], r["retain"], r["qos"], r["topic"], r["payload"], r["payload_len"]) for r in _zeek_log(base / "mqtt_publish.log"))
    op: Counter[Key] = Counter()
    for e in events:
        m = e.mqtt
        if m and m.message_type_name == "publish":
            op[(*client(e), "T" if e.network and e.network.is_orig else "F", "T" if m.retain else "F", _QOS.get(m.qos or 0), m.topic, m.payload, str(m.payload_length))] += 1
    tables["mqtt_publish.log"] = (zp, op)
    zs = Counter((r["id.orig_h"], r["id.orig_p"], r["action"], r["topics"], r["qos_levels"], r["granted_qos_level"], r["ack"]) for r in _zeek_log(base / "mqtt_subscribe.log"))
    osub: Counter[Key] = Counter()
    for e in events:
        m = e.mqtt
        if m and m.message_type_name == "suback" and m.request_frame in by_frame:
            s = by_frame[m.request_frame].mqtt
            act = "MQTT::SUBSCRIBE"
            osub[(*client(e), act, ",".join(t.topic for t in s.topics or []), ",".join(str(t.qos) for t in s.topics or []), str((m.reason_codes or [0])[0]), "T")] += 1  # type: ignore[union-attr]
    tables["mqtt_subscribe.log"] = (zs, osub)
    print("\nzeek log             zeek  ours  agree")
    bad = []
    for log, (z, o) in tables.items():
        print(f"{log:<20} {sum(z.values()):>4}  {sum(o.values()):>4}  {sum((z & o).values()):>5}")
        if z != o:
            bad.append(f"{log}: only zeek {dict(z - o)}, only ours {dict(o - z)}")
    assert not bad, "\n".join(bad)


def test_every_capture_decodes_to_schema_valid_events(decoded: dict[str, list[Event]]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    total = 0
    for name, events in decoded.items():
        mine = [e for e in events if e.event.dataset == "mqtt"]
        assert mine, f"{name}: no mqtt events"
        for e in mine:
            errors = list(validator.iter_errors(msgspec.to_builtins(e)))
            assert not errors, f"{name} frame {e.evidence.frame if e.evidence else '?'}: {errors[0].message}"
            total += 1
    assert total > 200


def test_passwords_never_reach_an_event(decoded: dict[str, list[Event]]) -> None:
    for name, events in decoded.items():
        for e in events:
            if e.mqtt is not None and e.mqtt.password_present:
                # the suricata-verify captures all use the password "pass"
                assert b'"pass"' not in msgspec.json.encode(e), f"{name}: password leaked"
