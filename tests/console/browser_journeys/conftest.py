"""Browser journeys: Playwright (Python) driving Debian's Chromium against a seeded console over HTTP.

One seeded site per session (`qinling demo`'s seed with the Modbus attack capture, into a temp dir,
served by werkzeug in a thread on a free port) and one Chromium; each test gets fresh, signed-in
browser contexts from `journey(role, lang)`. Chromium is /usr/bin/chromium (Debian's package,
`make apt`); `playwright install` is never needed. Marked `browser`: skipped without Chromium or the
`playwright` package.

    def test_something(journey):
        j = journey("analyst", "en")
        j.nav("nav.alerts")                      # the nav link, by its catalog text in j.lang
        j.click_text("告警列表", "Alerts")         # zh-CN text or English text, whichever j speaks
        j.page.get_by_role("link", name=...)     # anything else: the Playwright page
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
PASSWORD = "journey-password-1"
FAST_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
ROOT = Path(__file__).resolve().parents[3]
SEED_CAPTURES = [ROOT / "pcaps" / "modbus" / "modbus_plant_attack.pcap"]
# role -> the demo's user of that role
USERS = {"admin": "admin", "regulator": "regulator", "analyst": "analyst", "auditor": "auditor",
         "enterprise": "enterprise-a", "enterprise-a": "enterprise-a", "enterprise-b": "enterprise-b"}
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)  # files also set pytestmark: -m browser sees it either way
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium (Debian package chromium)"))


@dataclass
class Site:
    base_url: str
    root: Path
    app: Any
    seeded: Any

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The seeded console, served over HTTP for the whole session."""
    from argon2 import PasswordHasher
    from werkzeug.serving import make_server

    from console.commands.demo import seed
    from console.web import captures, create_app
    from console.web.auth import close_db
    from console.web.store import close_store

    root = tmp_path_factory.mktemp("journeys")
    seeded = seed(root / "demo", PASSWORD, paths=SEED_CAPTURES, hasher=PasswordHasher(**FAST_ARGON2))
    app = create_app({"STORE_URL": seeded.store_url, "CONSOLE_DB": seeded.console_db, "ARGON2": FAST_ARGON2,
                      "SECRET_KEY": "journeys", "LANGUAGE": "zh-CN", "UPLOAD_DIR": str(root / "uploads")})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="journeys-http", daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}", root, app, seeded)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        captures.close(app)
        close_store(app)
        close_db(app)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Journey:
    """A signed-in browser tab as one user, speaking one UI language, with the steps journeys share."""

    site: Site
    page: Any
    username: str
    lang: str
    downloads: Path
    log: list[str] = field(default_factory=list)

    def t(self, key: str, **params: Any) -> str:
        """A catalog string in this journey's language (what the page shows for `key`)."""
        from console.web.i18n import catalog

        text = catalog(self.lang).get(key) or catalog("en").get(key) or key
        return text.format(**params) if params else text

    def goto(self, path: str) -> Journey:
        self.page.goto(self.site.url(path))
        return self

    def login(self, password: str = PASSWORD) -> Journey:
        self.goto("/login")
        self.page.fill("input[name=username]", self.username)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.locator("form[action='/login'] button[type=submit], form[action='/login'] input[type=submit]").first.click()
        assert "/login" not in self.page.url, f"{self.username} could not sign in: {self.page.inner_text('main')[:300]}"
        return self

    def set_language(self) -> Journey:
        self.page.context.add_cookies([{"name": "lang", "value": self.lang, "url": self.site.base_url}])
        return self

    def nav(self, key: str) -> Journey:
        """Click the top navigation link whose text is catalog `key` in this language."""
        self.page.locator("nav.nav").get_by_role("link", name=self.t(key), exact=True).click()
        self.page.wait_for_load_state()
        return self

    def click_text(self, zh: str, en: str, *, role: str | None = None, exact: bool = False) -> Journey:
        """Click what shows `zh` (zh-CN pages) or `en` (English pages)."""
        text = zh if self.lang == "zh-CN" else en
        target = self.page.get_by_role(role, name=text, exact=exact) if role else self.page.get_by_text(text, exact=exact)
        target.first.click()
        self.page.wait_for_load_state()
        return self

    def download(self, locator: Any) -> Path:
        """Click a link that downloads; returns the saved file."""
        with self.page.expect_download() as info:
            locator.click()
        d = info.value
        path = self.downloads / d.suggested_filename
        d.save_as(path)
        return path


@pytest.fixture
def journey(site: Site, browser: Any, tmp_path: Path) -> Iterator[Callable[..., Journey]]:
    """journey(role_or_username, lang="zh-CN") -> a signed-in Journey in a fresh browser context."""
    contexts: list[Any] = []

    def start(role: str, lang: str = "zh-CN") -> Journey:
        ctx = browser.new_context(accept_downloads=True, locale=lang)
        ctx.set_default_timeout(TIMEOUT_MS)
        contexts.append(ctx)
        page = ctx.new_page()
        j = Journey(site, page, USERS.get(role, role), lang, tmp_path)
        page.on("console", lambda m: j.log.append(f"{m.type}: {m.text}"))
        return j.set_language().login()

    yield start
    for ctx in contexts:
        ctx.close()
