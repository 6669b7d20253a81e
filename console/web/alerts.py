"""监测预警: the alert list (filters, pages) and one alert with the events that triggered it."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from flask import Blueprint, current_app, render_template

from pipeline.store import Query

from . import data, triage
from .auth import requires
from .params import alert_form, organization
from .store import get_store

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

PROTOCOLS_TOP = 50
RULES_TOP = 200
TEXT_TOTAL_LIMIT = 10_000  # a text search counts its matches up to here; beyond, the pager says "10000+"
CHOICES_TTL = 60.0  # seconds a scope's drop-down values are reused (app.config["ALERT_CHOICES_TTL"])
_CHOICES = "qinling.alert_choices"


class _Choices:
    """The filter drop-downs' values per organization scope, shared by the app's requests.

    They count every alert of the scope whatever the filter, so at a million alerts they are the two
    most expensive aggregations of the page and do not depend on the request: one `facets` request
    builds them, reused for CHOICES_TTL seconds or until an unfiltered list shows a different total
    (new alerts, retention), whichever comes first.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[tuple[int, str | None], tuple[float, int | None, list[str], list[str]]] = {}


def _choices(org: str | None, unfiltered_total: int | None) -> tuple[list[str], list[str]]:
    app = current_app
    cache: _Choices = app.extensions.setdefault(_CHOICES, _Choices())
    ttl = float(app.config.get("ALERT_CHOICES_TTL", CHOICES_TTL))
    store = get_store()
    key = (id(store), org)
    now = time.monotonic()
    with cache.lock:
        hit = cache.entries.get(key)
    if hit and now - hit[0] < ttl and (unfiltered_total is None or hit[1] in (None, unfiltered_total)):
        return hit[2], hit[3]
    facets = store.facets("alerts", ["network.protocol", "rule.id"], Query(organization=org, size=0), top=RULES_TOP)
    protocols = [str(p) for p, _n in facets["network.protocol"].buckets[:PROTOCOLS_TOP]]
    rules = [str(r) for r, _n in facets["rule.id"].buckets]
    with cache.lock:
        cache.entries[key] = (now, unfiltered_total, protocols, rules)
    return protocols, rules


@bp.get("/")
@requires("data.read")
def index() -> str:
    form = alert_form()
    q = form.query
    if q.text:  # counting half a million substring matches costs more than finding the page's fifty
        q = replace(q, total_limit=int(current_app.config.get("ALERT_TEXT_TOTAL_LIMIT", TEXT_TOTAL_LIMIT)))
    page = triage.alert_page(q)  # narrowed by ?triage= and ?suppressed= (the console db's)
    state, sup = triage.list_filters()
    unfiltered = not (q.filters or q.text or q.start or q.end or state or sup)
    protocols, rules = _choices(organization(), page.total if unfiltered else None)
    return render_template("alerts/list.html", page=page, form=form.values, filtered=form.active,
                           protocols=protocols, rules=rules)


@bp.get("/<path:alert_id>")
@requires("data.read")
def detail(alert_id: str) -> str:
    alert = data.alert_or_404(alert_id)
    return render_template("alerts/detail.html", alert=alert, evidence=data.evidence_of(alert))
