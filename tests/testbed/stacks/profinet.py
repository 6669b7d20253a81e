"""PROFINET DCP recorded from a real DCP client (pnio-dcp, Codewerk) against our DCP responder.

    sudo .venv/bin/python -m tests.testbed.stacks.profinet profinet_testbed_attack --out pcaps/profinet/
    .venv/bin/python -m tests.testbed.stacks.profinet profinet_testbed_attack --out /tmp/pn --lead-in 4 \\
        --steps rename_device,blink_then_reset
    .venv/bin/python -m tests.testbed.stacks.profinet cleanup   # stale qn-pn-<pid>-* of dead runs

DCP is layer 2 (ethertype 0x8892), so like GOOSE (tests/testbed/stacks/goose.py) it has its own small
recorder, on the layer-2 recorders' shared network, agents and capture (tests/testbed/stacks/l2.py):

* network: a switch namespace ``qn-pn-<pid>-sw`` holding bridge ``qnbr0`` (tcpdump runs there) and one
  namespace ``qn-pn-<pid>-<role>`` per host, its ``eth0`` a veth into the bridge with the scenario's
  MAC.  The engineering station and the attacker get an IPv4 address on eth0 (pnio_dcp picks its NIC
  by IP; nothing else uses it, no IP packet is sent), IPv6 is off.  Every namespace is deleted on
  exit, also on error or SIGTERM.
* clients: the REAL pnio_dcp client (``pnio_dcp.DCP(ip)``, its own AF_PACKET socket and frames).  The
  engineering station (``_eng``) polls the segment every ``period`` s: ``identify_all``, then
  ``get_name_of_station`` and ``get_ip_address`` of each device.  Each attack step is one process on
  the attacker host (``_attack``) making its pnio_dcp call(s): ``identify_all``, ``set_name_of_station``,
  ``set_ip_address``, ``blink`` then ``reset_to_factory``.
* devices: no PROFINET device stack installs here (p-net is C and not packaged), so the devices are
  OUR RESPONDER (``_device``), not a device stack: a raw AF_PACKET socket answering DCP as IEC
  61158-6-10 describes a device's DCP server - Identify (all selector or a NameOfStation filter; to
  the multicast 01:0e:cf:00:00:00 after the ResponseDelay, 10 ms x (MAC mod ResponseDelayFactor))
  with DeviceVendor, NameOfStation, DeviceID, DeviceRole, DeviceOptions, MAC and IP blocks; Get with
  the asked block (BlockInfo + value) or a Control/Response error 1 (option unsupported); Set with a
  Control/Response block per request block (the option/suboption answered and BlockError 0).  A Set
  changes its state as a device would: a new name or IP is used in later answers, ResetToFactory
  (communication) clears both, Signal "flashes" (logged).  No alarms, IO CM or cyclic data.
* labels (same layout as tests/testbed/labels.py's ``write_labels``): a frame from or to the
  attacker's MAC belongs to the latest-started attack step in whose time window (start - 0.2 s ..
  end + 0.5 s) it was captured; every other frame is normal.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import l2
from .common import STOP, emit, install_signals
from .l2 import Agent, Net, read_pcap, select_steps

ETHERTYPE_DCP = 0x8892
DCP_MULTICAST = "01:0e:cf:00:00:00"
FRAME_HELLO, FRAME_GET_SET, FRAME_IDENT_REQ, FRAME_IDENT_RES = 0xFEFC, 0xFEFD, 0xFEFE, 0xFEFF
SVC_GET, SVC_SET, SVC_IDENTIFY = 3, 4, 5
NS_PREFIX = "qn-pn"

#: the one scenario (no YAML: the recorder is its only reader).  MACs: locally administered, built from
#: the plant's addresses like rules/lists.yml's (the engineering station 02:00:0a:0a:01:14 is listed in
#: profinet_engineering_macs and profinet_stations; the attacker and the IO devices are not).
SCENARIO: dict[str, Any] = {
    "name": "profinet_testbed_attack",
    "description": "An engineering station polling two PROFINET IO devices with the pnio-dcp client (DCP "
                   "Identify All, Get NameOfStation, Get IP every 4 s); the devices are our DCP responder (not a "
                   "device stack). Then, from the attacker with pnio-dcp: an Identify All sweep, a device renamed, "
                   "a device re-addressed, and a device located by an LED blink and reset to factory.",
    "hosts": {
        "eng": {"mac": "02:00:0a:0a:01:14", "ip": "10.10.1.20"},
        "dev1": {"mac": "02:00:0a:0a:01:c9", "name": "io-pump-1", "ip": "10.10.1.201", "vendor_id": 0x002A,
                 "device_id": 0x0313, "vendor_value": "ET 200SP", "role": 0x01},
        "dev2": {"mac": "02:00:0a:0a:01:ca", "name": "io-valve-2", "ip": "10.10.1.202", "vendor_id": 0x002A,
                 "device_id": 0x0313, "vendor_value": "ET 200SP", "role": 0x01},
        "atk": {"mac": "02:00:0a:0a:01:42", "ip": "10.10.1.66"},
    },
    "netmask": "255.255.255.0",
    "gateway": "10.10.1.1",
    "period": 4.0,
    "lead_in": 12.0,
    "spacing": 4.0,
    "tail": 5.0,
    "attacks": [
        {"name": "identify_sweep", "call": "identify_all", "expect_rules": ["qn-profinet-0004"],
         "description": "DCP Identify All (all selector, multicast) from the attacker: both devices answer with "
                        "name, vendor/device id, role and IP."},
        {"name": "rename_device", "call": "set_name_of_station", "target": "dev1", "args": ["evil-io-1"],
         "expect_rules": ["qn-profinet-0001"],
         "description": "DCP Set NameOfStation (permanent) of dev1 from the attacker: its IO controller no longer "
                        "finds it by name."},
        {"name": "readdress_device", "call": "set_ip_address", "target": "dev2",
         "args": [["10.10.1.250", "255.255.255.0", "10.10.1.1"]], "expect_rules": ["qn-profinet-0001"],
         "description": "DCP Set IP parameter (permanent) of dev2 from the attacker."},
        # Signal alone raises nothing (no rule covers it: event.action identify) and every attack step of a bundled
        # capture must raise an alert (tests/test_scenarios.py), so the blink is the first half of the reset step:
        # the attacker locates the device, then resets it.
        {"name": "blink_then_reset", "calls": [{"call": "blink", "target": "dev1"},
                                               {"call": "reset_to_factory", "target": "dev1"}],
         "expect_rules": ["qn-profinet-0002"],
         "description": "DCP Set Control/Signal (flash the LED) on dev1 from the attacker, then DCP Set "
                        "Control/ResetToFactory (mode 2, communication) of dev1: name and IP cleared. Only the reset "
                        "alerts; no rule covers Signal."},
    ],
}


def log(msg: str) -> None:
    print(f"[profinet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ DCP bytes
def _mac_b(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def _mac_s(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _block(option: int, suboption: int, data: bytes) -> bytes:
    """One DCP block, padded to an even length (the padding counts in DCPDataLength, not in DCPBlockLength)."""
    out = struct.pack(">BBH", option, suboption, len(data)) + data
    return out + b"\x00" * (len(data) % 2)


def dcp_frame(dst: str, src: str, frame_id: int, service: int, stype: int, xid: int, blocks: bytes,
              delay: int = 0) -> bytes:
    """An untagged DCP frame (Ethernet padded to 60 bytes)."""
    head = _mac_b(dst) + _mac_b(src) + struct.pack(">H", ETHERTYPE_DCP)
    pdu = struct.pack(">HBBIHH", frame_id, service, stype, xid, delay, len(blocks)) + blocks
    frame = head + pdu
    return frame + b"\x00" * max(0, 60 - len(frame))


def parse_request(frame: bytes) -> dict[str, Any] | None:
    """A DCP request of an untagged frame: frame id, service, xid, delay, blocks [(opt, sub, data)]; else None."""
    if len(frame) < 26 or struct.unpack(">H", frame[12:14])[0] != ETHERTYPE_DCP:
        return None
    frame_id, service, stype, xid, delay, length = struct.unpack(">HBBIHH", frame[14:26])
    if stype != 0 or frame_id not in (FRAME_GET_SET, FRAME_IDENT_REQ):
        return None
    data, blocks, i = frame[26:26 + length], [], 0
    if service == SVC_GET:  # a Get request lists option/suboption pairs only
        while i + 2 <= len(data):
            blocks.append((data[i], data[i + 1], b""))
            i += 2
    else:
        while i + 4 <= len(data):
            opt, sub, blen = struct.unpack(">BBH", data[i:i + 4])
            blocks.append((opt, sub, data[i + 4:i + 4 + blen]))
            i += 4 + blen + blen % 2
    return {"dst": _mac_s(frame[0:6]), "src": _mac_s(frame[6:12]), "frame_id": frame_id, "service": service,
            "xid": xid, "delay": delay, "blocks": blocks}


# ------------------------------------------------------------------------------------------ device
class Device:
    """Our DCP responder's state and answers (not a device stack: DCP only)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.mac = spec["mac"].lower()
        self.name = spec["name"]
        self.ip, self.mask, self.gw = spec["ip"], spec["netmask"], spec["gateway"]
        self.vendor_id, self.device_id = int(spec["vendor_id"]), int(spec["device_id"])
        self.vendor_value = spec["vendor_value"]
        self.role = int(spec["role"])

    def _ip_block(self) -> bytes:
        info = 0x0001 if self.ip != "0.0.0.0" else 0x0000  # BlockInfo: IP set
        return _block(1, 2, struct.pack(">H", info) + socket.inet_aton(self.ip) + socket.inet_aton(self.mask)
                      + socket.inet_aton(self.gw))

    def value_block(self, opt: int, sub: int) -> bytes | None:
        if (opt, sub) == (1, 1):
            return _block(1, 1, b"\x00\x00" + _mac_b(self.mac))
        if (opt, sub) == (1, 2):
            return self._ip_block()
        if (opt, sub) == (2, 1):
            return _block(2, 1, b"\x00\x00" + self.vendor_value.encode())
        if (opt, sub) == (2, 2):
            return _block(2, 2, b"\x00\x00" + self.name.encode())
        if (opt, sub) == (2, 3):
            return _block(2, 3, b"\x00\x00" + struct.pack(">HH", self.vendor_id, self.device_id))
        if (opt, sub) == (2, 4):
            return _block(2, 4, b"\x00\x00" + bytes([self.role, 0]))
        if (opt, sub) == (2, 5):
            supported = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (5, 3), (5, 6)]
            return _block(2, 5, b"\x00\x00" + b"".join(bytes(p) for p in supported))
        return None

    def identify_blocks(self) -> bytes:
        return b"".join(self.value_block(o, s) or b"" for o, s in ((2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (1, 1), (1, 2)))

    def matches(self, blocks: list[tuple[int, int, bytes]]) -> bool:
        """Identify filter: the all selector, or every filter block equal to ours (name, vendor/device id, IP)."""
        for opt, sub, data in blocks:
            if (opt, sub) == (0xFF, 0xFF):
                continue
            if (opt, sub) == (2, 2) and data.rstrip(b"\x00").decode(errors="replace").lower() != self.name:
                return False
            if (opt, sub) == (2, 3) and data[:4] != struct.pack(">HH", self.vendor_id, self.device_id):
                return False
            if (opt, sub) == (1, 2) and data[:4] != socket.inet_aton(self.ip):
                return False
        return True

    def set(self, opt: int, sub: int, data: bytes) -> tuple[int, str]:
        """Apply one Set block (data starts with the BlockQualifier); (BlockError, what was done)."""
        value = data[2:]
        if (opt, sub) == (2, 2):
            self.name = value.rstrip(b"\x00").decode(errors="replace").lower()
            return 0, f"name of station -> {self.name!r}"
        if (opt, sub) == (1, 2) and len(value) >= 12:
            self.ip, self.mask, self.gw = (socket.inet_ntoa(value[i:i + 4]) for i in (0, 4, 8))
            return 0, f"ip -> {self.ip}/{self.mask} gw {self.gw}"
        if (opt, sub) == (5, 3):
            return 0, "signal: LED flashing"
        if (opt, sub) in ((5, 5), (5, 6)):  # FactoryReset / ResetToFactory (every mode resets the communication)
            self.name, self.ip, self.mask, self.gw = "", "0.0.0.0", "0.0.0.0", "0.0.0.0"
            return 0, "reset to factory: name and ip cleared"
        if (opt, sub) in ((5, 1), (5, 2)):  # Start / Stop transaction
            return 0, "transaction " + ("start" if sub == 1 else "stop")
        return (1 if opt not in (1, 2, 5) else 2), "unsupported"

    def answer(self, req: dict[str, Any]) -> tuple[bytes | None, float, dict[str, Any]]:
        """(response frame or None, delay in s, what happened) for one request to this device or multicast."""
        svc, xid, src = req["service"], req["xid"], req["src"]
        if req["dst"] not in (self.mac, DCP_MULTICAST):  # flooded by the bridge before it learnt the MAC
            return None, 0.0, {}
        if req["frame_id"] == FRAME_IDENT_REQ and svc == SVC_IDENTIFY:
            if not self.matches(req["blocks"]):
                return None, 0.0, {"identify": "filtered out"}
            delay = 0.0
            if req["dst"] == DCP_MULTICAST and req["delay"] > 1:  # spread the answers: 10 ms x (MAC mod factor)
                delay = 0.01 * (int.from_bytes(_mac_b(self.mac)[3:], "big") % req["delay"])
            return (dcp_frame(src, self.mac, FRAME_IDENT_RES, SVC_IDENTIFY, 1, xid, self.identify_blocks()), delay,
                    {"identify": self.name})
        if req["dst"] != self.mac or req["frame_id"] != FRAME_GET_SET:
            return None, 0.0, {}
        if svc == SVC_GET:
            out, got = b"", []
            for opt, sub, _ in req["blocks"]:
                blk = self.value_block(opt, sub)
                out += blk if blk is not None else _block(5, 4, bytes([opt, sub, 1]))
                got.append(f"{opt}.{sub}" + ("" if blk is not None else " unsupported"))
            return dcp_frame(src, self.mac, FRAME_GET_SET, SVC_GET, 1, xid, out), 0.0, {"get": got}
        if svc == SVC_SET:
            out, done = b"", []
            for opt, sub, data in req["blocks"]:
                err, what = self.set(opt, sub, data)
                out += _block(5, 4, bytes([opt, sub, err]))
                done.append(what)
            return dcp_frame(src, self.mac, FRAME_GET_SET, SVC_SET, 1, xid, out), 0.0, {"set": done}
        return None, 0.0, {}


def serve_device(spec: dict[str, Any]) -> int:
    """Our DCP responder on eth0 until SIGTERM."""
    install_signals()
    dev = Device(spec)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_DCP))
    sock.bind(("eth0", 0))
    sock.settimeout(0.2)
    emit("ready", mac=dev.mac, name=dev.name, ip=dev.ip)
    timers: list[threading.Timer] = []
    try:
        while not STOP.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] == 4:  # PACKET_OUTGOING: our own answers
                continue
            req = parse_request(data)
            if req is None:
                continue
            frame, delay, what = dev.answer(req)
            if frame is None:
                continue
            emit("answer", src=req["src"], service=req["service"], xid=req["xid"], delay=round(delay, 3), **what)
            if delay > 0:
                t = threading.Timer(delay, sock.send, args=(frame,))
                t.start()
                timers.append(t)
            else:
                sock.send(frame)
    finally:
        for t in timers:
            t.cancel()
        sock.close()
        emit("end", name=dev.name, ip=dev.ip)
    return 0


