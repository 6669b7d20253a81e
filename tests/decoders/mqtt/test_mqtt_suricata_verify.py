"""MQTT vs suricata-verify: every `mqtt` and `anomaly` check of the mqtt* tests, counted on our events.

A check is `filter: {count: N, match: {...}}` over Suricata's EVE records. For an `mqtt` record the
match keys name one packet type (`mqtt.<type>.<field>`); we count our events of that type whose
fields match every key (mapped below), and compare with N. For an `anomaly` record we count our
anomaly events with the same code (our codes reuse Suricata's names). Alert and flow checks belong to
Suricata's rules and flow engine: not applicable. Keys that cannot be compared by design are listed
with their reason in expected_differences.yml (`suricata_keys`), failing checks in `suricata_checks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.protocols.mqtt import Mqtt
from pipeline.schema import Event

SCALAR = {
    "qos": "qos", "retain": "retain", "dup": "dup", "message_id": "packet_id",
    "protocol_string": "protocol_name", "protocol_version": "protocol_version", "client_id": "client_id",
    "username": "username", "flags.username": "username_present", "flags.password": "password_present",
    "flags.will": "will_flag", "flags.will_retain": "will_retain", "flags.clean_session": "clean_session",
    "will.topic": "will_topic", "will.message": "will_message", "session_present": "session_present",
    "return_code": "reason_code", "reason_code": "reason_code", "topic": "topic", "message": "payload",
    "qos_granted": "reason_codes", "reason_codes": "reason_codes",
}  # fmt: skip
# Suricata's app-layer.protocols.mqtt.max-msg-length when a test's suricata.yaml does not set it (1 MiB).
# A message whose remaining length exceeds it is logged as `truncated: true` with `skipped_length` =
# fixed header + remaining length, its contents unparsed: configuration, applied here to our events.
DEFAULT_MAX_MSG_LENGTH = 1048576


def max_msg_length(test_dir: Path) -> int:
    conf = test_dir / "suricata.yaml"
    if conf.is_file():
        doc = yaml.safe_load("\n".join(line for line in conf.read_text(encoding="utf-8").splitlines() if not line.startswith("%YAML"))) or {}
        mqtt = ((doc.get("app-layer") or {}).get("protocols") or {}).get("mqtt") or {}
        if "max-msg-length" in mqtt:
            return int(mqtt["max-msg-length"])
    return DEFAULT_MAX_MSG_LENGTH


def _fixed_header_length(remaining: int) -> int:
    return 1 + (1 if remaining < 128 else 2 if remaining < 16384 else 3 if remaining < 2097152 else 4)


def _props(d: dict[str, Any] | None, users: dict[str, str] | None, name: str) -> Any:
    if d and name in d:
        return d[name]
    if d and f"user.{name}" in d:
        return d[f"user.{name}"]
    return (users or {}).get(name)


def _str_eq(want: Any, got: Any) -> bool:
    """Suricata shortens logged strings to "<prefix>[truncated N additional bytes]" (its log limit)."""
    if isinstance(want, str) and "[truncated " in want and isinstance(got, str):
        head = want.split("[truncated ", 1)[0]
        return got.startswith(head) or head.startswith(got)
    return bool(got == want or (isinstance(want, str) and str(got) == want))


def field_matches(m: Mqtt, key: str, want: Any, ignored: set[str], max_msg: int = DEFAULT_MAX_MSG_LENGTH) -> bool:
    if key in ignored:
        return True
    if key == "truncated":
        return bool(want) == ((m.remaining_length or 0) > max_msg)
    if key == "skipped_length":
        rl = m.remaining_length or 0
        return rl > max_msg and int(want) == rl + _fixed_header_length(rl)
    if key == "password":  # never stored: the flag must say one was sent
        return m.password_present is True
    if key == "topics":
        if m.message_type_name == "subscribe":
            ours = [(t.topic, t.qos) for t in m.topics or []]
            return len(ours) == len(want) and all(_str_eq(w["topic"], t) and w["qos"] == q for w, (t, q) in zip(want, ours))
        ours_t = [t.topic for t in m.topics or []]
        return len(ours_t) == len(want) and all(_str_eq(w, t) for w, t in zip(want, ours_t))
    if key.startswith("properties."):
        return str(_props(m.properties, m.user_properties, key.split(".", 1)[1])) == str(want)
    if key.startswith("will.properties."):
        return str(_props(m.will_properties, None, key.split(".", 2)[2])) == str(want)
    attr = SCALAR.get(key)
    if attr is None:
        raise KeyError(key)
    got = getattr(m, attr)
    if attr == "reason_code" and got is None and m.protocol_version == 5:
        got = 0  # MQTT 5: an absent reason code means 0 (success)
    if attr == "payload" and m.payload_truncated:
        return isinstance(got, str) and (str(want).startswith(got) or _str_eq(want, got))
    return _str_eq(want, got)


def count_ours(events: list[Event], match: dict[str, Any], ignored: set[str], max_msg: int = DEFAULT_MAX_MSG_LENGTH) -> dict[str, int]:
    """Per packet type named in `match`: how many of our events match every key of that type."""
    by_type: dict[str, dict[str, Any]] = {}
    for k, v in match.items():
        if k == "has-key" and str(v).startswith("mqtt."):
            by_type.setdefault(str(v).split(".")[1], {})
        elif k.startswith("mqtt."):
            _, t, rest = k.split(".", 2)
            by_type.setdefault(t, {})[rest] = v
    out: dict[str, int] = {}
    for t, keys in by_type.items():
        n = 0
        for e in events:
            m = e.mqtt
            if e.anomaly is None and m is not None and m.message_type_name == t and all(field_matches(m, k, v, ignored, max_msg) for k, v in keys.items()):
                n += 1
        out[t] = n
    return out


def cases(corpus: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    out = []
    for test in sorted((corpus / "suricata-verify" / "tests").glob("mqtt*/test.yaml")):
        doc = yaml.safe_load(test.read_text(encoding="utf-8")) or {}
        pcap = (test.parent / doc["pcap"]).resolve() if doc.get("pcap") else next(iter(sorted(test.parent.glob("*.pcap"))), None)
        if pcap is not None:
            out.append((test.parent.name, pcap, doc))
    return out


def test_mqtt_agrees_with_suricata_verify(corpus: Path, decoded: dict[str, list[Event]], expected_differences: dict[str, Any]) -> None:
    ignored = {str(e["key"]) for e in expected_differences.get("suricata_keys", [])}
    allowed = {(str(e["test"]), int(e["check"])): e for e in expected_differences.get("suricata_checks", [])}
    used: set[tuple[str, int]] = set()
    rows, problems = [], []
    for name, pcap, doc in cases(corpus):
        pcap_dir = corpus / "suricata-verify" / "tests" / name
        rel = str(pcap.relative_to(corpus.resolve()))
        events = decoded.get(rel)
        assert events is not None, f"{rel} not in the decoded traces"
        n_checks = agree = accepted = na = 0
        for i, check in enumerate(doc.get("checks") or []):
            flt = check.get("filter") or {}
            match = flt.get("match") or {}
            kind = match.get("event_type")
            if kind not in ("mqtt", "anomaly") or "count" not in flt:
                na += 1
                continue
            n_checks += 1
            want = int(flt["count"])
            if kind == "anomaly":
                code = match.get("anomaly.event")
                got = {"anomaly": sum(1 for e in events if e.anomaly is not None and e.event.dataset == "mqtt" and e.anomaly.code == code)}
            else:
                try:
                    got = count_ours(events, match, ignored, max_msg_length(pcap_dir))
                except KeyError as exc:  # a key we have no field for
                    got = {f"unmapped key {exc}": -1}
            if got and all(v == want for v in got.values()):
                agree += 1
                if (name, i) in allowed:
                    problems.append(f"{name} check {i}: listed in expected_differences.yml but agrees now")
            elif (name, i) in allowed:
                used.add((name, i))
                accepted += 1
            else:
                problems.append(f"{name} check {i}: suricata count {want}, ours {got} for {match}")
        rows.append((name, n_checks, agree, accepted, na))
    w = max(len(r[0]) for r in rows)
    print(f"\n{'suricata-verify test':<{w}}  checks  agree  accepted  n/a(alert/flow)")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>6}  {r[2]:>5}  {r[3]:>8}  {r[4]:>5}")
    tot = [sum(r[i] for r in rows) for i in range(1, 5)]  # type: ignore[misc]
    print(f"{'TOTAL':<{w}}  {tot[0]:>6}  {tot[1]:>5}  {tot[2]:>8}  {tot[3]:>5}")
    print(f"check agreement {100.0 * tot[1] / max(tot[0], 1):.2f}% raw, {100.0 * (tot[1] + tot[2]) / max(tot[0], 1):.2f}% counting the listed differences (Suricata's, each with its reason)")
    assert not problems, "\n".join(problems)
    assert tot[0] and (tot[1] + tot[2]) / tot[0] >= 0.99
    assert not set(allowed) - used, f"stale suricata_checks entries: {sorted(set(allowed) - used)}"
