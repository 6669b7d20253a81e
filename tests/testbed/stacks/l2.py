"""What the layer-2 recorders (tests/testbed/stacks/goose.py, profinet.py) share: their network (a bridge in a switch
namespace, one namespace per host), the agents they start in it, tcpdump on the bridge, the timeline clock, the
teardown, reading the pcap and the command line's recording run.

Their namespaces are ``<prefix>-<pid>-<role>`` (``qn-goose-``, ``qn-pn-``); ``cleanup_stale(prefix)`` deletes those of
dead runs only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..capture import Tcpdump
from ..runner import Agent, select_steps
from ..plant import _kill_ns_pids, _pid_alive, _run, add_netns, delete_netns
from ..plant import netns_available

REPO = Path(__file__).resolve().parents[3]
BRIDGE = "qnbr0"
__all__ = ["BRIDGE", "REPO", "Agent", "Net", "Recorder", "cleanup_stale", "netns_available", "read_pcap", "record",
           "select_steps"]


# ------------------------------------------------------------------------------------------ network
def cleanup_stale(prefix: str) -> list[str]:
    """Delete ``<prefix>-<pid>-*`` namespaces whose creating pid is gone (never anything else)."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-[a-z0-9]+$")
    removed = []
    for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        m = pattern.match(ns)
        if m and not _pid_alive(int(m.group(1))):
            _kill_ns_pids(ns)
            if _run(["ip", "netns", "del", ns], check=False).returncode == 0:
                removed.append(ns)
    return removed


