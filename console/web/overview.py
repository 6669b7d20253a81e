"""态势感知: the overview page: alerts by severity, over time, top rules, protocols and assets."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from . import charts, data
from .auth import LOGGED_IN, can, current_user, requires
from .i18n import _

bp = Blueprint("overview", __name__)


@bp.get("/")
@requires(LOGGED_IN)
def index() -> ResponseReturnValue:
    if not can("data.read"):  # auditors start at the audit log
        return redirect(url_for("admin.audit"))
    user = current_user()
    if user is not None and user.role == "enterprise":  # enterprises start at their own dashboard (企业看板)
        return redirect(url_for("dashboard.index"))
    ov = data.overview()
    chart_data = {"trend": charts.severity_bars([charts.fmt_time(b.start) for b in ov.bars],
                                                {lv: [b.counts[lv] for b in ov.bars] for lv in charts.LEVELS}),
                  "protocols": charts.categories(_("overview.top_protocols"), ov.top_protocols)}
    return render_template("overview.html", ov=ov, chart_data=chart_data, echarts_url=charts.echarts_url())
