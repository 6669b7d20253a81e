"""ECharts on the 态势感知 overview and the province dashboard, when `make` has vendored it.

`make` installs echarts from npm (package-lock.json) and copies `echarts.min.js` to
`static/vendor/`; that copy is not committed. Pages render their charts as inline SVG and the data
as a `<script type="application/json">` block; `static/charts.js` swaps the SVG for an ECharts
chart only when the library loaded, so a console started without `make` shows the SVG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, url_for

from .formatting import LEVELS, fmt_time
from .i18n import _

VENDORED = Path("vendor") / "echarts.min.js"


def echarts_url() -> str | None:
    """The vendored echarts.min.js's URL, or None when it was never built."""
    folder = current_app.static_folder
    if folder is None or not (Path(folder) / VENDORED).is_file():
        return None
    return url_for("static", filename=VENDORED.as_posix())


def severity_bars(labels: list[str], series: dict[str, list[int]]) -> dict[str, Any]:
    """Stacked bars per severity: the data block charts.js's `severity-bars` reads."""
    return {"labels": labels, "levels": list(LEVELS), "names": {lv: _("severity." + lv) for lv in LEVELS},
            "series": {lv: [int(n) for n in series.get(lv, [])] for lv in LEVELS}}


def categories(title: str, items: list[tuple[str, int]]) -> dict[str, Any]:
    """One bar per category: the data block charts.js's `categories` reads."""
    return {"title": title, "items": [[str(k), int(n)] for k, n in items]}