@dataclass
class Net:
    """Switch namespace with a bridge, one namespace per host (``up``, then ``down`` in a ``finally``)."""

    macs: dict[str, str]  # role -> eth0 MAC
    prefix: str  # namespaces are <prefix>-<tag>-<role>
    spoof_role: str | None = None  # this host also gets eth1 (a second bridge port) for spoofed MACs
    ips: dict[str, str] = field(default_factory=dict)  # role -> IPv4 address (/24) on its eth0
    tag: str = field(default_factory=lambda: str(os.getpid()))
    created: list[str] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{self.tag}-{role}"

    @property
    def switch(self) -> str:
        return self.ns("sw")

    def wrap(self, role: str | None, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.switch if role is None else self.ns(role), *argv]

    def _port(self, role: str, port: str, ifname: str, mac: str) -> None:
        sw, ns = self.switch, self.ns(role)
        _run(["ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns])
        _run(["ip", "-n", ns, "link", "set", ifname, "address", mac])
        _run(["ip", "-n", sw, "link", "set", port, "master", BRIDGE])
        _run(["ip", "-n", sw, "link", "set", port, "up"])
        _run(["ip", "-n", ns, "link", "set", ifname, "up"])

    def up(self) -> None:
        cleanup_stale(self.prefix)
        add_netns(self.switch, self.created)
        _run(["ip", "-n", self.switch, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0",
              "mcast_snooping", "0"])  # no IGMP queries/joins of the bridge's own: a layer-2-only capture
        _run(["ip", "-n", self.switch, "link", "set", BRIDGE, "up"])
        for role, mac in self.macs.items():
            add_netns(self.ns(role), self.created)
            self._port(role, role, "eth0", mac)
        if self.spoof_role:
            self._port(self.spoof_role, f"{self.spoof_role}x", "eth1", "02:00:0a:0a:01:ff")
        for role, ip in self.ips.items():
            _run(["ip", "-n", self.ns(role), "addr", "add", f"{ip}/24", "dev", "eth0"])

    def set_mac(self, role: str, ifname: str, mac: str) -> None:
        _run(["ip", "-n", self.ns(role), "link", "set", ifname, "address", mac])

    def down(self) -> None:
        delete_netns(self.created, "layer-2 testbed")


# ------------------------------------------------------------------------------------------ recorder
class Recorder:
    """A layer-2 recorder's plumbing: the pcap, tcpdump on the bridge, agents started in the hosts' namespaces
    (``_popen``), the clock (``t0``, ``_wait_until``) and the teardown that always runs (``_teardown``)."""

    def __init__(self, sc: dict[str, Any], out_dir: Path, net: Net, log: Callable[[str], None]) -> None:
        self.sc = sc
        self.log = log
        self.out_dir = out_dir
        self.pcap = out_dir / f"{sc['name']}.pcap"
        self.net = net
        self.capture = Tcpdump(lambda argv: net.wrap(None, argv), BRIDGE, self.pcap)
        self.agents: dict[str, Agent] = {}  # the scenario's routine processes, by name
        self.attack_agents: dict[str, Agent] = {}
        self.step_times: dict[str, tuple[float, float]] = {}
        self.t0 = self.t_end = 0.0

    def _popen(self, role: str, argv: list[str]) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
        return subprocess.Popen(self.net.wrap(role, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=str(REPO), start_new_session=True)

    def _wait_until(self, rel: float) -> None:
        delay = self.t0 + rel - time.time()
        if delay > 0:
            time.sleep(delay)

    def _fresh_pcap(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.pcap.exists():
            self.pcap.unlink()

    def _up(self) -> None:
        """The network up and tcpdump listening on its bridge (half a second before anything is sent)."""
        self.net.up()
        self.capture.start()
        time.sleep(0.5)

    def _run_step(self, name: str, agent: Agent, drain: float = 0.0) -> None:
        """An attack step's one-shot agent: given 20 s to finish, then stopped (``drain`` s for its readers)."""
        self.attack_agents[name] = agent
        try:
            agent.proc.wait(timeout=20.0)
        except subprocess.TimeoutExpired:
            self.log(f"step {name} did not finish in 20 s; stopping it")
        agent.stop(timeout=3.0)
        if drain:
            time.sleep(drain)
        if agent.proc.returncode != 0:
            self.log(f"step {name}: rc={agent.proc.returncode} {agent.events[-3:]} {agent.stderr[-5:]}")

    def _teardown(self, agents: Iterable[Agent]) -> None:
        """Stop the agents, the capture and the network (a second Ctrl-C or SIGTERM cannot cut this short), then log
        the agents' tracebacks."""
        agents = list(agents)
        main = threading.current_thread() is threading.main_thread()
        saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            for agent in agents:
                agent.stop(timeout=3.0)
            self.capture.stop()
            self.net.down()
        finally:
            for s, h in saved.items():
                signal.signal(s, h)
        for agent in agents:
            if any("Traceback" in ln for ln in agent.stderr):
                self.log(f"{agent.name} stderr: {agent.stderr[-10:]}")

    def at(self, i: int) -> float:
        """When attack step ``i`` starts (s after t0)."""
        return float(self.sc["lead_in"]) + i * float(self.sc["spacing"])

    def _attack_steps(self) -> None:
        self.log(f"scenario {self.sc['name']}: capture on {BRIDGE} -> {self.pcap}")
        for i, a in enumerate(self.sc["attacks"]):
            self._wait_until(self.at(i))
            self.log(f"t+{time.time() - self.t0:5.1f}s attack {a['name']}")
            self._attack(a)

    def run(self) -> dict[str, Any]:
        """Record: a fresh pcap, the network and capture up, the scenario played (``_play``), then always the teardown
        (of ``_agents``); returns {t0, t_end}."""
        self._fresh_pcap()
        try:
            self._up()
            self._play()
        finally:
            self._teardown(self._agents())
        return {"t0": self.t0, "t_end": self.t_end}

    def _finish(self) -> None:
        """Stop the routine agents; half a second for their last frames; the end time."""
        for agent in self.agents.values():
            agent.stop(timeout=3.0)
        time.sleep(0.5)
        self.t_end = time.time()

    def _play(self) -> None:
        raise NotImplementedError

    def _attack(self, a: dict[str, Any]) -> None:
        raise NotImplementedError

    def _agents(self) -> list[Agent]:
        return [*self.agents.values(), *self.attack_agents.values()]


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    """(time, frame bytes) of every record of a classic pcap (what tcpdump -w writes)."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out, i = [], 24
    while i + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[i:i + 16])
        out.append((sec + frac / (1e9 if nano else 1e6), data[i + 16:i + 16 + incl]))
        i += 16 + incl
    return out


# ------------------------------------------------------------------------------------------ CLI
def _sigterm(_signo: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def record(rec: Recorder, write_labels: Callable[[Any, dict[str, Any], Path], Path], log: Callable[[str], None]) -> int:
    """The command line's recording run: record (SIGTERM and Ctrl-C tear everything down), write the labels, print
    {pcap, labels, bytes} as JSON."""
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = rec.run()
    except KeyboardInterrupt:
        log("interrupted; everything torn down")
        return 130
    labels = write_labels(rec, result, rec.out_dir)
    size = rec.pcap.stat().st_size
    log(f"wrote {rec.pcap} ({size} bytes) and {labels}")
    print(json.dumps({"pcap": str(rec.pcap), "labels": str(labels), "bytes": size}))
    return 0


def parse_args(argv: list[str], prog: str, out: str, log: Callable[[str], None],
               **scenario: Any) -> argparse.Namespace | None:
    """A recording run's arguments (``scenario`` as ``scenario`` describes it, --out, --lead-in, --steps as a list or
    None); None, logged, when network namespaces are unavailable."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("scenario", **scenario)
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--lead-in", type=float, default=None, help="override the seconds before the first attack step")
    ap.add_argument("--steps", default=None, help="comma-separated subset of the attack steps")
    args = ap.parse_args(argv)
    args.steps = [s for s in args.steps.split(",") if s] if args.steps is not None else None
    if not netns_available():
        log("network namespaces unavailable (need root and `ip netns`)")
        return None
    return args


def main_prologue(argv: list[str], prefix: str, dispatch: dict[str, Callable[[dict[str, Any]], int]]) -> int | None:
    """The subcommands an agent process (``dispatch``: ``_publish --spec JSON`` ...) or ``cleanup`` (stale
    ``<prefix>-*`` namespaces) run; None for a recording run."""
    if argv and argv[0] in dispatch:
        return dispatch[argv[0]](json.loads(argv[argv.index("--spec") + 1]))
    if argv and argv[0] == "cleanup":
        for ns in cleanup_stale(prefix):
            print(f"deleted {ns}")
        return 0
    return None

