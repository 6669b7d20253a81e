"""监测预警 → 通报应急 in a browser: an analyst acknowledges an alert and escalates it; the regulator
issues a notice about it; the enterprise acknowledges and answers with an evidence file; the regulator
verifies and closes it; the province dashboard and the ATT&CK matrix render."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _first_alert(j) -> str:  # type: ignore[no-untyped-def]
    j.goto("/alerts/")
    href = j.page.locator("table.grid tbody a[href^='/alerts/']").first.get_attribute("href")
    assert href
    return str(href)


def test_triage_then_notice_round_trip(journey, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ent = journey("enterprise-a", "zh-CN")
    alert_url = _first_alert(ent)  # one of enterprise-a's own alerts
    alert_id = alert_url.rsplit("/", 1)[1]

    analyst = journey("analyst", "en")
    analyst.goto(alert_url)
    panel = analyst.page.locator("#triage")
    panel.locator("select[name=action]").select_option("acknowledge")
    panel.locator("input[name=note]").first.fill("seen in the browser")
    panel.get_by_role("button", name=analyst.t("triage.apply")).click()
    analyst.page.wait_for_load_state()
    assert analyst.t("triage.state.acknowledged") in analyst.page.locator("#triage h2").inner_text()
    assert "seen in the browser" in analyst.page.locator("#triage table").inner_text()

    reg = journey("regulator", "zh-CN")
    reg.goto(alert_url)
    reg.click_text(reg.t("notices.issue_for_alert"), reg.t("notices.issue_for_alert"), role="link")
    assert alert_id in reg.page.locator("input[name=alert_ids]").input_value()
    reg.page.fill("input[name=title]", "浏览器通报")
    reg.page.locator("form.stacked button[type=submit]").click()
    reg.page.wait_for_load_state()
    notice_url = reg.page.url
    assert "/notices/" in notice_url and reg.t("notices.state.issued") in reg.page.inner_text("main")

    ent.nav("nav.notices")
    ent.click_text("浏览器通报", "浏览器通报", role="link")
    ent.page.get_by_role("button", name=ent.t("notices.action.acknowledge")).click()
    ent.page.wait_for_load_state()
    evidence = tmp_path / "整改说明.txt"
    evidence.write_text("已关闭远程写入口", encoding="utf-8")
    ent.page.fill("textarea[name=remediation]", "已封堵")
    ent.page.set_input_files("input[type=file]", str(evidence))
    ent.page.get_by_role("button", name=ent.t("notices.action.answer")).click()
    ent.page.wait_for_load_state()
    assert ent.t("notices.state.answered") in ent.page.inner_text("main") and "整改说明.txt" in ent.page.inner_text("main")

    reg.goto(notice_url.replace(reg.site.base_url, ""))
    saved = reg.download(reg.page.get_by_role("link", name="整改说明.txt"))
    assert saved.read_text(encoding="utf-8") == "已关闭远程写入口"
    reg.page.get_by_role("button", name=reg.t("notices.action.close")).click()
    reg.page.wait_for_load_state()
    assert reg.t("notices.state.closed") in reg.page.locator(".notice-state").inner_text()

    reg.nav("nav.province")
    assert reg.page.locator("svg.province-map g.city.active").count() >= 1
    reg.nav("nav.matrix")
    assert reg.page.locator("a.technique.hit").count() >= 1


def test_live_alerts_appear_without_reloading(journey) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from console.web.store import get_store
    from pipeline import schema as s

    j = journey("analyst", "en")
    j.goto("/alerts/")
    toggle = j.page.locator("#live-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    j.page.wait_for_timeout(500)  # the stream takes its starting point when it connects
    org = j.site.seeded.enterprises[0].id if hasattr(j.site.seeded, "enterprises") else "ent-a"
    live = s.Event(timestamp=dt.datetime.now(dt.timezone.utc), message="live journey alert",
                   event=s.EventInfo(kind="alert", dataset="qinling.alert", severity=99, id="al-journey-live"),
                   organization=s.Organization(id=org), rule=s.RuleInfo(id="qn-journey", name="Journey live rule"))
    with j.site.app.app_context():
        get_store().write([live])
    j.page.locator("#live-al-journey-live").wait_for(timeout=10_000)
    assert "live journey alert" in j.page.locator("tbody tr").first.inner_text()
    toggle.click()  # off again, remembered in this browser
    assert toggle.get_attribute("aria-pressed") == "false"
