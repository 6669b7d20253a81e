"""Accounts and the audit trail (系统管理 / 安全审计): users for admins, the audit log for admins and auditors,
and the enterprise directory every role may read (an enterprise user sees only its own)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, NotFound

from pipeline.store import Page

from . import data
from .accounts import ROLES, AccountError
from .auth import audit, current_user, get_db, requires
from .i18n import _
from .params import audit_form

bp = Blueprint("admin", __name__, url_prefix="/admin")
directory = Blueprint("enterprises", __name__, url_prefix="/enterprises")


@directory.get("/")
@requires("enterprises.read")
def index() -> str:
    return render_template("enterprises.html", rows=data.enterprises())


@bp.get("/users")
@requires("users.read")
def users() -> str:
    return render_template("admin/users.html", users=get_db().users(), roles=ROLES,
                           enterprises=get_db().enterprises())


def _form(name: str) -> str:
    return (request.form.get(name) or "").strip()


@bp.post("/users")
@requires("users.manage")
def add_user() -> ResponseReturnValue:
    username, role = _form("username").lower(), _form("role")
    try:
        user = get_db().add_user(username, request.form.get("password") or "", role,
                                 _form("organization") or None, _form("display_name"))
    except AccountError as e:
        audit("user.add", username, outcome="failure", detail={"reason": str(e)})
        raise BadRequest(str(e)) from None
    audit("user.add", user.username, detail={"role": user.role, "organization": user.organization})
    flash(_("users.added", username=user.username))
    return redirect(url_for("admin.users"), code=303)


def _change(username: str, action: str) -> ResponseReturnValue:
    db = get_db()
    if db.user(username) is None:
        raise NotFound()
    me = current_user()
    try:
        if action == "user.disable":
            if me is not None and me.username == username:
                raise AccountError(_("users.not_yourself"))
            db.set_disabled(username, True)
        elif action == "user.enable":
            db.set_disabled(username, False)
        else:
            db.set_password(username, request.form.get("password") or "")
    except AccountError as e:
        audit(action, username, outcome="failure", detail={"reason": str(e)})
        raise BadRequest(str(e)) from None
    audit(action, username)
    flash(_(f"users.done.{action.removeprefix('user.')}", username=username))
    return redirect(url_for("admin.users"), code=303)


@bp.post("/users/<username>/disable")
@requires("users.manage")
def disable_user(username: str) -> ResponseReturnValue:
    return _change(username, "user.disable")


@bp.post("/users/<username>/enable")
@requires("users.manage")
def enable_user(username: str) -> ResponseReturnValue:
    return _change(username, "user.enable")


@bp.post("/users/<username>/password")
@requires("users.manage")
def reset_password(username: str) -> ResponseReturnValue:
    return _change(username, "user.passwd")


@bp.get("/audit", endpoint="audit")
@requires("audit.read")
def audit_page() -> str:
    args, values = audit_form()
    entries, total = get_db().audit_log(**args)
    return render_template("admin/audit.html", page=Page(entries, total, args["page"], args["size"]), form=values)
