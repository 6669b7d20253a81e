"""What every host agent shares: the JSON-lines contract, the stop event, the action loop."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

STOP = threading.Event()


def emit(event: str, **fields: Any) -> None:
    """Print one JSON line (flushed: the runner reads it live)."""
    rec = {"event": event, "t": round(time.time(), 6), **fields}
    sys.stdout.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def install_signals() -> None:
    def _handler(_signo: int, _frame: Any) -> None:
        STOP.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def emit_connect(sock: socket.socket | tuple[str, int], remote: tuple[str, int]) -> tuple[str, int]:
    local = sock.getsockname()[:2] if isinstance(sock, socket.socket) else sock
    emit("connect", local=[local[0], int(local[1])], remote=[remote[0], int(remote[1])])
    return local[0], int(local[1])


class SocketTracker:
    """Reports (``connect`` events) the local (ip, port) of every socket this process opens.

    Two sources, so that stacks written in C (c104) are covered as well as Python ones: a wrapper
    on ``socket.socket.connect``/``connect_ex`` (sees even a connection opened and closed inside
    one action), and a thread that polls this process's sockets in /proc (fd inodes matched in
    /proc/self/net/{tcp,udp}) every few milliseconds.  Each local pair is reported once.
    """

    def __init__(self, target: str, port: int, interval: float = 0.01) -> None:
        self.target, self.port, self.interval = target, int(port), interval
        self.seen: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def report(self, local: tuple[str, int], remote: tuple[str, int]) -> None:
        if local[1] == 0 or local[0] == "0.0.0.0":
            return
        with self.lock:
            if local in self.seen:
                return
            self.seen.add(local)
        emit("connect", local=[local[0], int(local[1])], remote=[remote[0], int(remote[1])])

    def start(self) -> SocketTracker:
        tracker = self
        orig_connect, orig_connect_ex = socket.socket.connect, socket.socket.connect_ex

        def _after(sock: socket.socket, address: Any) -> None:
            try:
                if sock.family == socket.AF_INET and (sock.type != socket.SOCK_STREAM
                                                      or int(address[1]) == tracker.port):
                    loc = sock.getsockname()
                    tracker.report((loc[0], int(loc[1])), (address[0], int(address[1])))
            except OSError:
                pass

        def connect(sock: socket.socket, address: Any) -> None:
            try:
                orig_connect(sock, address)
            finally:
                _after(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            try:
                return orig_connect_ex(sock, address)
            finally:
                _after(sock, address)

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.scan()
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _poll(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.scan()
            except OSError:
                pass

    def scan(self) -> None:
        import os

        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        if not inodes:
            return
        for proto in ("tcp", "udp"):
            try:
                with open(f"/proc/self/net/{proto}", encoding="ascii") as fh:
                    lines = fh.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                f = line.split()
                if len(f) < 10 or f[9] not in inodes:
                    continue
                local, remote = _hexaddr(f[1]), _hexaddr(f[2])
                if proto == "udp" and local[0] == "0.0.0.0" and local[1]:
                    local = (local_ip_for(self.target), local[1])  # unbound datagram socket
                if proto == "tcp" and (f[3] == "0A" or remote[1] != self.port):
                    continue  # listening, or not a connection to the target's service
                self.report(local, remote if remote[1] else (self.target, self.port))


def _hexaddr(text: str) -> tuple[str, int]:
    ip_hex, port_hex = text.split(":")
    ip = ".".join(str(b) for b in bytes.fromhex(ip_hex)[::-1])
    return ip, int(port_hex, 16)


def free_port(bind: str, kind: int = socket.SOCK_DGRAM) -> int:
    """An ephemeral port on ``bind`` (for stacks that want a port number rather than 0)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((bind, 0))
        return int(s.getsockname()[1])


def local_ip_for(target: str) -> str:
    """The source address the kernel picks towards ``target`` (the host's eth0 address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((target, 9))
        return str(s.getsockname()[0])


def wait_tcp(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not STOP.is_set():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def supervise(proc: subprocess.Popen[Any], cfg: dict[str, Any], what: str, timeout: float = 15.0, **listening: Any) -> int:
    """Run a server that is an external process (cpppo, mosquitto) until STOP: wait until it listens on
    ``cfg``'s bind:port, emit ``listening``, fail if it exits early; terminate it at the end."""
    try:
        if not wait_tcp(cfg["bind"], int(cfg["port"]), timeout=timeout):
            raise RuntimeError(f"{what} did not start listening")
        emit("listening", bind=cfg["bind"], port=int(cfg["port"]), **listening)
        while not STOP.wait(0.1):
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


def serve_until_stopped(poll: float = 0.05) -> None:
    while not STOP.is_set():
        STOP.wait(poll)


def run_actions(spec: dict[str, Any], session: Any,
                actions: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]]) -> int:
    """The generic client loop (same semantics as the Modbus client): ``repeat``/``gap`` per
    action, ``sleep``, ``reconnect``, optional ``duration``/``interval`` rounds."""
    rng = random.Random(int(spec.get("seed", 0)))
    duration = spec.get("duration")
    lo, hi = spec.get("interval", [0.0, 0.0])
    per_round = bool(spec.get("new_connection_each_round", False))
    deadline = time.monotonic() + float(duration) if duration is not None else None
    emit("start", target=[spec["target"], spec["port"]], transport=spec.get("stack"),
         label=spec.get("label"))
    n_ok = n_err = 0
    tracker = SocketTracker(spec["target"], int(spec["port"])).start()
    try:
        while True:
            for act in spec["actions"]:
                for i in range(int(act.get("repeat", 1))):
                    if STOP.is_set():
                        break
                    op = act["op"]
                    if op == "sleep":
                        STOP.wait(float(act["s"]))
                        continue
                    if op == "reconnect":
                        session.close()
                        continue
                    a = dict(act)
                    a["index"] = i
                    args = {k: v for k, v in act.items() if k != "op"}
                    try:
                        if op not in actions:
                            raise ValueError(f"unknown op {op!r}; known: {sorted(actions)}")
                        result = actions[op](session, a)
                        n_ok += 1
                        emit("action", op=op, args=args, ok=True, result=result)
                    except Exception as exc:  # noqa: BLE001 - a refused attack is a result too
                        n_err += 1
                        emit("action", op=op, args=args, ok=False,
                             error=f"{type(exc).__name__}: {exc}"[:300])
                    gap = float(act.get("gap", 0.0))
                    if gap:
                        STOP.wait(gap)
            if deadline is None or STOP.is_set() or time.monotonic() >= deadline:
                break
            if per_round:
                session.close()
            STOP.wait(rng.uniform(lo, hi))
            if STOP.is_set() or time.monotonic() >= deadline:
                break
    finally:
        try:
            session.close()
        except Exception as exc:  # noqa: BLE001
            emit("close_error", error=f"{type(exc).__name__}: {exc}"[:300])
        tracker.stop()
        emit("end", ok=n_ok, errors=n_err)
    return 0
