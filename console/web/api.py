"""The JSON API: the same reads as the pages, as ECS documents. Errors are `{"error", "message"}`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify
from flask.typing import ResponseReturnValue

from pipeline.schema import to_dict
from pipeline.store import Page

from . import data
from .params import alert_form, asset_form
from .store import get_store

bp = Blueprint("api", __name__, url_prefix="/api")


def _page(page: Page[Any]) -> dict[str, Any]:
    return {
        "total": page.total,
        "page": page.page,
        "size": page.size,
        "pages": page.pages,
        "items": [to_dict(x) for x in page.items],
    }


@bp.get("/alerts")
def alerts() -> ResponseReturnValue:
    return jsonify(_page(get_store().search("alerts", alert_form().query)))


@bp.get("/alerts/<path:alert_id>")
def alert(alert_id: str) -> ResponseReturnValue:
    return jsonify(to_dict(data.alert_or_404(alert_id)))


@bp.get("/alerts/<path:alert_id>/evidence")
def evidence(alert_id: str) -> ResponseReturnValue:
    ev = data.evidence_of(data.alert_or_404(alert_id))
    return jsonify({"events": [to_dict(e) for e in ev.events], "missing": ev.missing})


@bp.get("/assets")
def assets() -> ResponseReturnValue:
    return jsonify(_page(get_store().search_assets(asset_form().query)))


@bp.get("/assets/<path:asset_id>")
def asset(asset_id: str) -> ResponseReturnValue:
    return jsonify(to_dict(data.asset_or_404(asset_id)))


@bp.get("/overview")
def overview() -> ResponseReturnValue:
    ov = data.overview()
    return jsonify({
        "alerts": ov.alerts,
        "events": ov.events,
        "assets": ov.assets,
        "by_severity": ov.by_level,
        "top_rules": [{"id": i, "name": n, "count": c} for i, n, c in ov.top_rules],
        "top_protocols": [{"protocol": p, "count": c} for p, c in ov.top_protocols],
        "top_ips": [{"ip": ip, "count": c} for ip, c in ov.top_ips],
    })


@bp.route("/<path:_rest>")
def not_found(_rest: str) -> ResponseReturnValue:
    abort(404)
