"""IEC 61850 GOOSE recorded from libiec61850's publisher (pyiec61850-ng, module ``pyiec61850.pyiec61850``).

    sudo .venv/bin/python -m tests.testbed.stacks.goose goose_testbed_attack --out pcaps/goose/
    sudo .venv/bin/python -m tests.testbed.stacks.goose anomaly_goose --out pcaps/goose/
    .venv/bin/python -m tests.testbed.stacks.goose goose_testbed_attack --out /tmp/g --lead-in 4 \\
        --steps st_num_jump,replay_old_frame
    .venv/bin/python -m tests.testbed.stacks.goose cleanup   # stale qn-goose-<pid>-* of dead runs

GOOSE is layer-2 multicast, so this is its own small testbed (the IP plant of tests/testbed/plant.py
and its labeller, which attributes frames by client ip:port, do not fit):

* network: a switch namespace ``qn-goose-<pid>-sw`` holding bridge ``qnbr0`` (tcpdump runs there) and
  one namespace ``qn-goose-<pid>-<role>`` per host, its ``eth0`` a veth into the bridge with the MAC
  the scenario gives (the publisher's source MAC: libiec61850 reads it from the interface).  The
  attacker also has ``eth1``, a second bridge port whose MAC it sets to a victim's before a spoofed
  step.  IPv6 is off, no addresses: the capture holds GOOSE only.  Every namespace is deleted on exit,
  also on error or SIGTERM.
* publishers: one process per control block (``_publish``), each a libiec61850 ``GoosePublisher`` on
  its host's eth0 raw socket (APPID, destination MAC, VLAN or none, gocbRef, datSet, goID, confRev).
  libiec61850 leaves retransmission timing to the caller; the loop does what IEDs do: after a state
  change (``GoosePublisher_increaseStNum``: stNum + 1, sqNum 0, new timestamp) it retransmits after
  T1, 2 T1, 4 T1 ... up to the heartbeat T0, with timeAllowedToLive twice the next interval.  State
  changes are scripted (``changes``) or routine (``routine``: every U(a, b) s, members drawn in their
  ``range``, ``cycle``d or ``step``ped).
* attacker: one process per step (``_attack``), also libiec61850's publisher: it sniffs the victim
  control block's next frame on the wire (a raw socket, parsed with sensors/decoders/goose) to learn
  stNum/sqNum/values, then publishes the forged frame(s) - from its own MAC or, spoofed, from eth1
  carrying the victim's MAC - and reports the bytes it sent (read back from its socket as outgoing).
* labels (same layout as tests/testbed/labels.py's ``write_labels``): a frame is an attack step's
  when its source MAC and GOOSE bytes are among what that step's attacker sent, or when a publisher
  reported it under the step (a publisher started by a step, a scripted change labelled with a step,
  the last frames of a publisher a step kills).  A forged frame disturbs the control block's
  stNum/sqNum sequence, so the victim publisher's frames of that control block from the first forged
  frame up to and including its first frame after the last forged one belong to the step too (there a
  subscriber - and the decoder - sees the real counters come back).  Everything else is normal.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from . import l2
from .common import STOP, emit, install_signals
from .l2 import Agent, Net, read_pcap, select_steps

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
NS_PREFIX = "qn-goose"
ETH_P_ALL = 0x0003
ETHERTYPE_GOOSE = 0x88B8
PACKET_OUTGOING = 4


def log(msg: str) -> None:
    print(f"[goose {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ libiec61850 publisher
def _iec() -> Any:
    import pyiec61850.pyiec61850 as iec

    return iec


def _mac_bytes(mac: str) -> list[int]:
    return [int(x, 16) for x in mac.split(":")]


def mms_value(member: dict[str, Any], value: Any) -> Any:
    """An MmsValue for one data set member: boolean, bit_string (size), integer, unsigned, float, utc_time."""
    iec = _iec()
    kind = member["type"]
    if kind == "boolean":
        return iec.MmsValue_newBoolean(bool(value))
    if kind == "integer":
        return iec.MmsValue_newIntegerFromInt32(int(value))
    if kind == "unsigned":
        return iec.MmsValue_newUnsignedFromUint32(int(value))
    if kind == "float":
        return iec.MmsValue_newFloat(float(value))
    if kind == "bit_string":
        bs = iec.MmsValue_newBitString(int(member["size"]))
        iec.MmsValue_setBitStringFromInteger(bs, int(value))
        return bs
    if kind == "utc_time":
        return iec.MmsValue_newUtcTimeByMsTime(int(value))
    raise ValueError(f"unsupported member type {kind!r}")


class Publisher:
    """One libiec61850 GoosePublisher (``GoosePublisher_createEx`` on an interface, VLAN tag or not)."""

    def __init__(self, cb: dict[str, Any], iface: str = "eth0") -> None:
        iec = _iec()
        self.iec = iec
        params = iec.CommParameters()
        params.appId = int(cb["appid"])
        vlan = cb.get("vlan")
        params.vlanId = int(vlan["id"]) if vlan else 0
        params.vlanPriority = int(vlan.get("prio", 4)) if vlan else 4
        iec.CommParameters_setDstAddress(params, *_mac_bytes(cb["dst"]))
        self._params = params
        self.pub = iec.GoosePublisher_createEx(params, iface, bool(vlan))
        if not self.pub:
            raise RuntimeError(f"GoosePublisher_createEx failed on {iface}")
        iec.GoosePublisher_setGoCbRef(self.pub, cb["gocb_ref"])
        iec.GoosePublisher_setDataSetRef(self.pub, cb["dat_set"])
        iec.GoosePublisher_setGoID(self.pub, cb.get("go_id", cb["gocb_ref"]))
        iec.GoosePublisher_setConfRev(self.pub, int(cb.get("conf_rev", 1)))
        iec.GoosePublisher_setSimulation(self.pub, bool(cb.get("simulation", False)))
        iec.GoosePublisher_setNeedsCommission(self.pub, bool(cb.get("nds_com", False)))

    def configure(self, dat_set: str | None = None, conf_rev: int | None = None) -> None:
        if dat_set is not None:
            self.iec.GoosePublisher_setDataSetRef(self.pub, dat_set)
        if conf_rev is not None:
            self.iec.GoosePublisher_setConfRev(self.pub, int(conf_rev))

    def publish(self, members: list[dict[str, Any]], values: list[Any], tal_ms: int) -> None:
        iec = self.iec
        iec.GoosePublisher_setTimeAllowedToLive(self.pub, int(tal_ms))
        ll = iec.LinkedList_create()
        try:
            for m, v in zip(members, values):
                iec.LinkedList_add(ll, mms_value(m, v))
            rc = iec.GoosePublisher_publish(self.pub, ll)
        finally:
            iec.LinkedList_destroyDeep_MmsValueDelete(ll)
        if rc != 0:
            raise RuntimeError(f"GoosePublisher_publish returned {rc}")

    def close(self) -> None:
        if self.pub:
            self.iec.GoosePublisher_destroy(self.pub)
            self.pub = None


def _initial(members: list[dict[str, Any]]) -> list[Any]:
    now = int(time.time() * 1000)
    return [now if m["type"] == "utc_time" else m["value"] for m in members]


def _apply(members: list[dict[str, Any]], values: list[Any], changes: dict[str, Any]) -> list[Any]:
    """New values: members named in ``changes`` set, utc_time members stamped now."""
    names = [m["name"] for m in members]
    unknown = set(changes) - set(names)
    if unknown:
        raise ValueError(f"unknown data set member(s) {sorted(unknown)}; known {names}")
    now = int(time.time() * 1000)
    out = [changes.get(m["name"], v) for m, v in zip(members, values)]
    return [now if m["type"] == "utc_time" else v for m, v in zip(members, out)]


def _routine(members: list[dict[str, Any]], values: list[Any], rng: random.Random) -> dict[str, Any]:
    """A routine state change: members with a ``range`` drawn in it, ``cycle``d or ``step``ped."""
    ch: dict[str, Any] = {}
    for m, v in zip(members, values):
        if "range" in m:
            lo, hi = m["range"]
            ch[m["name"]] = round(rng.uniform(lo, hi), 2) if m["type"] == "float" else rng.randint(int(lo), int(hi))
        elif "cycle" in m:
            cyc = list(m["cycle"])
            ch[m["name"]] = cyc[(cyc.index(v) + 1) % len(cyc)] if v in cyc else cyc[0]
        elif "step" in m:
            ch[m["name"]] = v + m["step"]
    return ch


def serve_publisher(spec: dict[str, Any]) -> int:
    """An IED's control block until SIGTERM: heartbeats at T0, T1-doubling bursts after each state change."""
    install_signals()
    members = [dict(m) for m in spec["members"]]
    epoch = float(spec["epoch"])  # the scenario's t = 0 (wall clock)
    t0, t1 = float(spec.get("t0", 1.0)), float(spec.get("t1", 0.004))
    rng = random.Random(int(spec.get("seed", 0)))
    pub = Publisher(spec)
    scripted = sorted(spec.get("changes", []), key=lambda c: float(c["at"]))
    routine = spec.get("routine")
    quiet = [float(c["at"]) for c in scripted]  # no routine change within 4 s of a scripted one

    def next_routine(after: float) -> float | None:
        if not routine:
            return None
        at = after + rng.uniform(*routine["every"])
        while any(abs(at - q) < 4.0 for q in quiet):
            at += 3.0
        return at

    values = _initial(members)
    step = spec.get("step")  # a publisher started by an attack step: all its frames are that step's
    sticky = step is not None
    st, sq, gap = 1, 0, t1  # libiec61850 starts at stNum 1, sqNum 0; gap: time to the next frame
    nxt_routine = next_routine(time.time() - epoch)
    emit("ready", gocb_ref=spec["gocb_ref"], appid=spec["appid"])
    emit("state", st=st, step=step, values=values)
    try:
        while not STOP.is_set():
            pub.publish(members, values, tal_ms=int(2000 * gap))  # timeAllowedToLive: twice the wait for the next
            emit("sent", st=st, sq=sq, step=step)
            sq += 1
            due = time.time() + gap
            while not STOP.is_set():  # until the next retransmission or a state change, whichever comes first
                rel = time.time() - epoch
                change: dict[str, Any] | None = None
                if scripted and rel >= float(scripted[0]["at"]):
                    change = scripted.pop(0)
                elif nxt_routine is not None and not sticky and rel >= nxt_routine:
                    change = {"set": _routine(members, values, rng), "routine": True}
                    nxt_routine = next_routine(rel)
                if change is not None:
                    if change.get("add_members"):
                        members += [dict(m) for m in change["add_members"]]
                        values += [m["value"] for m in change["add_members"]]
                    pub.configure(change.get("dat_set"), change.get("conf_rev"))
                    values = _apply(members, values, dict(change.get("set") or {}))
                    if not sticky:
                        step = change.get("step")
                        sticky = bool(change.get("sticky")) and step is not None
                    pub.iec.GoosePublisher_increaseStNum(pub.pub)
                    st, sq, gap = st + 1, 0, t1
                    emit("state", st=st, step=step, values=values, routine=bool(change.get("routine")))
                    break
                if time.time() >= due:
                    gap = min(gap * 2, t0)
                    break
                STOP.wait(min(0.002, max(0.0, due - time.time())))
    finally:
        pub.close()
        emit("end", st=st, sq=sq)
    return 0


