"""检查评估: an enterprise's self-assessment — pre-filled from its stored traffic, answered, submitted, reported.

Enterprise users answer for their own enterprise (one draft at a time; submitting keeps it as a
record); regulators, analysts and admins read each enterprise's latest submitted assessment. The
unmet items of the latest submission become `Gap`s in the enterprise's risk score. Assessments live
in the console database file (table `assessments`), beside users and enterprises.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from detection.risk import Gap

from . import assessment_items as qa
from . import inventory
from .accounts import Enterprise
from .auth import audit, console_db_path, current_user, get_db, requires
from .i18n import _
from .params import organization
from .store import get_store

bp = Blueprint("assessment", __name__, url_prefix="/assessment")
MAX_NOTE = 2000
INSECURE_EVENT_PROTOCOLS = ("modbus", "s7comm", "iec104", "enip", "cip", "bacnet", "fins")
EXPOSURES_SHOWN = ("opcua_security_none", "mqtt_anonymous", "dnp3_no_sa", "mms_no_auth")

SCHEMA = """
CREATE TABLE IF NOT EXISTS assessments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'submitted')),
    answers TEXT NOT NULL,          -- {item: {answer, note}}
    prefill TEXT NOT NULL,          -- {item: {answer, evidence}} as the traffic showed it when saved
    result TEXT,                    -- assessment_items.Result on submission
    author TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    submitted TEXT
);
CREATE INDEX IF NOT EXISTS assessments_org ON assessments (organization, status, id);
"""
_ready: set[str] = set()
_ready_lock = threading.Lock()


@contextmanager
def _db(app: Flask | None = None) -> Iterator[sqlite3.Connection]:
    path = console_db_path(app or current_app._get_current_object())  # type: ignore[attr-defined]
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        with _ready_lock:
            if path not in _ready:
                conn.executescript(SCHEMA)
                _ready.add(path)
        with conn:
            yield conn
    finally:
        conn.close()


@dataclass
class Assessment:
    id: int
    organization: str
    status: str
    answers: dict[str, dict[str, Any]]
    prefill: dict[str, dict[str, Any]]
    result: dict[str, Any] | None
    author: str
    created: str
    updated: str
    submitted: str | None


def _row(r: sqlite3.Row | None) -> Assessment | None:
    if r is None:
        return None
    return Assessment(r["id"], r["organization"], r["status"], json.loads(r["answers"]), json.loads(r["prefill"]),
                      json.loads(r["result"]) if r["result"] else None, r["author"], r["created"], r["updated"], r["submitted"])


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def draft_of(org: str) -> Assessment | None:
    with _db() as c:
        return _row(c.execute("SELECT * FROM assessments WHERE organization = ? AND status = 'draft' ORDER BY id DESC LIMIT 1",
                              (org,)).fetchone())


def latest_submitted(org: str) -> Assessment | None:
    with _db() as c:
        return _row(c.execute("SELECT * FROM assessments WHERE organization = ? AND status = 'submitted' ORDER BY id DESC LIMIT 1",
                              (org,)).fetchone())


def latest_gaps(orgs: Sequence[str]) -> dict[str, list[Gap]]:
    """The unmet items of each enterprise's latest submitted self-assessment (risk_report's `gaps`)."""
    out: dict[str, list[Gap]] = {}
    for org in orgs:
        a = latest_submitted(org)
        if a is not None and a.result:
            out[org] = [Gap(g["id"], float(g["weight"]), g.get("title_en", ""), g.get("title_zh", "")) for g in a.result["gaps"]]
    return out


def save(org: str, answers: dict[str, dict[str, Any]], prefill: dict[str, dict[str, Any]], author: str,
         submit: bool = False) -> Assessment:
    """Updates the enterprise's draft (or starts one); `submit` scores it and makes it the latest submission."""
    now = _now()
    result = None
    if submit:
        traffic = [i for i, p in prefill.items() if p.get("answer") in ("no", "partly")]
        result = json.dumps(qa.score(answers, traffic).to_dict(), ensure_ascii=False)
    with _db() as c:
        row = c.execute("SELECT id FROM assessments WHERE organization = ? AND status = 'draft' ORDER BY id DESC LIMIT 1",
                        (org,)).fetchone()
        values = (json.dumps(answers, ensure_ascii=False), json.dumps(prefill, ensure_ascii=False), author, now)
        if row is None:
            cur = c.execute("INSERT INTO assessments (organization, status, answers, prefill, author, created, updated)"
                            " VALUES (?, 'draft', ?, ?, ?, ?, ?)", (org, *values[:3], now, now))
            aid = int(cur.lastrowid or 0)
        else:
            aid = int(row["id"])
            c.execute("UPDATE assessments SET answers = ?, prefill = ?, author = ?, updated = ? WHERE id = ?", (*values, aid))
        if submit:
            c.execute("UPDATE assessments SET status = 'submitted', result = ?, submitted = ? WHERE id = ?", (result, now, aid))
        got = _row(c.execute("SELECT * FROM assessments WHERE id = ?", (aid,)).fetchone())
    assert got is not None
    return got


