"""Security headers on every response of every route (walked from app.url_map), for anonymous and signed-in
users, errors included; and no template carries inline script the Content-Security-Policy would have to allow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web.security import HEADERS
from tests.console.conftest import login
from tests.console.test_tenancy import call, urls

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "web" / "templates"


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_secure(resp_headers, where: str) -> None:  # type: ignore[no-untyped-def]
    csp = resp_headers.get("Content-Security-Policy", "")
    d = directives(csp)
    assert d.get("frame-ancestors") == ["'none'"], f"{where}: {csp!r}"
    assert resp_headers.get("X-Content-Type-Options") == "nosniff", where
    assert resp_headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin-when-cross-origin"), where
    assert resp_headers.get("Cross-Origin-Opener-Policy") == "same-origin", where
    assert resp_headers.get("X-Frame-Options") == "DENY", where
    if "sandbox" not in d:  # a downloaded file's own policy (sandbox) runs nothing at all
        script = d.get("script-src", d.get("default-src"))
        assert script == ["'self'"], f"{where}: script-src {script}"
        assert d.get("object-src") == ["'none'"] and d.get("base-uri") == ["'none'"], where
        assert "'unsafe-inline'" not in d.get("style-src", []) and "'unsafe-eval'" not in csp, where


@pytest.mark.parametrize("username", [None, "admin", "acme-user"])
def test_every_route_answers_with_the_security_headers(open_app: Flask, username: str | None) -> None:
    walked = 0
    for _endpoint, method, url in urls(open_app, "acme"):
        c: FlaskClient = open_app.test_client()
        token = ""
        if username:
            login(c, username)
            token = c.get("/api/v1/session").get_json()["csrf_token"]
        resp = c.get(url) if method == "GET" else c.open(url, method=method, data={"csrf_token": token}, headers={"X-CSRF-Token": token})
        try:
            assert_secure(resp.headers, f"{username} {method} {url} -> {resp.status_code}")
        finally:
            resp.close()
        walked += 1
    assert walked >= 40


def test_errors_and_static_files_carry_them_too(open_app: Flask) -> None:
    c = open_app.test_client()
    for url, status in (("/no/such/page", 404), ("/api/v1/no-such", 404), ("/static/console.css", 200), ("/login", 200),
                        ("/api/v1/alerts", 401)):
        resp = c.get(url)
        assert resp.status_code == status, url
        assert_secure(resp.headers, url)
        resp.close()
    resp = c.post("/logout")  # no session, no token: 403 from the CSRF check
    assert resp.status_code in (302, 403) and resp.headers["Content-Security-Policy"]
    assert set(HEADERS) <= set(resp.headers.keys())


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"(href|src|action)\s*=\s*[\"']\s*javascript:", re.I)


def test_no_template_has_inline_script_handlers_or_javascript_urls() -> None:
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in ((INLINE_SCRIPT, "inline <script>"), (HANDLER, "on* handler"), (JS_URL, "javascript: URL"),
                              (re.compile(r"<style", re.I), "<style> element")):
            for m in pattern.finditer(text):
                problems.append(f"{path.relative_to(TEMPLATES)}:{text.count(chr(10), 0, m.start()) + 1}: {what}")
    assert not problems, "\n".join(problems)
