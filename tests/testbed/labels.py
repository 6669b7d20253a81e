"""Frame labels for a capture: which frames belong to which scenario step.

A frame belongs to an attack step when it is TCP or UDP and one of its endpoints
is a client (ip, port) that the step's host agent reported (``connect`` events),
or, for a layer-2 step (an adversary-in-the-middle poisoning ARP caches), when its
Ethernet source or destination is a MAC address the agent reported (``mac``
events): the poisoned replies it sent, and every frame the victims sent to it or
it relayed. Every other frame (HMI/engineering polling, ARP, ...) is ``normal_polling``.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .runner import REPO_ROOT

NORMAL = "normal_polling"


def compact_ranges(nums: list[int]) -> str:
    """[1,2,3,7,9,10] -> "1-3,7,9-10" (input need not be sorted)."""
    out: list[str] = []
    nums = sorted(nums)
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(out)


def expand_ranges(text: str) -> list[int]:
    """Inverse of :func:`compact_ranges`."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def known_rule_ids(rules_dir: Path | None = None) -> dict[str, str]:
    """rule id -> title, read from every pack under rules/ (rules/<proto>/*.yml)."""
    rules_dir = rules_dir or REPO_ROOT / "rules"
    ids: dict[str, str] = {}
    for path in sorted(rules_dir.rglob("*.y*ml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue
        stack: list[Any] = docs
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                rid = node.get("id")
                if isinstance(rid, str) and re.match(r"^qn-[a-z0-9]+-\d{4}$", rid):
                    ids[rid] = str(node.get("title", node.get("name", "")))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    try:  # the learned-baseline detectors' alert types (detection/anomaly) are valid expectations too
        from detection.anomaly.rules import RULES

        ids.update({r.id: r.title for r in RULES})
    except ImportError:
        pass
    return ids


def assign_frames(pcap: Path, steps: dict[str, dict[str, Any]],
                  attacker_ips: set[str], port: int = 502) -> tuple[dict[str, list[int]], int, dict[str, Any]]:
    """Frame numbers (1-based) per step name; plus the total and some stats."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import PcapReader

    from scapy.layers.l2 import Ether

    owner: dict[tuple[str, int], str] = {}
    mac_owner: dict[str, str] = {}
    for name, st in steps.items():
        for cip, cport in st["locals"]:
            owner[(cip, int(cport))] = name
        for mac in st.get("macs", ()):
            mac_owner[mac.lower()] = name
    frames: dict[str, list[int]] = {NORMAL: []}
    for name in steps:
        frames[name] = []
    stats: dict[str, Any] = {"by_time_window": 0, "by_mac": 0, "modbus_from": Counter()}
    n = 0
    with PcapReader(str(pcap)) as reader:
        for n, pkt in enumerate(reader, start=1):
            step = NORMAL
            l4 = (TCP if TCP in pkt else UDP if UDP in pkt else None) if IP in pkt else None
            if l4 is not None:
                ip, tcp = pkt[IP], pkt[l4]
                step = (owner.get((ip.src, int(tcp.sport)))
                        or owner.get((ip.dst, int(tcp.dport)))
                        or NORMAL)
                if step == NORMAL and mac_owner:
                    step = _by_mac(pkt, Ether, mac_owner, stats)
                if step == NORMAL and (ip.src in attacker_ips or ip.dst in attacker_ips):
                    # A connection the agent did not report (should not happen):
                    # fall back to the step whose time window holds the frame.
                    t = float(pkt.time)
                    for name, st in steps.items():
                        if st["t_start"] is not None and st["t_start"] - 0.5 <= t <= st["t_end"] + 1.0:
                            step = name
                            stats["by_time_window"] += 1
                            break
                if len(tcp.payload) and port in (int(tcp.dport), int(tcp.sport)):
                    stats["modbus_from"][ip.src] += 1
            elif mac_owner and (claimed := _by_mac(pkt, Ether, mac_owner, stats)) != NORMAL:
                step = claimed
            elif IP in pkt and attacker_ips & {pkt[IP].src, pkt[IP].dst}:
                # ICMP about an attack datagram (port unreachable after a UDP sweep, ...).
                t = float(pkt.time)
                for name, st in steps.items():
                    if st["t_start"] is not None and st["t_start"] - 0.5 <= t <= st["t_end"] + 1.0:
                        step = name
                        stats["by_time_window"] += 1
                        break
            frames[step].append(n)
    stats["modbus_from"] = dict(stats["modbus_from"])
    return frames, n, stats


def _by_mac(pkt: Any, ether: Any, mac_owner: dict[str, str], stats: dict[str, Any]) -> str:
    """The step owning the frame's Ethernet source or destination MAC, else NORMAL."""
    if ether not in pkt:
        return NORMAL
    eth = pkt[ether]
    step = mac_owner.get(str(eth.src).lower()) or mac_owner.get(str(eth.dst).lower())
    if step is None:
        return NORMAL
    stats["by_mac"] += 1
    return step


def _observed(actions: list[dict[str, Any]]) -> str:
    """One-line summary of what the PLC answered during a step."""
    c: Counter[str] = Counter()
    for a in actions:
        if not a.get("ok"):
            c["client error/timeout"] += 1
            continue
        res = a.get("result", {})
        if "spoofed_replies" in res:  # an AitM step (stacks/aitm.py)
            c[f"{res['spoofed_replies']} spoofed ARP replies over {res.get('seconds')} s, caches restored"] += 1
        elif "reply_hex" in res:
            rep = bytes.fromhex(res["reply_hex"])
            if not rep:
                c["no reply"] += 1
            elif len(rep) >= 9 and rep[7] & 0x80:
                c[f"exception fc=0x{rep[7]:02x} code={rep[8]}"] += 1
            elif len(rep) >= 8:
                c[f"reply fc=0x{rep[7]:02x}"] += 1
            else:
                c["short reply"] += 1
        elif res.get("fc") is None:
            c["no response expected"] += 1
        elif "exception_code" in res:
            c[f"exception fc=0x{res['fc']:02x} code={res['exception_code']}"] += 1
        else:
            c[f"reply fc={res['fc']}"] += 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.items()))