# ------------------------------------------------------------------------------------------ clients
def _client(ip: str) -> Any:
    import pnio_dcp

    dcp = pnio_dcp.DCP(ip)
    # per-call wait for an answer (pnio_dcp's default is 7 s); identify_all also waits this long after its
    # window for a late answer.  Our responders answer in < 1 ms (Identify: after the ResponseDelay).
    dcp.default_timeout = 1.0
    return dcp


def serve_engineering(spec: dict[str, Any]) -> int:
    """The engineering station's routine DCP polling with pnio_dcp until SIGTERM."""
    install_signals()
    dcp = _client(spec["ip"])
    emit("ready")
    while not STOP.is_set():
        t = time.time()
        found = dcp.identify_all(timeout=float(spec.get("identify_timeout", 1.6)))
        emit("identify_all", found=[(d.MAC, d.name_of_station, d.IP) for d in found])
        for mac in spec["devices"]:
            if STOP.is_set():
                break
            try:
                emit("get", mac=mac, name=dcp.get_name_of_station(mac), ip=dcp.get_ip_address(mac))
            except Exception as exc:  # a timeout: the device did not answer
                emit("error", mac=mac, error=repr(exc))
        STOP.wait(max(0.0, float(spec["period"]) - (time.time() - t)))
    emit("end")
    return 0