# ---------------------------------------------------------------- what the traffic says


def facts() -> qa.Facts:
    """Gathers the pre-fill facts for the (single) enterprise in this user's tenancy."""
    f = qa.Facts(links={"assets": url_for("assets.index"), "map": url_for("inventory.commap"),
                        "findings": url_for("inventory.findings"), "alerts": url_for("alerts.index"),
                        "writes": url_for("alerts.index", technique="T0855"),
                        "downloads": url_for("alerts.index", technique="T0843")})
    if inventory.nothing():
        return f
    store = get_store()
    scope = inventory._q(size=0)
    assets = inventory.load_assets()
    f.assets = len(assets)
    f.identified = sum(1 for a in assets if a.vendor_key or a.model or a.vendor)
    f.events = store.search("events", scope).total
    counts = {str(p): n for p, n in store.count_by("events", "network.protocol", scope, top=100)}
    for p in INSECURE_EVENT_PROTOCOLS:
        if counts.get(p):
            first = store.search("events", inventory._q(filters={"network.protocol": p}, size=1, descending=False)).items
            sample = {}
            if first:
                e = first[0]
                sample = {"id": e.event.id, "file": e.evidence.file if e.evidence else None,
                          "frame": e.evidence.frame if e.evidence else None}
            f.insecure.append({"protocol": p, "events": counts[p], "sample": sample})
    for a in assets:
        for exp in a.exposures:
            if exp in EXPOSURES_SHOWN:
                f.exposures.setdefault(exp, []).append(a.ip)
    graph = inventory.commap_graph(assets)
    for e in graph["edges"]:
        for flag in e["flags"]:
            f.flagged_edges.setdefault(flag, []).append(e)
    for al in inventory.load_alerts():
        techniques = set(al.threat.technique.id or []) if al.threat and al.threat.technique else set()
        ref = {"id": al.event.id, "rule": al.rule.name if al.rule else "", "time": al.timestamp.isoformat()}
        if "T0843" in techniques or al.event.action == "program_download":
            f.program_downloads.append(ref)
        if "T0855" in techniques or (al.rule is not None and "unapproved" in (al.rule.name or "").lower()):
            f.unapproved_writes.append(ref)
        labels = al.labels or {}
        if (al.event.severity or 0) >= 73 and not (labels.get("triage") or labels.get("status")):
            f.untriaged += 1
    found = inventory.load_findings(assets)
    if found.problem is None:
        affected = [x for x in found.items if x.status == "affected"]
        f.findings = len(affected)
        f.vulnerable_assets = sorted({x.ip for x in affected})
    return f


def current_prefill() -> dict[str, dict[str, Any]]:
    return {k: v.to_dict() for k, v in qa.prefill(facts()).items()}


# ---------------------------------------------------------------- views


def _single_org() -> str | None:
    org = organization()
    return None if org is None or inventory.nothing() else org


def _enterprise(org: str) -> Enterprise:
    return get_db().enterprise(org) or Enterprise(org, org, "", "")


