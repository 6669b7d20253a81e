"""Query-string arguments → store Query, shared by the HTML pages and the JSON API.

Every argument is checked here so that a mistyped URL gets a 400 that says which argument was
wrong, rather than reaching the store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest

from pipeline.schema import SEVERITY
from pipeline.store import Query

from .formatting import zone
from .i18n import _

TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


@dataclass
class Form:
    """What the user asked for, as typed (to refill the filter form) and as a Query."""

    query: Query
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return any(v for k, v in self.values.items() if k not in ("page", "size"))


def _arg(name: str) -> str:
    return (request.args.get(name) or "").strip()


def _int(name: str, default: int, lo: int, hi: int) -> int:
    raw = _arg(name)
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise BadRequest(_("error.arg_integer", name=name, value=raw, lo=lo, hi=hi)) from None
    if not lo <= n <= hi:
        raise BadRequest(_("error.arg_integer", name=name, value=raw, lo=lo, hi=hi))
    return n


def _time(name: str) -> dt.datetime | None:
    raw = _arg(name)
    if not raw:
        return None
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for fmt in TIME_FORMATS:
            try:
                parsed = dt.datetime.strptime(raw, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise BadRequest(_("error.arg_time", name=name, value=raw))
    if parsed.tzinfo is None:  # typed in the console's zone
        parsed = parsed.replace(tzinfo=zone())
    return parsed


def _paging() -> tuple[int, int]:
    size = _int("size", int(current_app.config["PAGE_SIZE"]), 1, int(current_app.config["MAX_PAGE_SIZE"]))
    page = _int("page", 1, 1, 1_000_000)
    return page, size


def organization() -> str | None:
    """The signed-in user's tenancy (see auth.organization): every Query built here carries it."""
    from .auth import organization as tenancy

    return tenancy()


def _org_value(values: dict[str, Any]) -> None:
    """Keeps a chosen ?org= in the form values, so pages and links carry it along."""
    values["org"] = _arg("org")


def alert_form() -> Form:
    filters: dict[str, Any] = {}
    values: dict[str, Any] = {}
    severities = [s.strip() for s in request.args.getlist("severity") if s.strip()]
    for s in severities:
        if s not in SEVERITY:
            raise BadRequest(_("error.arg_choice", name="severity", value=s, choices=", ".join(SEVERITY)))
    if severities:
        filters["event.severity"] = [SEVERITY[s] for s in severities]
    values["severity"] = severities
    for arg, fld in (("protocol", "network.protocol"), ("rule", "rule.id"), ("technique", "threat.technique.id")):
        v = _arg(arg)
        values[arg] = v
        if v:
            filters[fld] = v
    asset = _arg("asset")
    values["asset"] = asset
    if asset:
        try:
            asset = str(ipaddress.ip_address(asset))
        except ValueError:
            raise BadRequest(_("error.arg_ip", name="asset", value=asset)) from None
        filters["related.ip"] = asset
    start, end = _time("from"), _time("to")
    if start and end and end <= start:
        raise BadRequest(_("error.arg_range"))
    values["from"], values["to"] = _arg("from"), _arg("to")
    text = _arg("q")
    values["q"] = text
    _org_value(values)
    page, size = _paging()
    values["page"], values["size"] = page, size
    q = Query(filters=filters, start=start, end=end, text=text or None, organization=organization(),
              sort="@timestamp", descending=True, page=page, size=size)
    return Form(q, values)


def asset_form() -> Form:
    filters: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for arg, fld in (("protocol", "protocols"), ("role", "roles")):
        v = _arg(arg)
        values[arg] = v
        if v:
            filters[fld] = v
    text = _arg("q")
    values["q"] = text
    _org_value(values)
    page, size = _paging()
    values["page"], values["size"] = page, size
    q = Query(filters=filters, text=text or None, organization=organization(),
              sort="last_seen", descending=True, page=page, size=size)
    return Form(q, values)


def audit_form() -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit log's filters (actor, action) and paging: (keyword arguments for audit_log, form values)."""
    values: dict[str, Any] = {"actor": _arg("actor")[:64], "action": _arg("action")[:64]}
    page, size = _paging()
    values["page"], values["size"] = page, size
    return {"actor": values["actor"] or None, "action": values["action"] or None, "page": page, "size": size}, values
