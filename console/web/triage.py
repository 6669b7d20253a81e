"""监测预警 triage: acknowledge, assign, comment, escalate, close, suppress similar; the live alert stream.

Triage state lives in the console database (tables `triage`, `triage_history`, `suppressions`), not in
the event store: alerts are the pipeline's documents, triage is people's work on them. Detection never
reads these tables; `triage_states()` hands the states to the risk page, whose `detection.risk` reads
them as `labels.triage`, so the state names here are the ones it discounts.

State machine (an action not allowed from the current state answers 409):

    new ─acknowledge→ acknowledged
    new | acknowledged | in_progress | escalated ─assign→ in_progress
    new | acknowledged | in_progress ─escalate→ escalated          (to the regulator)
    any open ─close_tp→ resolved        any open ─close_fp→ false_positive
    resolved | false_positive ─reopen→ acknowledged
    comment and suppress leave the state as it is.

Analysts and admins triage; enterprise users (and regulators) may comment on the alerts they may read
and see their history. Every action is audited.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from flask import (Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request,
                   stream_with_context, url_for)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, Conflict, Forbidden

from pipeline.schema import Event
from pipeline.store import Page, Query, Store

from . import data
from .accounts import ConsoleDB, now
from .auth import audit, can, current_user, get_db, requires
from .formatting import fmt_time, level
from .i18n import _
from .params import organization
from .store import get_store

OPEN = ("new", "acknowledged", "in_progress", "escalated")
CLOSED = ("resolved", "false_positive")
STATES = OPEN + CLOSED
# action -> (states it may start from, state it leads to; None: unchanged)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "acknowledge": (("new",), "acknowledged"),
    "assign": (OPEN, "in_progress"),
    "escalate": (("new", "acknowledged", "in_progress"), "escalated"),
    "close_tp": (OPEN, "resolved"),
    "close_fp": (OPEN, "false_positive"),
    "reopen": (CLOSED, "acknowledged"),
    "comment": (STATES, None),
    "suppress": (STATES, None),
}
ACTIONS = tuple(TRANSITIONS)
ASSIGNABLE_ROLES = ("admin", "analyst")
MAX_NOTE = 4000
MAX_SUPPRESS_DAYS = 365
SCAN_PAGE = 500
SCAN_LIMIT = 50_000  # alerts looked at to page a filter the store cannot express (state "new", hide suppressed)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS triage (
    alert_id TEXT PRIMARY KEY,
    organization TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    assignee TEXT,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS triage_state ON triage (state, organization);
CREATE TABLE IF NOT EXISTS triage_history (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    organization TEXT NOT NULL DEFAULT '',
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS triage_history_alert ON triage_history (alert_id, id);
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY,
    organization TEXT NOT NULL DEFAULT '',
    rule_id TEXT NOT NULL,
    source_ip TEXT NOT NULL DEFAULT '',
    destination_ip TEXT NOT NULL DEFAULT '',
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    alert_id TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT ''
);
"""


@contextmanager
def sql(db: ConsoleDB | None = None, schema: str = _SCHEMA) -> Iterator[sqlite3.Connection]:
    """The console database's one connection, under its lock, with `schema`'s tables created once.

    Shares ConsoleDB's connection (rather than opening a second one on the same file) so ":memory:"
    consoles and the app's close_db keep working; the tables are this module's own.
    """
    db = db or get_db()
    made: set[int] = db.__dict__.setdefault("_qinling_schemas", set())
    with db._tx() as c:
        if id(schema) not in made:
            c.executescript(schema)
            made.add(id(schema))
        yield c


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- reads


@dataclass(frozen=True)
class Triage:
    alert_id: str
    state: str
    assignee: str | None
    updated_at: str | None
    updated_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "state": self.state, "assignee": self.assignee,
                "updated_at": self.updated_at, "updated_by": self.updated_by}


@dataclass(frozen=True)
class HistoryEntry:
    ts: str
    actor: str
    action: str
    state: str
    note: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"@timestamp": self.ts, "actor": self.actor, "action": self.action, "state": self.state,
                "note": self.note, "detail": self.detail}


