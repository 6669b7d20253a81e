"""风险 pages: the scores shown are risk_report's, per role and tenancy, with readable breakdowns and trends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.console.analysis_data import ORGS, QN_PLC, analysis_app, expected_report
from tests.console.conftest import close_app, login


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Iterator[Flask]:
    app = analysis_app(db_path, tmp_path)
    yield app
    close_app(app)


def page(app: Flask, username: str, url: str, lang: str = "en", status: int = 200) -> str:
    c = app.test_client()
    c.set_cookie("lang", lang)
    login(c, username)
    resp = c.get(url)
    assert resp.status_code == status, (url, resp.status_code)
    return resp.get_data(as_text=True)


def shown(html: str) -> dict[str, float]:
    return {s: float(v) for s, v in re.findall(r'<tr class="risk-row" data-subject="([^"]+)" data-score="([^"]+)"', html)}


def scores(report: dict, kind: str) -> dict[str, float]:
    return {s["subject"]: s["score"] for s in report[kind]}


@pytest.mark.parametrize("username", ["admin", "regulator", "analyst"])
def test_all_enterprise_roles_see_risk_reports_numbers(app: Flask, db_path: Path, username: str) -> None:
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]))
    assert set(scores(want, "enterprises")) == {"acme", "globex"}
    for view, kind in (("enterprises", "enterprises"), ("assets", "assets"), ("cities", "cities"), ("industries", "industries")):
        assert shown(page(app, username, f"/risk/?view={view}")) == scores(want, kind), view
    body = page(app, username, "/risk/?view=cities", lang="zh-CN")
    assert "榆林市" in body and "宝鸡市" in body and "0.5 × 风险最高企业" in body


def test_enterprise_user_sees_only_its_own(app: Flask, db_path: Path) -> None:
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]), org="acme")
    body = page(app, "acme-user", "/risk/?org=globex")
    assert shown(body) == scores(want, "enterprises") == {"acme": scores(want, "enterprises")["acme"]}
    assets = page(app, "acme-user", "/risk/?view=assets&org=globex")
    assert shown(assets) == scores(want, "assets") and "globex:" not in assets
    cities = page(app, "acme-user", "/risk/?view=cities")  # comparing enterprises names others: not shown
    assert shown(cities) == {} and "Globex" not in cities and "宝鸡" not in cities
    globex = page(app, "globex-user", "/risk/?view=assets&org=acme")
    assert "Acme" not in globex and "acme:" not in globex and "10.0.0." not in globex
    page(app, "auditor", "/risk/", status=403)


def test_breakdown_is_readable_in_both_languages_and_has_a_trend(app: Flask, db_path: Path) -> None:
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]), org="acme")
    plc = next(s for s in want["assets"] if s["subject"] == f"acme:{QN_PLC}")
    en = page(app, "acme-user", "/risk/?view=assets")
    zh = page(app, "acme-user", "/risk/?view=assets", lang="zh-CN")
    row_en = re.search(rf'data-subject="acme:{QN_PLC}".*?</tr>', en, re.S).group(0)  # type: ignore[union-attr]
    row_zh = re.search(rf'data-subject="acme:{QN_PLC}".*?</tr>', zh, re.S).group(0)  # type: ignore[union-attr]
    for c in plc["breakdown"]:
        assert f'data-key="{c["key"]}"' in row_en and c["reason_en"] in row_en and c["reason_zh"] in row_zh
        assert f"+{c['points']:.1f}" in row_en
    points = re.search(r'<polyline points="([^"]+)"', row_en).group(1).split()  # type: ignore[union-attr]
    assert len(points) == 14 == len(plc["trend"])
    last = float(points[-1].split(",")[1])
    assert abs(last - (24 - plc["trend"][-1]["score"] / 100 * 24)) < 0.06
    # the asset page shows the same score
    detail = page(app, "acme-user", f"/assets/acme:{QN_PLC}")
    assert f'data-score="{plc["score"]}"' in detail
    assert ORGS["acme"]["name"] in page(app, "acme-user", "/risk/")
