"""Reads the pages and the API share: one alert with its evidence, one asset, the overview numbers.

Every read goes through a Query carrying the console's organization, so tenancy is enforced by the
store's SQL, never by a template.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import abort, current_app

from pipeline.schema import SEVERITY, Asset, Event
from pipeline.store import Query

from .accounts import Enterprise
from .auth import can, current_user, get_db
from .formatting import LEVELS, level
from .params import organization
from .store import get_store

MAX_EVIDENCE = 1000
# Histogram bucket widths, smallest first; the overview picks the first giving at most MAX_BUCKETS.
INTERVALS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 48


def _q(**kw: Any) -> Query:
    return Query(organization=organization(), **kw)


def alert_or_404(alert_id: str) -> Event:
    page = get_store().search("alerts", _q(filters={"event.id": alert_id}, size=1))
    if not page.items:
        abort(404)
    return page.items[0]


def asset_or_404(asset_id: str) -> Asset:
    page = get_store().search_assets(_q(filters={"id": asset_id}, size=1))
    if not page.items:
        abort(404)
    return page.items[0]


@dataclass
class Evidence:
    events: list[Event]
    missing: list[str]  # ids the alert names that the events index does not hold (or not for us)


def evidence_of(alert: Event) -> Evidence:
    ids = list(dict.fromkeys((alert.evidence.event_ids or []) if alert.evidence else []))[:MAX_EVIDENCE]
    if not ids:
        return Evidence([], [])
    page = get_store().search(
        "events", _q(filters={"event.id": ids}, sort="@timestamp", descending=False, size=len(ids))
    )
    found = {e.event.id for e in page.items}
    return Evidence(page.items, [i for i in ids if i not in found])


@dataclass
class Bar:
    start: dt.datetime
    counts: dict[str, int]  # level -> alerts

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Overview:
    alerts: int
    events: int
    assets: int
    by_level: dict[str, int]
    top_rules: list[tuple[str, str, int]]  # id, name, count
    top_protocols: list[tuple[str, int]]
    top_ips: list[tuple[str, int]]
    recent: list[Event]
    bars: list[Bar] = field(default_factory=list)
    interval: int = 0  # seconds per bar

    @property
    def peak(self) -> int:
        return max((b.total for b in self.bars), default=0)


def overview() -> Overview:
    store = get_store()
    everything = _q(size=0)
    by_level = {name: 0 for name in LEVELS}
    for sev, n in store.count_by("alerts", "event.severity", everything, top=100):
        by_level[level(sev)] += n
    rules = []
    for rule_id, n in store.count_by("alerts", "rule.id", everything, top=10):
        sample = store.search("alerts", _q(filters={"rule.id": rule_id}, size=1)).items
        name = sample[0].rule.name if sample and sample[0].rule else ""
        rules.append((str(rule_id), name, n))
    recent = store.search("alerts", _q(size=10))
    ov = Overview(
        alerts=recent.total,
        events=store.search("events", everything).total,
        assets=store.search_assets(everything).total,
        by_level=by_level,
        top_rules=rules,
        top_protocols=[(str(p), n) for p, n in store.count_by("alerts", "network.protocol", everything)],
        top_ips=[(str(ip), n) for ip, n in store.count_by("alerts", "related.ip", everything)],
        recent=recent.items,
    )
    if recent.items:
        first = store.search("alerts", _q(size=1, descending=False)).items[0].timestamp
        last = recent.items[0].timestamp
        ov.interval, ov.bars = _bars(first, last)
    return ov


def _bars(first: dt.datetime, last: dt.datetime) -> tuple[int, list[Bar]]:
    span = max(0.0, (last - first).total_seconds())
    interval = next((i for i in INTERVALS if span / i < MAX_BUCKETS), INTERVALS[-1])
    lo = int(first.timestamp() // interval) * interval
    hi = int(last.timestamp() // interval) * interval
    starts = list(range(lo, hi + interval, interval))[-MAX_BUCKETS:]
    counts: dict[int, dict[str, int]] = {s: {name: 0 for name in LEVELS} for s in starts}
    store = get_store()
    window = _q(start=dt.datetime.fromtimestamp(starts[0], dt.timezone.utc))
    for name in LEVELS:
        q = Query(organization=window.organization, start=window.start, filters={"event.severity": SEVERITY[name]})
        for bucket, n in store.histogram("alerts", q, dt.timedelta(seconds=interval)):
            key = int(bucket.timestamp())
            if key in counts:
                counts[key][name] += n
    return interval, [Bar(dt.datetime.fromtimestamp(s, dt.timezone.utc), counts[s]) for s in starts]


@dataclass
class EnterpriseRow:
    enterprise: Enterprise
    alerts: int | None  # None: this user may not read traffic data
    assets: int | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.enterprise.to_dict(), "alerts": self.alerts, "assets": self.assets}


def enterprises() -> list[EnterpriseRow]:
    """The enterprises this user may know of: an enterprise user only their own; with alert/asset counts."""
    user = current_user()
    pinned = current_app.config.get("ORGANIZATION") or None
    only = user.organization if user is not None and user.role == "enterprise" else pinned
    if user is not None and user.role == "enterprise" and pinned and pinned != only:
        return []
    rows = [EnterpriseRow(e, None, None) for e in get_db().enterprises(only=only or None)]
    if rows and can("data.read"):
        store = get_store()
        scope = _q(size=0)
        alerts = {str(k): n for k, n in store.count_by("alerts", "organization.id", scope, top=10_000)}
        assets = {str(k): n for k, n in store.count_by("assets", "organization.id", scope, top=10_000)}
        for row in rows:
            row.alerts, row.assets = alerts.get(row.enterprise.id, 0), assets.get(row.enterprise.id, 0)
    return rows
