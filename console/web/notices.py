"""通报应急: notices a regulator issues to an enterprise about alerts (and findings), and the enterprise's answers.

State machine (anything else answers 409):

    issued ─acknowledge→ acknowledged ─answer→ answered ─close→ closed
                                                 answered ─return→ returned ─answer→ answered …

The regulator (or an admin) issues, closes (verified) and returns (with a note); the enterprise's own
users acknowledge and answer with remediation text and evidence files (pdf/png/jpg/txt/pcap, at most
10 MiB each, stored in the console database with their SHA-256, served back only to the parties).
A notice past its deadline and not closed is overdue. Enterprise users only ever see their own
enterprise's notices: every read goes through `scope()`, which is `auth.organization()`. Every
transition is audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, Conflict, Forbidden, RequestEntityTooLarge

from pipeline.store import Query

from .accounts import now
from .auth import NO_ORGANIZATION, audit, can, current_user, get_db, organization, requires
from .formatting import zone
from .i18n import _
from .store import get_store
from .triage import sql

STATES = ("issued", "acknowledged", "answered", "returned", "closed")
OPEN_STATES = STATES[:-1]
# action -> (states it may start from, state it leads to, permission)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "acknowledge": (("issued",), "acknowledged", "notices.answer"),
    "answer": (("acknowledged", "returned"), "answered", "notices.answer"),
    "close": (("answered",), "closed", "notices.issue"),
    "return": (("answered",), "returned", "notices.issue"),
}
SEVERITIES = ("low", "medium", "high", "critical")
MAX_FILE = 10 * 1024 * 1024
MAX_FILES = 10
MAX_TITLE, MAX_TEXT, MAX_IDS = 200, 20_000, 100
# extension -> (content type, does the content look like it)
FILE_TYPES: dict[str, str] = {"pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                              "txt": "text/plain; charset=utf-8", "pcap": "application/vnd.tcpdump.pcap",
                              "pcapng": "application/vnd.tcpdump.pcap"}
PCAP_MAGIC = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY,
    organization TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    deadline TEXT NOT NULL,
    state TEXT NOT NULL,
    alert_ids TEXT NOT NULL DEFAULT '[]',
    finding_ids TEXT NOT NULL DEFAULT '[]',
    remediation TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_org ON notices (organization, state);
CREATE TABLE IF NOT EXISTS notice_history (
    id INTEGER PRIMARY KEY,
    notice_id INTEGER NOT NULL REFERENCES notices(id),
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS notice_files (
    id INTEGER PRIMARY KEY,
    notice_id INTEGER NOT NULL REFERENCES notices(id),
    sha256 TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    uploaded_by TEXT NOT NULL,
    ts TEXT NOT NULL
);
"""


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NoticeFile:
    id: int
    sha256: str
    filename: str
    content_type: str
    size: int
    uploaded_by: str
    ts: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "sha256": self.sha256, "filename": self.filename, "content_type": self.content_type,
                "size": self.size, "uploaded_by": self.uploaded_by, "@timestamp": self.ts}


@dataclass(frozen=True)
class Notice:
    id: int
    organization: str
    title: str
    body: str
    severity: str
    deadline: str
    state: str
    alert_ids: list[str]
    finding_ids: list[str]
    remediation: str
    created_by: str
    created_at: str
    updated_at: str
    history: list[dict[str, Any]] = field(default_factory=list)
    files: list[NoticeFile] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        return self.state != "closed" and self.deadline < _iso(now())

    @property
    def deadline_time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.deadline)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        out = {"id": self.id, "organization": self.organization, "title": self.title, "body": self.body,
               "severity": self.severity, "deadline": self.deadline, "state": self.state, "overdue": self.overdue,
               "alert_ids": self.alert_ids, "finding_ids": self.finding_ids, "remediation": self.remediation,
               "created_by": self.created_by, "created_at": self.created_at, "updated_at": self.updated_at}
        if full:
            out["history"] = self.history
            out["files"] = [f.to_dict() for f in self.files]
        return out


def _notice(row: Any) -> Notice:
    return Notice(row["id"], row["organization"], row["title"], row["body"], row["severity"], row["deadline"],
                  row["state"], json.loads(row["alert_ids"]), json.loads(row["finding_ids"]), row["remediation"],
                  row["created_by"], row["created_at"], row["updated_at"])


# ---------------------------------------------------------------- reads (always scoped)


def scope() -> str | None:
    """The enterprise this user's notice reads are limited to (None: all) — the same as the store's."""
    return organization()