def _is_enterprise_user() -> bool:
    user = current_user()
    return user is not None and user.role == "enterprise"


def _grouped() -> list[tuple[qa.Area, list[qa.Item]]]:
    return [(a, [i for i in qa.ITEMS if i.area == a.id]) for a in qa.AREAS]


@bp.get("/")
@requires("data.read")
def index() -> str:
    org = _single_org()
    if org is None:  # a regulator's list: every enterprise's latest submission
        rows = [(e, latest_submitted(e.id)) for e in get_db().enterprises(only=None)] if not inventory.nothing() else []
        return render_template("assessment/list.html", rows=rows, form={"org": ""})
    prefill = current_prefill()
    draft = draft_of(org) if _is_enterprise_user() else None
    latest = latest_submitted(org)
    answers = draft.answers if draft else {}
    chosen = {i.id: (answers.get(i.id) or {}).get("answer") or (prefill.get(i.id) or {}).get("answer") or "" for i in qa.ITEMS}
    notes = {i.id: (answers.get(i.id) or {}).get("note", "") for i in qa.ITEMS}
    return render_template("assessment/form.html", enterprise=_enterprise(org), groups=_grouped(), prefill=prefill,
                           chosen=chosen, notes=notes, draft=draft, latest=latest, editable=_is_enterprise_user(),
                           items=qa.ITEMS, answers_choices=qa.ANSWERS, form={"org": (request.args.get("org") or "").strip()})


def _answers_from_form() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in qa.ITEMS:
        answer = (request.form.get(f"answer-{item.id}") or "").strip()
        note = (request.form.get(f"note-{item.id}") or "").strip()[:MAX_NOTE]
        if answer and answer not in qa.ANSWERS:
            abort(400, _("assessment.bad_answer", item=item.id))
        if answer or note:
            out[item.id] = {"answer": answer or None, "note": note}
    return out


@bp.post("/")
@requires("assessment.answer")
def submit() -> ResponseReturnValue:
    org = _single_org()
    if org is None:
        abort(403)
    submitting = request.form.get("action") == "submit"
    user = current_user()
    a = save(org, _answers_from_form(), current_prefill(), user.username if user else "-", submit=submitting)
    audit("assessment.submit" if submitting else "assessment.save", org, detail={"assessment": a.id})
    flash(_("assessment.submitted" if submitting else "assessment.saved"))
    return redirect(url_for("assessment.report") if submitting else url_for("assessment.index"), code=303)


@dataclass
class Report:
    enterprise: Enterprise
    assessment: Assessment | None
    draft: bool
    groups: list[tuple[qa.Area, list[qa.Item]]]
    generated: str

    @property
    def result(self) -> dict[str, Any]:
        if self.assessment is None:
            return qa.score({}).to_dict()
        if self.assessment.result:
            return self.assessment.result
        traffic = [i for i, p in self.assessment.prefill.items() if p.get("answer") in ("no", "partly")]
        return qa.score(self.assessment.answers, traffic).to_dict()


def report_data() -> Report | None:
    """The latest submission; an enterprise user without one sees its draft (marked as such)."""
    org = _single_org()
    if org is None:
        return None
    a = latest_submitted(org)
    draft = False
    if a is None and _is_enterprise_user():
        a = draft_of(org)
        draft = a is not None
    return Report(_enterprise(org), a, draft, _grouped(), _now())


@bp.get("/report")
@requires("data.read")
def report() -> str:
    return render_template("assessment/report.html", r=report_data(), items=qa.BY_ID, source=qa.SOURCE, source_en=qa.SOURCE_EN,
                           form={"org": (request.args.get("org") or "").strip()})


@bp.get("/report.pdf")
@requires("data.read")
def report_pdf() -> Response:
    from .assessment_pdf import render_pdf

    r = report_data()
    if r is None or r.assessment is None:
        abort(404)
    pdf = render_pdf(r)
    name = f"assessment-{r.enterprise.id}-{(r.assessment.submitted or r.assessment.updated)[:10]}.pdf"
    return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'})
