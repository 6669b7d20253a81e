"""The plant's network: one bridge, one namespace per host, or a loopback fallback.

Namespace mode (root, ``ip netns`` works)::

    qn-sw-<pid>     switch namespace holding bridge ``qnbr0`` (tcpdump runs here)
    qn-hmi-<pid>    eth0 10.10.1.10/24   --veth--> qnbr0 port "hmi"
    qn-eng-<pid>    eth0 10.10.1.20/24
    qn-plc1-<pid>   eth0 10.10.1.101/24
    qn-plc2-<pid>   eth0 10.10.1.102/24
    qn-atk-<pid>    eth0 10.10.1.66/24
    qn-nm-<pid>     eth0 10.10.1.70/24   (rogue "new master", only if a scenario uses it)

Veth ends are created from inside the switch namespace straight into the host
namespaces, so no interface ever appears in the root namespace and parallel runs
(different pids) cannot collide.  IPv6 is disabled in every namespace so the
capture has no router-solicitation/MLD noise.

Loopback fallback (not root, or ``ip netns add`` fails): hosts become
127.10.1.<x> on ``lo`` (all of 127/8 is local on Linux, nothing to configure),
PLCs listen on port 5020 instead of 502 (binding <1024 needs root), and the
capture runs on ``lo`` filtered to ``net 127.10.1.0/24`` (tcpdump still needs
CAP_NET_RAW).  Everything else is identical.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

SUBNET = "10.10.1.0/24"
BRIDGE = "qnbr0"
MODBUS_PORT = 502
FALLBACK_PORT = 5020

#: role -> (last octet, description).  Fixed: the rule pack's lists.yml uses it.
HOSTS: dict[str, tuple[int, str]] = {
    "hmi": (10, "HMI (authorised master, polls both PLCs)"),
    "eng": (20, "engineering station (authorised writer)"),
    "plc1": (101, "PLC1 (pymodbus server, unit 1)"),
    "plc2": (102, "PLC2 (pymodbus server, unit 1)"),
    "atk": (66, "attacker"),
    "nm": (70, "rogue new master (unknown host polling like an HMI)"),
}

_NS_RE = re.compile(r"^qn-(sw|hmi|eng|plc1|plc2|atk|nm)-(\d+)$")


def _run(cmd: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def netns_available() -> bool:
    """True when we are root and ``ip netns add`` works."""
    if os.geteuid() != 0:
        return False
    probe = f"qn-probe-{os.getpid()}"
    try:
        if _run(["ip", "netns", "add", probe], check=False).returncode != 0:
            return False
        _run(["ip", "netns", "del", probe], check=False)
        return True
    except FileNotFoundError:
        return False


def list_netns() -> list[str]:
    try:
        out = _run(["ip", "netns", "list"], check=False).stdout
    except FileNotFoundError:
        return []
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete ``qn-<role>-<pid>`` namespaces whose creating pid is gone.

    Only names matching our exact pattern are touched; namespaces of live runs
    (parallel CI jobs) and anything else are left alone.
    """
    removed = []
    for ns in list_netns():
        m = _NS_RE.match(ns)
        if not m or _pid_alive(int(m.group(2))):
            continue
        _kill_ns_pids(ns)
        if _run(["ip", "netns", "del", ns], check=False).returncode == 0:
            removed.append(ns)
    return removed


def _kill_ns_pids(ns: str) -> None:
    """SIGKILL processes still running inside *our* namespace ``ns``."""
    out = _run(["ip", "netns", "pids", ns], check=False).stdout
    for tok in out.split():
        try:
            os.kill(int(tok), 9)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


def add_netns(ns: str, created: list[str]) -> None:
    """Create namespace ``ns`` (recorded in ``created`` at once, for ``delete_netns``), lo up, IPv6 off."""
    _run(["ip", "netns", "add", ns])
    created.append(ns)
    _run(["ip", "-n", ns, "link", "set", "lo", "up"])
    for key in ("all", "default"):
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
              f"net.ipv6.conf.{key}.disable_ipv6=1"], check=False)


def delete_netns(created: list[str], who: str = "testbed") -> None:
    """Delete the namespaces of ``created`` (newest first, their processes killed) and empty it."""
    for ns in reversed(created):
        _kill_ns_pids(ns)
        res = _run(["ip", "netns", "del", ns], check=False)
        if res.returncode != 0:
            print(f"{who}: could not delete netns {ns}: {res.stderr.strip()}",
                  file=sys.stderr)
    created.clear()


@dataclass
class Plant:
    """A running plant network; use as a context manager (tears down in ``__exit__``)."""

    roles: list[str]
    fallback: bool = False
    tag: str = field(default_factory=lambda: str(os.getpid()))
    created: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ addressing
    @property
    def port(self) -> int:
        return FALLBACK_PORT if self.fallback else MODBUS_PORT

    def ip(self, role: str) -> str:
        octet = HOSTS[role][0]
        return f"127.10.1.{octet}" if self.fallback else f"10.10.1.{octet}"

    def ns(self, role: str) -> str:
        return f"qn-{role}-{self.tag}"

    @property
    def switch_ns(self) -> str:
        return f"qn-sw-{self.tag}"

    @property
    def capture_iface(self) -> str:
        return "lo" if self.fallback else BRIDGE

    @property
    def capture_filter(self) -> list[str]:
        return ["net", "127.10.1.0/24"] if self.fallback else []

    def wrap(self, role: str | None, argv: Sequence[str]) -> list[str]:
        """Command line that runs ``argv`` on host ``role`` (or in the switch if None)."""
        if self.fallback:
            return list(argv)
        ns = self.switch_ns if role is None else self.ns(role)
        return ["ip", "netns", "exec", ns, *argv]

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Plant:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        if self.fallback:
            return
        cleanup_stale()
        sw = self.switch_ns
        self._add_ns(sw)
        _run(["ip", "-n", sw, "link", "add", BRIDGE, "type", "bridge",
              "stp_state", "0", "forward_delay", "0"])
        _run(["ip", "-n", sw, "link", "set", BRIDGE, "up"])
        for role in self.roles:
            ns = self.ns(role)
            self._add_ns(ns)
            _run(["ip", "-n", sw, "link", "add", role, "type", "veth",
                  "peer", "name", "eth0", "netns", ns])
            _run(["ip", "-n", sw, "link", "set", role, "master", BRIDGE])
            _run(["ip", "-n", sw, "link", "set", role, "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{self.ip(role)}/24", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _add_ns(self, ns: str) -> None:
        add_netns(ns, self.created)

    def down(self) -> None:
        delete_netns(self.created)

    def describe(self) -> dict[str, dict[str, str]]:
        out = {}
        for role in self.roles:
            d = {"ip": self.ip(role), "description": HOSTS[role][1]}
            if not self.fallback:
                d["netns"] = f"qn-{role}-<pid>"
            out[role] = d
        return out
