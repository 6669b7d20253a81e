"""Injection attempts in every filter and search parameter of every GET route: SQL metacharacters, Elasticsearch
query-string syntax, JSON-breaking strings, markup and very long values. No 500, no other enterprise's data, and
markup comes back escaped.

The parameter names are gathered from the console's source (every `request.args` read and every params.py
helper call) and from the OpenAPI document, so a filter added later is attacked too.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from tests.console.conftest import login
from tests.console.test_tenancy import MARKERS, urls

WEB = Path(__file__).resolve().parents[2] / "console" / "web"
READS = re.compile(r"(?:_arg|_int|_time|_ip|_cidr|_list|_bool|_choice|args\.get|args\.getlist|values\.get|values\.getlist)\(\s*\"([a-z_.]+)\"")
PAYLOADS = (
    "' OR '1'='1' --",
    "1; DROP TABLE alerts; --",
    "acme' UNION SELECT doc FROM alerts WHERE organization='globex",
    "* OR organization.id:globex",
    "organization.id:globex OR _exists_:organization",
    "(a OR b) AND NOT c~ /.*/ [* TO *] \\",
    "\"}]},{\"organization\":\"globex\"",
    "\\u0000\x00\ufffe\u202e",
    "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>",
    "%' ESCAPE '\\",
    "9" * 40,
    "A" * 20_000,
)
MARKUP = "<script>alert(1)</script>"
# SQL, Elasticsearch query-string, JSON and markup in one value, for the one-parameter-at-a-time pass
MIXED = "acme' OR '1'='1' -- * OR organization.id:globex \"}]{ <script>alert(1)</script> \\"


def parameter_names(app: Flask) -> list[str]:
    names = set()
    for path in WEB.glob("*.py"):
        names |= set(READS.findall(path.read_text(encoding="utf-8")))
    c = app.test_client()
    doc = c.get("/api/v1/openapi.json").get_json()
    for item in doc.get("paths", {}).values():
        for op in item.values():
            for p in op.get("parameters", []) if isinstance(op, dict) else []:
                if p.get("in") == "query":
                    names.add(p["name"])
    return sorted(names)


def get_routes(app: Flask, tenant: str) -> list[str]:
    return sorted({url for endpoint, method, url in urls(app, tenant)
                   if method == "GET" and endpoint not in ("static", "switch_language")})


def list_routes(app: Flask) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if "GET" in (rule.methods or ()) and not rule.arguments and rule.endpoint != "switch_language")


def check(c: FlaskClient, url: str, params: dict[str, str], where: str) -> None:
    resp = c.get(url, query_string=params)
    try:
        body = resp.get_data().decode("utf-8", "replace")
        assert resp.status_code < 500, f"{where} -> {resp.status_code}: {body[:300]}"
        assert resp.status_code != 200 or not resp.is_json or resp.get_json() is not None, where
        for marker in MARKERS["globex"]:
            assert marker not in body, f"{where}: shows {marker!r}"
        if resp.mimetype == "text/html":
            assert MARKUP not in body and "<img src=x" not in body, f"{where}: markup echoed unescaped"
    finally:
        resp.close()


def test_every_parameter_of_every_get_route(open_app: Flask) -> None:
    names = parameter_names(open_app)
    assert {"q", "org", "size", "page", "since", "severity"} <= set(names) or len(names) >= 15, names
    c = login(open_app.test_client(), "acme-user")
    routes = get_routes(open_app, "acme")
    lists = list_routes(open_app)  # pages and API routes without path arguments: where the filters are
    assert len(routes) >= 30 and len(lists) >= 20
    tried = 0
    for url in routes:
        for payload in PAYLOADS:  # every parameter at once: the first one a view validates answers
            check(c, url, {n: payload for n in names}, f"{url} all={payload[:40]!r}")
            tried += 1
    for url in lists:  # one parameter at a time, so each reaches the view past the others' checks
        for name in names:
            check(c, url, {name: MIXED}, f"{url} {name}={MIXED[:40]!r}")
            tried += 1
    assert tried > 1000


def test_invalid_utf8_in_the_query_string(open_app: Flask) -> None:
    c = login(open_app.test_client(), "acme-user")
    names = parameter_names(open_app)
    for url in get_routes(open_app, "acme"):
        resp = c.get(url + "?" + "&".join(f"{n}=%ff%fe%00%c0%af" for n in names))
        assert resp.status_code < 500, url
        resp.close()


def test_search_parameters_reach_the_store_as_data(open_app: Flask) -> None:
    """A query-string attack in a search box is a literal: it finds nothing, and the enterprise still sees its own."""
    c = login(open_app.test_client(), "acme-user")
    base = c.get("/api/v1/alerts?size=1").get_json()["total"]
    assert base > 0
    for payload in PAYLOADS[:6]:
        resp = c.get("/api/v1/alerts", query_string={"q": payload, "size": 500})
        assert resp.status_code in (200, 400), resp.status_code
        if resp.status_code == 200:
            data = resp.get_json()
            assert data["total"] <= base and {a["organization"]["id"] for a in data["items"]} <= {"acme"}
    analyst = login(open_app.test_client(), "analyst")
    for payload in ("acme' OR '1'='1", "acme OR globex", "*", "acme%", "acme\x00globex"):
        resp = analyst.get("/api/v1/alerts", query_string={"org": payload, "size": 500})
        assert resp.status_code in (200, 400, 404)
        if resp.status_code == 200:
            assert resp.get_json()["total"] == 0, payload  # no enterprise has that id
