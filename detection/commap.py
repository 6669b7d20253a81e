"""Communication map: assets as nodes, flows aggregated by protocol and function as edges, zones, flagged crossings.

`CommMap.observe(event)` aggregates; `CommMap.graph(assets)` returns a JSON-serialisable dict the
console renders::

    {"nodes": [{id, ip, organization, role, vendor, vendor_zh, zone, level, kind}],
     "edges": [{id, source, target, protocol, port, messages, bytes, packets, functions: {name: n},
                actions: {action: n}, first_seen, last_seen, source_zone, target_zone, flags: [...]}],
     "zones": [{name, cidrs, level, kind, configured, assets}],
     "summary": {nodes, edges, zones, flagged: {flag: n}}}

Edges point from the side that asks (client, master, flow originator) to the side that answers.
Flags: `cross_zone`, `it_ot` (IT zone ↔ OT zone), `internet_control` (internet ↔ OT/DMZ zone or an
industrial protocol to or from the internet), `level_skip` (Purdue levels two or more apart),
`cross_enterprise` (zones configured for different organizations), `remote_access` (RDP, VNC, SSH,
Telnet, TeamViewer... into a non-internet zone), `insecure` (an industrial protocol without
authentication).
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Asset, Event

from .assets import _is_host
from .inventory.roles import INDUSTRIAL
from .zones import Zone, ZoneMap

REMOTE_ACCESS_PORTS = {22: "ssh", 23: "telnet", 3389: "rdp", 5900: "vnc", 5938: "teamviewer", 7070: "anydesk", 5631: "pcanywhere"}
INSECURE_PROTOCOLS = frozenset({"modbus", "s7comm", "dnp3", "bacnet", "iec104", "enip", "cip", "cip_io", "fins"})
OT_ROLES = frozenset({"plc", "rtu", "field_device", "hmi", "engineering_station", "historian", "opc_server", "ot_client"})


@dataclass
class _Edge:
    org: str
    client: str
    server: str
    protocol: str
    port: int | None
    first: dt.datetime
    last: dt.datetime
    messages: int = 0
    bytes: int = 0
    packets: int = 0
    functions: collections.Counter[str] = field(default_factory=collections.Counter)
    actions: collections.Counter[str] = field(default_factory=collections.Counter)


def _function(e: Event) -> str | None:
    for name in ("modbus", "dnp3", "s7comm", "cip", "bacnet", "opcua", "iec104", "mqtt", "enip"):
        p = getattr(e, name)
        if p is None:
            continue
        for attr in ("subfunction_name", "function_name", "service_name", "message_type_name", "command_name", "type_name", "service"):
            v = getattr(p, attr, None)
            if v:
                return str(v)
    return None


class CommMap:
    def __init__(self, zones: ZoneMap | None = None, organization_id: str | None = None) -> None:
        self.zones = zones or ZoneMap()
        self.organization_id = organization_id
        self._edges: dict[tuple[str, str, str, str], _Edge] = {}

    def observe(self, e: Event) -> None:
        if e.event.kind == "alert" or e.source is None or e.destination is None:
            return
        src, dst = e.source.ip, e.destination.ip
        if not src or not dst or not _is_host(src) or not _is_host(dst):
            return
        n = e.network
        direction = n.direction if n is not None else None
        client, server, sport = (dst, src, e.source.port) if direction == "response" else (src, dst, e.destination.port)
        protocol = (n.protocol if n is not None else None) or (f"{n.transport}/{sport}" if n is not None and n.transport and sport else "ip")
        org = self.organization_id or (e.organization.id if e.organization is not None and e.organization.id else "default")
        key = (org, client, server, protocol)
        edge = self._edges.get(key)
        t = e.timestamp
        if edge is None:
            edge = self._edges[key] = _Edge(org, client, server, protocol, sport, t, t)
        edge.first, edge.last = min(edge.first, t), max(edge.last, t)
        if e.event.dataset == "flow":
            edge.bytes += (n.bytes if n is not None and n.bytes else 0)
            edge.packets += (n.packets if n is not None and n.packets else 0)
            return
        edge.messages += 1
        fn = _function(e)
        if fn:
            edge.functions[fn] += 1
        if e.event.action:
            edge.actions[e.event.action] += 1

    def graph(self, assets: Sequence[Asset] = ()) -> dict[str, Any]:
        by_key = {((a.organization.id if a.organization else None) or "default", a.ip): a for a in assets}
        ips: dict[tuple[str, str], None] = dict.fromkeys(by_key)
        for ed in self._edges.values():
            ips.setdefault((ed.org, ed.client))
            ips.setdefault((ed.org, ed.server))
        members: dict[str, list[str]] = collections.defaultdict(list)
        zone_of: dict[tuple[str, str], Zone] = {}
        for org, ip in ips:
            z = self.zones.zone_of(ip)
            zone_of[(org, ip)] = z
            members[z.name].append(f"{org}:{ip}")
        kinds = self._zone_kinds(zone_of, by_key)
        zones_out = []
        seen_zone: dict[str, Zone] = {z.name: z for z in zone_of.values()}
        for name, z in sorted(seen_zone.items()):
            zones_out.append({**z.to_dict(), "kind": kinds[name], "assets": sorted(members[name])})
        nodes = []
        for (org, ip) in ips:
            a = by_key.get((org, ip))
            z = zone_of[(org, ip)]
            nodes.append({
                "id": f"{org}:{ip}", "ip": ip, "organization": org,
                "role": a.role if a else None, "vendor": a.vendor if a else None, "vendor_zh": a.vendor_zh if a else None,
                "model": a.model if a else None, "protocols": list(a.protocols) if a else [],
                "exposures": list(a.exposures) if a else [],
                "zone": z.name, "level": z.level, "kind": kinds[z.name],
            })
        edges = []
        flagged: collections.Counter[str] = collections.Counter()
        for ed in sorted(self._edges.values(), key=lambda x: (x.org, x.client, x.server, x.protocol)):
            zc, zs = zone_of[(ed.org, ed.client)], zone_of[(ed.org, ed.server)]
            flags = self._flags(ed, zc, zs, kinds)
            flagged.update(flags)
            edges.append({
                "id": f"{ed.org}:{ed.client}>{ed.server}/{ed.protocol}",
                "source": f"{ed.org}:{ed.client}", "target": f"{ed.org}:{ed.server}",
                "protocol": ed.protocol, "port": ed.port, "messages": ed.messages, "bytes": ed.bytes, "packets": ed.packets,
                "functions": dict(ed.functions.most_common()), "actions": dict(ed.actions.most_common()),
                "first_seen": ed.first.isoformat(), "last_seen": ed.last.isoformat(),
                "source_zone": zc.name, "target_zone": zs.name, "flags": flags,
            })
        nodes.sort(key=lambda n: (n["organization"], n["zone"], n["ip"]))
        return {"nodes": nodes, "edges": edges, "zones": zones_out,
                "summary": {"nodes": len(nodes), "edges": len(edges), "zones": len(zones_out), "flagged": dict(sorted(flagged.items()))}}

    def _zone_kinds(self, zone_of: dict[tuple[str, str], Zone], assets: dict[tuple[str, str], Asset]) -> dict[str, str]:
        """Configured kind; otherwise OT when a member plays an OT role or speaks an industrial protocol, IT when members are IT hosts."""
        out: dict[str, str] = {}
        votes: dict[str, set[str]] = collections.defaultdict(set)
        for key, z in zone_of.items():
            a = assets.get(key)
            if a is None:
                continue
            if a.role in OT_ROLES or set(a.protocols) & INDUSTRIAL:
                votes[z.name].add("ot")
            elif a.role == "it_host":
                votes[z.name].add("it")
        for key, z in zone_of.items():
            if z.configured or z.kind in ("internet", "local"):
                out[z.name] = z.kind
            else:
                v = votes.get(z.name, set())
                out[z.name] = "ot" if "ot" in v else ("it" if "it" in v else "unknown")
        for ed in self._edges.values():  # zones without asset records: judge by the protocols on their edges
            for ip in (ed.client, ed.server):
                z = zone_of[(ed.org, ip)]
                if out.get(z.name) == "unknown" and ed.protocol in INDUSTRIAL:
                    out[z.name] = "ot"
        return out

    @staticmethod
    def _flags(ed: _Edge, zc: Zone, zs: Zone, kinds: dict[str, str]) -> list[str]:
        flags = []
        kc, ks = kinds.get(zc.name, "unknown"), kinds.get(zs.name, "unknown")
        if zc.name != zs.name:
            flags.append("cross_zone")
            if {kc, ks} == {"it", "ot"}:
                flags.append("it_ot")
            if "internet" in (kc, ks) and ({kc, ks} & {"ot", "dmz"} or ed.protocol in INDUSTRIAL):
                flags.append("internet_control")
            if zc.level is not None and zs.level is not None and abs(zc.level - zs.level) >= 2:
                flags.append("level_skip")
        if ed.port in REMOTE_ACCESS_PORTS and ks != "internet":
            flags.append("remote_access")
        if ed.protocol in INSECURE_PROTOCOLS:
            flags.append("insecure")
        return flags


def build_commap(events: Iterable[Event], assets: Sequence[Asset] = (), zones: ZoneMap | None = None,
                 organization_id: str | None = None) -> dict[str, Any]:
    """The communication map of some events (and the assets the tracker built from them)."""
    cm = CommMap(zones, organization_id)
    for e in events:
        cm.observe(e)
    return cm.graph(assets)