@dataclass(frozen=True)
class Suppression:
    id: int
    organization: str
    rule_id: str
    source_ip: str
    destination_ip: str
    expires_at: str
    created_at: str
    created_by: str
    alert_id: str
    note: str

    @property
    def active(self) -> bool:
        return self.expires_at > _iso(now())

    def matches(self, alert: Event) -> bool:
        org = alert.organization.id if alert.organization else None
        return (self.active and (org or "") == self.organization and alert.rule is not None
                and alert.rule.id == self.rule_id
                and (not self.source_ip or (alert.source is not None and alert.source.ip == self.source_ip))
                and (not self.destination_ip or (alert.destination is not None and alert.destination.ip == self.destination_ip)))


def triage_states(alert_ids: Iterable[str], db: ConsoleDB | None = None) -> dict[str, str]:
    """alert id -> triage state ("new" when nobody has touched it), in the names detection.risk discounts."""
    ids = list(dict.fromkeys(alert_ids))
    out = {i: "new" for i in ids}
    with sql(db) as c:
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            for row in c.execute(f"SELECT alert_id, state FROM triage WHERE alert_id IN ({marks})", chunk):
                out[row["alert_id"]] = row["state"]
    return out


def _chunks(items: Sequence[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield list(items[i:i + n])


def triage_of(alert_id: str) -> Triage:
    with sql() as c:
        row = c.execute("SELECT * FROM triage WHERE alert_id = ?", (alert_id,)).fetchone()
    if row is None:
        return Triage(alert_id, "new", None, None, None)
    return Triage(alert_id, row["state"], row["assignee"], row["updated_at"], row["updated_by"])


def history(alert_id: str) -> list[HistoryEntry]:
    with sql() as c:
        rows = c.execute("SELECT * FROM triage_history WHERE alert_id = ? ORDER BY id", (alert_id,)).fetchall()
    return [HistoryEntry(r["ts"], r["actor"], r["action"], r["state"], r["note"], json.loads(r["detail"])) for r in rows]


def ids_in_state(states: Sequence[str], org: str | None) -> set[str]:
    marks = ",".join("?" * len(states))
    where, params = f"state IN ({marks})", list(states)
    if org is not None:
        where += " AND organization = ?"
        params.append(org)
    with sql() as c:
        return {r["alert_id"] for r in c.execute(f"SELECT alert_id FROM triage WHERE {where}", params)}


def suppressions(org: str | None, *, active_only: bool = False) -> list[Suppression]:
    where, params = [], []
    if org is not None:
        where.append("organization = ?")
        params.append(org)
    if active_only:
        where.append("expires_at > ?")
        params.append(_iso(now()))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with sql() as c:
        rows = c.execute(f"SELECT * FROM suppressions {clause} ORDER BY id DESC", params).fetchall()
    return [Suppression(**{k: r[k] for k in r.keys()}) for r in rows]


# ---------------------------------------------------------------- actions


def act(alert: Event, action: str, *, note: str = "", assignee: str | None = None,
        days: int | None = None) -> Triage:
    """Applies one triage action as the signed-in user (permission already checked); audits it."""
    user = current_user()
    assert user is not None
    if action not in TRANSITIONS:
        raise BadRequest(_("triage.bad_action", action=action[:40], choices=", ".join(ACTIONS)))
    if not can("triage.write" if action != "comment" else "triage.comment"):
        raise Forbidden(_("error.403.message"))
    note = note.strip()[:MAX_NOTE]
    if action == "comment" and not note:
        raise BadRequest(_("triage.note_required"))
    alert_id = alert.event.id or ""
    org = (alert.organization.id if alert.organization else None) or ""
    current = triage_of(alert_id)
    allowed, target = TRANSITIONS[action]
    if current.state not in allowed:
        raise Conflict(_("triage.not_allowed", action=_("triage.action." + action), state=_("triage.state." + current.state)))
    detail: dict[str, Any] = {}
    new_assignee = current.assignee
    if action == "assign":
        who = get_db().user((assignee or "").strip()) if (assignee or "").strip() else None
        if who is None or who.disabled or who.role not in ASSIGNABLE_ROLES:
            raise BadRequest(_("triage.bad_assignee"))
        new_assignee = who.username
        detail["assignee"] = who.username
    if action == "suppress":
        detail["suppression"] = _suppress(alert, org, days, note, user.username)
    state = target or current.state
    stamp = now().isoformat(timespec="milliseconds")
    with sql() as c:
        c.execute("INSERT INTO triage (alert_id, organization, state, assignee, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT(alert_id) DO UPDATE SET state=excluded.state, assignee=excluded.assignee, "
                  "updated_at=excluded.updated_at, updated_by=excluded.updated_by",
                  (alert_id, org, state, new_assignee, stamp, user.username))
        c.execute("INSERT INTO triage_history (alert_id, organization, ts, actor, action, state, note, detail) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (alert_id, org, stamp, user.username, action, state, note,
                   json.dumps(detail, ensure_ascii=False, sort_keys=True)))
    audit(f"triage.{action}", alert_id, detail={"organization": org, "from": current.state, "to": state, **detail})
    return triage_of(alert_id)


def _suppress(alert: Event, org: str, days: int | None, note: str, actor: str) -> int:
    if alert.rule is None or not alert.rule.id:
        raise BadRequest(_("triage.suppress_no_rule"))
    days = 30 if days is None else days
    if not 1 <= days <= MAX_SUPPRESS_DAYS:
        raise BadRequest(_("triage.bad_days", hi=MAX_SUPPRESS_DAYS))
    t = now()
    with sql() as c:
        cur = c.execute("INSERT INTO suppressions (organization, rule_id, source_ip, destination_ip, expires_at, created_at, "
                        "created_by, alert_id, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (org, alert.rule.id, alert.source.ip if alert.source and alert.source.ip else "",
                         alert.destination.ip if alert.destination and alert.destination.ip else "",
                         _iso(t + dt.timedelta(days=days)), _iso(t), actor, alert.event.id or "", note))
    return int(cur.lastrowid or 0)


