"""检查评估 captures: an auditor (admin, or an enterprise for itself) uploads a pcap/pcapng, it is
replayed for one enterprise in the background, and the page shows the progress and the alerts raised.

Uploads are kept by SHA-256 in UPLOAD_DIR (default: `uploads/` beside the console database), so the
same capture uploaded twice is stored once; the name the browser sent is only shown, never a path.
One worker thread per app replays one capture at a time from a bounded queue, through the same
decode → detection → store wiring as `qinling replay` (console.jobs.Wiring), so a capture replayed
here and on the command line give the same event and alert ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import queue
import re
import sqlite3
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (Blueprint, Flask, abort, current_app, flash, jsonify, redirect, render_template, request,
                   url_for)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, ServiceUnavailable

from pipeline.store import Query

from .accounts import ALL_ORGS_ROLES
from .auth import NO_ORGANIZATION, audit, console_db_path, current_user, get_db, organization, requires
from .i18n import _
from .store import get_store

log = logging.getLogger("qinling.console.captures")

bp = Blueprint("captures", __name__, url_prefix="/captures")
api = Blueprint("captures_api", __name__, url_prefix="/api/v1")

EXTENSION = "qinling.captures"
DEFAULTS: dict[str, Any] = {
    "MAX_UPLOAD_BYTES": 200 * 1024 * 1024,  # a larger capture answers 413
    "UPLOAD_DIR": None,  # None: uploads/ beside the console database
    "CAPTURE_PATHS": None,  # folders searched for bundled/CLI captures by name + hash; None: the repo's pcaps/
    "CAPTURE_QUEUE": 8,  # uploads waiting for the replay worker; one more answers 503
}
STATUSES = ("queued", "replaying", "done", "failed")
SHA_RE = re.compile(r"[0-9a-f]{64}")
# pcap (micro/nanosecond, either byte order) and pcapng magics -> file format
MAGICS = {b"\xa1\xb2\xc3\xd4": "pcap", b"\xd4\xc3\xb2\xa1": "pcap", b"\xa1\xb2\x3c\x4d": "pcap",
          b"\x4d\x3c\xb2\xa1": "pcap", b"\x0a\x0d\x0d\x0a": "pcapng"}
CHUNK = 1 << 20
IDLE_EXIT = 2.0  # seconds the worker thread waits for more work before it ends (a new upload starts another)
PROGRESS_EVERY = 0.25  # seconds between progress writes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    sha256 TEXT NOT NULL,
    organization TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    format TEXT NOT NULL,
    uploader TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    progress INTEGER NOT NULL DEFAULT 0,
    packets INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    alerts INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (sha256, organization)
);
CREATE INDEX IF NOT EXISTS captures_uploaded ON captures (uploaded_at);
"""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Capture:
    sha256: str
    organization: str
    name: str
    size: int
    format: str
    uploader: str
    uploaded_at: str
    status: str
    progress: int  # percent
    packets: int
    events: int
    alerts: int
    warnings: list[str]
    error: str
    started_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class CaptureDB:
    """The `captures` table, in the console database file. A connection per call: the worker thread
    writes progress while requests read, and nothing stays open when an app is dropped."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._tx() as c:
            c.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        """Nothing stays open between calls."""

    @staticmethod
    def _capture(row: sqlite3.Row) -> Capture:
        d = dict(row)
        d["warnings"] = json.loads(d["warnings"] or "[]")
        return Capture(**d)

    def get(self, sha256: str, organization: str | None) -> Capture | None:
        """The capture with this hash (for one enterprise, or the latest upload of any when None)."""
        sql, params = "SELECT * FROM captures WHERE sha256 = ?", [sha256]
        if organization is not None:
            sql += " AND organization = ?"
            params.append(organization)
        with self._tx() as c:
            row = c.execute(sql + " ORDER BY uploaded_at DESC LIMIT 1", params).fetchone()
        return self._capture(row) if row else None

    def list(self, organization: str | None, limit: int = 200) -> list[Capture]:
        sql, params = "SELECT * FROM captures", []  # type: str, list[Any]
        if organization is not None:
            sql += " WHERE organization = ?"
            params.append(organization)
        with self._tx() as c:
            rows = c.execute(sql + " ORDER BY uploaded_at DESC, rowid DESC LIMIT ?", [*params, limit]).fetchall()
        return [self._capture(r) for r in rows]

    def add(self, sha256: str, organization: str, name: str, size: int, fmt: str, uploader: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO captures (sha256, organization, name, size, format, uploader, uploaded_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)", (sha256, organization, name, size, fmt, uploader, _now()))

    def unfinished(self) -> list[Capture]:
        """Captures queued or replaying: after a restart, their replay is started again."""
        with self._tx() as c:
            rows = c.execute("SELECT * FROM captures WHERE status IN ('queued', 'replaying') ORDER BY uploaded_at").fetchall()
        return [self._capture(r) for r in rows]

    def update(self, sha256: str, organization: str, **fields: Any) -> None:
        if "warnings" in fields:
            fields["warnings"] = json.dumps(fields["warnings"], ensure_ascii=False)
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as c:
            c.execute(f"UPDATE captures SET {cols} WHERE sha256 = ? AND organization = ?",
                      [*fields.values(), sha256, organization])


# ---------------------------------------------------------------- the replay worker


@dataclass(frozen=True)
class Job:
    sha256: str
    organization: str
    path: Path
    uploader: str


class Worker:
    """One replay at a time per app, from a bounded queue; the thread ends when idle and restarts on demand."""

    def __init__(self, app: Flask, db: CaptureDB, maxsize: int) -> None:
        self.app, self.db = app, db
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=maxsize)
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def submit(self, job: Job) -> bool:
        with self.lock:
            try:
                self.queue.put_nowait(job)
            except queue.Full:
                return False
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="qinling-replay", daemon=True)
                self.thread.start()
        return True

    def wait(self, timeout: float = 60.0) -> bool:
        """True once every submitted job has finished (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        while True:
            try:
                job = self.queue.get(timeout=IDLE_EXIT)
            except queue.Empty:
                with self.lock:
                    if self.queue.empty():
                        self.thread = None
                        return
                continue
            try:
                self._replay(job)
            except BaseException:  # noqa: BLE001 - a worker that dies would leave every later upload queued
                log.exception("replay of %s for %s failed", job.sha256, job.organization)
            finally:
                self.queue.task_done()

    def _replay(self, job: Job) -> None:
        db = self.db
        db.update(job.sha256, job.organization, status="replaying", started_at=_now(), progress=0, error="",
                  warnings=[])
        last = [0.0]

        def on_progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY and total:
                last[0] = now
                db.update(job.sha256, job.organization, progress=min(99, int(done * 100 / total)))

        try:
            with self.app.app_context():
                result = replay_capture(job.path, job.organization, get_store(), on_progress)
        except Exception as e:  # noqa: BLE001 - shown on the capture's page
            log.exception("replay of %s failed", job.path)
            shown = _without_path(str(e), job.path) or type(e).__name__
            db.update(job.sha256, job.organization, status="failed", error=shown, finished_at=_now())
            get_db(self.app).audit(job.uploader, "capture.replay", job.sha256, outcome="failure",
                                   detail={"organization": job.organization, "error": shown[:500]})
            return
        db.update(job.sha256, job.organization, status="failed" if result.error else "done",
                  progress=100 if not result.error else last_progress(db, job), packets=result.packets,
                  events=result.events, alerts=result.alerts, warnings=result.warnings, error=result.error,
                  finished_at=_now())
        get_db(self.app).audit(job.uploader, "capture.replay", job.sha256,
                               outcome="failure" if result.error else "success",
                               detail={"organization": job.organization, "events": result.events,
                                       "alerts": result.alerts, "warnings": len(result.warnings)})


def last_progress(db: CaptureDB, job: Job) -> int:
    cap = db.get(job.sha256, job.organization)
    return cap.progress if cap else 0


@dataclass
class ReplayResult:
    packets: int = 0
    events: int = 0
    alerts: int = 0
    warnings: list[str] | None = None
    error: str = ""


def replay_capture(path: Path, org: str, store: Any, on_progress: Any) -> ReplayResult:
    """`qinling replay PATH` for organization ORG into the app's store, reporting progress (bytes read / size).

    The command line's own job (console.jobs.replay): a large capture is decoded in a process of its
    own (setting replay_decode_process). A capture that fails part-way still stores what it gave.
    """
    from console.jobs import replay
    from pipeline.settings import Settings

    summary = replay([path], Settings(organization_id=org), store=store, on_progress=on_progress)
    row = summary.files[0] if summary.files else {}
    error = row.get("error", "")
    prefix = f"{path}: "
    return ReplayResult(packets=row.get("packets", 0), events=row.get("events", 0), alerts=summary.alerts,
                        warnings=[(w[len(prefix):] if w.startswith(prefix) else w).replace(str(path), path.name)
                                  for w in summary.warnings if w != error],
                        error=_without_path(error, path) if error else "")


# ---------------------------------------------------------------- app wiring


class _State:
    def __init__(self, app: Flask) -> None:
        self.db = CaptureDB(console_db_path(app))
        self.worker = Worker(app, self.db, int(app.config["CAPTURE_QUEUE"]))
        self.interrupted = _recover(app, self)


def _recover(app: Flask, st: _State) -> dict[str, Any]:
    """After a stop: remove the partial files of uploads the stop cut off (they never became captures:
    a file is named by its hash only once it is complete and readable) and start again the replays
    the stop interrupted (writes are idempotent by event id). Returns what was removed, for the page."""
    started = app.extensions[EXTENSION]["started"]
    folder = upload_dir(app)
    sizes = []
    for p in folder.glob(".upload-*") if folder.is_dir() else ():
        try:
            if p.stat().st_mtime < started:  # this process's own uploads in progress are newer
                sizes.append(p.stat().st_size)
                p.unlink()
        except OSError:
            continue
    if sizes:
        log.warning("captures: removed %d upload(s) cut off by the last stop (%d bytes received); they were never stored as captures",
                    len(sizes), sum(sizes))
    for cap in st.db.unfinished():
        path = uploaded_path(app, cap.sha256)
        if path is None:
            st.db.update(cap.sha256, cap.organization, status="failed", error="capture file missing after a restart", finished_at=_now())
            continue
        st.db.update(cap.sha256, cap.organization, status="queued", progress=0)
        if st.worker.submit(Job(cap.sha256, cap.organization, path, cap.uploader)):
            log.warning("captures: replay of %s for %s interrupted by the last stop; started again", cap.sha256[:16], cap.organization)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    return {"count": len(sizes), "bytes": sum(sizes), "size": _mib(sum(sizes)), "restarted_at": when}


def init_app(app: Flask) -> None:
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # the multipart envelope around the file needs a little more
        app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_BYTES"]) + 64 * 1024
    app.extensions[EXTENSION] = {"lock": threading.Lock(), "state": None, "started": time.time()}
    app.request_class = _upload_request(app.request_class)


def _upload_request(base: type) -> type:
    """A request class whose capture uploads stream into the upload folder (`.upload-*.part`) rather
    than an anonymous temporary file: what a stop cuts off is left where the next start finds,
    removes and reports it (`_recover`)."""
    if getattr(base, "qinling_uploads", False):
        return base

    class UploadRequest(base):  # type: ignore[misc, valid-type]
        qinling_uploads = True

        def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                             filename: str | None = None, content_length: int | None = None) -> Any:
            if self.path.rstrip("/") in ("/captures", "/api/v1/captures"):
                folder = upload_dir(current_app)  # type: ignore[arg-type]
                folder.mkdir(parents=True, exist_ok=True)
                return tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", suffix=".part")
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)

    return UploadRequest


