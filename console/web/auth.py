"""Who is asking, and may they: sessions, API tokens, CSRF, roles, tenancy, login/logout, the audit trail.

Every request is resolved here before any view runs (`_before`):

1. the user, from the `qinling_session` cookie (a random id; the row holds its CSRF token) or an
   `Authorization: Bearer` API token;
2. CSRF: every POST/PUT/PATCH/DELETE that is not token-authenticated must carry the token, as the
   `csrf_token` form field or the `X-CSRF-Token` header (403 otherwise);
3. the permission the view declared with `@requires(...)`: a view that declares none is refused
   (fail closed), so a new route cannot be public by accident.

Tenancy: `organization()` is the one place the store Query's organization comes from. Enterprise
users always get their own enterprise; the other data roles see every enterprise, or the one they
pick with `?org=`; a console pinned with ORGANIZATION never reads past it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import (Blueprint, Flask, Response, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden, HTTPException, TooManyRequests, Unauthorized

from .accounts import ALL_ORGS_ROLES, DATA_ROLES, ROLES, ConsoleDB, Session, User, default_path, hasher_from
from .i18n import _, _safe_next

EXTENSION = "qinling.console_db"
COOKIE = "qinling_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
NO_ORGANIZATION = "\x00none"  # a Query organization no document has: "show nothing"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# permission -> roles holding it. Enterprise users hold data/enterprise reads for their own enterprise
# only; that restriction is `organization()`'s, applied in the store query.
PERMISSIONS: dict[str, frozenset[str]] = {
    "data.read": DATA_ROLES,  # overview, alerts, evidence, assets
    "enterprises.read": frozenset(ROLES),
    "users.read": frozenset({"admin", "auditor"}),
    "users.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin", "auditor"}),
    # 检查评估: captures replayed for an enterprise, and an alert's evidence as a verifiable zip. Auditors
    # read these for every enterprise (captures.scope); enterprise users for their own only.
    "captures.read": frozenset(ROLES),
    "captures.upload": frozenset({"admin", "auditor", "enterprise"}),
    "evidence.export": frozenset({"admin", "regulator", "analyst", "auditor", "enterprise"}),
    "triage.write": frozenset({"admin", "analyst"}),  # acknowledge, assign, escalate, close, suppress
    "triage.comment": DATA_ROLES,  # comment on (and read the history of) alerts one may read
    "notices.read": DATA_ROLES,  # 通报: enterprise users only their own
    "notices.issue": frozenset({"admin", "regulator"}),  # issue, verify and close, send back
    "notices.answer": frozenset({"enterprise"}),  # acknowledge and answer their own enterprise's notices
    "province.read": frozenset({"admin", "regulator", "analyst"}),
    "assessment.answer": frozenset({"enterprise"}),  # 检查评估: an enterprise answers its own self-assessment
}
PUBLIC = "public"  # no login needed (login page, static files, the OpenAPI document)
LOGGED_IN = "logged-in"  # any signed-in user

F = TypeVar("F", bound=Callable[..., Any])


def requires(permission: str) -> Callable[[F], F]:
    """Declares what a view needs: a PERMISSIONS key, PUBLIC or LOGGED_IN. Checked before the view runs."""
    if permission not in PERMISSIONS and permission not in (PUBLIC, LOGGED_IN):
        raise ValueError(f"unknown permission {permission!r}")

    def mark(view: F) -> F:
        view._qinling_permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def can(permission: str, user: User | None = None) -> bool:
    user = user if user is not None else g.get("user")
    if permission == PUBLIC:
        return True
    if user is None:
        return False
    return permission == LOGGED_IN or user.role in PERMISSIONS.get(permission, frozenset())


# ---------------------------------------------------------------- the console database


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.db: ConsoleDB | None = None


def console_db_path(app: Flask) -> str:
    from .store import store_url

    return str(app.config.get("CONSOLE_DB") or default_path(store_url(app)))


def get_db(app: Flask | None = None) -> ConsoleDB:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    holder: _Holder = app.extensions[EXTENSION]
    with holder.lock:
        if holder.db is None:
            holder.db = ConsoleDB(console_db_path(app), hasher=hasher_from(app.config))
        return holder.db


def close_db(app: Flask) -> None:
    holder: _Holder = app.extensions[EXTENSION]
    with holder.lock:
        if holder.db is not None:
            holder.db.close()
            holder.db = None


# ---------------------------------------------------------------- who is asking


def client_ip() -> str:
    return request.remote_addr or ""


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def audit(action: str, target: str = "", *, outcome: str = "success", actor: str | None = None,
          detail: Mapping[str, Any] | None = None) -> None:
    user = current_user()
    who = actor or (user.username if user else "-")
    get_db().audit(who, action, target, outcome=outcome, ip=client_ip(), detail=detail)


def csrf_token() -> str:
    """The token forms and scripts send back: the session's, or (signed out) one kept in Flask's cookie."""
    sess: Session | None = g.get("session")
    if sess is not None:
        return sess.csrf
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def _check_csrf() -> None:
    sent = request.headers.get(CSRF_HEADER) or (request.form.get(CSRF_FIELD) if request.form else None) or ""
    sess: Session | None = g.get("session")
    expected = sess.csrf if sess is not None else session.get("csrf")
    if not expected or not secrets.compare_digest(str(sent), str(expected)):
        raise Forbidden(_("error.csrf"))


def _permission_of(endpoint: str) -> str | None:
    if endpoint == "static":
        return PUBLIC
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "_qinling_permission", None)


def _before() -> ResponseReturnValue | None:
    g.user = None
    g.session = None
    g.via_token = False
    db = get_db()
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        user = db.token_user(auth[7:].strip())
        if user is None:
            raise Unauthorized(_("error.bad_token"))
        g.user, g.via_token = user, True
    else:
        sid = request.cookies.get(COOKIE)
        if sid:
            sess = db.session(sid)
            if sess is not None:
                g.user, g.session = sess.user, sess
    if request.routing_exception is not None or request.endpoint is None:
        return None  # 404/405 pages are served as usual (they show nothing)
    permission = _permission_of(request.endpoint)
    if request.method in UNSAFE_METHODS and not g.via_token and not getattr(
            current_app.view_functions.get(request.endpoint), "_qinling_csrf_exempt", False):
        _check_csrf()
    if permission == PUBLIC:
        return None
    if g.user is None:
        if is_api():
            raise Unauthorized(_("error.401.message"))
        return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
    if permission is None or not can(permission):
        raise Forbidden(_("error.403.message"))
    return None


def csrf_exempt(view: F) -> F:
    """For JSON-only endpoints that a cross-site form cannot reach (they demand application/json)."""
    view._qinling_csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _secure_cookie() -> bool:
    setting = current_app.config.get("SESSION_COOKIE_SECURE")
    return request.is_secure if setting is None else bool(setting)


def _after(response: Response) -> Response:
    new_sid = g.get("new_sid")
    if new_sid is not None:
        if new_sid:
            lifetime = int(current_app.config["SESSION_LIFETIME_HOURS"] * 3600)
            response.set_cookie(COOKIE, new_sid, max_age=lifetime, httponly=True, samesite="Lax",
                                secure=_secure_cookie(), path="/")
        else:
            response.delete_cookie(COOKIE, httponly=True, samesite="Lax", secure=_secure_cookie(), path="/")
    if g.get("user") is not None or request.endpoint == "auth.login":
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


# ---------------------------------------------------------------- tenancy


def organization() -> str | None:
    """The enterprise every store read is limited to (None: all). The only source of Query.organization."""
    user = current_user()
    pinned = current_app.config.get("ORGANIZATION") or None
    if user is None or user.role not in DATA_ROLES:
        return NO_ORGANIZATION
    if user.role not in ALL_ORGS_ROLES:  # enterprise: bound, whatever the URL asks
        own = user.organization or NO_ORGANIZATION
        return own if not pinned or pinned == own else NO_ORGANIZATION
    chosen = (request.args.get("org") or "").strip() or None
    if pinned:
        return str(pinned) if not chosen or chosen == pinned else NO_ORGANIZATION
    return chosen


def may_choose_organization() -> bool:
    user = current_user()
    return user is not None and user.role in ALL_ORGS_ROLES and not current_app.config.get("ORGANIZATION")


# ---------------------------------------------------------------- logging in and out


def login(username: str, password: str) -> User:
    """Checks the password with throttling per (username, IP); starts a fresh session. Raises 401/429."""
    db, ip = get_db(), client_ip()
    name = username.strip().lower()[:64]
    until = db.locked_until(name, ip)
    if until is not None:
        db.audit(name or "-", "login", name, outcome="locked", ip=ip)
        minutes = max(1, int((until - dt.datetime.now(dt.timezone.utc)).total_seconds() // 60) + 1)
        raise TooManyRequests(_("login.locked", minutes=minutes))
    user = db.verify(name, password) if name and password else None
    if user is None:
        locked = db.record_failure(name, ip)
        db.audit(name or "-", "login", name, outcome="failure", ip=ip, detail={"locked": locked})
        if locked:
            raise TooManyRequests(_("login.locked", minutes=int(current_app.config.get("LOCK_MINUTES", 15))))
        raise Unauthorized(_("login.invalid"))
    db.clear_failures(name, ip)
    _start_session(user)
    db.audit(user.username, "login", user.username, ip=ip, detail={"via": "api" if is_api() else "form"})
    return user


def _start_session(user: User) -> None:
    """Session fixation: whatever id the browser sent is dropped; the session id is always new."""
    db = get_db()
    old = request.cookies.get(COOKIE)
    if old:
        db.close_session(old)
    session.clear()
    hours = float(current_app.config["SESSION_LIFETIME_HOURS"])
    sid, sess = db.open_session(user, client_ip(), dt.timedelta(hours=hours))
    g.user, g.session, g.new_sid = user, sess, sid


def logout() -> None:
    user = current_user()
    sid = request.cookies.get(COOKIE)
    if sid:
        get_db().close_session(sid)
    if user is not None and not g.get("via_token"):
        audit("logout", user.username)
    session.clear()
    g.session, g.new_sid = None, ""


bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
@requires(PUBLIC)
def login_page() -> ResponseReturnValue:
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(target)
        return render_template("login.html", next=target, username="")
    username = request.form.get("username", "")
    try:
        login(username, request.form.get("password", ""))
    except HTTPException as e:
        return render_template("login.html", next=target, username=username, error=e.description), e.code or 401
    return redirect(target, code=303)


@bp.post("/logout", endpoint="logout")
@requires(LOGGED_IN)
def logout_page() -> ResponseReturnValue:
    logout()
    flash(_("login.signed_out"))
    return redirect(url_for("auth.login"), code=303)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = _Holder()
    app.before_request(_before)
    app.after_request(_after)
    app.register_blueprint(bp)
    requires(PUBLIC)(app.view_functions["switch_language"])  # the sign-in page switches language too
    app.jinja_env.globals.update(csrf_token=csrf_token, current_user=current_user, can=can,
                                 may_choose_organization=may_choose_organization,
                                 enterprise_choices=lambda: get_db().enterprises(), industry_name=industry_name)


def industry_name(code: str) -> str:
    """A known industry code in the UI language (`industry.water` → 水务), anything else as stored."""
    key = f"industry.{code}"
    name = _(key)
    return code if name == key else name


__all__ = ["LOGGED_IN", "PERMISSIONS", "PUBLIC", "audit", "can", "close_db", "csrf_exempt", "csrf_token",
           "current_user", "get_db", "init_app", "login", "logout", "organization", "requires"]