# ------------------------------------------------------------------------------------------ attacker
def _goose_of(frame: bytes) -> tuple[str, bytes] | None:
    """(source MAC, bytes after the GOOSE ethertype) of an Ethernet frame, or None."""
    if len(frame) < 14:
        return None
    src = ":".join(f"{b:02x}" for b in frame[6:12])
    i, etype = 12, int.from_bytes(frame[12:14], "big")
    while etype in (0x8100, 0x88A8) and len(frame) >= i + 6:
        i += 4
        etype = int.from_bytes(frame[i:i + 2], "big")
    return (src, bytes(frame[i + 2:])) if etype == ETHERTYPE_GOOSE else None


def _observed_values(members: list[dict[str, Any]], goose: Any) -> list[Any]:
    """The victim's current member values, read from its sniffed frame."""
    out: list[Any] = []
    top = [v for v in goose.all_data or [] if "." not in v.index]
    for m, v in zip(members, top):
        if m["type"] == "bit_string":
            raw = bytes.fromhex(str(v.value or ""))
            out.append(int.from_bytes(raw, "big") >> (8 * len(raw) - int(m["size"])) if raw else 0)
        elif m["type"] == "utc_time":
            out.append(int(dt.datetime.fromisoformat(str(v.value).replace("Z", "+00:00")).timestamp() * 1000))
        else:
            out.append(v.value)
    return out