def run_attack(spec: dict[str, Any]) -> int:
    """One attack step: its pnio_dcp call(s) from the attacker's NIC, 0.5 s apart."""
    dcp = _client(spec["ip"])
    for i, c in enumerate(spec["calls"]):
        if i:
            time.sleep(0.5)
        call, target, args = c["call"], c.get("target_mac"), c.get("args", [])
        emit("start", call=call, target=target)
        if call == "identify_all":
            found = dcp.identify_all(timeout=1.6)
            emit("result", call=call, result=[(d.MAC, d.name_of_station, d.IP) for d in found])
        else:
            res = getattr(dcp, call)(target, *args)
            emit("result", call=call, result=str(res), ok=bool(res))
    return 0


def step_calls(a: dict[str, Any]) -> list[dict[str, Any]]:
    """A step's pnio_dcp calls: ``calls``, or the one ``call`` (with ``target``, ``args``)."""
    return a.get("calls") or [{k: a[k] for k in ("call", "target", "args") if k in a}]


# ------------------------------------------------------------------------------------------ recorder
def shorten(sc: dict[str, Any], lead_in: float | None, steps: list[str] | None) -> dict[str, Any]:
    sc = json.loads(json.dumps(sc))
    if lead_in is not None:
        sc["lead_in"] = lead_in
    return select_steps(sc, steps)


