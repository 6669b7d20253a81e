"""资产 beyond the list: the communication map, vulnerability findings, and the loaders risk and 检查评估 share.

Every read is bounded and carries the console's organization (`auth.organization()`): the map is
built from at most COMMAP_MAX_EVENTS flow/protocol events of the last COMMAP_DAYS days before the
newest stored event (captures replayed from the past still draw a map); findings come from the
CSAF index at CSAF_INDEX (built by `qinling vulns import DIR`).

Settings (app config, or QINLING_* environment variables): CSAF_INDEX (default
var/vulns/csaf-index.json), ZONES (a zones file, see detection/zones.py; default: one zone per /24),
COMMAP_DAYS (7), COMMAP_MAX_EVENTS (10000, the store's largest page).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, g, render_template, request

from detection.commap import build_commap
from detection.exceptions import VulnDataError
from detection.vulns.csaf import Index
from detection.vulns.match import Finding, match_inventory
from detection.zones import ZoneMap
from pipeline.schema import Asset, Event
from pipeline.store import Query

from .auth import NO_ORGANIZATION, requires
from .params import organization
from .store import get_store

bp = Blueprint("inventory", __name__, url_prefix="/inventory")

DEFAULT_CSAF_INDEX = "var/vulns/csaf-index.json"
MAX_ASSETS = 5000
MAX_ALERTS = 5000
MAX_EVENTS = 10_000  # the store's largest page; COMMAP_MAX_EVENTS may lower it
MAX_DRAWN_NODES = 300  # the SVG stays readable; the tables list everything


def _config(name: str, default: Any) -> Any:
    value = current_app.config.get(name)
    return default if value in (None, "") else value


def scope() -> str | None:
    """The tenancy (`auth.organization()`), narrowed to one enterprise when a view asked for it (`narrow`)."""
    org = organization()
    narrowed = g.get("qinling_narrow_org")
    return narrowed if org is None and narrowed else org


def narrow(org: str | None) -> None:
    """Reads for this request stay within `org` (only ever narrower than the user's tenancy)."""
    g.qinling_narrow_org = org


def _q(**kw: Any) -> Query:
    return Query(organization=scope(), **kw)


def nothing() -> bool:
    """True when this user may read no enterprise at all (a pinned console, an enterprise user without one)."""
    return organization() == NO_ORGANIZATION


# ---------------------------------------------------------------- loaders (shared with risk and assessment)


def load_assets() -> list[Asset]:
    return get_store().search_assets(_q(sort="last_seen", size=MAX_ASSETS)).items


def load_alerts() -> list[Event]:
    return get_store().search("alerts", _q(size=MAX_ALERTS)).items


def event_window() -> tuple[dt.datetime | None, dt.datetime | None]:
    """(start, newest) of the events the map reads: COMMAP_DAYS before the newest stored event."""
    newest = get_store().search("events", _q(size=1)).items
    if not newest:
        return None, None
    last = newest[0].timestamp
    return last - dt.timedelta(days=float(_config("COMMAP_DAYS", 7))), last


def load_events() -> list[Event]:
    start, _last = event_window()
    if start is None:
        return []
    size = min(int(_config("COMMAP_MAX_EVENTS", MAX_EVENTS)), MAX_EVENTS)
    return get_store().search("events", _q(start=start, size=size)).items


_zone_lock = threading.Lock()
_zone_cache: dict[str, tuple[float, ZoneMap]] = {}


def zone_map() -> ZoneMap:
    """Zones from the ZONES file (TOML/YAML, see detection/zones.py); none configured: one zone per /24."""
    path = current_app.config.get("ZONES")
    if not path:
        return ZoneMap()
    mtime = os.stat(path).st_mtime
    with _zone_lock:
        hit = _zone_cache.get(path)
        if hit is None or hit[0] != mtime:
            hit = _zone_cache[path] = (mtime, ZoneMap.load(path))
        return hit[1]


def commap_graph(assets: list[Asset] | None = None) -> dict[str, Any]:
    if nothing():
        return build_commap([], [])
    assets = load_assets() if assets is None else assets
    return build_commap(load_events(), assets, zone_map())


_index_lock = threading.Lock()
_index_cache: dict[str, tuple[float, Index]] = {}


@dataclass
class Findings:
    items: list[Finding] = field(default_factory=list)
    path: str = ""
    problem: str | None = None  # why there are none to show (no index yet, unreadable index)
    stats: dict[str, Any] = field(default_factory=dict)


def csaf_index() -> tuple[Index | None, str, str | None]:
    path = str(_config("CSAF_INDEX", DEFAULT_CSAF_INDEX))
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None, path, "missing"
    with _index_lock:
        hit = _index_cache.get(path)
        if hit is None or hit[0] != mtime:
            try:
                hit = _index_cache[path] = (mtime, Index.load(path))
            except VulnDataError as e:
                return None, path, str(e)
        return hit[1], path, None


def load_findings(assets: list[Asset] | None = None) -> Findings:
    index, path, problem = csaf_index()
    if index is None:
        return Findings(path=path, problem=problem)
    assets = load_assets() if assets is None else assets
    return Findings(match_inventory(assets, index), path, None, index.stats())


# ---------------------------------------------------------------- the map drawn as SVG

COL_W, ROW_H, TOP, LEFT, NODE_W, NODE_H = 230, 46, 56, 16, 190, 34


def layout(graph: dict[str, Any]) -> dict[str, Any]:
    """Zones as columns (Purdue level 0 on the left, unlevelled zones next, the internet last), nodes stacked."""
    def order(z: dict[str, Any]) -> tuple[int, float, str]:
        if z.get("kind") == "internet":
            return (2, 0.0, z["name"])
        return (0, float(z["level"]), z["name"]) if z.get("level") is not None else (1, 0.0, z["name"])

    zones = sorted(graph["zones"], key=order)
    nodes_by_zone: dict[str, list[dict[str, Any]]] = {z["name"]: [] for z in zones}
    drawn = 0
    for n in graph["nodes"]:
        if drawn >= MAX_DRAWN_NODES:
            break
        nodes_by_zone.setdefault(n["zone"], []).append(n)
        drawn += 1
    pos: dict[str, tuple[int, int]] = {}
    columns = []
    for c, z in enumerate(zones):
        x = LEFT + c * COL_W
        members = nodes_by_zone.get(z["name"], [])
        for r, n in enumerate(members):
            pos[n["id"]] = (x, TOP + r * ROW_H)
        columns.append({"zone": z, "x": x, "nodes": [{**n, "x": x, "y": pos[n["id"]][1]} for n in members]})
    lines = []
    for e in graph["edges"]:
        if e["source"] not in pos or e["target"] not in pos:
            continue
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        same = x1 == x2
        lines.append({**e, "x1": x1 + (NODE_W if x2 > x1 else 0 if x2 < x1 else NODE_W), "y1": y1 + NODE_H // 2,
                      "x2": x2 + (0 if x2 > x1 else NODE_W), "y2": y2 + NODE_H // 2, "same_column": same,
                      "crossing": "cross_zone" in e["flags"]})
    rows = max((len(c["nodes"]) for c in columns), default=0)
    return {"columns": columns, "lines": lines, "width": LEFT * 2 + max(1, len(columns)) * COL_W,
            "height": TOP + max(1, rows) * ROW_H + 10, "node_w": NODE_W, "node_h": NODE_H,
            "truncated": len(graph["nodes"]) - drawn}


CROSSING_FLAGS = ("internet_control", "remote_access", "it_ot", "level_skip", "cross_zone", "cross_enterprise")


@bp.get("/map")
@requires("data.read")
def commap() -> str:
    graph = commap_graph()
    flagged = sorted((e for e in graph["edges"] if e["flags"]), key=lambda e: (-len(set(e["flags"]) & set(CROSSING_FLAGS)), e["id"]))
    start, last = event_window() if not nothing() else (None, None)
    return render_template("inventory/commap.html", graph=graph, drawing=layout(graph), flagged=flagged,
                           window=(start, last), max_events=min(int(_config("COMMAP_MAX_EVENTS", MAX_EVENTS)), MAX_EVENTS),
                           form={"org": (request.args.get("org") or "").strip()})


@bp.get("/event")
@requires("data.read")
def event() -> str:
    """One stored event (the evidence an asset's identity value or a finding points at), by ?id=."""
    import json

    from flask import abort

    from pipeline.schema import encode

    event_id = (request.args.get("id") or "").strip()
    if not event_id or nothing():
        abort(404)
    found = get_store().search("events", _q(filters={"event.id": event_id}, size=1)).items
    if not found:
        abort(404)
    e = found[0]
    return render_template("inventory/event.html", e=e, text=json.dumps(json.loads(encode(e)), ensure_ascii=False, indent=2))


SORTS = {"cvss": lambda f: (f.max_cvss or 0.0, f.advisory_id), "asset": lambda f: (f.ip, f.advisory_id),
         "advisory": lambda f: (f.advisory_id, f.ip)}


@bp.get("/findings")
@requires("data.read")
def findings() -> str:
    result = load_findings() if not nothing() else Findings()
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "cvss"
    descending = request.args.get("order", "desc" if sort == "cvss" else "asc") != "asc"
    items = sorted(result.items, key=SORTS[sort], reverse=descending)
    return render_template("inventory/findings.html", result=result, items=items, sort=sort, descending=descending,
                           form={"org": (request.args.get("org") or "").strip()})


__all__ = ["bp", "commap_graph", "csaf_index", "layout", "load_alerts", "load_assets", "load_events", "load_findings"]

