"""The JSON API `/api/v1`: the same reads as the pages, as ECS documents, plus sessions, enterprises,
users and the audit log. Described by `/api/v1/openapi.json` (openapi.py). Errors are
`{"error", "message"}` with the real status. The first, unversioned `/api/*` addresses redirect here
(308, so the method and body survive)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from pipeline.schema import to_dict
from pipeline.store import Page

from . import data, openapi
from .accounts import User
from .auth import LOGGED_IN, PUBLIC, csrf_exempt, csrf_token, current_user, get_db, login, logout, requires
from .i18n import _
from .params import alert_form, asset_form, audit_form
from .store import get_store

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
legacy = Blueprint("api", __name__, url_prefix="/api")


def _page(page: Page[Any], convert: Any = to_dict) -> dict[str, Any]:
    return {
        "total": page.total,
        "page": page.page,
        "size": page.size,
        "pages": page.pages,
        "items": [convert(x) for x in page.items],
    }


def _me(user: User) -> dict[str, Any]:
    return {"user": user.to_dict(), "csrf_token": csrf_token()}


@bp.get("/openapi.json")
@requires(PUBLIC)
def openapi_document() -> ResponseReturnValue:
    return jsonify(openapi.document())


@bp.post("/session")
@requires(PUBLIC)
@csrf_exempt  # JSON only: a cross-site form cannot send application/json without a CORS preflight
def open_session() -> ResponseReturnValue:
    if not request.is_json:
        raise UnsupportedMediaType(_("error.json_body"))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        raise BadRequest(_("error.session_body"))
    return jsonify(_me(login(body["username"], body["password"])))


@bp.get("/session")
@requires(LOGGED_IN)
def session_info() -> ResponseReturnValue:
    user = current_user()
    assert user is not None
    return jsonify(_me(user))


@bp.delete("/session")
@requires(LOGGED_IN)
def close_session() -> ResponseReturnValue:
    logout()
    return "", 204


@bp.get("/alerts")
@requires("data.read")
def alerts() -> ResponseReturnValue:
    from . import triage  # ?triage= and ?suppressed= narrow by the console db's triage states and suppressions

    return jsonify(_page(triage.alert_page(alert_form().query)))


@bp.get("/alerts/<path:alert_id>")
@requires("data.read")
def alert(alert_id: str) -> ResponseReturnValue:
    return jsonify(to_dict(data.alert_or_404(alert_id)))


@bp.get("/alerts/<path:alert_id>/evidence")
@requires("data.read")
def evidence(alert_id: str) -> ResponseReturnValue:
    ev = data.evidence_of(data.alert_or_404(alert_id))
    return jsonify({"events": [to_dict(e) for e in ev.events], "missing": ev.missing})


@bp.get("/assets")
@requires("data.read")
def assets() -> ResponseReturnValue:
    return jsonify(_page(get_store().search_assets(asset_form().query)))


@bp.get("/assets/<path:asset_id>")
@requires("data.read")
def asset(asset_id: str) -> ResponseReturnValue:
    return jsonify(to_dict(data.asset_or_404(asset_id)))


@bp.get("/overview")
@requires("data.read")
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


@bp.get("/enterprises")
@requires("enterprises.read")
def enterprises() -> ResponseReturnValue:
    rows = data.enterprises()
    return jsonify({"items": [r.to_dict() for r in rows], "total": len(rows)})


@bp.get("/users")
@requires("users.read")
def users() -> ResponseReturnValue:
    rows = get_db().users()
    return jsonify({"items": [u.to_dict() for u in rows], "total": len(rows)})


@bp.get("/audit")
@requires("audit.read")
def audit_log() -> ResponseReturnValue:
    args, _values = audit_form()
    entries, total = get_db().audit_log(**args)
    return jsonify(_page(Page(entries, total, args["page"], args["size"]), lambda e: e.to_dict()))


@bp.get("/<path:_rest>")
@requires(PUBLIC)
def not_found(_rest: str) -> ResponseReturnValue:
    abort(404)


# GET only (the unversioned API never had anything else), so a POST to a GET-only /api/v1 address
# is a 405 there rather than falling through to this rule.
@legacy.get("/", defaults={"rest": ""})
@legacy.get("/<path:rest>")
@requires(PUBLIC)
def moved(rest: str) -> ResponseReturnValue:
    query = request.query_string.decode("latin-1")
    return redirect(f"/api/v1/{rest}" + (f"?{query}" if query else ""), code=308)