class Recorder(l2.Recorder):
    def __init__(self, sc: dict[str, Any], out_dir: Path) -> None:
        self.hosts = sc["hosts"]
        self.macs = {role: h["mac"].lower() for role, h in self.hosts.items()}
        super().__init__(sc, out_dir, Net(self.macs, NS_PREFIX, ips={r: self.hosts[r]["ip"] for r in ("eng", "atk")}), log)

    def _agent(self, name: str, role: str, mode: str, spec: dict[str, Any]) -> Agent:
        argv = [sys.executable, "-m", "tests.testbed.stacks.profinet", mode, "--spec", json.dumps(spec)]
        agent = Agent(name, role, self._popen(role, argv))
        agent.start_readers(ready_event="ready")
        return agent

    def _attack(self, a: dict[str, Any]) -> None:
        spec = {"ip": self.hosts["atk"]["ip"],
                "calls": [{"call": c["call"], "args": c.get("args", []),
                           "target_mac": self.macs[c["target"]] if c.get("target") else None} for c in step_calls(a)]}
        t_start = time.time()
        agent = self._agent(a["name"], "atk", "_attack", spec)
        self._run_step(a["name"], agent, drain=0.3)  # 0.3 s: let the reader threads drain
        self.step_times[a["name"]] = (t_start, time.time())

    def _play(self) -> None:
        sc = self.sc
        devices = [r for r in self.hosts if r.startswith("dev")]
        for role in devices:
            spec = {**self.hosts[role], "netmask": sc["netmask"], "gateway": sc["gateway"]}
            self.agents[role] = self._agent(role, role, "_device", spec)
        for role in devices:
            if not self.agents[role].ready.wait(10.0):
                raise RuntimeError(f"device {role} did not start: {self.agents[role].stderr[-10:]}")
        self.t0 = time.time()
        eng = {"ip": self.hosts["eng"]["ip"], "period": sc["period"], "devices": [self.macs[r] for r in devices]}
        self.agents["eng"] = self._agent("eng", "eng", "_eng", eng)
        if not self.agents["eng"].ready.wait(10.0):
            raise RuntimeError(f"engineering station did not start: {self.agents['eng'].stderr[-10:]}")
        self._attack_steps()
        self._wait_until(time.time() - self.t0 + float(sc["tail"]))
        self.agents["eng"].stop(timeout=8.0)  # the station finishes its cycle's call first
        time.sleep(0.3)
        self._finish()


