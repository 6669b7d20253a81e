"""资产: the passive inventory, and one asset with its identity evidence, vulnerabilities, risk and alerts."""

from __future__ import annotations

from flask import Blueprint, render_template

from pipeline.store import Query

from . import data, inventory, risk
from .auth import requires
from .params import asset_form, organization
from .store import get_store

bp = Blueprint("assets", __name__, url_prefix="/assets")
IDENTITY = ("vendor", "product", "model", "firmware", "serial", "name", "role")


@bp.get("/")
@requires("data.read")
def index() -> str:
    form = asset_form()
    store = get_store()
    page = store.search_assets(form.query)
    everything = Query(organization=organization(), size=0)
    protocols = [str(p) for p, _n in store.count_by("assets", "protocols", everything, top=50)]
    roles = [str(r) for r, _n in store.count_by("assets", "roles", everything, top=50)]
    return render_template("assets/list.html", page=page, form=form.values, filtered=form.active,
                           protocols=protocols, roles=roles)


@bp.get("/<path:asset_id>")
@requires("data.read")
def detail(asset_id: str) -> str:
    asset = data.asset_or_404(asset_id)
    org = asset.organization.id if asset.organization and asset.organization.id else None
    filters = {"related.ip": asset.ip}
    if org:  # the same IP may exist in another enterprise
        filters["organization.id"] = org
    alerts = get_store().search("alerts", Query(filters=filters, organization=organization(), size=20))
    inventory.narrow(org)  # the risk of this asset needs its own enterprise's data only
    found = inventory.load_findings([asset])
    score = next((s for s in risk.report()["assets"] if s["subject"] == asset.id), None)
    evidence = {f: [e for e in asset.evidence if e.field == f] for f in IDENTITY}
    others = [e for e in asset.evidence if e.field not in IDENTITY]
    return render_template("assets/detail.html", asset=asset, alerts=alerts, findings=found, score=score,
                           evidence=evidence, other_evidence=others)
