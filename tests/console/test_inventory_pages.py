"""资产 pages: identity with evidence, vulnerability findings, the communication map, one stored event."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from console.web.inventory import layout
from detection.commap import build_commap
from detection.zones import ZoneMap
from tests.console.analysis_data import QN_PLC, analysis_app
from tests.console.conftest import close_app, login
from tests.store import sample_data as sd


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Iterator[Flask]:
    zones = tmp_path / "zones.toml"
    zones.write_text('[[zones]]\nname = "control"\ncidrs = ["10.0.0.0/28"]\nlevel = 1\n\n'
                     '[[zones]]\nname = "supervisory"\ncidrs = ["10.0.0.16/28"]\nlevel = 3\n')
    app = analysis_app(db_path, tmp_path, ZONES=str(zones))
    yield app
    close_app(app)


def page(app: Flask, username: str, url: str, lang: str = "en", status: int = 200) -> str:
    c = app.test_client()
    c.set_cookie("lang", lang)
    login(c, username)
    resp = c.get(url)
    assert resp.status_code == status, (url, resp.status_code)
    return resp.get_data(as_text=True)


def rows(html: str, cls: str) -> list[str]:
    return re.findall(rf'<tr class="{cls}"[^>]*>(.*?)</tr>', html, re.S)


def test_inventory_list_shows_identity_fields(app: Flask) -> None:
    body = page(app, "acme-user", "/assets/")
    plc = next(r for r in rows(body, "asset-row") if QN_PLC in r)
    for expected in ("Qinling Testbed", "QN-PLC", "1.0", "SN-0042", ">plc<", "10.0.0.0/24", "opcua_security_none", "modbus, opcua"):
        assert expected in plc, expected
    zh = page(app, "acme-user", "/assets/", lang="zh-CN")
    assert "秦岭测试" in next(r for r in rows(zh, "asset-row") if QN_PLC in r)
    assert "GLOBEX" not in body and "192.168.7." not in body


def test_asset_detail_shows_each_value_with_its_evidence_findings_and_risk(app: Flask) -> None:
    body = page(app, "acme-user", f"/assets/acme:{QN_PLC}")
    evidence = rows(body, "evidence-row")
    assert len(evidence) == 4
    serial = next(r for r in evidence if "SN-0042" in r)
    assert "opcua.server.serial" in serial and "attack.pcap #5" in serial
    assert 'href="/inventory/event?id=ev-acme-1-req"' in serial
    finding = rows(body, "finding-row")
    assert len(finding) == 1 and "CVE-2026-0001" in finding[0] and "9.8" in finding[0] and "Update to 1.1" in finding[0]
    assert 'href="https://example.invalid/qnsa-2026-0001"' in finding[0]
    risk = body.split('id="asset-risk"')[1].split("</section>")[0]
    assert "max CVSS 9.8" in risk and "OPC UA endpoint with security mode None" in risk and "<polyline" in risk
    event = page(app, "acme-user", "/inventory/event?id=ev-acme-1-req")
    assert "write_single_register" in event and "attack.pcap" in event
    page(app, "globex-user", "/inventory/event?id=ev-acme-1-req", status=404)
    page(app, "globex-user", f"/assets/acme:{QN_PLC}", status=404)


def test_commap_draws_zones_as_columns_and_flags_crossings(app: Flask) -> None:
    body = page(app, "acme-user", "/inventory/map")
    assert "<svg" in body and "<script" not in body.split("<main")[1].replace("&lt;script&gt;", "")
    heads = re.findall(r'<text class="zone-head"[^>]*>([^<]+)</text>', body)
    assert heads == ["control", "supervisory", "10.0.0.0/24"]  # level 1, level 3, then zones without a level
    flagged = rows(body, "flagged-edge")
    hmi = next(r for r in flagged if sd.HMI in r)
    assert "supervisory → control" in hmi and "cross-zone" in hmi and "Purdue level skip" in hmi
    assert body.count('class="edge crossing') == 2  # HMI and the rogue host each write to the PLC from another zone
    assert "GLOBEX" not in body and "192.168.7." not in body
    assert "192.168.7.1" in page(app, "regulator", "/inventory/map")
    page(app, "auditor", "/inventory/map", status=403)


def test_layout_is_deterministic_and_orders_columns_by_purdue_level() -> None:
    events = sd.acme()[0]
    zones = ZoneMap.from_mapping({"zones": [{"name": "it", "cidrs": ["10.0.0.64/26"], "level": 4},
                                            {"name": "plc", "cidrs": ["10.0.0.0/28"], "level": 1}]})
    graph = build_commap(events, sd.assets()[:3], zones)
    one, two = layout(graph), layout(build_commap(list(reversed(events)), sd.assets()[:3], zones))
    assert one == two
    assert [c["zone"]["name"] for c in one["columns"]] == ["plc", "it", "10.0.0.0/24"]  # levels 1, 4, then unlevelled
    xs = {n["ip"]: n["x"] for c in one["columns"] for n in c["nodes"]}
    assert xs[sd.PLC] < xs[sd.ROGUE]
    assert all(line["crossing"] for line in one["lines"])


def test_findings_page_sorts_by_cvss_and_explains_a_missing_index(app: Flask, db_path: Path) -> None:
    body = page(app, "acme-user", "/inventory/findings")
    found = rows(body, "finding-row")
    assert len(found) == 1 and QN_PLC in found[0] and "CVE-2026-0001" in found[0]
    assert "sort=cvss" in body
    assert rows(page(app, "globex-user", "/inventory/findings"), "finding-row") == []
    page(app, "auditor", "/inventory/findings", status=403)
    app.config["CSAF_INDEX"] = str(db_path.parent / "nowhere.json")
    body = page(app, "acme-user", "/inventory/findings")
    assert 'id="no-index"' in body and "qinling vulns import DIR" in body
    assert "qinling vulns import" in page(app, "acme-user", "/inventory/findings", lang="zh-CN")