# ------------------------------------------------------------------------------------------ labels
#: a frame to or from the attacker belongs to the step captured in [start - LEAD, end + TRAIL] (the latest such)
WINDOW_LEAD, WINDOW_TRAIL = 0.2, 0.5


def assign_frames(rec: Recorder) -> tuple[dict[str, list[int]], int, dict[str, Any]]:
    """Frame numbers (1-based) per step, the total, and per-source counts."""
    from ..labels import NORMAL

    atk = rec.macs["atk"]
    frames: dict[str, list[int]] = {NORMAL: [], **{a["name"]: [] for a in rec.sc["attacks"]}}
    by_src: Counter[str] = Counter()
    orphans = []
    records = read_pcap(rec.pcap)
    for n, (t, raw) in enumerate(records, start=1):
        dst, src = _mac_s(raw[0:6]), _mac_s(raw[6:12])
        by_src[src] += 1
        if atk not in (src, dst):
            frames[NORMAL].append(n)
            continue
        # the latest-started step whose window holds the frame (a step's trail may reach into the next one's start)
        inside = [(a, name) for name, (a, b) in rec.step_times.items() if a - WINDOW_LEAD <= t <= b + WINDOW_TRAIL]
        step = max(inside)[1] if inside else None
        if step is None:
            orphans.append(n)
            frames[NORMAL].append(n)
        else:
            frames[step].append(n)
    if orphans:
        print(f"labels: attacker frames outside every step window: {orphans}", file=sys.stderr)
    return frames, len(records), {"by_src": dict(sorted(by_src.items())), "orphans": orphans}