def run_attack(spec: dict[str, Any]) -> int:
    """One attack step: optionally sniff the victim's next frame, then publish ``frames`` forged frames."""
    from sensors.decoders.goose.parser import parse

    install_signals()
    cb = dict(spec["cb"])
    members = [dict(m) for m in cb["members"]]
    iface = spec.get("iface", "eth0")
    emit("start", step=spec["step"], iface=iface)
    st, sq, values = 1, 0, [m["value"] for m in members]
    if spec.get("follow"):
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        rx.bind(("eth0", 0))
        rx.settimeout(0.5)
        deadline = time.monotonic() + 10.0
        seen = None
        while seen is None and time.monotonic() < deadline and not STOP.is_set():
            try:
                data, addr = rx.recvfrom(65535)
            except TimeoutError:
                continue
            got = _goose_of(data)
            if got is None or addr[2] == PACKET_OUTGOING or got[0] != spec["victim_mac"]:
                continue
            g = parse(memoryview(got[1]))
            if g.gocb_ref == cb["gocb_ref"] and g.appid == int(cb["appid"]) and g.st_num is not None:
                seen = g
        rx.close()
        if seen is None:
            emit("error", error="victim frame not seen in 10 s")
            return 1
        st, sq, values = int(seen.st_num), int(seen.sq_num or 0), _observed_values(members, seen)
        emit("observed", st=st, sq=sq, values=values)
    plus_st = spec.get("st", "+1")
    new_st = st + int(plus_st) if isinstance(plus_st, str) else int(plus_st)
    values = _apply(members, values, dict(spec.get("set") or {})) if spec.get("set") or new_st != st else values
    # the bytes this step sends, read back from a packet socket as outgoing frames
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    tx.bind((iface, 0))
    tx.settimeout(0.2)
    pub = Publisher(cb, iface)
    iec = pub.iec
    try:
        if new_st != st:  # a new state: stNum as wanted, sqNum 0, a new timestamp (increaseStNum)
            iec.GoosePublisher_setStNum(pub.pub, new_st - 1)
            iec.GoosePublisher_increaseStNum(pub.pub)
        else:
            iec.GoosePublisher_setStNum(pub.pub, new_st)
            iec.GoosePublisher_setSqNum(pub.pub, int(spec["sq"]) if "sq" in spec else sq + 1)
        gap = float(spec.get("t1", 0.004))
        for i in range(int(spec.get("frames", 1))):
            pub.publish(members, values, tal_ms=int(spec.get("tal_ms", 2000)))
            if i + 1 < int(spec.get("frames", 1)):
                time.sleep(gap)
                gap *= 2
    finally:
        pub.close()
    sent = []
    t_end = time.monotonic() + 0.5
    while time.monotonic() < t_end:
        try:
            data, addr = tx.recvfrom(65535)
        except TimeoutError:
            break
        got = _goose_of(data)
        if got is not None and addr[2] == PACKET_OUTGOING:
            sent.append(got[1].hex())
    tx.close()
    emit("sent_frames", step=spec["step"], mac=spec["mac"], gocb_ref=cb["gocb_ref"], appid=int(cb["appid"]),
         frames=sent, st=new_st)
    emit("end")
    return 0 if sent else 1


