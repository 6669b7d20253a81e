"""Scenario runner: plant up, capture on, PLCs, background polling, timeline, labels.

Everything the runner starts is stopped in ``finally`` (also on Ctrl-C): client
agents, PLC servers, tcpdump, then the namespaces.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .capture import Tcpdump
from .plant import FALLBACK_PORT, HOSTS, Plant
from .stacks import port_of, transport_of

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
REPO_ROOT = Path(__file__).resolve().parents[2]


def log(msg: str) -> None:
    print(f"[testbed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yml"))


def load_scenario(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yml"
    with open(path, encoding="utf-8") as fh:
        sc = yaml.safe_load(fh)
    sc.setdefault("background", [])
    sc.setdefault("normal_events", [])
    sc.setdefault("attacks", [])
    for key, default in (("lead_in", 15.0), ("spacing", 2.5), ("tail", 3.0), ("seed", 0),
                         ("stack", "modbus")):
        sc.setdefault(key, default)
    return sc


def shorten(sc: dict[str, Any], lead_in: float | None, steps: list[str] | None) -> dict[str, Any]:
    """Test/CI helper: a shorter lead-in and/or a subset of attack steps."""
    sc = dict(sc)
    if lead_in is not None:
        sc["lead_in"] = lead_in
        sc["normal_events"] = [e for e in sc["normal_events"] if e["at"] < lead_in]
    return select_steps(sc, steps)


def select_steps(sc: dict[str, Any], steps: list[str] | None) -> dict[str, Any]:
    """``sc`` with only the attack steps named in ``steps`` (all when None); an unknown name exits."""
    if steps is not None:
        known = {a["name"] for a in sc["attacks"]}
        unknown = set(steps) - known
        if unknown:
            raise SystemExit(f"unknown step(s) {sorted(unknown)}; known: {sorted(known)}")
        sc["attacks"] = [a for a in sc["attacks"] if a["name"] in steps]
    return sc


# ---------------------------------------------------------------- processes
@dataclass
class Agent:
    """One host-agent subprocess (in the IP plant or a layer-2 testbed) and the JSON lines it printed.

    ``ready`` is set by the record named in ``start_readers``; ``seen_sent`` by every ``sent`` record
    (a layer-2 publisher's frame went out)."""

    name: str
    role: str
    proc: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    seen_sent: threading.Event = field(default_factory=threading.Event)
    killed_at: float | None = None

    def start_readers(self, ready_event: str | None = None) -> None:
        def out() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    self.stderr.append(line)
                    continue
                self.events.append(rec)
                if ready_event and rec.get("event") == ready_event:
                    self.ready.set()
                elif rec.get("event") == "sent":
                    self.seen_sent.set()

        def err() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip())

        for fn in (out, err):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(timeout=2.0)

    def macs(self) -> list[str]:
        """Link addresses a layer-2 step's agent reported (``mac`` events): its frames are claimed by MAC."""
        return sorted({str(e["mac"]).lower() for e in self.events if e.get("event") == "mac"})

    def locals(self) -> list[tuple[str, int]]:
        return [(e["local"][0], int(e["local"][1])) for e in self.events
                if e.get("event") == "connect"]

    def time_span(self) -> tuple[float | None, float | None]:
        ts = [e["t"] for e in self.events]
        return (min(ts), max(ts)) if ts else (None, None)