# ---------------------------------------------------------------- the alert list's filters


def _arg(name: str) -> str:
    return (request.args.get(name) or "").strip()


def list_filters() -> tuple[str, str]:
    """(?triage=, ?suppressed=) checked: a state (or "open"/"closed"), and "", "hide" or "only"."""
    state, sup = _arg("triage"), _arg("suppressed")
    if state and state not in (*STATES, "open", "closed"):
        raise BadRequest(_("error.arg_choice", name="triage", value=state, choices=", ".join((*STATES, "open", "closed"))))
    if sup not in ("", "hide", "only"):
        raise BadRequest(_("error.arg_choice", name="suppressed", value=sup, choices="hide, only"))
    return state, sup


def suppressed_ids(q: Query) -> set[str]:
    """Ids of the alerts within q's tenancy that an active suppression covers."""
    store, out = get_store(), set()
    for s in suppressions(q.organization, active_only=True):
        filters: dict[str, Any] = {"rule.id": s.rule_id}
        if s.source_ip:
            filters["source.ip"] = s.source_ip
        if s.destination_ip:
            filters["destination.ip"] = s.destination_ip
        page = store.search("alerts", Query(filters=filters, organization=s.organization, size=5000))
        out |= {a.event.id for a in page.items if a.event.id}
    return out