def step_entry(name: str, kind: str, frames: list[int], expect_rules: list[str], description: str,
               **more: Any) -> dict[str, Any]:
    """One step of a label file: its frames (compact ranges) and their count, the rules it must raise, then ``more``."""
    return {"name": name, "kind": kind, "frames": compact_ranges(frames), "frame_count": len(frames),
            "expect_rules": expect_rules, "description": description, **more}


def doc_head(sc: dict[str, Any], pcap: Path, steps_out: list[dict[str, Any]], total: int, record: dict[str, Any],
             dropped: list[str]) -> dict[str, Any]:
    """A label file's first fields (scenario to duration_s), once the steps are checked to hold all ``total`` frames;
    ``dropped`` (step:rule expected but not in rules/) is reported."""
    if dropped:
        print(f"labels: expect_rules not found in rules/: {dropped}", file=sys.stderr)
    labelled = sum(s["frame_count"] for s in steps_out)
    assert labelled == total, (labelled, total)
    return {
        "scenario": sc["name"],
        "description": " ".join(str(sc.get("description", "")).split()),
        "capture": pcap.name,
        **({"holdout": True} if sc.get("holdout") else {}),
        "sha256": sha256(pcap),
        "frames_total": total,
        "duration_s": round(record["t_end"] - record["t0"], 1) if record["t_end"] else None,
    }


def write_labels(record: dict[str, Any], out_dir: Path) -> Path:
    sc = record["scenario"]
    pcap: Path = record["pcap"]
    # The time-window fallback below is only for hosts that do nothing but attack: a known master
    # (HMI, engineering station) used for an attack step keeps its normal sessions labelled normal.
    normal_hosts = {record["hosts"][i["host"]] for i in [*sc["background"], *sc["normal_events"]]}
    attacker_ips = {record["hosts"][a["host"]] for a in sc["attacks"]} - normal_hosts
    attack_names = {a["name"] for a in sc["attacks"]}
    attack_steps = {k: v for k, v in record["steps"].items() if k in attack_names}
    frames, total, stats = assign_frames(pcap, attack_steps, attacker_ips, record["port"])
    stack = record.get("stack", "modbus")
    rules = known_rule_ids()
    normal_items = [*sc["background"], *sc["normal_events"]]
    # posture rules the plant's own configuration raises on normal traffic (e.g. an OPC UA plant
    # run with security policy None on purpose): expected, and each must fire
    steps_out = [step_entry(
        NORMAL, "normal", frames[NORMAL], [r for r in sc.get("normal_expect_rules", []) if r in rules],
        "Everything not in an attack step: "
        + "; ".join(f"{i['name']} ({i['host']} -> {i['target']})" for i in normal_items)
        + "; plus ARP.",
    )]
    dropped: list[str] = []
    for a in sc["attacks"]:
        st = record["steps"].get(a["name"], {})
        wanted = list(a.get("expect_rules", []))
        # The fallback (127.10.1.x, port 5020) is outside the pack's lists and port:
        # no rule expectations there.
        expect = [] if record["fallback"] else [r for r in wanted if r in rules]
        dropped += [f"{a['name']}:{r}" for r in wanted if r not in rules]
        conns = [f"{ip}:{port} -> {record['hosts'][a['target']]}:{record['port']}"
                 for ip, port in st.get("locals", [])]
        steps_out.append(step_entry(
            a["name"], "attack", frames.get(a["name"], []), expect, " ".join(str(a.get("description", "")).split()),
            host=a["host"],
            target=a["target"],
            connections=conns,
            **({"macs": st["macs"]} if st.get("macs") else {}),
            observed=_observed(st.get("actions", [])),
        ))
    doc = {
        **doc_head(sc, pcap, steps_out, total, record, dropped),
        "link": "loopback fallback (lo, 127.10.1.x)" if record["fallback"]
                else "bridge qnbr0 in a switch netns, one netns per host",
        "port": record["port"],
        "hosts": {role: {"ip": ip} for role, ip in record["hosts"].items()},
        **({} if stack == "modbus" else {"stack": stack, "transport": record.get("transport")}),
        f"{stack}_payload_frames_by_src": dict(sorted(stats["modbus_from"].items())),
        "frames_assigned_by_time_window": stats["by_time_window"],
        **({"frames_assigned_by_mac": stats["by_mac"]} if stats["by_mac"] else {}),
        "rule_pack_ids_known": sorted(rules),
        **({"expect_rules_note": "loopback fallback capture: addresses and port are not the "
                                 "plant's, so no rule expectations"} if record["fallback"] else {}),
        "steps": steps_out,
    }
    return write_label_file(out_dir, doc, "tests.testbed run")


def write_label_file(out_dir: Path, doc: dict[str, Any], command: str) -> Path:
    """``<scenario>.labels.yml`` in ``out_dir``: the header naming ``python -m <command> <scenario>``, then ``doc``."""
    out = out_dir / f"{doc['scenario']}.labels.yml"
    header = ("# Generated by `python -m " + command + " " + doc["scenario"] + "`; do not edit.\n"
              "# frames: 1-based frame numbers in the capture (as in Wireshark), compact ranges.\n"
              "# Every frame belongs to exactly one step.\n")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(header)
        yaml.safe_dump(doc, fh, sort_keys=False, width=100, allow_unicode=True)
    return out