def state(app: Flask | None = None) -> _State:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    holder = app.extensions[EXTENSION]
    with holder["lock"]:
        if holder["state"] is None:
            holder["state"] = _State(app)
        st: _State = holder["state"]
        return st


def close(app: Flask, timeout: float = 30.0) -> None:
    """Waits for queued replays, then closes the captures table (tests; a server just exits)."""
    holder = app.extensions.get(EXTENSION)
    if not holder or holder["state"] is None:
        return
    holder["state"].worker.wait(timeout)
    holder["state"].db.close()
    holder["state"] = None


def upload_dir(app: Flask) -> Path:
    configured = app.config.get("UPLOAD_DIR")
    return Path(configured) if configured else Path(console_db_path(app)).resolve().parent / "uploads"


def uploaded_path(app: Flask, sha256: str) -> Path | None:
    if not SHA_RE.fullmatch(sha256 or ""):
        return None
    for ext in ("pcap", "pcapng"):
        p = upload_dir(app) / f"{sha256}.{ext}"
        if p.is_file():
            return p
    return None


# ---------------------------------------------------------------- tenancy


def scope() -> str | None:
    """The enterprise this user's capture and evidence reads are limited to (None: every one).

    Auditors read no live traffic pages, but 检查评估 is theirs: here they see every enterprise like the
    all-enterprise roles (narrowed by ?org=, bounded by a pinned console). Everyone else: auth.organization().
    """
    user = current_user()
    if user is None or user.role != "auditor":
        return organization()
    pinned = current_app.config.get("ORGANIZATION") or None
    chosen = (request.args.get("org") or "").strip() or None
    if pinned:
        return str(pinned) if not chosen or chosen == pinned else NO_ORGANIZATION
    return chosen


