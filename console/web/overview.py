"""态势感知: the overview page: alerts by severity, over time, top rules, protocols and assets."""

from __future__ import annotations

from flask import Blueprint, render_template

from . import data

bp = Blueprint("overview", __name__)


@bp.get("/")
def index() -> str:
    return render_template("overview.html", ov=data.overview())