def notices(org: str | None, *, state: str | None = None, overdue: bool = False) -> list[Notice]:
    where, params = [], []
    if org is not None:
        where.append("organization = ?")
        params.append(org)
    if state == "open":
        where.append("state != 'closed'")
    elif state:
        where.append("state = ?")
        params.append(state)
    if overdue:
        where.append("state != 'closed' AND deadline < ?")
        params.append(_iso(now()))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with sql(schema=_SCHEMA) as c:
        rows = c.execute(f"SELECT * FROM notices {clause} ORDER BY (state = 'closed'), deadline, id DESC", params).fetchall()
    return [_notice(r) for r in rows]


def counts(org: str | None) -> dict[str, int]:
    """Open and overdue notices (for the dashboard)."""
    all_open = notices(org, state="open")
    return {"open": len(all_open), "overdue": sum(1 for n in all_open if n.overdue)}


def notice_or_404(notice_id: str) -> Notice:
    try:
        nid = int(notice_id)
    except ValueError:
        abort(404)
    org = scope()
    with sql(schema=_SCHEMA) as c:
        row = c.execute("SELECT * FROM notices WHERE id = ?", (nid,)).fetchone()
        if row is None or org == NO_ORGANIZATION or (org is not None and row["organization"] != org):
            abort(404)
        hist = [dict(ts=r["ts"], actor=r["actor"], action=r["action"], state=r["state"], note=r["note"])
                for r in c.execute("SELECT * FROM notice_history WHERE notice_id = ? ORDER BY id", (nid,))]
        files = [NoticeFile(r["id"], r["sha256"], r["filename"], r["content_type"], r["size"], r["uploaded_by"], r["ts"])
                 for r in c.execute("SELECT id, sha256, filename, content_type, size, uploaded_by, ts FROM notice_files "
                                    "WHERE notice_id = ? ORDER BY id", (nid,))]
    n = _notice(row)
    return Notice(**{**n.__dict__, "history": hist, "files": files})


# ---------------------------------------------------------------- writes