def _target_organization() -> str:
    """The enterprise an upload is replayed for: the user's own, the pinned one, or the one chosen."""
    user = current_user()
    assert user is not None
    pinned = current_app.config.get("ORGANIZATION") or None
    if user.role not in ALL_ORGS_ROLES and user.role != "auditor":
        own = user.organization or ""
        if not own or (pinned and pinned != own):
            raise BadRequest(_("captures.no_enterprise"))
        return own
    chosen = (request.form.get("org") or request.args.get("org") or pinned or "").strip()
    if not chosen:
        raise BadRequest(_("captures.choose_enterprise"))
    if (pinned and chosen != pinned) or get_db().enterprise(chosen) is None:
        raise BadRequest(_("captures.unknown_enterprise", org=chosen))
    return chosen


def capture_or_404(sha256: str) -> Capture:
    if not SHA_RE.fullmatch(sha256):
        abort(404)
    org = scope()
    if org == NO_ORGANIZATION:
        abort(404)
    cap = state().db.get(sha256, org)
    if cap is None:
        abort(404)
    return cap


# ---------------------------------------------------------------- receiving a file


def clean_name(name: str | None) -> str:
    """A display name: the last path part, printable, at most 120 characters; never used as a path."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if ch.isprintable())
    base = base.strip().lstrip(".")
    return base[:120] or "capture"


def receive() -> tuple[str, str, int, str, bool]:
    """Stores the uploaded file by hash. Returns (sha256, format, size, display name, already stored)."""
    file = request.files.get("capture")
    if file is None:
        raise BadRequest(_("captures.no_file"))
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    folder = upload_dir(current_app)  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    digest, size, head = hashlib.sha256(), 0, b""
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := file.stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise RequestEntityTooLarge(_("captures.too_large", limit=_mib(limit)))
                if len(head) < 8:
                    head = (head + chunk)[:8]
                digest.update(chunk)
                out.write(chunk)
        fmt = MAGICS.get(head[:4])
        if fmt is None:
            raise BadRequest(_("captures.not_a_capture", head=head.hex(" ") or "-"))
        _check_readable(tmp)
        sha = digest.hexdigest()
        final = folder / f"{sha}.{fmt}"
        existed = final.exists()
        if existed:
            tmp.unlink()
        else:
            os.replace(tmp, final)
        return sha, fmt, size, clean_name(file.filename), existed
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_readable(path: Path) -> None:
    from sensors.exceptions import SensorError
    from sensors.pcapfile import CaptureReader

    try:
        with CaptureReader(path):
            pass
    except SensorError as e:
        raise BadRequest(_("captures.unreadable", detail=str(e).replace(str(path), "capture"))) from None


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB" if n >= 1024 * 1024 else f"{n} B"


def accept_upload() -> tuple[Capture, bool]:
    """Receives, records and queues an upload. Returns the record and whether it was a duplicate."""
    user = current_user()
    assert user is not None
    org = _target_organization()
    try:
        sha, fmt, size, name, _existed = receive()
    except (BadRequest, RequestEntityTooLarge) as e:
        audit("capture.upload", clean_name(getattr(request.files.get("capture"), "filename", "")), outcome="failure",
              detail={"organization": org, "reason": str(e.description)[:300]})
        raise
    st = state()
    known = st.db.get(sha, org)
    if known is not None and known.status != "failed":
        audit("capture.upload", sha, detail={"organization": org, "name": name, "size": size, "duplicate": True})
        return known, True
    st.db.add(sha, org, name, size, fmt, user.username)
    path = uploaded_path(current_app, sha)  # type: ignore[arg-type]
    assert path is not None
    if not st.worker.submit(Job(sha, org, path, user.username)):
        st.db.update(sha, org, status="failed", error=_("captures.queue_full"), finished_at=_now())
        raise ServiceUnavailable(_("captures.queue_full"))
    audit("capture.upload", sha, detail={"organization": org, "name": name, "size": size, "format": fmt})
    cap = st.db.get(sha, org)
    assert cap is not None
    return cap, False


def alerts_of(cap: Capture, size: int = 200) -> Any:
    return get_store().search("alerts", Query(organization=cap.organization,
                                              filters={"evidence.file_sha256": cap.sha256}, size=size))


# ---------------------------------------------------------------- pages


@bp.get("/")
@requires("captures.read")
def index() -> ResponseReturnValue:
    org = scope()
    rows = [] if org == NO_ORGANIZATION else state().db.list(org)
    user = current_user()
    pinned = current_app.config.get("ORGANIZATION") or None
    choices = get_db().enterprises(only=pinned) if user and user.role != "enterprise" else []
    from .auth import can

    may_upload = can("captures.upload")
    return render_template("captures/list.html", captures=rows, choices=choices, may_upload=may_upload,
                           limit=_mib(int(current_app.config["MAX_UPLOAD_BYTES"])),
                           interrupted=state().interrupted if may_upload else None)


@bp.post("/")
@requires("captures.upload")
def upload() -> ResponseReturnValue:
    cap, duplicate = accept_upload()
    flash(_("captures.duplicate") if duplicate else _("captures.queued"))
    return redirect(url_for("captures.detail", sha256=cap.sha256, org=cap.organization), code=303)


@bp.get("/<sha256>")
@requires("captures.read")
def detail(sha256: str) -> ResponseReturnValue:
    cap = capture_or_404(sha256)
    alerts = alerts_of(cap) if cap.status in ("done", "failed") else None
    return render_template("captures/detail.html", capture=cap, alerts=alerts)


# ---------------------------------------------------------------- API


@api.get("/captures")
@requires("captures.read")
def api_list() -> ResponseReturnValue:
    org = scope()
    rows = [] if org == NO_ORGANIZATION else state().db.list(org)
    out: dict[str, Any] = {"items": [c.to_dict() for c in rows], "total": len(rows)}
    from .auth import can

    if can("captures.upload") and state().interrupted["count"]:
        out["interrupted_uploads"] = {**state().interrupted, "message": _("captures.interrupted", **state().interrupted)}
    return jsonify(out)


@api.post("/captures")
@requires("captures.upload")
def api_upload() -> ResponseReturnValue:
    cap, duplicate = accept_upload()
    return jsonify(cap.to_dict()), 200 if duplicate else 202


@api.get("/captures/<sha256>")
@requires("captures.read")
def api_capture(sha256: str) -> ResponseReturnValue:
    return jsonify(capture_or_404(sha256).to_dict())


__all__ = ["Capture", "CaptureDB", "api", "bp", "close", "init_app", "replay_capture", "scope", "state",
           "upload_dir", "uploaded_path"]


def _without_path(message: str, path: object) -> str:
    """An error as users see it: the server's folder names replaced by "capture" (they are none of the
    user's business and tell an attacker where files live)."""
    text = str(path)
    out = message.replace(text, "capture") if text else message
    parent = str(Path(text).parent) if text else ""
    return out.replace(parent, "…") if parent not in ("", ".", "/") else out