def alert_page(q: Query) -> Page[Event]:
    """The alert list's page: the store's query narrowed by the triage state and suppression filters."""
    state, sup = list_filters()
    store = get_store()
    include: set[str] | None = None
    exclude: set[str] = set()
    if state == "new":  # nobody has touched it: every triaged id is left out
        exclude |= ids_in_state(STATES[1:], q.organization)
    elif state == "open":
        exclude |= ids_in_state(CLOSED, q.organization)
    elif state:
        include = ids_in_state(CLOSED if state == "closed" else (state,), q.organization)
    if sup:
        covered = suppressed_ids(q)
        if sup == "only":
            include = covered if include is None else include & covered
        else:
            exclude |= covered
    if include is None and not exclude:
        return store.search("alerts", q)
    if include is not None:
        include -= exclude
        if not include:
            return Page([], 0, q.page, q.size)
        if len(include) <= 5000:
            return store.search("alerts", replace(q, filters={**q.filters, "event.id": sorted(include)}))
    keep: Callable[[Event], bool] = ((lambda a: a.event.id in include and a.event.id not in exclude) if include is not None
                                     else (lambda a: a.event.id not in exclude))
    matched = list(itertools.islice(_scan(store, q, keep), SCAN_LIMIT))
    start = (q.page - 1) * q.size
    return Page(matched[start:start + q.size], len(matched), q.page, q.size)


def _scan(store: Store, q: Query, keep: Callable[[Event], bool]) -> Iterator[Event]:
    page = 1
    while True:
        batch = store.search("alerts", replace(q, page=page, size=SCAN_PAGE))
        yield from (a for a in batch.items if keep(a))
        # a total counted only up to Query.total_limit is a lower bound: go on while more follow
        if page * SCAN_PAGE >= (min(batch.total, SCAN_LIMIT) if batch.exact or not batch.more else SCAN_LIMIT) or not batch.items:
            return
        page += 1


def _row_triage(alerts: Sequence[Event]) -> dict[str, dict[str, Any]]:
    """For a page of alerts: id -> {state, suppressed} (one query each, not one per row)."""
    states = triage_states([a.event.id for a in alerts if a.event.id])
    orgs = {(a.organization.id if a.organization else "") or "" for a in alerts}
    sups = [s for s in suppressions(None, active_only=True) if s.organization in orgs]
    return {a.event.id or "": {"state": states.get(a.event.id or "", "new"), "suppressed": any(s.matches(a) for s in sups)}
            for a in alerts}


# ---------------------------------------------------------------- pages and API

bp = Blueprint("triage", __name__)


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"triage_rows": _row_triage, "TRIAGE_STATES": STATES}


def _form_days() -> int | None:
    raw = (request.values.get("days") or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(_("triage.bad_days", hi=MAX_SUPPRESS_DAYS)) from None


@bp.post("/alerts/<path:alert_id>/triage")
@requires("triage.comment")
def post(alert_id: str) -> ResponseReturnValue:
    alert = data.alert_or_404(alert_id)  # tenancy first: a foreign id is a 404 whatever the action
    act(alert, request.form.get("action", ""), note=request.form.get("note", ""),
        assignee=request.form.get("assignee"), days=_form_days())
    flash(_("triage.done"))
    return redirect(url_for("alerts.detail", alert_id=alert_id) + "#triage", code=303)


@bp.get("/alerts/suppressions")
@requires("data.read")
def suppression_list() -> str:
    return render_template("triage/suppressions.html", rows=suppressions(organization()), now=_iso(now()))


def panel(alert: Event) -> dict[str, Any]:
    """What the alert page's triage panel shows."""
    assignees = [u.username for u in get_db().users() if u.role in ASSIGNABLE_ROLES and not u.disabled] \
        if can("triage.write") else []
    t = triage_of(alert.event.id or "")
    return {"triage": t, "history": history(alert.event.id or ""), "assignees": assignees,
            "actions": [a for a, (src, _t) in TRANSITIONS.items() if t.state in src and a != "comment"]}


@bp.app_template_global("triage_panel")
def _panel_global(alert: Event) -> dict[str, Any]:
    return panel(alert)


@bp.get("/api/v1/alerts/<path:alert_id>/triage")
@requires("data.read")
def api_get(alert_id: str) -> ResponseReturnValue:
    alert = data.alert_or_404(alert_id)
    return jsonify(_api_body(alert))


@bp.post("/api/v1/alerts/<path:alert_id>/triage")
@requires("triage.comment")
def api_post(alert_id: str) -> ResponseReturnValue:
    alert = data.alert_or_404(alert_id)
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        raise BadRequest(_("triage.api_body"))
    note, assignee, days = body.get("note", ""), body.get("assignee"), body.get("days")
    if not isinstance(note, str) or (assignee is not None and not isinstance(assignee, str)) \
            or (days is not None and (not isinstance(days, int) or isinstance(days, bool))):
        raise BadRequest(_("triage.api_body"))
    act(alert, body["action"], note=note, assignee=assignee, days=days)
    return jsonify(_api_body(alert))


def _api_body(alert: Event) -> dict[str, Any]:
    t = triage_of(alert.event.id or "")
    return {**t.to_dict(), "history": [h.to_dict() for h in history(t.alert_id)]}


# ---------------------------------------------------------------- live stream (server-sent events)


def _cursor(raw: str) -> tuple[dt.datetime, str] | None:
    ts, sep, alert_id = raw.partition("|")
    try:
        t = dt.datetime.fromisoformat(ts)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)), alert_id if sep else ""


