"""Template helpers: times in the console's zone, severity levels, technique names, page links."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app, request, url_for

from pipeline.schema import LEVEL_OF_SEVERITY, SEVERITY

from .attack import TECHNIQUES

LEVELS = ("critical", "high", "medium", "low")  # most severe first, as every list shows them


@functools.cache
def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def zone() -> dt.tzinfo:
    return _zone(str(current_app.config.get("TIMEZONE") or "UTC"))


def fmt_time(value: dt.datetime | None, ms: bool = False) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    local = value.astimezone(zone())
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{local.microsecond // 1000:03d}" if ms else text


def level(severity: int | None) -> str:
    """`event.severity` → low/medium/high/critical (thresholds, so odd values still land somewhere)."""
    if severity is None:
        return "low"
    if severity in LEVEL_OF_SEVERITY:
        return LEVEL_OF_SEVERITY[severity]
    for name in LEVELS:
        if severity >= SEVERITY[name]:
            return name
    return "low"


def technique_name(tid: str) -> str:
    return TECHNIQUES.get(tid, "")


def url_with(**changes: Any) -> str:
    """This page's URL with some query arguments replaced (None drops one); keeps repeated ones."""
    args: dict[str, list[str]] = {k: request.args.getlist(k) for k in request.args}
    args.pop("lang", None)  # the cookie remembers it
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = [str(v)]
    assert request.endpoint is not None
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def page_numbers(page: int, pages: int, around: int = 2) -> list[int | None]:
    """1 … 4 5 [6] 7 8 … 20 — None marks a gap."""
    shown = sorted({1, pages, *range(max(1, page - around), min(pages, page + around) + 1)})
    out: list[int | None] = []
    prev = 0
    for n in shown:
        if prev and n - prev > 1:
            out.append(None)
        out.append(n)
        prev = n
    return out


def values_preview(values: list[int] | None, limit: int = 12) -> str:
    if not values:
        return ""
    head = ", ".join(str(v) for v in values[:limit])
    return head + (f", … (+{len(values) - limit})" if len(values) > limit else "")


def duration(seconds: int) -> str:
    from .i18n import _

    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return _(f"unit.{unit}", n=seconds // size)
    return _("unit.second", n=seconds)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["time"] = fmt_time
    app.jinja_env.filters["level"] = level
    app.jinja_env.filters["technique_name"] = technique_name
    app.jinja_env.filters["values_preview"] = values_preview
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.globals["url_with"] = url_with
    app.jinja_env.globals["page_numbers"] = page_numbers
    app.jinja_env.globals["LEVELS"] = LEVELS
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