def _text(value: Any, name: str, limit: int, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(_("notices.bad_field", name=name))
    value = value.strip()
    if required and not value:
        raise BadRequest(_("notices.required", name=name))
    if len(value) > limit:
        raise BadRequest(_("notices.too_long", name=name, n=limit))
    return value


def _ids(value: Any, name: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value):
        raise BadRequest(_("notices.bad_field", name=name))
    out = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if len(out) > MAX_IDS:
        raise BadRequest(_("notices.too_many", name=name, n=MAX_IDS))
    return out


def _deadline(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(_("notices.required", name="deadline"))
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(_("error.arg_time", name="deadline", value=value[:40])) from None
    return t if t.tzinfo else t.replace(tzinfo=zone())


def issue(fields: dict[str, Any]) -> Notice:
    """A new notice from the regulator's form or JSON body; the alerts must be the enterprise's own."""
    user = current_user()
    assert user is not None
    ent_id = _text(fields.get("organization"), "organization", 200)
    org = scope()
    if get_db().enterprise(ent_id) is None or (org is not None and org != ent_id):
        raise BadRequest(_("notices.bad_enterprise", id=ent_id[:60]))
    title = _text(fields.get("title"), "title", MAX_TITLE)
    body = _text(fields.get("body"), "body", MAX_TEXT, required=False)
    severity = fields.get("severity") or "medium"
    if severity not in SEVERITIES:
        raise BadRequest(_("error.arg_choice", name="severity", value=str(severity)[:20], choices=", ".join(SEVERITIES)))
    deadline = _deadline(fields.get("deadline"))
    alert_ids = _ids(fields.get("alert_ids"), "alert_ids")
    finding_ids = _ids(fields.get("finding_ids"), "finding_ids")
    if not alert_ids:
        raise BadRequest(_("notices.required", name="alert_ids"))
    found = get_store().search("alerts", Query(filters={"event.id": alert_ids}, organization=ent_id, size=len(alert_ids)))
    missing = sorted(set(alert_ids) - {a.event.id for a in found.items})
    if missing:
        raise BadRequest(_("notices.bad_alerts", ids=", ".join(missing[:5])))
    stamp = now().isoformat(timespec="seconds")
    with sql(schema=_SCHEMA) as c:
        cur = c.execute("INSERT INTO notices (organization, title, body, severity, deadline, state, alert_ids, finding_ids, "
                        "created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'issued', ?, ?, ?, ?, ?)",
                        (ent_id, title, body, severity, _iso(deadline), json.dumps(alert_ids), json.dumps(finding_ids),
                         user.username, stamp, stamp))
        nid = int(cur.lastrowid or 0)
        c.execute("INSERT INTO notice_history (notice_id, ts, actor, action, state, note) VALUES (?, ?, ?, 'issue', 'issued', '')",
                  (nid, stamp, user.username))
    audit("notice.issue", f"notice:{nid}", detail={"organization": ent_id, "alerts": alert_ids, "severity": severity})
    return notice_or_404(str(nid))


def _sniff(ext: str, head: bytes) -> bool:
    if ext == "pdf":
        return head.startswith(b"%PDF-")
    if ext == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in ("jpg", "jpeg"):
        return head.startswith(b"\xff\xd8\xff")
    if ext in ("pcap", "pcapng"):
        return head[:4] in PCAP_MAGIC
    if ext == "txt":
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return b"\x00" not in head
    return False


def _read_file(f: FileStorage) -> tuple[str, str, bytes]:
    name = (f.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:200] or "file"
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in FILE_TYPES:
        raise BadRequest(_("notices.bad_type", name=name, types="pdf, png, jpg, txt, pcap"))
    blob = f.stream.read(MAX_FILE + 1)
    if len(blob) > MAX_FILE:
        raise RequestEntityTooLarge(_("notices.too_big", name=name, mib=MAX_FILE // (1024 * 1024)))
    if not blob or not _sniff(ext, blob if ext == "txt" else blob[:16]):
        raise BadRequest(_("notices.bad_content", name=name))
    return name, FILE_TYPES[ext], blob


def transition(n: Notice, action: str, *, note: str = "", remediation: str = "",
               files: Sequence[FileStorage] = ()) -> Notice:
    user = current_user()
    assert user is not None
    if action not in TRANSITIONS:
        raise BadRequest(_("error.arg_choice", name="action", value=action[:40], choices=", ".join(TRANSITIONS)))
    sources, target, permission = TRANSITIONS[action]
    if not can(permission):
        raise Forbidden(_("error.403.message"))
    if user.role == "enterprise" and user.organization != n.organization:  # scope() already 404s; belt and braces
        abort(404)
    if n.state not in sources:
        raise Conflict(_("notices.not_allowed", action=_("notices.action." + action), state=_("notices.state." + n.state)))
    note = _text(note, "note", MAX_TEXT, required=action == "return")
    if action == "answer":
        remediation = _text(remediation, "remediation", MAX_TEXT)
    uploads = [f for f in files if f and f.filename]
    if len(uploads) > MAX_FILES:
        raise BadRequest(_("notices.too_many", name="files", n=MAX_FILES))
    if uploads and action != "answer":
        raise BadRequest(_("notices.files_with_answer"))
    try:
        read = [_read_file(f) for f in uploads]
    finally:  # large uploads are spooled to temporary files: close them whether or not they were accepted
        for f in uploads:
            f.close()
    stamp = now().isoformat(timespec="seconds")
    with sql(schema=_SCHEMA) as c:
        cur = c.execute("UPDATE notices SET state = ?, updated_at = ?" + (", remediation = ?" if action == "answer" else "")
                        + " WHERE id = ? AND state = ?",
                        (target, stamp, *((remediation,) if action == "answer" else ()), n.id, n.state))
        if cur.rowcount != 1:  # someone else moved it meanwhile
            raise Conflict(_("notices.not_allowed", action=_("notices.action." + action), state="?"))
        c.execute("INSERT INTO notice_history (notice_id, ts, actor, action, state, note) VALUES (?, ?, ?, ?, ?, ?)",
                  (n.id, stamp, user.username, action, target, note))
        shas = []
        for name, ctype, blob in read:
            sha = hashlib.sha256(blob).hexdigest()
            shas.append(sha)
            c.execute("INSERT INTO notice_files (notice_id, sha256, filename, content_type, size, data, uploaded_by, ts) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (n.id, sha, name, ctype, len(blob), blob, user.username, stamp))
    audit(f"notice.{action}", f"notice:{n.id}", detail={"organization": n.organization, "from": n.state, "to": target,
                                                        **({"files": shas} if shas else {})})
    return notice_or_404(str(n.id))


# ---------------------------------------------------------------- pages

bp = Blueprint("notices", __name__, url_prefix="/notices")


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"NOTICE_STATES": STATES, "notices_for": notices_for}


def notices_for(alert_id: str) -> list[Notice]:
    """The notices (within this user's reach) that name an alert, for its page."""
    if not can("notices.read"):
        return []
    return [n for n in notices(scope()) if alert_id in n.alert_ids]


def _list_args() -> tuple[str, bool]:
    state = (request.args.get("state") or "").strip()
    if state and state not in (*STATES, "open"):
        raise BadRequest(_("error.arg_choice", name="state", value=state[:20], choices=", ".join((*STATES, "open"))))
    return state, (request.args.get("overdue") or "") in ("1", "true", "yes", "on")


@bp.get("/")
@requires("notices.read")
def index() -> str:
    state, overdue = _list_args()
    rows = notices(scope(), state=state or None, overdue=overdue)
    names = {e.id: e.name for e in get_db().enterprises()}
    return render_template("notices/list.html", rows=rows, state=state, overdue=overdue, names=names,
                           form={"org": request.args.get("org", "")})


@bp.route("/new", methods=["GET", "POST"])
@requires("notices.issue")
def new() -> ResponseReturnValue:
    values = {k: request.values.get(k, "") for k in ("organization", "title", "body", "severity", "deadline",
                                                      "alert_ids", "finding_ids")}
    if request.method == "GET":
        values["alert_ids"] = values["alert_ids"] or " ".join(request.args.getlist("alert"))
        if not values["deadline"]:
            values["deadline"] = (dt.datetime.now(zone()) + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
        return render_template("notices/new.html", values=values, enterprises=get_db().enterprises(), error=None)
    try:
        n = issue(values)
    except BadRequest as e:
        return render_template("notices/new.html", values=values, enterprises=get_db().enterprises(),
                               error=e.description), 400
    flash(_("notices.issued"))
    return redirect(url_for("notices.detail", notice_id=n.id), code=303)


@bp.get("/<notice_id>")
@requires("notices.read")
def detail(notice_id: str) -> str:
    n = notice_or_404(notice_id)
    ent = get_db().enterprise(n.organization)
    actions = [a for a, (src, _t, perm) in TRANSITIONS.items() if n.state in src and can(perm)]
    return render_template("notices/detail.html", n=n, enterprise=ent, actions=actions,
                           may_download=_may_download(n))


@bp.post("/<notice_id>")
@requires("notices.read")
def act(notice_id: str) -> ResponseReturnValue:
    n = notice_or_404(notice_id)
    transition(n, request.form.get("action", ""), note=request.form.get("note", ""), remediation=request.form.get("remediation", ""),
               files=request.files.getlist("files"))
    flash(_("notices.done"))
    return redirect(url_for("notices.detail", notice_id=n.id), code=303)


def _may_download(n: Notice) -> bool:
    """The parties: the enterprise's own users, and the regulator side (regulators, admins)."""
    user = current_user()
    return user is not None and (user.role in ("regulator", "admin") or user.organization == n.organization)


@bp.get("/<notice_id>/files/<file_id>")
@requires("notices.read")
def file(notice_id: str, file_id: str) -> ResponseReturnValue:
    n = notice_or_404(notice_id)
    if not _may_download(n):
        abort(404)
    try:
        fid = int(file_id)
    except ValueError:
        abort(404)
    with sql(schema=_SCHEMA) as c:
        row = c.execute("SELECT * FROM notice_files WHERE id = ? AND notice_id = ?", (fid, n.id)).fetchone()
    if row is None:
        abort(404)
    audit("notice.file", f"notice:{n.id}", detail={"sha256": row["sha256"], "organization": n.organization})
    resp = Response(bytes(row["data"]), content_type=row["content_type"])
    resp.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(row['filename'])}"
    resp.headers["X-Content-SHA256"] = row["sha256"]
    resp.headers["Content-Security-Policy"] = "sandbox"
    return resp


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


# ---------------------------------------------------------------- JSON API (documented in openapi.py)

api = Blueprint("notices_api", __name__, url_prefix="/api/v1/notices")


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        raise BadRequest(_("error.json_body"))
    return body


@api.get("")
@requires("notices.read")
def api_list() -> ResponseReturnValue:
    state, overdue = _list_args()
    rows = notices(scope(), state=state or None, overdue=overdue)
    return jsonify({"items": [n.to_dict() for n in rows], "total": len(rows)})


@api.post("")
@requires("notices.issue")
def api_issue() -> ResponseReturnValue:
    n = issue(_json_body())
    return jsonify(n.to_dict(full=True)), 201


@api.get("/<notice_id>")
@requires("notices.read")
def api_get(notice_id: str) -> ResponseReturnValue:
    return jsonify(notice_or_404(notice_id).to_dict(full=True))


@api.post("/<notice_id>/actions")
@requires("notices.read")
def api_act(notice_id: str) -> ResponseReturnValue:
    n = notice_or_404(notice_id)
    body = _json_body()
    action = body.get("action")
    if not isinstance(action, str):
        raise BadRequest(_("notices.required", name="action"))
    n = transition(n, action, note=body.get("note") or "", remediation=body.get("remediation") or "")
    return jsonify(n.to_dict(full=True))


__all__ = ["STATES", "TRANSITIONS", "api", "bp", "counts", "issue", "notices", "transition"]
