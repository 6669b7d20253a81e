"""态势感知 for the province (regulator, admin, analyst): enterprises by city and industry, top-risk
enterprises, alert trends per day by severity, open and overdue 通报, and a schematic map of
陕西省's prefecture-level cities (inline SVG: no tiles, nothing fetched from the internet)."""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from dataclasses import dataclass, field

import msgspec
from typing import Any

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from pipeline.schema import SEVERITY
from pipeline.store import Query

from . import charts, notices
from .auth import get_db, requires
from .formatting import LEVELS
from .params import organization
from .store import get_store
from .triage import triage_states

# 陕西省's prefecture-level cities: (longitude, latitude) of each seat, for a schematic map
CITIES: dict[str, tuple[float, float]] = {
    "西安市": (108.94, 34.34), "铜川市": (108.95, 34.90), "宝鸡市": (107.14, 34.36), "咸阳市": (108.71, 34.33),
    "渭南市": (109.51, 34.50), "延安市": (109.49, 36.59), "汉中市": (107.02, 33.07), "榆林市": (109.73, 38.29),
    "安康市": (109.03, 32.69), "商洛市": (109.94, 33.87),
}
LON, LAT = (105.4, 111.3), (31.6, 39.7)  # the box drawn
MAP_W, MAP_H = 360, 480
TREND_DAYS = 14
RISK_ALERTS = 5000  # newest alerts the risk score reads
CACHE_SECONDS = 60
EXTENSION = "qinling.province_cache"


def city_key(name: str) -> str:
    name = (name or "").strip()
    return name if name.endswith("市") or not name else name + "市"


def xy(city: str) -> tuple[float, float] | None:
    ll = CITIES.get(city_key(city))
    if ll is None:
        return None
    x = (ll[0] - LON[0]) / (LON[1] - LON[0]) * MAP_W
    y = (LAT[1] - ll[1]) / (LAT[1] - LAT[0]) * MAP_H
    return round(x, 1), round(y, 1)


@dataclass
class Dashboard:
    enterprises: int
    by_city: list[tuple[str, int, int]]  # city, enterprises, alerts
    by_industry: list[tuple[str, int, int]]
    top_risk: list[dict[str, Any]]
    days: list[str]
    trend: dict[str, list[int]]  # level -> per day
    notices: dict[str, int]
    overdue: list[Any]
    cities: list[dict[str, Any]] = field(default_factory=list)  # for the map

    @property
    def trend_peak(self) -> int:
        return max((sum(v[i] for v in self.trend.values()) for i in range(len(self.days))), default=0)


def _risk(org: str | None, meta: dict[str, dict[str, str]]) -> dict[str, Any]:
    """detection.risk.risk_report over this scope's assets and newest alerts (triage states as labels),
    cached per minute per scope: it reads every asset and thousands of alerts."""
    from detection.risk import risk_report

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cache: dict[Any, tuple[float, dict[str, Any]]] = app.extensions.setdefault(EXTENSION, {})
    lock: threading.Lock = app.extensions.setdefault(EXTENSION + ".lock", threading.Lock())
    key = (org, tuple(sorted(meta)))
    with lock:
        hit = cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    store = get_store()
    assets = store.search_assets(Query(organization=org, sort="last_seen", size=5000)).items
    alerts = store.search("alerts", Query(organization=org, size=RISK_ALERTS)).items
    states = triage_states([a.event.id for a in alerts if a.event.id])
    alerts = [msgspec.structs.replace(a, labels={**(a.labels or {}), "triage": states[a.event.id]})
              if a.event.id and states.get(a.event.id, "new") != "new" else a for a in alerts]
    newest = alerts[0].timestamp if alerts else None
    now = max(dt.datetime.now(dt.timezone.utc), newest) if newest else None
    report = risk_report(assets, alerts, organizations=meta, now=now, days=0)
    with lock:
        cache[key] = (time.monotonic(), report)
    return report


def dashboard() -> Dashboard:
    org = organization()
    ents = get_db().enterprises(only=org)
    store = get_store()
    scope = Query(organization=org, size=0)
    alerts_by_org = {str(k): n for k, n in store.count_by("alerts", "organization.id", scope, top=10_000)}
    by_city: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    by_industry: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for e in ents:
        n = alerts_by_org.get(e.id, 0)
        for bucket, k in ((by_city, city_key(e.city) or "—"), (by_industry, e.industry or "—")):
            bucket[k][0] += 1
            bucket[k][1] += n
    meta = {e.id: {"name": e.name, "city": city_key(e.city), "industry": e.industry} for e in ents}
    report = _risk(org, meta)
    top = [s for s in report["enterprises"] if s["subject"] in meta][:10]
    city_risk = {c["subject"]: c["score"] for c in report["cities"]}
    # per day by severity, ending at the newest alert's day (replayed captures may be old)
    newest = store.search("alerts", Query(organization=org, size=1)).items
    end_day = (newest[0].timestamp if newest else dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).date()
    days = [end_day - dt.timedelta(days=TREND_DAYS - 1 - i) for i in range(TREND_DAYS)]
    start = dt.datetime.combine(days[0], dt.time(), dt.timezone.utc)
    trend = {lv: [0] * TREND_DAYS for lv in LEVELS}
    index = {d: i for i, d in enumerate(days)}
    for lv in LEVELS:
        q = Query(organization=org, start=start, filters={"event.severity": SEVERITY[lv]})
        for bucket, n in store.histogram("alerts", q, dt.timedelta(days=1)):
            i = index.get(bucket.astimezone(dt.timezone.utc).date())
            if i is not None:
                trend[lv][i] += n
    overdue = notices.notices(org, overdue=True)
    cities = []
    for city, (n_ent, n_alerts) in sorted(by_city.items()):
        pos = xy(city)
        cities.append({"name": city, "enterprises": n_ent, "alerts": n_alerts, "risk": city_risk.get(city, 0.0),
                       "x": pos[0] if pos else None, "y": pos[1] if pos else None})
    peak = max((c["alerts"] for c in cities), default=0)
    for c in cities:
        c["r"] = round(6 + 18 * (c["alerts"] / peak) ** 0.5, 1) if peak else 6
    return Dashboard(len(ents), [(c, v[0], v[1]) for c, v in sorted(by_city.items())],
                     [(i, v[0], v[1]) for i, v in sorted(by_industry.items())], top,
                     [d.isoformat() for d in days], trend, notices.counts(org), overdue, cities)


bp = Blueprint("province", __name__, url_prefix="/province")


@bp.get("/")
@requires("province.read")
def index() -> ResponseReturnValue:
    board = dashboard()
    positioned = {c["name"] for c in board.cities}
    blank = [{"name": name, "x": xy(name)[0], "y": xy(name)[1]} for name in CITIES if name not in positioned]  # type: ignore[index]
    chart_data = {"trend": charts.severity_bars(list(board.days), board.trend)}
    return render_template("province/index.html", d=board, blank=blank, map_w=MAP_W, map_h=MAP_H,
                           chart_data=chart_data, echarts_url=charts.echarts_url(), form={"org": ""})
