"""ECharts on 态势感知 and the province dashboard: the vendored library (built by make), the data blocks, the SVG fallback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web import charts
from tests.console.conftest import close_app, login, make_app

VENDORED = Path(charts.__file__).resolve().parent / "static" / charts.VENDORED


def data_block(html: str, block_id: str) -> dict:  # type: ignore[type-arg]
    m = re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script>', html, re.S)
    assert m, f"no #{block_id} data block"
    return json.loads(m.group(1))


def test_static_route_serves_the_vendored_echarts(client: FlaskClient) -> None:
    if not VENDORED.is_file():
        pytest.skip("console/web/static/vendor/echarts.min.js is built by make (npm ci)")
    r = client.get("/static/vendor/echarts.min.js")
    assert r.status_code == 200 and "javascript" in r.mimetype
    assert b"echarts" in r.get_data()[:4096].lower()
    r.close()


def test_overview_renders_the_data_block_svg_and_scripts(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    d = data_block(html, "overview-chart-data")
    trend = d["trend"]
    assert trend["levels"] == ["critical", "high", "medium", "low"] and trend["labels"]
    assert all(len(trend["series"][lv]) == len(trend["labels"]) for lv in trend["levels"])
    assert sum(sum(v) for v in trend["series"].values()) > 0
    assert d["protocols"]["items"] and all(isinstance(n, int) for _, n in d["protocols"]["items"])
    # the SVG stays inside the chart's container: what shows without JavaScript or ECharts
    assert re.search(r'<div class="echart" data-chart="severity-bars"[^>]*>\s*<svg class="chart"', html)
    assert '<script src="/static/charts.js" defer></script>' in html
    assert ('<script src="/static/vendor/echarts.min.js" defer></script>' in html) == VENDORED.is_file()


def test_without_the_vendored_file_pages_keep_the_svg(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charts, "VENDORED", Path("vendor") / "absent.min.js")
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "echarts.min.js" not in html and '<svg class="chart"' in html


@pytest.fixture
def open_app(db_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(db_path, ORGANIZATION=None)
    yield app
    close_app(app)


def test_province_trend_data_block(open_app: Flask) -> None:
    html = login(open_app.test_client(), "regulator").get("/province/").get_data(as_text=True)
    trend = data_block(html, "province-chart-data")["trend"]
    assert len(trend["labels"]) == 14 and all(len(trend["series"][lv]) == 14 for lv in trend["levels"])
    assert re.search(r'<div class="echart" data-chart="severity-bars"[^>]*>\s*<svg class="trend"', html)
    assert '<script src="/static/charts.js" defer></script>' in html
