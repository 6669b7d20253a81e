"""态势感知: the overview page: alerts by severity, over time, top rules, protocols and assets."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from . import data
from .auth import LOGGED_IN, can, requires

bp = Blueprint("overview", __name__)


@bp.get("/")
@requires(LOGGED_IN)
def index() -> ResponseReturnValue:
    if not can("data.read"):  # auditors start at the audit log
        return redirect(url_for("admin.audit"))
    return render_template("overview.html", ov=data.overview())
