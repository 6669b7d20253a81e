"""IP↔MAC bindings: which link address each IP address uses, learned from ARP and from every IP event's MACs.

Learning: every ARP sender (address, MAC) pair, and every IP event's (source.ip, source.mac) and
(destination.ip, destination.mac) — protocol events and flow records alike (the sensor fills them
from the frames). Hosts behind a router are learned at the router's MAC, which is what the
segment sees; broadcast and multicast addresses, 0.0.0.0 probes and all-zero MACs are skipped.

Protecting (`BindingDetector`, alert type qn-anomaly-mac-binding, T0830): an address learned
at one MAC that is claimed by another (an ARP reply or announcement) or used with another (the
source or destination MAC of an IP frame) — ARP cache poisoning puts the attacker's MAC on the
path between an HMI and its PLC exactly this way. An address never learned is not judged (a new
host is the new-node detector's business). When one MAC claims the addresses of several known
hosts the alert says so: that is an adversary in the middle rather than a replaced NIC.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.schema import Event

from ..engine import AlertFactory, trigger_of
from . import rules as R
from .baseline import Baseline
from .detectors import AnomalyDetector, State

SUPPRESS = dt.timedelta(seconds=300)  # one alert per (address, MAC) per window
_ZERO_MAC = "00:00:00:00:00:00"

Claim = tuple[str, str, str]  # (ip, mac, how: "arp" | "ip source" | "ip destination")


@functools.lru_cache(maxsize=65536)
def _unicast_ip(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (a.is_multicast or a.is_unspecified or a.is_loopback or (a.version == 4 and ip.endswith(".255")))


def _unicast_mac(mac: str | None) -> bool:
    # the I/G bit of the first octet: set for broadcast and multicast
    if not mac or mac == _ZERO_MAC or len(mac) < 2:
        return False
    try:
        return not int(mac[:2], 16) & 1
    except ValueError:
        return False


def claims(e: Event) -> Iterator[Claim]:
    """The (ip, mac) bindings an event shows, with where they come from."""
    arp = e.arp
    if arp is not None:
        if arp.sender_ip and arp.sender_mac and _unicast_mac(arp.sender_mac) and _unicast_ip(arp.sender_ip):
            yield arp.sender_ip, arp.sender_mac, "arp"
        return
    for ep, how in ((e.source, "ip source"), (e.destination, "ip destination")):
        if ep is not None and ep.ip and ep.mac and _unicast_mac(ep.mac) and _unicast_ip(ep.ip):
            yield ep.ip, ep.mac, how


@dataclass
class Bindings:
    """What the learning phase saw: the MACs of every address, and where each binding was learned from."""

    macs: dict[str, set[str]] = field(default_factory=dict)  # ip -> MACs
    sources: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (ip, mac) -> {"arp", "ip source", ...}

    def ips_of(self, mac: str) -> set[str]:
        return {ip for ip, macs in self.macs.items() if mac in macs}

    def summary(self) -> dict[str, int]:
        return {"addresses": len(self.macs), "macs": len({m for ms in self.macs.values() for m in ms}),
                "bindings": sum(len(ms) for ms in self.macs.values())}


class BindingLearner:
    """Accumulates bindings during the learning phase; every event (not only protocol messages) is looked at."""

    def __init__(self) -> None:
        self.macs: dict[str, set[str]] = defaultdict(set)
        self.sources: dict[tuple[str, str], set[str]] = defaultdict(set)

    def observe(self, e: Event) -> None:
        for ip, mac, how in claims(e):
            self.macs[ip].add(mac)
            self.sources[(ip, mac)].add(how)

    def fit(self) -> Bindings:
        return Bindings({ip: set(m) for ip, m in self.macs.items()}, {k: set(v) for k, v in self.sources.items()})


def _learned(b: Bindings, ip: str) -> str:
    parts = [f"{m} (from {', '.join(sorted(b.sources.get((ip, m), ())))})" for m in sorted(b.macs.get(ip, ()))]
    return f"{ip} at {' or '.join(parts)}"


class BindingDetector(AnomalyDetector):
    """An address claimed by, or used with, a MAC it was never learned at. Sees every event (`on_frame`)."""

    rule = R.MAC_BINDING

    def __init__(self, baseline: Baseline, alerts: AlertFactory, bindings: Bindings | None) -> None:
        super().__init__(baseline, alerts)
        self.bindings = bindings

    def on_frame(self, event: Event, state: State) -> list[Event]:
        b = self.bindings
        if b is None:  # a model saved before bindings were learned (format 2): nothing to compare with
            return []
        out = []
        for ip, mac, how in claims(event):
            known = b.macs.get(ip)
            if not known or mac in known:
                continue
            # Every known address this MAC now claims (beyond those it was learned with): several is a man in the middle.
            claimed: dict[str, set[str]] = state.keys.setdefault(("claimed", mac), {})
            claimed.setdefault(ip, set()).add(how)
            if not state.allow((ip, mac), event.timestamp, SUPPRESS):
                continue
            own = sorted(b.ips_of(mac))
            others = sorted(claimed)
            observed = f"{ip} at {mac} ({how}, frame {event.evidence.frame if event.evidence else '?'})"
            if len(others) > 1:
                observed += f"; {mac} now claims {len(others)} known addresses: {', '.join(others)}"
            learned = _learned(b, ip) + (f"; {mac} learned for {', '.join(own)}" if own else f"; {mac} never seen while learning")
            verb = "claimed by" if how == "arp" else ("sent from" if how == "ip source" else "sent to")
            msg = f"{ip} {verb} {mac}, learned at {', '.join(sorted(known))}"
            if len(others) > 1:
                msg += f" ({mac} claims {', '.join(others)}: adversary in the middle)"
            trig = trigger_of(event)._replace(ips=tuple(sorted({ip, *trigger_of(event).ips})))
            out.append(self.alert([trig], event, feature=f"ip-mac binding ({how})", observed=observed, baseline=learned,
                                  message=msg))
        return out
