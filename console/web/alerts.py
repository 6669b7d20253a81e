"""监测预警: the alert list (filters, pages) and one alert with the events that triggered it."""

from __future__ import annotations

from flask import Blueprint, render_template

from pipeline.store import Query

from . import data, triage
from .auth import requires
from .params import alert_form, organization
from .store import get_store

bp = Blueprint("alerts", __name__, url_prefix="/alerts")


@bp.get("/")
@requires("data.read")
def index() -> str:
    form = alert_form()
    store = get_store()
    page = triage.alert_page(form.query)  # narrowed by ?triage= and ?suppressed= (the console db's)
    everything = Query(organization=organization(), size=0)
    protocols = [str(p) for p, _n in store.count_by("alerts", "network.protocol", everything, top=50)]
    rules = [str(r) for r, _n in store.count_by("alerts", "rule.id", everything, top=200)]
    return render_template("alerts/list.html", page=page, form=form.values, filtered=form.active,
                           protocols=protocols, rules=rules)


@bp.get("/<path:alert_id>")
@requires("data.read")
def detail(alert_id: str) -> str:
    alert = data.alert_or_404(alert_id)
    return render_template("alerts/detail.html", alert=alert, evidence=data.evidence_of(alert))
