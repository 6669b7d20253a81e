"""态势感知 in a browser: the vendored ECharts (make) replaces the overview's SVG charts."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.web import charts

pytestmark = pytest.mark.browser
VENDORED = Path(charts.__file__).resolve().parent / "static" / charts.VENDORED


@pytest.mark.skipif(not VENDORED.is_file(), reason="console/web/static/vendor/echarts.min.js is built by make (npm ci)")
def test_overview_draws_with_echarts(journey) -> None:  # type: ignore[no-untyped-def]
    j = journey("analyst", "zh-CN")
    errors: list[str] = []
    j.page.on("pageerror", lambda e: errors.append(str(e)))
    j.goto("/")
    j.page.wait_for_function("() => window.echarts !== undefined && document.querySelector('.echart.echart-ready') !== null")
    trend = j.page.locator('.echart[data-key="trend"]')
    assert trend.locator("canvas").count() >= 1, j.log
    assert trend.locator("svg.chart").count() == 0  # the fallback was replaced
    assert j.page.evaluate("() => !!window.echarts.getInstanceByDom(document.querySelector('.echart[data-key=\"trend\"]'))")
    assert j.page.locator('.echart[data-key="protocols"] canvas').count() >= 1
    assert not errors, errors