def _observed(rec: Recorder, name: str) -> str:
    ev = [e for e in rec.attack_agents[name].events if e.get("event") == "result"]
    if not ev:
        return "no result: " + " | ".join(rec.attack_agents[name].stderr[-2:])
    out = []
    for e in ev:
        res = e["result"]
        if isinstance(res, list):
            out.append(f"pnio_dcp {e['call']} found " + ", ".join(f"{m} {n!r} {ip}" for m, n, ip in res))
        else:
            out.append(f"pnio_dcp {e['call']} answer: {res}")
    return "; ".join(out)


def write_labels(rec: Recorder, record: dict[str, Any], out_dir: Path) -> Path:
    """The label file, in the layout of tests/testbed/labels.py's write_labels."""
    from ..labels import NORMAL, doc_head, known_rule_ids, step_entry, write_label_file

    sc = rec.sc
    frames, total, stats = assign_frames(rec)
    rules = known_rule_ids()
    devs = [r for r in rec.hosts if r.startswith("dev")]
    steps_out = [step_entry(
        NORMAL, "normal", frames[NORMAL], [],
        f"Everything not in an attack step: the engineering station ({rec.macs['eng']}, pnio-dcp) every "
        f"{sc['period']:g} s: Identify All, then Get NameOfStation and Get IP of "
        + ", ".join(f"{r} ({rec.macs[r]} {rec.hosts[r]['name']!r})" for r in devs)
        + "; the devices' answers (our DCP responder).",
    )]
    dropped = []
    for a in sc["attacks"]:
        wanted = list(a.get("expect_rules", []))
        dropped += [f"{a['name']}:{r}" for r in wanted if r not in rules]
        calls = step_calls(a)
        targets = sorted({c["target"] for c in calls if c.get("target")})
        steps_out.append(step_entry(
            a["name"], "attack", frames[a["name"]], [r for r in wanted if r in rules],
            " ".join(str(a.get("description", "")).split()),
            host="atk",
            target=", ".join(targets) or "all devices",
            connections=[f"{rec.macs['atk']} -> {rec.macs[c['target']] if c.get('target') else DCP_MULTICAST} DCP "
                         f"pnio_dcp.{c['call']}({', '.join(json.dumps(x) for x in c.get('args', []))})" for c in calls],
            observed=_observed(rec, a["name"]),
        ))
    doc = {
        **doc_head(sc, rec.pcap, steps_out, total, record, dropped),  # no holdout: the scenario has none
        "link": "bridge qnbr0 in a switch netns, one netns per host (layer 2; IPv4 on the clients' eth0 only "
                "for pnio_dcp to find its NIC)",
        "port": None,
        "hosts": {role: {"mac": rec.macs[role], **({"ip": h["ip"]} if role in ("eng", "atk") else {}),
                         **({"name_of_station": h["name"], "dcp_ip": h["ip"]} if role in devs else {})}
                  for role, h in rec.hosts.items()},
        "stack": "profinet",
        "transport": "ethernet (ethertype 0x8892): pnio-dcp client (engineering station, attacker); the devices are "
                     "our DCP responder (tests/testbed/stacks/profinet.py), not a device stack",
        "dcp_frames_by_src": stats["by_src"],
        "attacker_frames_outside_steps": len(stats["orphans"]),
        "rule_pack_ids_known": sorted(rules),
        "steps": steps_out,
    }
    return write_label_file(out_dir, doc, "tests.testbed.stacks.profinet")


# ------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rc = l2.main_prologue(argv, NS_PREFIX, {"_device": serve_device, "_eng": serve_engineering, "_attack": run_attack})
    if rc is not None:
        return rc
    args = l2.parse_args(argv, "python -m tests.testbed.stacks.profinet", "pcaps/profinet", log,
                         choices=[SCENARIO["name"]])
    if args is None:
        return 2
    sc = shorten(SCENARIO, args.lead_in, args.steps)
    return l2.record(Recorder(sc, args.out), write_labels, log)


if __name__ == "__main__":
    sys.exit(main())