class Runner:
    def __init__(self, sc: dict[str, Any], out_dir: Path, fallback: bool,
                 python: str = sys.executable) -> None:
        self.sc = sc
        self.out_dir = out_dir
        self.fallback = fallback
        self.python = python
        roles = {"plc1", "plc2"} | set(sc.get("plcs", {}))
        for item in [*sc["background"], *sc["normal_events"], *sc["attacks"]]:
            roles.add(item["host"])
            roles.add(item["target"])
        self.plant = Plant(roles=[r for r in HOSTS if r in roles], fallback=fallback)
        # The scenario's protocol stack (tests/testbed/stacks) and its server port.
        self.stack = str(sc.get("stack", "modbus"))
        self.port = self._port(sc.get("port", port_of(self.stack)))
        self.agents: list[Agent] = []
        self.step_agents: dict[str, list[Agent]] = {}
        self.pcap = out_dir / f"{sc['name']}.pcap"
        self.capture = Tcpdump(lambda argv: self.plant.wrap(None, argv), self.plant.capture_iface, self.pcap,
                               self.plant.capture_filter)
        self.t0 = 0.0
        self.t_end = 0.0

    # --------------------------------------------------------------- helpers
    def _port(self, port: int) -> int:
        """The loopback fallback cannot bind below 1024: such ports become 5020 there."""
        return FALLBACK_PORT if self.fallback and int(port) < 1024 else int(port)

    def _popen(self, role: str | None, argv: list[str]) -> subprocess.Popen[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        return subprocess.Popen(
            self.plant.wrap(role, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=str(REPO_ROOT), start_new_session=True,
        )

    def _client_spec(self, item: dict[str, Any], idx: int) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "label": item["name"],
            "target": self.plant.ip(item["target"]),
            "port": self._port(item["port"]) if "port" in item else self.port,
            "stack": item.get("stack", self.stack),
            "transport": item.get("transport", "pymodbus"),
            "timeout": item.get("timeout", 1.0),
            "seed": item.get("seed", int(self.sc["seed"]) * 1000 + idx),
            "actions": item["actions"],
        }
        if self.fallback:
            spec["bind"] = self.plant.ip(item["host"])
        for key in ("duration", "interval", "new_connection_each_round", "options"):
            if key in item:
                spec[key] = item[key]
        return spec

    def _start_client(self, item: dict[str, Any], idx: int, **extra: Any) -> Agent:
        spec = self._client_spec(item, idx) | extra
        argv = [self.python, "-m", "tests.testbed.host", "client", "--spec", json.dumps(spec)]
        agent = Agent(item["name"], item["host"], self._popen(item["host"], argv))
        agent.start_readers()
        self.agents.append(agent)
        return agent

    def _run_client(self, item: dict[str, Any], idx: int, timeout: float = 30.0) -> Agent:
        agent = self._start_client(item, idx)
        try:
            agent.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"step {item['name']} did not finish in {timeout}s; stopping it")
        agent.stop()
        errors = [e for e in agent.events if e.get("event") == "action" and not e.get("ok")]
        if agent.proc.returncode not in (0, None) or not (agent.locals() or agent.macs()):
            log(f"step {item['name']}: rc={agent.proc.returncode} stderr={agent.stderr[-5:]}")
        if errors:
            log(f"step {item['name']}: {len(errors)} client errors, e.g. {errors[0].get('error')}")
        return agent

    def _wait_until(self, rel: float) -> None:
        delay = self.t0 + rel - time.time()
        if delay > 0:
            time.sleep(delay)

    # --------------------------------------------------------------- phases
    def _start_plcs(self) -> None:
        for role, cfg in sorted(self.sc.get("plcs", {}).items()):
            stack = str(cfg.get("stack", self.stack))
            port = self._port(cfg["port"]) if "port" in cfg else self.port
            argv = [self.python, "-m", "tests.testbed.host", "serve",
                    "--bind", self.plant.ip(role), "--port", str(port),
                    "--seed", str(cfg.get("seed", 1))]
            if stack != "modbus":
                argv += ["--stack", stack, "--config", json.dumps(cfg)]
            agent = Agent(f"server_{role}", role, self._popen(role, argv))
            agent.start_readers(ready_event="listening")
            self.agents.append(agent)
            if not agent.ready.wait(15.0):
                raise RuntimeError(f"PLC {role} did not start: {agent.stderr[-10:]}")

    def run(self) -> dict[str, Any]:
        """Run the scenario; returns the run record the labeller needs."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.pcap.exists():
            self.pcap.unlink()
        sc = self.sc
        try:
            self.plant.up()
            self.capture.start()
            self._start_plcs()
            time.sleep(0.5)
            self.t0 = time.time()
            log(f"scenario {sc['name']}: capture on {self.plant.capture_iface} -> {self.pcap}")
            # Background sessions poll until we SIGTERM them (duration is only a safety net).
            background = [self._start_client(item, i, duration=3600.0)
                          for i, item in enumerate(sc["background"])]

            # Timeline: normal one-shots at their `at`, attacks from lead_in on.
            timeline: list[tuple[float, str, dict[str, Any]]] = [
                (float(e["at"]), "normal", e) for e in sc["normal_events"]
            ]
            for i, a in enumerate(sc["attacks"]):
                timeline.append((float(sc["lead_in"]) + i * float(sc["spacing"]), "attack", a))
            timeline.sort(key=lambda x: x[0])
            for idx, (at, kind, item) in enumerate(timeline):
                self._wait_until(at)
                log(f"t+{time.time() - self.t0:5.1f}s {kind:6s} {item['name']}")
                # A step that runs for a set time (an AitM's `seconds`) gets that long on top.
                busy = sum(float(a.get("seconds", 0.0)) for a in item["actions"])
                agent = self._run_client(item, 100 + idx, timeout=30.0 + busy)
                self.step_agents.setdefault(item["name"], []).append(agent)

            end_rel = (timeline[-1][0] if timeline and sc["attacks"] else float(sc["lead_in"]))
            end_rel = max(end_rel, time.time() - self.t0) + float(sc["tail"])
            self._wait_until(end_rel)
            for agent in background:
                agent.stop()
            time.sleep(1.0)  # let the FIN/ACKs reach the capture
            self.t_end = time.time()
        finally:
            # A second Ctrl-C must not cut the teardown short.
            main = threading.current_thread() is threading.main_thread()
            saved = ({sig: signal.signal(sig, signal.SIG_IGN)
                      for sig in (signal.SIGINT, signal.SIGTERM)} if main else {})
            try:
                for agent in self.agents:
                    agent.stop(timeout=3.0)
                self.capture.stop()
                self.plant.down()
            finally:
                for sig, handler in saved.items():
                    signal.signal(sig, handler)
        for agent in self.agents:
            if agent.name.startswith("server_"):
                bad = [ln for ln in agent.stderr if "Traceback" in ln]
                if bad:
                    log(f"{agent.name} stderr: {agent.stderr[-10:]}")
        return self.record()

    def record(self) -> dict[str, Any]:
        steps = {}
        for name, agents in self.step_agents.items():
            starts = [a.time_span()[0] for a in agents if a.time_span()[0] is not None]
            ends = [a.time_span()[1] for a in agents if a.time_span()[1] is not None]
            actions = [e for a in agents for e in a.events if e.get("event") == "action"]
            steps[name] = {
                "host": agents[0].role,
                "locals": sorted({loc for a in agents for loc in a.locals()}),
                "macs": sorted({m for a in agents for m in a.macs()}),
                "t_start": min(starts) if starts else None,
                "t_end": max(ends) if ends else None,
                "actions": actions,
            }
        return {
            "scenario": self.sc,
            "pcap": self.pcap,
            "fallback": self.fallback,
            "port": self.port,
            "stack": self.stack,
            "transport": transport_of(self.stack),
            "hosts": {r: self.plant.ip(r) for r in self.plant.roles},
            "steps": steps,
            "t0": self.t0,
            "t_end": self.t_end,
        }
