"""Smoke test in a real browser: headless Chromium renders the alert list served over HTTP."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from console.web.store import close_store
from tests.console.conftest import make_app
from tests.store import sample_data as sd

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)"),
]


@pytest.fixture
def base_url(db_path: Path) -> Iterator[str]:
    app = make_app(db_path, TESTING=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        close_store(app)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_alert_list_renders_in_chromium(base_url: str, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", f"{base_url}/alerts/?lang=en&size=20")
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert dom.count('<tr class="alert-row">') == 20
    assert "Modbus write from unapproved host" in dom and "60 in all, page 1 of 3" in dom
    assert sd.HOSTILE not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # text, never a script


def test_screenshot_of_the_alert_list(base_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "alerts.png"
    done = chromium(tmp_path, "--window-size=1440,1000", f"--screenshot={shot}", f"{base_url}/alerts/")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
