"""Passive asset inventory: `schema.Asset` records built from the events that pass by."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Asset, Event, Organization

# Role names per protocol: (who sends requests, who answers them).
ROLES: dict[str, tuple[str, str]] = {"modbus": ("modbus_master", "modbus_slave")}


def _roles(protocol: str) -> tuple[str, str]:
    return ROLES.get(protocol, (f"{protocol}_client", f"{protocol}_server"))


@dataclass
class _Record:
    org: str
    ip: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    mac: str | None = None
    roles: set[str] = field(default_factory=set)
    protocols: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    unit_ids: set[int] = field(default_factory=set)
    peers: set[str] = field(default_factory=set)
    vendor: str | None = None
    product: str | None = None
    revision: str | None = None
    events: int = 0
    alerts: int = 0

    def seen(self, t: dt.datetime) -> None:
        if t < self.first_seen:
            self.first_seen = t
        if t > self.last_seen:
            self.last_seen = t


@functools.lru_cache(maxsize=65536)
def _is_host(ip: str) -> bool:
    """A unicast address a device can own (not multicast, broadcast or unspecified)."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if a.is_multicast or a.is_unspecified:
        return False
    return not (a.version == 4 and str(a) == "255.255.255.255")


def _ip_order(ip: str) -> tuple[int, Any]:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a))
    except ValueError:
        return (99, ip)


class AssetTracker:
    """Builds one Asset per (organization, ip) from decoded events; `snapshot()` returns them.

    Both unicast endpoints of an event become assets (multicast, broadcast and 0.0.0.0 do not) and count it in `events`. Roles follow who speaks: a
    host that sends requests is a master/client, a host that sends responses is a slave/server (and
    the port it answered from is a server port, the unit ids it answered for its unit ids). Vendor,
    product and revision come from Modbus device identification responses.
    """

    def __init__(self, organization_id: str | None = None) -> None:
        self.organization_id = organization_id
        self._assets: dict[tuple[str, str], _Record] = {}

    def _org(self, e: Event) -> str:
        if self.organization_id:
            return self.organization_id
        if e.organization is not None and e.organization.id:
            return e.organization.id
        return "default"

    def _get(self, org: str, ip: str, t: dt.datetime) -> _Record:
        rec = self._assets.get((org, ip))
        if rec is None:
            rec = self._assets[(org, ip)] = _Record(org, ip, t, t)
        else:
            rec.seen(t)
        return rec

    def observe(self, e: Event) -> None:
        """Account one event (alerts are counted with `note_alert` instead)."""
        if e.event.kind == "alert":
            self.note_alert(e)
            return
        src = e.source.ip if e.source is not None else None
        dst = e.destination.ip if e.destination is not None else None
        src = src if src and _is_host(src) else None
        dst = dst if dst and _is_host(dst) else None
        if not src and not dst:
            return
        org = self._org(e)
        t = e.timestamp
        s = self._get(org, src, t) if src else None
        d = self._get(org, dst, t) if dst else None
        protocol = e.network.protocol if e.network is not None else None
        direction = e.network.direction if e.network is not None else None
        if e.modbus is not None:
            protocol = protocol or "modbus"
            direction = direction or e.modbus.message_type
        for rec, ep in ((s, e.source), (d, e.destination)):
            if rec is None or ep is None:
                continue
            rec.events += 1
            if ep.mac:
                rec.mac = ep.mac
            if protocol:
                rec.protocols.add(protocol)
        if s is not None and d is not None:
            s.peers.add(d.ip)
            d.peers.add(s.ip)
        if not protocol or direction not in ("request", "response"):
            return
        client_role, server_role = _roles(protocol)
        if direction == "request":
            if s is not None:
                s.roles.add(client_role)
            return
        if s is None:
            return
        s.roles.add(server_role)
        if e.source is not None and e.source.port is not None:
            s.ports.add(e.source.port)
        mb = e.modbus
        if mb is None:
            return
        s.unit_ids.add(mb.unit_id)
        ident = mb.device_id
        if ident is not None and mb.exception_code is None:
            s.vendor = ident.vendor_name or s.vendor
            s.product = ident.product_name or ident.product_code or s.product
            s.revision = ident.revision or s.revision

    def note_alert(self, alert: Event) -> None:
        """Count an alert against every asset it involves (`related.ip`, else source and destination)."""
        ips: list[str] = list(alert.related.ip) if alert.related is not None and alert.related.ip else []
        if not ips:
            ips = [ep.ip for ep in (alert.source, alert.destination) if ep is not None and ep.ip]
        org = self._org(alert)
        for ip in dict.fromkeys(ips):
            self._get(org, ip, alert.timestamp).alerts += 1

    def asset(self, ip: str, organization_id: str | None = None) -> Asset | None:
        rec = self._assets.get((organization_id or self.organization_id or "default", ip))
        return self._freeze(rec) if rec is not None else None

    def snapshot(self) -> list[Asset]:
        """Every asset, ordered by organization then IP address."""
        recs = sorted(self._assets.values(), key=lambda r: (r.org, _ip_order(r.ip)))
        return [self._freeze(r) for r in recs]

    @staticmethod
    def _freeze(r: _Record) -> Asset:
        return Asset(
            id=f"{r.org}:{r.ip}",
            ip=r.ip,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            mac=r.mac,
            organization=Organization(id=r.org),
            roles=sorted(r.roles),
            protocols=sorted(r.protocols),
            ports=sorted(r.ports),
            unit_ids=sorted(r.unit_ids),
            peers=sorted(r.peers, key=_ip_order),
            vendor=r.vendor,
            product=r.product,
            revision=r.revision,
            events=r.events,
            alerts=r.alerts,
        )

    def __len__(self) -> int:
        return len(self._assets)

