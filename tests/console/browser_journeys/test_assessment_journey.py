"""检查评估 in a browser: an enterprise user answers the self-assessment (keeping what the traffic
pre-filled), saves a draft, submits it, reads the score and downloads the PDF report."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from console.commands.demo import ENTERPRISES

pytestmark = pytest.mark.browser

# the items left unanswered by the pre-fill get these answers, in order
ANSWERS = ("yes", "partly", "no")


def _checked(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """item id -> the answer whose radio button is checked."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#assessment-form input[type=radio]:checked')]
          .map(r => [r.name.replace(/^answer-/, ''), r.value]))""")


def test_enterprise_completes_a_self_assessment(journey) -> None:  # type: ignore[no-untyped-def]
    j = journey("enterprise-a", "zh-CN")
    name = next(e.name for e in ENTERPRISES if e.username == "enterprise-a")  # 某石化有限公司
    page = j.page

    j.nav("nav.assessment")
    assert page.url.endswith("/assessment/")
    assert name in page.locator("h1").inner_text()
    prefilled = _checked(page)
    rows = page.locator("#assessment-form tr.item")
    ids = [str(rid).removeprefix("item-") for rid in rows.evaluate_all("rs => rs.map(r => r.id)")]
    open_items = [i for i in ids if i not in prefilled]
    assert len(ids) > len(open_items) >= len(ANSWERS), (prefilled, ids)  # some pre-filled from the traffic, some open

    chosen = dict(zip(open_items, ANSWERS))
    for item, answer in chosen.items():
        page.locator(f"input[name='answer-{item}'][value='{answer}']").check()
    first = open_items[0]
    page.fill(f"textarea[name='note-{first}']", "已按《工业控制系统信息安全防护指南》整改")

    with page.expect_navigation():
        page.locator("#save-draft").click()
    assert page.url.endswith("/assessment/")
    assert j.t("assessment.saved") in page.locator(".flash").inner_text()
    assert _checked(page) == {**prefilled, **chosen}  # the draft kept our answers and the pre-fill
    assert page.locator(f"textarea[name='note-{first}']").input_value().startswith("已按")

    with page.expect_navigation():
        page.locator("#submit-assessment").click()
    assert "/assessment/report" in page.url
    assert j.t("assessment.submitted") in page.locator(".flash").inner_text()
    assert name in page.locator(".enterprise-name").inner_text()
    total = page.locator("#total-score").inner_text().strip()
    assert re.fullmatch(r"\d+(\.\d+)?", total), total
    assert 0 <= float(total) <= 100

    pdf = j.download(page.locator("#pdf-link"))
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF"), body[:20]
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils, make apt) reads the PDF's text")
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True,
                          timeout=60).stdout.decode("utf-8")
    assert name in text, text[:500]
    assert total in text, text[:500]
