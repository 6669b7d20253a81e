"""Security headers on every response: a script policy with no inline code, no framing, no sniffing, no leaks.

Scripts come only from our own origin (static/, including the vendored ECharts): templates carry no inline
script or event handler, and data for scripts travels in `<script type="application/json">` blocks or data-*
attributes, which a browser never executes. Style attributes stay allowed (`style-src-attr`): ECharts writes
its tooltips as HTML with style attributes, and a style attribute cannot run script; `<style>` elements and
stylesheets from elsewhere are still refused.

A view may set its own Content-Security-Policy (a downloaded notice file gets `sandbox`); it keeps it, with
`frame-ancestors 'none'` added when missing.
"""

from __future__ import annotations

from flask import Flask, Response

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), usb=(), serial=()",
}


def add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    policy = response.headers["Content-Security-Policy"]
    if "frame-ancestors" not in policy:
        response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)


__all__ = ["CSP", "HEADERS", "add_headers", "init_app"]
