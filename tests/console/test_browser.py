"""Smoke test in a real browser: headless Chromium signs in and renders the alert list served over HTTP.

Headless Chromium's command line cannot type, so the test app gets one extra page (test-only, not in
the product) holding the real sign-in form, filled in and submitted by a line of script: the browser
then goes through the real POST /login (CSRF token, session cookie, redirect) like a person would.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from flask import Response, render_template_string

from console.web.auth import PUBLIC, requires
from tests.console.conftest import PASSWORD, close_app, make_app
from tests.store import sample_data as sd

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)"),
]


@pytest.fixture
def base_url(db_path: Path) -> Iterator[str]:
    app = make_app(db_path, TESTING=False, SECRET_KEY="browser-test")

    @app.get("/_test/login-as/<username>")
    @requires(PUBLIC)
    def login_as(username: str) -> Response:
        # the console's policy allows no inline script; this test-only page allows its own, by nonce
        nonce = secrets.token_urlsafe(16)
        page = Response(render_template_string(AUTO_LOGIN, username=username, password=PASSWORD, nonce=nonce))
        page.headers["Content-Security-Policy"] = f"script-src 'nonce-{nonce}'; frame-ancestors 'none'"
        return page

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        close_app(app)


AUTO_LOGIN = """<!doctype html><form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}"><input name="username" value="{{ username }}">
<input type="password" name="password" value="{{ password }}"><input name="next" value="{{ request.args.next }}">
</form><script nonce="{{ nonce }}">document.forms[0].submit()</script>"""


def signed_in(base_url: str, target: str, username: str = "analyst") -> str:
    from urllib.parse import quote

    return f"{base_url}/_test/login-as/{username}?next={quote(target, safe='')}"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_alert_list_renders_in_chromium(base_url: str, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", signed_in(base_url, "/alerts/?lang=en&size=20"))
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert dom.count('<tr class="alert-row">') == 20
    assert "Modbus write from unapproved host" in dom and "60 in all, page 1 of 3" in dom
    assert sd.HOSTILE not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # text, never a script


def test_screenshot_of_the_alert_list(base_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "alerts.png"
    done = chromium(tmp_path, "--window-size=1366,768", "--virtual-time-budget=10000", f"--screenshot={shot}",
                    signed_in(base_url, "/alerts/"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_signed_out_browser_sees_the_sign_in_page(base_url: str, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", f"{base_url}/alerts/?lang=en")
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'action="/login"' in done.stdout and "alert-row" not in done.stdout


def test_enterprise_user_in_chromium_sees_only_its_own(base_url: str, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom",
                    signed_in(base_url, "/alerts/?lang=en&size=100", "acme-user"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('<tr class="alert-row">') == sd.N_ACME and "GLOBEX" not in done.stdout
