"""监测预警 event search: stored protocol events with filters, facets and pages; one event with its alerts and evidence.

The same reads serve `/events` and `GET /api/v1/events`: every filter becomes a store Query value (an
IP or a network object, a string, a time), never query text, and the Query carries `auth.organization()`,
so tenancy is the store's. Facet counts are `Store.facets` over the same Query: a value's count is what
clicking it (adding it as a filter) selects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, abort, jsonify, render_template
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from pipeline.schema import Event, to_dict
from pipeline.store import Facet, Query

from .auth import can, get_db, may_choose_organization, requires
from .i18n import _
from .params import _arg, _int, _paging, _time, organization
from .store import get_store

bp = Blueprint("events", __name__, url_prefix="/events")
api = Blueprint("events_api", __name__, url_prefix="/api/v1/events")

MAX_TEXT = 200  # characters of a filter value
MAX_LINKED = 500  # alerts looked up for one page of events
# query argument -> stored field, for the exact-value filters
VALUE_ARGS = {"dataset": "event.dataset", "protocol": "network.protocol", "action": "event.action",
              "outcome": "event.outcome"}
# query argument -> stored field, for the IP filters (an address, or a network in CIDR notation)
IP_ARGS = {"src": "source.ip", "dst": "destination.ip", "ip": "related.ip"}
# facets, in the order shown: (query argument a click sets, stored field)
FACETS = (("protocol", "network.protocol"), ("dataset", "event.dataset"), ("action", "event.action"),
          ("src", "source.ip"), ("dst", "destination.ip"), ("org", "organization.id"))
SORTS = {"time": "@timestamp", "dataset": "event.dataset", "protocol": "network.protocol", "action": "event.action",
         "src": "source.ip", "dst": "destination.ip"}
TOP_DEFAULT, TOP_MAX = 10, 50
_ENVELOPE = frozenset({"event", "message", "source", "destination", "network", "observer", "organization", "evidence",
                       "related", "rule", "threat", "anomaly", "labels", "timestamp"})


@dataclass
class EventForm:
    query: Query
    values: dict[str, Any] = field(default_factory=dict)
    top: int = TOP_DEFAULT

    @property
    def active(self) -> bool:
        return any(v for k, v in self.values.items() if k not in ("page", "size", "sort", "order", "top"))


def _ip_value(name: str, raw: str) -> str | ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        addr = ipaddress.ip_address(raw)
        mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
        return str(mapped or addr)  # as the sensors write it: ::ffff:10.0.0.1 is 10.0.0.1
    except ValueError:
        pass
    try:
        return ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise BadRequest(_("events.bad_ip", name=name, value=raw[:MAX_TEXT])) from None


def event_form() -> EventForm:
    """?dataset= ?protocol= ?action= ?outcome= ?src= ?dst= ?ip= ?from= ?to= ?q= ?sort= ?order= ?page= ?size= ?top=."""
    filters: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for arg, fld in VALUE_ARGS.items():
        v = _arg(arg)[:MAX_TEXT]
        values[arg] = v
        if v:
            filters[fld] = v
    for arg, fld in IP_ARGS.items():
        v = _arg(arg)
        values[arg] = v[:MAX_TEXT]
        if v:
            filters[fld] = _ip_value(arg, v)
    start, end = _time("from"), _time("to")
    if start and end and end <= start:
        raise BadRequest(_("error.arg_range"))
    values["from"], values["to"] = _arg("from"), _arg("to")
    text = _arg("q")[:MAX_TEXT]
    values["q"] = text
    values["org"] = _arg("org")
    sort = _arg("sort") or "time"
    if sort not in SORTS:
        raise BadRequest(_("error.arg_choice", name="sort", value=sort[:MAX_TEXT], choices=", ".join(SORTS)))
    order = _arg("order") or ("desc" if sort == "time" else "asc")
    if order not in ("asc", "desc"):
        raise BadRequest(_("error.arg_choice", name="order", value=order[:MAX_TEXT], choices="asc, desc"))
    values["sort"], values["order"] = sort, order
    page, size = _paging()
    values["page"], values["size"] = page, size
    top = _int("top", TOP_DEFAULT, 1, TOP_MAX)
    q = Query(filters=filters, start=start, end=end, text=text or None, organization=organization(),
              sort=SORTS[sort], descending=order == "desc", page=page, size=size)
    return EventForm(q, values, top)


def facet_fields() -> list[tuple[str, str]]:
    """The facets this user gets: the enterprise one only for roles that may choose an enterprise."""
    return [(arg, fld) for arg, fld in FACETS if arg != "org" or may_choose_organization()]


def facets_of(form: EventForm) -> dict[str, Facet]:
    return get_store().facets("events", [fld for _a, fld in facet_fields()], replace(form.query, page=1, size=0),
                              top=form.top)


def linked_alerts(events: list[Event]) -> dict[str, list[Event]]:
    """event id -> the alerts (within this user's tenancy) that name it among their evidence."""
    ids = [e.event.id for e in events if e.event.id]
    out: dict[str, list[Event]] = {i: [] for i in ids}
    if not ids:
        return out
    page = get_store().search("alerts", Query(filters={"evidence.event_ids": ids}, organization=organization(),
                                              size=MAX_LINKED))
    for alert in page.items:
        for eid in (alert.evidence.event_ids or []) if alert.evidence else []:
            if eid in out:
                out[eid].append(alert)
    return out


def event_or_404(event_id: str) -> Event:
    page = get_store().search("events", Query(filters={"event.id": event_id}, organization=organization(), size=1))
    if not page.items:
        abort(404)
    return page.items[0]


def capture_of(event: Event) -> Any:
    """The uploaded capture this event was replayed from, when the console holds it (for a link), else None."""
    from . import captures

    ev = event.evidence
    if ev is None or not ev.file_sha256 or not can("captures.read"):
        return None
    org = event.organization.id if event.organization else None
    try:
        return captures.state().db.get(ev.file_sha256, org)
    except Exception:  # the captures table is optional here: no link is the answer
        return None


@bp.app_template_filter("event_summary")
def summary(e: Event) -> str:
    """One line for a list: the message, the anomaly, or the protocol's own `*_name` fields (function, service...)."""
    if e.message:
        return e.message
    if e.anomaly is not None:
        return e.anomaly.code + (f": {e.anomaly.message}" if e.anomaly.message else "")
    import msgspec

    name = e.event.dataset
    proto = getattr(e, name, None) if name.isidentifier() and name not in _ENVELOPE else None
    if not isinstance(proto, msgspec.Struct):
        return ""
    fields = msgspec.to_builtins(proto)
    names = [str(v) for k, v in fields.items() if k.endswith("_name") and isinstance(v, str) and v]
    return " · ".join(dict.fromkeys(names))[:200]


def _facet_json(f: Facet) -> dict[str, Any]:
    return {"field": f.field, "missing": f.missing,
            "buckets": [{"value": v, "count": n} for v, n in f.buckets]}


# ---------------------------------------------------------------- pages


@bp.get("/")
@requires("data.read")
def index() -> str:
    form = event_form()
    page = get_store().search("events", form.query)  # NO_ORGANIZATION matches no document
    facets = facets_of(form)
    names = {e.id: e.name for e in get_db().enterprises()} if may_choose_organization() else {}
    return render_template("events/list.html", page=page, form=form.values, filtered=form.active,
                           facets=[(arg, fld, facets[fld]) for arg, fld in facet_fields()], org_names=names,
                           linked=linked_alerts(page.items), sorts=list(SORTS),
                           chips=[a for a in ("org", *VALUE_ARGS, *IP_ARGS) if form.values.get(a)])


@bp.get("/<path:event_id>")
@requires("data.read")
def detail(event_id: str) -> str:
    import json

    from pipeline.schema import encode

    e = event_or_404(event_id)
    text = json.dumps(json.loads(encode(e)), ensure_ascii=False, indent=2)
    return render_template("events/detail.html", e=e, text=text, alerts=linked_alerts([e]).get(e.event.id or "", []),
                           capture=capture_of(e))


# ---------------------------------------------------------------- API


@api.get("")
@requires("data.read")
def api_list() -> ResponseReturnValue:
    form = event_form()
    p = get_store().search("events", form.query)
    facets = facets_of(form)
    return jsonify({"total": p.total, "page": p.page, "size": p.size, "pages": p.pages,
                    "items": [to_dict(e) for e in p.items],
                    "facets": {arg: _facet_json(facets[fld]) for arg, fld in facet_fields()}})


@api.get("/<path:event_id>")
@requires("data.read")
def api_event(event_id: str) -> ResponseReturnValue:
    return jsonify(to_dict(event_or_404(event_id)))


@api.get("/<path:event_id>/alerts")
@requires("data.read")
def api_event_alerts(event_id: str) -> ResponseReturnValue:
    e = event_or_404(event_id)
    alerts = linked_alerts([e]).get(e.event.id or "", [])
    return jsonify({"items": [to_dict(a) for a in alerts], "total": len(alerts)})


__all__ = ["api", "bp", "event_form", "facets_of", "linked_alerts"]


def describe(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """This area's part of the OpenAPI document (called by openapi.py)."""
    from .openapi import ORG, PAGING, TIME, _get, _json, _listed, _path_param, _q, _ref

    bucket = {"type": "object", "required": ["value", "count"], "additionalProperties": False,
              "properties": {"value": {"type": ["string", "integer", "number", "boolean"]},
                             "count": {"type": "integer", "minimum": 1}}}
    schemas["ApiFacet"] = {
        "type": "object", "required": ["field", "buckets", "missing"], "additionalProperties": False,
        "properties": {"field": {"type": "string", "description": "the stored field counted"},
                       "buckets": {"type": "array", "items": bucket,
                                   "description": "most frequent first; a count is what filtering on that value selects"},
                       "missing": {"type": "integer", "minimum": 0, "description": "selected events without a value"}},
    }
    schemas["ApiEventPage"] = {
        "type": "object", "required": ["items", "total", "page", "size", "pages", "facets"], "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "items": _ref("Event")}, "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1}, "size": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
            "facets": {"type": "object", "additionalProperties": _ref("ApiFacet"),
                       "description": "by the query argument a value sets: protocol, dataset, action, src, dst, org "
                                      "(org only for roles that see every enterprise)"},
        },
    }
    ip = {"type": "string", "description": "an IP address, or a network in CIDR notation (10.0.0.0/24)"}
    params = [
        _q("protocol", "network.protocol, e.g. modbus"), _q("dataset", "event.dataset, e.g. modbus or flow"),
        _q("action", "event.action, e.g. write"),
        _q("outcome", "event.outcome", {"type": "string", "enum": ["success", "failure", "unknown"]}),
        _q("src", "source.ip: an address or a CIDR network", ip), _q("dst", "destination.ip: an address or a CIDR network", ip),
        _q("ip", "either side (related.ip): an address or a CIDR network", ip),
        _q("from", "@timestamp at or after", TIME), _q("to", "@timestamp before (after `from`)", TIME),
        _q("q", "case-insensitive text in the message or IPs"),
        _q("sort", "sort key", {"type": "string", "enum": list(SORTS)}),
        _q("order", "asc or desc (default: desc for time, else asc)", {"type": "string", "enum": ["asc", "desc"]}),
        _q("top", "values per facet", {"type": "integer", "minimum": 1, "maximum": TOP_MAX}),
        ORG, *PAGING,
    ]
    event_id = [_path_param("event_id", "event.id of the event")]
    paths["/api/v1/events"] = {"get": _get("Stored protocol events (事件检索) with facet counts", "events",
                                           _json(_ref("ApiEventPage")), "400", "401", "403", "503", params=params)}
    paths["/api/v1/events/{event_id}"] = {"get": _get("One event", "events", _json(_ref("Event")), "401", "403", "404", "503",
                                                      params=event_id)}
    paths["/api/v1/events/{event_id}/alerts"] = {"get": _get(
        "The alerts that name this event among their evidence", "events", _json(_listed(_ref("Event"))),
        "401", "403", "404", "503", params=event_id)}
