"""Read-only journeys at 1366×768: an enterprise user signs in and lands on its dashboard (企业看板), whose
numbers are the API's; an analyst opens 事件检索 and narrows the events by clicking a facet value."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser  # every journey file says so (`make journeys` selects -m browser)
LAPTOP = {"width": 1366, "height": 768}


def fits(page) -> bool:  # type: ignore[no-untyped-def]
    """No horizontal scrolling at this width."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_enterprise_user_lands_on_its_dashboard(journey) -> None:  # type: ignore[no-untyped-def]
    j = journey("enterprise-a", "zh-CN")
    j.page.set_viewport_size(LAPTOP)
    j.goto("/")
    assert j.page.url.endswith("/dashboard/")
    assert j.page.locator("h1").inner_text().startswith(j.t("dashboard.title"))
    api = j.page.request.get(j.site.url("/api/v1/dashboard")).json()  # the same session, the same enterprise
    assert api["alerts"]["total"] > 0
    shown = {m: j.page.locator(f"[data-metric='{m}']").first.inner_text().strip()
             for m in ("alerts.open", "assets.total", "notices.open", "risk.score")}
    assert shown["alerts.open"] == str(api["alerts"]["open"]) and shown["assets.total"] == str(api["assets"]["total"])
    assert shown["notices.open"] == str(api["notices"]["open"])
    assert float(shown["risk.score"]) == pytest.approx(api["risk"]["score"], abs=0.05)
    assert j.page.locator(".latest-alert").count() == len(api["alerts"]["latest"]) > 0
    assert j.page.locator(".card").first.is_visible() and fits(j.page)
    j.page.screenshot(path=str(j.downloads / "dashboard.png"), full_page=True)
    j.nav("nav.dashboard")  # its own nav link leads back here
    assert j.page.url.endswith("/dashboard/")


def test_analyst_filters_events_by_clicking_a_facet(journey) -> None:  # type: ignore[no-untyped-def]
    j = journey("analyst", "en")
    j.page.set_viewport_size(LAPTOP)
    j.nav("nav.events")
    assert j.page.locator("h1").inner_text() == j.t("events.title")
    before = int(re.search(r"(\d+)", j.page.locator(".pager-total").first.inner_text()).group(1))  # type: ignore[union-attr]
    assert fits(j.page)
    facet = j.page.locator("section.facet[data-field='destination.ip'] li a.facet-value").first
    value = facet.get_attribute("data-value")
    count = int(facet.locator("xpath=following-sibling::span[@class='count']").inner_text())
    assert value and 0 < count <= before
    with j.page.expect_navigation():
        facet.click()
    assert f"dst={value}" in j.page.url
    after = int(re.search(r"(\d+)", j.page.locator(".pager-total").first.inner_text()).group(1))  # type: ignore[union-attr]
    assert after == count
    chip = j.page.locator(".active-chip[data-arg='dst']")
    assert value in chip.inner_text()
    destinations = j.page.eval_on_selector_all("tr.event-row td:nth-child(5)", "tds => tds.map(td => td.innerText)")
    assert destinations and all(d.split(":")[0] == value or d.startswith(f"[{value}]") for d in destinations)
    # the facet panel now counts within the filter: the destination facet holds just that value
    assert j.page.locator("section.facet[data-field='destination.ip'] li.active").inner_text().startswith(value)
    j.page.screenshot(path=str(j.downloads / "events.png"), full_page=False)
    chip.get_by_role("link").click()  # removing the filter brings every event back
    j.page.wait_for_load_state()
    assert int(re.search(r"(\d+)", j.page.locator(".pager-total").first.inner_text()).group(1)) == before  # type: ignore[union-attr]
