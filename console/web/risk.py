"""风险评估: scores per asset, enterprise, city and industry (detection.risk), each with its breakdown and trend.

The inputs are the tenancy's stored assets, alerts, communication map and vulnerability findings,
the enterprises' directory entries (name, city, industry) and the gaps of each enterprise's latest
submitted self-assessment. Enterprise users see their own enterprise and assets only; city and
industry scores (which name other enterprises) are shown to the roles that see every enterprise.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, render_template, request

from detection.risk import risk_report

from . import inventory
from .auth import current_user, get_db, requires

bp = Blueprint("risk", __name__, url_prefix="/risk")
TREND_DAYS = 14


def now() -> dt.datetime:
    """RISK_NOW (ISO time) pins the clock for reproducible reports; otherwise the present."""
    pinned = current_app.config.get("RISK_NOW")
    if pinned:
        t = pinned if isinstance(pinned, dt.datetime) else dt.datetime.fromisoformat(str(pinned))
        return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def organizations() -> dict[str, dict[str, str]]:
    org = inventory.scope()
    if inventory.nothing():
        return {}
    return {e.id: {"name": e.name, "city": e.city, "industry": e.industry} for e in get_db().enterprises(only=org)}


def sees_groups() -> bool:
    """City and industry scores compare enterprises: only for roles that see all of them, unnarrowed."""
    user = current_user()
    return user is not None and user.sees_all and inventory.scope() is None


def report(days: int = TREND_DAYS) -> dict[str, Any]:
    """risk_report over what this user may read; the numbers every risk view shows."""
    from .assessment import latest_gaps

    if inventory.nothing():
        return risk_report([], now=now(), days=days)
    assets = inventory.load_assets()
    graph = inventory.commap_graph(assets)
    findings = inventory.load_findings(assets).items
    orgs = organizations()
    out = risk_report(assets, inventory.load_alerts(), findings, graph, organizations=orgs,
                      gaps=latest_gaps(list(orgs)), now=now(), days=days)
    if not sees_groups():
        out["cities"], out["industries"] = [], []
    return out


def sparkline(trend: list[dict[str, Any]], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for a 0–100 score trend (left: oldest)."""
    if not trend:
        return ""
    step = width / max(1, len(trend) - 1)
    return " ".join(f"{i * step:.1f},{height - (p['score'] / 100.0) * height:.1f}" for i, p in enumerate(trend))


@bp.app_template_global("risk_sparkline")
def _sparkline(trend: list[dict[str, Any]]) -> str:
    return sparkline(trend)


VIEWS = ("enterprises", "assets", "cities", "industries")


@bp.get("/")
@requires("data.read")
def index() -> str:
    view = request.args.get("view") if request.args.get("view") in VIEWS else "enterprises"
    data = report()
    return render_template("risk/index.html", report=data, view=view, groups=sees_groups(),
                           form={"org": (request.args.get("org") or "").strip()})
