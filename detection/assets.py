"""Passive asset inventory: `schema.Asset` records built from the events that pass by.

What a device is comes from what it announces (`inventory.identity.claims`: Modbus 43/14, S7 SZL,
CIP identity, BACnet device object and I-Am, OPC UA application info, MQTT client ids) and from the
OUI of its MAC; what it does (`inventory.roles`) from whom it polls, writes, programs or answers.
Every identity value keeps evidence: the field path, event id, capture file and frame.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Asset, AssetEvidence, Event, Organization

from .exceptions import InventoryError
from .inventory.identity import HINT, Claim, claims
from .inventory.oui import OuiTable, load_oui
from .inventory.roles import INDUSTRIAL, PROGRAMMING, READS, WRITES, Behaviour, Poll, infer_role
from .inventory.vendors import normalize_vendor
from .zones import ZoneMap

# Role names per protocol: (who sends requests, who answers them).
ROLES: dict[str, tuple[str, str]] = {"modbus": ("modbus_master", "modbus_slave"), "dnp3": ("dnp3_master", "dnp3_outstation")}
EVIDENCE_PER_VALUE = 3  # occurrences kept per (field, value, source)
VALUES_PER_FIELD = 8  # distinct values kept per field
_ZERO_MACS = frozenset({"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})
# Identity attributes that become Asset fields (others stay as evidence only).
_FIELDS = ("vendor", "product", "model", "firmware", "serial", "name")


def _roles(protocol: str) -> tuple[str, str]:
    return ROLES.get(protocol, (f"{protocol}_client", f"{protocol}_server"))


@dataclass
class _Value:
    strength: int
    last: dt.datetime
    evidence: list[AssetEvidence] = field(default_factory=list)


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
    events: int = 0
    alerts: int = 0
    ident: dict[str, dict[str, _Value]] = field(default_factory=dict)  # attr -> value -> where seen
    behaviour: Behaviour = field(default_factory=Behaviour)
    exposures: set[str] = field(default_factory=set)
    dnp3_sa: bool = False

    def seen(self, t: dt.datetime) -> None:
        if t < self.first_seen:
            self.first_seen = t
        if t > self.last_seen:
            self.last_seen = t

    def claim(self, c: Claim, e: Event | None, t: dt.datetime) -> None:
        values = self.ident.setdefault(c.attr, {})
        v = values.get(c.value)
        if v is None:
            if len(values) >= VALUES_PER_FIELD:
                return
            v = values[c.value] = _Value(c.strength, t)
        v.strength = max(v.strength, c.strength)
        v.last = max(v.last, t)
        if len(v.evidence) < EVIDENCE_PER_VALUE and not any(x.source == c.path and x.frame == _frame(e) and x.file == _file(e) for x in v.evidence):
            v.evidence.append(AssetEvidence(
                field=c.attr, value=c.value, source=c.path, strength=c.strength,
                event_id=e.event.id if e is not None else None, frame=_frame(e), file=_file(e), timestamp=t))

    def best(self, attr: str) -> tuple[str, _Value] | None:
        values = self.ident.get(attr)
        if not values:
            return None
        return max(values.items(), key=lambda kv: (kv[1].strength, kv[1].last))


def _frame(e: Event | None) -> int | None:
    return e.evidence.frame if e is not None and e.evidence is not None else None


def _file(e: Event | None) -> str | None:
    return e.evidence.file if e is not None and e.evidence is not None else None


@functools.lru_cache(maxsize=65536)
def _is_host(ip: str) -> bool:
    """A unicast address a device can own (not multicast, broadcast or unspecified).

    IPv4 addresses ending in .255 are taken for directed broadcasts (BACnet Who-Is, NetBIOS): far
    more of them are broadcasts than hosts.
    """
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if a.is_multicast or a.is_unspecified:
        return False
    return not (a.version == 4 and (str(a) == "255.255.255.255" or str(a).endswith(".255")))


@functools.lru_cache(maxsize=65536)
def _ip_order(ip: str) -> tuple[int, Any]:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a))
    except ValueError:
        return (99, ip)


def _default_oui() -> OuiTable | None:
    """The system OUI table; None (OUI vendors left empty) when it is absent and $QINLING_MANUF is unset."""
    try:
        return load_oui()
    except InventoryError:
        if os.environ.get("QINLING_MANUF"):
            raise
        return None


class AssetTracker:
    """Builds one Asset per (organization, ip) from decoded events; `snapshot()` returns them.

    Both unicast endpoints of an event become assets (multicast, broadcast and 0.0.0.0 do not) and
    count it in `events`. Protocol roles follow who speaks (a host that sends requests is a
    master/client, one that sends responses a slave/server, and the port it answered from a server
    port); `role` is the primary role inferred from behaviour. Identity values come with evidence.

    `oui`: an OuiTable, None for the system table (`/usr/share/wireshark/manuf`, skipped when
    absent), or False for no OUI lookup. `zones`: a ZoneMap (default: one zone per private /24).
    """

    def __init__(self, organization_id: str | None = None, *, oui: OuiTable | None | bool = None,
                 zones: ZoneMap | None = None) -> None:
        self.organization_id = organization_id
        self._assets: dict[tuple[str, str], _Record] = {}
        self._oui: OuiTable | None = None if oui is False else (oui if isinstance(oui, OuiTable) else _default_oui())
        self.zones = zones or ZoneMap()
        self._mqtt_pending: dict[tuple[str, str, str], bool] = {}  # (org, client, broker) -> anonymous CONNECT

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
        elif t > rec.last_seen:  # rec.seen(t), inlined: called twice per event
            rec.last_seen = t
        elif t < rec.first_seen:
            rec.first_seen = t
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
            self._announced(e)
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
        if e.profinet is not None and e.profinet.rpc_packet_type_name in ("request", "response"):
            direction = e.profinet.rpc_packet_type_name  # IO CM (DCE/RPC datagrams): a response may open its own UDP flow
        for rec, ep in ((s, e.source), (d, e.destination)):
            if rec is None or ep is None:
                continue
            rec.events += 1
            mac = ep.mac
            if mac:
                mac = mac.lower()
                if mac not in _ZERO_MACS:
                    rec.mac = mac
            if protocol:
                rec.protocols.add(protocol)
        if s is not None and d is not None:
            s.peers.add(d.ip)
            d.peers.add(s.ip)
        for c in claims(e):
            rec = s if c.side == "source" else d
            if rec is not None:
                rec.claim(c, e, t)
        if e.event.dataset == "flow":
            self._flow(e, s, d, protocol)
            return
        if not protocol:
            return
        self._exposure(e, s, d, protocol, org)
        if e.bacnet is not None and e.bacnet.service_name == "i_am" and s is not None:
            s.roles.add(_roles("bacnet")[1])  # an I-Am announces a device: a server, whatever the APDU type
            s.behaviour.answered += 1
            s.behaviour.served.add("bacnet")
            return
        if direction not in ("request", "response"):
            return
        client_role, server_role = _roles(protocol)
        if direction == "request":
            if s is not None:
                s.roles.add(client_role)
                self._client(s, d, e, protocol)
            return
        if s is None:
            return
        s.roles.add(server_role)
        if protocol in INDUSTRIAL:
            s.behaviour.answered += 1
            s.behaviour.served.add(protocol)
        if e.source is not None and e.source.port is not None and (e.network is None or e.network.transport != "udp" or protocol in INDUSTRIAL):
            s.ports.add(e.source.port)
        mb = e.modbus
        if mb is not None:
            s.unit_ids.add(mb.unit_id)

    def _announced(self, e: Event) -> None:
        """A layer-2 frame (PROFINET DCP) that announces a device for an IP: the asset at that IP, its MAC,
        the protocol it answered in and what it says it is."""
        t = e.timestamp
        recs: dict[str, _Record] = {}
        for c in claims(e):
            if c.ip is None or not _is_host(c.ip):
                continue
            rec = recs.get(c.ip) or recs.setdefault(c.ip, self._get(self._org(e), c.ip, t))
            rec.claim(c, e, t)
        protocol = e.network.protocol if e.network is not None else None
        for rec in recs.values():
            rec.events += 1
            if e.source is not None and e.source.mac and e.source.mac.lower() not in _ZERO_MACS:
                rec.mac = e.source.mac.lower()
            if protocol:
                rec.protocols.add(protocol)
                if protocol in INDUSTRIAL:
                    rec.behaviour.answered += 1
                    rec.behaviour.served.add(protocol)

    def _client(self, s: _Record, d: _Record | None, e: Event, protocol: str) -> None:
        b = s.behaviour
        if protocol not in INDUSTRIAL:
            return
        b.requests += 1
        b.used.add(protocol)
        action = e.event.action or ""
        if protocol == "mqtt":
            return
        if action in READS:
            b.reads += 1
            if d is not None:
                poll = b.polls.get(d.ip)
                if poll is None:
                    poll = b.polls[d.ip] = Poll()
                poll.add(e.timestamp.timestamp())
        elif action in WRITES:
            b.writes += 1
            if d is not None:
                b.written.add(d.ip)
        elif action in PROGRAMMING or action.startswith("program_"):
            b.programming += 1
            if d is not None:
                b.programmed.add(d.ip)

    def _flow(self, e: Event, s: _Record | None, d: _Record | None, protocol: str | None) -> None:
        n = e.network
        name = protocol
        if not name:
            port = e.destination.port if e.destination is not None else None
            name = f"{(n.transport if n is not None else None) or 'ip'}/{port}" if port is not None else (n.transport if n is not None and n.transport else "ip")
        for rec in (s, d):
            if rec is not None:
                rec.behaviour.flow_protocols.add(name)

    def _exposure(self, e: Event, s: _Record | None, d: _Record | None, protocol: str, org: str) -> None:
        """Insecure protocols a device serves (or, for MQTT, a broker that lets anonymous clients in)."""
        resp = e.network is not None and e.network.direction == "response"
        server = s if resp else d
        if server is None:
            return
        if protocol == "modbus":
            server.exposures.add("modbus")
        elif protocol == "s7comm" and e.s7comm is not None and e.s7comm.protocol == "s7comm":
            server.exposures.add("s7comm")
        elif protocol == "bacnet":
            if e.bacnet is not None and e.bacnet.service_name == "i_am" and s is not None:
                s.exposures.add("bacnet")
            elif resp:
                server.exposures.add("bacnet")
        elif protocol in ("enip", "cip"):
            server.exposures.add("enip")
        elif protocol == "iec104":
            server.exposures.add("iec104")
        elif protocol == "dnp3":
            server.exposures.add("dnp3")
            if e.dnp3 is not None and 120 in (e.dnp3.object_groups or ()):
                server.dnp3_sa = True
                if s is not None:
                    s.dnp3_sa = True
        elif protocol == "opcua" and e.opcua is not None:
            ua = e.opcua
            if ua.security_mode == "None" or any(ep.security_mode == "None" for ep in ua.endpoints or ()):
                server.exposures.add("opcua_security_none")
        elif protocol == "fins":
            server.exposures.add("fins")  # FINS has no authentication at all: any host may read, write, stop
        elif protocol == "mms" and e.mms is not None and not resp and e.mms.authenticated is False:
            server.exposures.add("mms_no_auth")  # an association request without a password is what it accepts
        elif protocol == "mqtt" and e.mqtt is not None and s is not None and d is not None:
            mq = e.mqtt
            if mq.message_type_name == "connect":
                self._mqtt_pending[(org, s.ip, d.ip)] = not mq.username_present
            elif mq.message_type_name == "connack" and mq.reason_code == 0:
                if self._mqtt_pending.pop((org, d.ip, s.ip), False):
                    s.exposures.add("mqtt_anonymous")

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
        if rec is None:
            return None
        return self._freeze(rec, self._shared_macs())

    def snapshot(self) -> list[Asset]:
        """Every asset, ordered by organization then IP address."""
        recs = sorted(self._assets.values(), key=lambda r: (r.org, _ip_order(r.ip)))
        shared = self._shared_macs()
        return [self._freeze(r, shared) for r in recs]

    def _shared_macs(self) -> set[str]:
        """MACs seen for more than two IPs: a router's, so its OUI says nothing about the hosts behind it."""
        n = collections.Counter(r.mac for r in self._assets.values() if r.mac)
        return {m for m, c in n.items() if c > 2}

    def _freeze(self, r: _Record, shared_macs: set[str]) -> Asset:
        oui_name = None
        if self._oui is not None and r.mac and r.mac not in shared_macs:
            entry = self._oui.lookup(r.mac)
            if entry is not None:
                oui_name = entry.name
                if "vendor" not in r.ident or all(v.strength <= HINT for v in r.ident["vendor"].values()):
                    r.claim(Claim("vendor", oui_name, "oui", HINT), None, r.first_seen)
                    r.ident["vendor"][oui_name].evidence[0:1] = [AssetEvidence(
                        field="vendor", value=oui_name, source="oui", strength=HINT,
                        reason=f"MAC {r.mac} prefix {entry.prefix}")]
        chosen: dict[str, str | None] = {}
        for attr in _FIELDS:
            b = r.best(attr)
            chosen[attr] = b[0] if b else None
        vendor = normalize_vendor(chosen["vendor"])
        beh = r.behaviour
        beh.span_s = (r.last_seen - r.first_seen).total_seconds()
        beh.device_types = set(r.ident.get("device_type", {}))
        role, reason = infer_role(beh)
        exposures = set(r.exposures)
        if "dnp3" in exposures:
            exposures.discard("dnp3")
            if not r.dnp3_sa:
                exposures.add("dnp3_no_sa")
        evidence = [ev for vals in r.ident.values() for v in vals.values() for ev in v.evidence]
        evidence.append(AssetEvidence(field="role", value=role, source="behaviour", reason=reason))
        rev = r.best("firmware")
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
            vendor=vendor.name if vendor else None,
            product=chosen["product"],
            revision=rev[0] if rev else None,
            events=r.events,
            alerts=r.alerts,
            vendor_key=vendor.key if vendor else None,
            vendor_zh=vendor.name_zh if vendor else None,
            model=chosen["model"],
            firmware=chosen["firmware"],
            serial=chosen["serial"],
            name=chosen["name"],
            oui_vendor=oui_name,
            role=role,
            zone=self.zones.zone_of(r.ip).name,
            exposures=sorted(exposures),
            evidence=evidence,
        )

    def __len__(self) -> int:
        return len(self._assets)

