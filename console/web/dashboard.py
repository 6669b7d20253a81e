"""企业看板: one enterprise's landing page — its 监测预警 alerts, assets, risk, 检查评估 self-assessment and the
regulator's open 通报 notices — and `GET /api/v1/dashboard` with the same numbers.

Enterprise users get their own enterprise (and land here from `/`). The roles that see every enterprise
choose one with `?org=` (the page lists them until they do); auditors, who read no traffic data, are sent
to their own start page. Every read goes through the store Query's organization (`auth.organization()`),
the triage, notice and assessment tables filtered by the same enterprise id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from pipeline.store import Query

from . import risk
from .accounts import Enterprise
from .auth import LOGGED_IN, NO_ORGANIZATION, can, get_db, requires
from .formatting import LEVELS, level
from .i18n import _
from .params import organization
from .store import get_store

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
api = Blueprint("dashboard_api", __name__, url_prefix="/api/v1/dashboard")

LATEST = 5  # newest alerts and assets shown
TREND_DAYS = 14
RISK_LINES = 3  # riskiest assets listed under the enterprise score
ID_CHUNK = 5000  # the store's largest any-of filter


def chosen() -> str | None:
    """The one enterprise this dashboard is for, or None when a cross-enterprise user has not chosen one."""
    org = organization()
    return None if org is None or org == NO_ORGANIZATION else org


def _alerts(org: str) -> dict[str, Any]:
    from . import triage

    store = get_store()
    scope = Query(organization=org, size=0)
    by_level = {name: 0 for name in LEVELS}
    for sev, n in store.count_by("alerts", "event.severity", scope, top=200):
        by_level[level(sev)] += n
    closed_ids = sorted(triage.ids_in_state(triage.CLOSED, org))
    closed = {name: 0 for name in LEVELS}
    for i in range(0, len(closed_ids), ID_CHUNK):
        chunk = Query(organization=org, filters={"event.id": closed_ids[i:i + ID_CHUNK]}, size=0)
        for sev, n in store.count_by("alerts", "event.severity", chunk, top=200):
            closed[level(sev)] += n
    open_by = {name: by_level[name] - closed[name] for name in LEVELS}
    newest = store.search("alerts", Query(organization=org, size=LATEST))
    states = triage.triage_states([a.event.id for a in newest.items if a.event.id])
    trend: list[dict[str, Any]] = []
    if newest.items:
        day = dt.timedelta(days=1)
        last = newest.items[0].timestamp.astimezone(dt.timezone.utc)
        end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.timezone.utc)
        start = end - (TREND_DAYS - 1) * day
        counts = {b: n for b, n in store.histogram("alerts", Query(organization=org, start=start), day)}
        trend = [{"day": (start + i * day).date().isoformat(), "count": counts.get(start + i * day, 0)}
                 for i in range(TREND_DAYS)]
    return {
        "total": newest.total,
        "open": sum(open_by.values()),
        "by_severity": by_level,
        "open_by_severity": open_by,
        "latest": [{"id": a.event.id, "@timestamp": a.timestamp.isoformat(), "severity": level(a.event.severity),
                    "rule": a.rule.name if a.rule else "", "message": a.message or "",
                    "triage": states.get(a.event.id or "", "new")} for a in newest.items],
        "trend": trend,
    }


def _assets(org: str) -> dict[str, Any]:
    store = get_store()
    scope = Query(organization=org, size=0)
    facet = store.facets("assets", ["role"], scope, top=20)["role"]
    newest = store.search_assets(Query(organization=org, sort="first_seen", descending=True, size=LATEST))
    return {
        "total": newest.total,
        "by_role": [{"role": str(r), "count": n} for r, n in facet.buckets],
        "unidentified": facet.missing,
        "newest": [{"id": a.id, "ip": a.ip, "role": a.role or "", "vendor": a.vendor or "", "model": a.model or "",
                    "first_seen": a.first_seen.isoformat()} for a in newest.items],
    }


def _risk(org: str) -> dict[str, Any]:
    report = risk.report()
    mine = next((e for e in report["enterprises"] if e["subject"] == org), None)
    assets = [a for a in report["assets"] if a["subject"].startswith(f"{org}:")][:RISK_LINES]
    return {
        "score": mine["score"] if mine else 0.0,
        "breakdown": mine["breakdown"] if mine else [],
        "trend": mine["trend"] if mine else [],
        "top_assets": [{"subject": a["subject"], "name": a["name"], "score": a["score"],
                        "reason": max(a["breakdown"], key=lambda c: c["points"]) if a["breakdown"] else None}
                       for a in assets],
        "generated": report["generated"],
    }


def _assessment(org: str) -> dict[str, Any]:
    from .assessment import draft_of, latest_submitted

    latest = latest_submitted(org)
    draft = draft_of(org)
    result = latest.result if latest is not None and latest.result else None
    return {
        "status": "submitted" if latest is not None else ("draft" if draft is not None else "none"),
        "draft": draft is not None,
        "submitted": latest.submitted if latest is not None else None,
        "score": result["total"] if result else None,
        "areas": result["areas"] if result else {},
        "gaps": len(result["gaps"]) if result else None,
    }


def _notices(org: str) -> dict[str, Any]:
    from . import notices

    rows = notices.notices(org, state="open")
    return {
        "open": len(rows),
        "overdue": sum(1 for n in rows if n.overdue),
        "next_deadline": min((n.deadline for n in rows), default=None),
        "items": [{"id": n.id, "title": n.title, "severity": n.severity, "state": n.state, "deadline": n.deadline,
                   "overdue": n.overdue} for n in rows],
    }


@dataclass
class Dashboard:
    enterprise: Enterprise
    data: dict[str, Any]


def build(org: str) -> Dashboard:
    ent = get_db().enterprise(org) or Enterprise(org, org, "", "")
    data = {"organization": ent.to_dict(), "alerts": _alerts(org), "assets": _assets(org), "risk": _risk(org),
            "assessment": _assessment(org), "notices": _notices(org)}
    return Dashboard(ent, data)


@bp.get("/")
@requires(LOGGED_IN)
def index() -> ResponseReturnValue:
    if not can("data.read"):  # auditors: no traffic data; their own start page
        return redirect(url_for("overview.index"))
    org = chosen()
    if org is None:
        return render_template("dashboard/choose.html", rows=get_db().enterprises(only=None))
    d = build(org)
    return render_template("dashboard/index.html", d=d.data, enterprise=d.enterprise,
                           trend_peak=max((p["count"] for p in d.data["alerts"]["trend"]), default=0),
                           form={"org": (request.args.get("org") or "").strip()})


@api.get("")
@requires("data.read")
def api_dashboard() -> ResponseReturnValue:
    org = chosen()
    if org is None:
        if organization() == NO_ORGANIZATION:  # a pinned console this user may not read
            abort(404)
        raise BadRequest(_("dashboard.choose_org"))
    return jsonify(build(org).data)


__all__ = ["api", "bp", "build", "chosen"]


def describe(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """This area's part of the OpenAPI document (called by openapi.py)."""
    from .openapi import ORG, _get, _json, _ref

    count = {"type": "integer", "minimum": 0}
    levels = {"type": "object", "required": list(LEVELS), "additionalProperties": False,
              "properties": {lv: count for lv in LEVELS}}
    text, maybe = {"type": "string"}, {"type": ["string", "null"]}

    def obj(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "required": list(props), "additionalProperties": False, "properties": props}

    component = {"type": "object", "required": ["key", "points", "reason_en", "reason_zh"],
                 "properties": {"key": text, "points": {"type": "number"}, "reason_en": text, "reason_zh": text,
                                "params": {"type": "object"}}}
    schemas["ApiDashboard"] = obj({
        "organization": obj({"id": text, "name": text, "city": text, "industry": text}),
        "alerts": obj({
            "total": count, "open": {**count, "description": "not closed in triage (resolved or false positive)"},
            "by_severity": levels, "open_by_severity": levels,
            "latest": {"type": "array", "items": obj({"id": maybe, "@timestamp": text, "severity": text, "rule": text,
                                                     "message": text, "triage": text})},
            "trend": {"type": "array", "description": f"alerts per UTC day, the {TREND_DAYS} days up to the newest alert",
                      "items": obj({"day": {"type": "string", "format": "date"}, "count": count})},
        }),
        "assets": obj({
            "total": count, "by_role": {"type": "array", "items": obj({"role": text, "count": count})},
            "unidentified": {**count, "description": "assets whose role is not known"},
            "newest": {"type": "array", "items": obj({"id": text, "ip": text, "role": text, "vendor": text, "model": text,
                                                      "first_seen": text})},
        }),
        "risk": obj({
            "score": {"type": "number", "minimum": 0, "maximum": 100}, "breakdown": {"type": "array", "items": component},
            "trend": {"type": "array", "items": {"type": "object"}},
            "top_assets": {"type": "array", "items": obj({"subject": text, "name": maybe, "score": {"type": "number"},
                                                          "reason": {"oneOf": [component, {"type": "null"}]}})},
            "generated": text,
        }),
        "assessment": obj({
            "status": {"type": "string", "enum": ["submitted", "draft", "none"]}, "draft": {"type": "boolean"},
            "submitted": maybe, "score": {"type": ["number", "null"]},
            "areas": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
            "gaps": {"type": ["integer", "null"], "minimum": 0},
        }),
        "notices": obj({
            "open": count, "overdue": count, "next_deadline": maybe,
            "items": {"type": "array", "items": obj({"id": {"type": "integer"}, "title": text, "severity": text, "state": text,
                                                    "deadline": text, "overdue": {"type": "boolean"}})},
        }),
    })
    paths["/api/v1/dashboard"] = {"get": _get(
        "One enterprise's dashboard (企业看板): alerts, assets, risk, self-assessment, open notices. Enterprise users: "
        "their own; other roles choose one with org (400 without it)", "dashboard", _json(_ref("ApiDashboard")),
        "400", "401", "403", "404", "503", params=[ORG])}
