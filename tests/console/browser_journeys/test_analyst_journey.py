"""A skeleton journey other journeys copy: an analyst signs in (zh-CN and English), goes to the alert
list by the navigation, opens an alert by clicking its text, and comes back by the breadcrumb."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser  # every journey file says so (`make journeys` selects -m browser)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_analyst_opens_an_alert(journey, lang: str) -> None:  # type: ignore[no-untyped-def]
    j = journey("analyst", lang)
    assert j.page.locator("html").get_attribute("lang") == lang
    j.nav("nav.alerts")
    assert j.page.locator("h1").inner_text() == j.t("alerts.title")
    first = j.page.locator("table.grid tbody a[href^='/alerts/']").first
    name = first.inner_text()
    j.click_text(name, name, role="link", exact=True)
    assert "/alerts/" in j.page.url and j.page.locator("h1").inner_text().endswith(name)
    j.click_text(j.t("alerts.title"), j.t("alerts.title"), role="link", exact=True)
    assert j.page.locator("h1").inner_text() == j.t("alerts.title")