# ------------------------------------------------------------------------------------------ scenario
def load_scenario(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yml"
    sc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if sc.get("stack") != "goose":
        raise SystemExit(f"{path}: not a GOOSE scenario (stack: goose)")
    for key, default in (("lead_in", 10.0), ("spacing", 3.0), ("tail", 4.0), ("seed", 0)):
        sc.setdefault(key, default)
    sc.setdefault("attacks", [])
    return sc


def shorten(sc: dict[str, Any], lead_in: float | None, steps: list[str] | None) -> dict[str, Any]:
    """A shorter lead-in (scripted normal changes after it dropped) and/or a subset of the attack steps."""
    sc = json.loads(json.dumps(sc))
    if lead_in is not None:
        sc["lead_in"] = lead_in
        for p in sc["publishers"]:
            p["changes"] = [c for c in p.get("changes", []) if float(c["at"]) < lead_in - 0.5]
    return select_steps(sc, steps)


class Recorder(l2.Recorder):
    def __init__(self, sc: dict[str, Any], out_dir: Path) -> None:
        self.macs = {role: mac.lower() for role, mac in sc["hosts"].items()}
        spoof = any(a.get("mac") == "victim" for a in sc["attacks"])
        super().__init__(sc, out_dir, Net(self.macs, NS_PREFIX, spoof_role="atk" if spoof else None), log)
        self.cbs = {p["name"]: p for p in sc["publishers"]}
        self.publishers = self.agents  # the routine agents: one per control block

    def _start_publisher(self, name: str, spec: dict[str, Any]) -> Agent:
        argv = [sys.executable, "-m", "tests.testbed.stacks.goose", "_publish", "--spec", json.dumps(spec)]
        agent = Agent(name, spec["host"], self._popen(spec["host"], argv))
        agent.start_readers(ready_event="ready")
        self.publishers[name] = agent
        if not agent.ready.wait(10.0):
            raise RuntimeError(f"publisher {name} did not start: {agent.stderr[-10:]}")
        return agent

    def _publisher_spec(self, p: dict[str, Any], idx: int) -> dict[str, Any]:
        spec = json.loads(json.dumps(p))
        spec["epoch"] = self.t0
        spec.setdefault("seed", int(self.sc["seed"]) * 100 + idx)
        for i, a in enumerate(self.sc["attacks"]):  # scripted changes an attack step makes on this control block
            if a.get("op") == "change" and a["target"] == p["name"]:
                ch = dict(a["change"], at=self.at(i), step=a["name"])
                spec.setdefault("changes", []).append(ch)
                if a.get("revert"):  # back to routine values (a normal state change) some seconds later
                    spec["changes"].append({"at": self.at(i) + float(a["revert"]["after"]), "set": a["revert"]["set"]})
        return spec

    def _attack(self, a: dict[str, Any]) -> None:
        op = a.get("op", "forge")
        t_start = time.time()
        if op == "forge":
            victim = self.cbs.get(a.get("victim", ""))
            cb = json.loads(json.dumps(victim)) if victim else {}
            cb.update(a.get("cb", {}))
            spoof = a.get("mac") == "victim"
            mac = self.macs[victim["host"]] if spoof and victim else self.macs[a.get("host", "atk")]
            if spoof:
                self.net.set_mac("atk", "eth1", mac)
            spec = {"step": a["name"], "cb": cb, "iface": "eth1" if spoof else "eth0", "mac": mac,
                    "follow": bool(victim), "victim_mac": self.macs[victim["host"]] if victim else None,
                    **{k: a[k] for k in ("st", "sq", "set", "frames", "t1", "tal_ms") if k in a}}
            argv = [sys.executable, "-m", "tests.testbed.stacks.goose", "_attack", "--spec", json.dumps(spec)]
            agent = Agent(a["name"], a.get("host", "atk"), self._popen(a.get("host", "atk"), argv))
            agent.start_readers(ready_event="ready")
            self._run_step(a["name"], agent)
        elif op == "start":
            spec = self._publisher_spec(dict(a["publisher"], step=a["name"]), 90 + len(self.publishers))
            self.cbs[a["publisher"]["name"]] = a["publisher"]
            self._start_publisher(a["publisher"]["name"], spec)
            time.sleep(1.0)
        elif op == "kill":
            agent = self.publishers[a["target"]]
            agent.seen_sent.clear()
            agent.seen_sent.wait(10.0)  # right after one of its frames: its last
            agent.proc.kill()
            agent.killed_at = time.time()
            agent.proc.wait()
        elif op == "change":
            time.sleep(1.0)  # the publisher makes the change itself at this step's time
        else:
            raise ValueError(f"unknown attack op {op!r}")
        self.step_times[a["name"]] = (t_start, time.time())

    def _play(self) -> None:
        sc = self.sc
        self.t0 = time.time() + 1.0  # publishers start within the first second
        for i, p in enumerate(sc["publishers"]):
            self._start_publisher(p["name"], self._publisher_spec(p, i))
        self._attack_steps()
        end_rel = (self.at(len(sc["attacks"]) - 1) if sc["attacks"] else float(sc["lead_in"]))
        self._wait_until(max(end_rel, time.time() - self.t0) + float(sc["tail"]))
        self._finish()


# ------------------------------------------------------------------------------------------ labels
def assign_frames(rec: Recorder) -> tuple[dict[str, list[int]], int, dict[str, Any]]:
    """Frame numbers (1-based) per step, the total, and per-source counts."""
    from sensors.decoders.goose.parser import parse

    from ..labels import NORMAL

    sc = rec.sc
    frames: dict[str, list[int]] = {NORMAL: [], **{a["name"]: [] for a in sc["attacks"]}}
    forged: dict[tuple[str, bytes], str] = {}
    victims: dict[str, tuple[int, str, str]] = {}  # step -> (appid, gocbRef, victim MAC)
    for name, agent in rec.attack_agents.items():
        for e in agent.events:
            if e.get("event") == "sent_frames":
                for hx in e["frames"]:
                    forged[(e["mac"], bytes.fromhex(hx))] = name
                a = next(x for x in sc["attacks"] if x["name"] == name)
                if a.get("victim"):
                    victims[name] = (int(e["appid"]), e["gocb_ref"], rec.macs[rec.cbs[a["victim"]]["host"]])
    tagged: dict[tuple[str, int, str, int, int], str] = {}  # (MAC, APPID, gocbRef, stNum, sqNum) -> step
    kills = {a["target"]: a["name"] for a in sc["attacks"] if a.get("op") == "kill"}
    for pname, agent in rec.publishers.items():
        cb = rec.cbs[pname]
        key = (rec.macs[cb["host"]], int(cb["appid"]), cb["gocb_ref"])
        kill_step = kills.get(pname)
        kill_from = rec.step_times.get(kill_step, (None,))[0] if kill_step else None
        for e in agent.events:
            if e.get("event") != "sent":
                continue
            step = e.get("step")
            if kill_from is not None and e["t"] >= kill_from:
                step = kill_step
            if step:
                tagged[(*key, int(e["st"]), int(e["sq"]))] = step
    stats: dict[str, Any] = {"by_src": Counter(), "recovery": 0}
    # per victim step: frames of the attacked control block from the first forged frame until the
    # victim's first frame after the last forged one
    span: dict[str, list[int]] = {}
    parsed = []
    records = read_pcap(rec.pcap)
    for n, (t, raw) in enumerate(records, start=1):
        got = _goose_of(raw)
        g = parse(memoryview(got[1])) if got else None
        parsed.append((n, got, g))
        if got:
            stats["by_src"][got[0]] += 1
            step = forged.get((got[0], got[1]))
            if step:
                span.setdefault(step, []).append(n)
    owner: dict[int, str] = {}
    for step, ns in span.items():
        appid, ref, vmac = victims.get(step, (None, None, None))
        for n in ns:
            owner[n] = step
        if ref is None:
            continue
        last = max(ns)
        for n, got, g in parsed[min(ns) - 1:]:
            if n in owner or got is None or g is None or g.appid != appid or g.gocb_ref != ref:
                continue
            owner[n] = step
            stats["recovery"] += 1
            if n > last and got[0] == vmac:
                break
    for n, got, g in parsed:
        step = owner.get(n)
        if step is None and got and g is not None and g.st_num is not None:
            step = tagged.get((got[0], g.appid, g.gocb_ref or "", g.st_num, g.sq_num or 0))
        frames[step or NORMAL].append(n)
    stats["by_src"] = dict(sorted(stats["by_src"].items()))
    return frames, len(records), stats


def _observed(rec: Recorder, a: dict[str, Any], frames: list[int]) -> str:
    op = a.get("op", "forge")
    if op == "forge":
        ev = [e for e in rec.attack_agents[a["name"]].events if e.get("event") in ("observed", "sent_frames")]
        obs = next((e for e in ev if e["event"] == "observed"), None)
        sent = next((e for e in ev if e["event"] == "sent_frames"), None)
        head = f"victim at stNum {obs['st']} sqNum {obs['sq']}; " if obs else ""
        return head + (f"{len(sent['frames'])} frame(s) sent from {sent['mac']} with stNum {sent['st']}" if sent else "nothing sent")
    if op == "kill":
        agent = rec.publishers[a["target"]]
        last = [e for e in agent.events if e.get("event") == "sent"][-1:]
        return f"publisher killed after its frame stNum {last[0]['st']} sqNum {last[0]['sq']}" if last else "publisher killed"
    return f"{len(frames)} frame(s) of the step's states on the wire"


def write_labels(rec: Recorder, record: dict[str, Any], out_dir: Path) -> Path:
    """The label file, in the layout of tests/testbed/labels.py's write_labels."""
    from ..labels import NORMAL, doc_head, known_rule_ids, step_entry, write_label_file

    sc = rec.sc
    frames, total, stats = assign_frames(rec)
    rules = known_rule_ids()
    steps_out = [step_entry(
        NORMAL, "normal", frames[NORMAL], [],
        "Everything not in an attack step: "
        + "; ".join(f"{p['name']} ({p['host']} {rec.macs[p['host']]} -> {p['dst']}, {p['gocb_ref']}"
                    f"{', VLAN ' + str(p['vlan']['id']) if p.get('vlan') else ''})" for p in sc["publishers"])
        + " - heartbeats, retransmissions and their state changes.",
    )]
    dropped = []
    for a in sc["attacks"]:
        wanted = list(a.get("expect_rules", []))
        dropped += [f"{a['name']}:{r}" for r in wanted if r not in rules]
        op = a.get("op", "forge")
        if op == "forge":
            victim = rec.cbs.get(a.get("victim", ""))
            cb = {**(victim or {}), **(a.get("cb") or {})}
            host = a.get("host", "atk")
            mac = rec.macs[victim["host"]] if a.get("mac") == "victim" and victim else rec.macs[host]
        else:
            cb = dict(a["publisher"]) if op == "start" else {**rec.cbs[a["target"]], **(a.get("change") or {})}
            host = cb["host"]
            mac = rec.macs[host]
        steps_out.append(step_entry(
            a["name"], "attack", frames[a["name"]], [r for r in wanted if r in rules],
            " ".join(str(a.get("description", "")).split()),
            host=host,
            target=cb.get("gocb_ref", ""),
            connections=[f"{mac} -> {cb.get('dst', '?')} APPID 0x{int(cb.get('appid', 0)):04x}"
                         f"{' VLAN ' + str(cb['vlan']['id']) if cb.get('vlan') else ''} {cb.get('gocb_ref', '')}"],
            observed=_observed(rec, a, frames[a["name"]]),
        ))
    doc = {
        **doc_head(sc, rec.pcap, steps_out, total, record, dropped),
        "link": "bridge qnbr0 in a switch netns, one netns per host (layer 2 only, no IP)",
        "port": None,
        "hosts": {role: {"mac": mac} for role, mac in rec.macs.items()},
        "stack": "goose",
        "transport": "ethernet (ethertype 0x88B8, libiec61850 GoosePublisher)",
        "goose_payload_frames_by_src": stats["by_src"],
        "frames_assigned_by_time_window": stats["recovery"],
        "rule_pack_ids_known": sorted(rules),
        "steps": steps_out,
    }
    return write_label_file(out_dir, doc, "tests.testbed.stacks.goose")


# ------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rc = l2.main_prologue(argv, NS_PREFIX, {"_publish": serve_publisher, "_attack": run_attack})
    if rc is not None:
        return rc
    args = l2.parse_args(argv, "python -m tests.testbed.stacks.goose", "pcaps/goose", log,
                         help="tests/testbed/scenarios/<name>.yml (stack: goose) or a path")
    if args is None:
        return 2
    sc = shorten(load_scenario(args.scenario), args.lead_in, args.steps)
    return l2.record(Recorder(sc, args.out), write_labels, log)


if __name__ == "__main__":
    sys.exit(main())