def _row(a: Event) -> dict[str, Any]:
    return {
        "id": a.event.id, "url": url_for("alerts.detail", alert_id=a.event.id or ""),
        "time": fmt_time(a.timestamp), "level": level(a.event.severity), "severity": _("severity." + level(a.event.severity)),
        "rule": (a.rule.name if a.rule else "") or (a.event.id or ""), "message": a.message or "",
        "source": f"{a.source.ip or ''}:{a.source.port}" if a.source and a.source.port is not None else (a.source.ip or "") if a.source else "",
        "destination": (f"{a.destination.ip or ''}:{a.destination.port}" if a.destination and a.destination.port is not None
                        else (a.destination.ip or "") if a.destination else ""),
        "protocol": a.network.protocol if a.network and a.network.protocol else "",
        "techniques": list(a.threat.technique.id) if a.threat and a.threat.technique.id else [],
    }


@bp.get("/alerts/stream")
@requires("data.read")
def stream() -> ResponseReturnValue:
    """New alerts for this user's tenancy as server-sent events; the connection ends after a while (the
    browser's EventSource reconnects with Last-Event-ID, so nothing is missed)."""
    org = organization()
    config = current_app.config
    lifetime = float(config.get("ALERT_STREAM_SECONDS") or (1.0 if current_app.testing else 30.0))
    poll = float(config.get("ALERT_STREAM_POLL") or 2.0)
    store = get_store()
    cursor = _cursor(request.headers.get("Last-Event-ID") or request.args.get("since") or "")
    if cursor is None:
        newest = store.search("alerts", Query(organization=org, size=1)).items
        cursor = (newest[0].timestamp, newest[0].event.id or "") if newest else (dt.datetime.fromtimestamp(0, dt.timezone.utc), "")

    def events() -> Iterator[str]:
        last_ts, last_id = cursor
        seen = {last_id}
        deadline = time.monotonic() + lifetime
        yield "retry: 3000\n\n"
        while True:
            page = store.search("alerts", Query(organization=org, start=last_ts, sort="@timestamp", descending=False, size=200))
            for a in page.items:
                if a.timestamp == last_ts and (a.event.id or "") in seen:
                    continue
                if a.timestamp > last_ts:
                    last_ts, seen = a.timestamp, set()
                seen.add(a.event.id or "")
                payload = json.dumps(_row(a), ensure_ascii=False)
                yield f"id: {a.timestamp.isoformat()}|{a.event.id}\nevent: alert\ndata: {payload}\n\n"
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(poll, left))

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def api_state_schema() -> Mapping[str, Any]:  # for openapi.py
    return {"type": "string", "enum": list(STATES)}


__all__ = ["ACTIONS", "STATES", "TRANSITIONS", "act", "alert_page", "bp", "history", "suppressions", "triage_of",
           "triage_states"]
