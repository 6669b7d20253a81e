"""A skeleton journey other journeys copy: an analyst signs in (zh-CN and English), goes to the alert
list by the navigation, opens an alert by clicking its text, and comes back by the breadcrumb."""

from __future__ import annotations

import re

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


def test_analyst_triages_an_alert_to_closed(journey) -> None:  # type: ignore[no-untyped-def]
    """Acknowledge, then close as a true positive with a note: the state, its history and the list's
    closed filter all say so."""
    j = journey("analyst", "en")
    # The seeded site is shared by the session's journeys: close an alert none of the others uses
    # (they pick enterprise-a's first alert), the last one of enterprise-b.
    j.goto("/alerts/?org=ent-b")
    hrefs = j.page.eval_on_selector_all("table.grid tbody a[href^='/alerts/']", "links => links.map(a => a.getAttribute('href'))")
    details = [h for h in hrefs if re.fullmatch(r"/alerts/[0-9a-f]+", h or "")]  # not the filter links
    assert details
    href = details[-1]
    assert href
    j.goto(href)
    panel = j.page.locator("#triage")
    for action, note in (("acknowledge", "looking at it"), ("close_tp", "confirmed: attacker write, PLC restored")):
        panel.locator("select[name=action]").select_option(action)
        panel.locator("input[name=note]").first.fill(note)
        panel.get_by_role("button", name=j.t("triage.apply")).click()
        j.page.wait_for_load_state()
        panel = j.page.locator("#triage")
    assert j.t("triage.state.resolved") in panel.locator("h2").inner_text()
    history = panel.locator("table").inner_text()
    assert "looking at it" in history and "confirmed: attacker write, PLC restored" in history
    alert_id = href.rsplit("/", 1)[1]
    j.goto("/alerts/?triage=closed")
    assert j.page.locator(f"table.grid tbody a[href='/alerts/{alert_id}']").count() >= 1
    j.goto("/alerts/?triage=open")
    assert j.page.locator(f"table.grid tbody a[href='/alerts/{alert_id}']").count() == 0
