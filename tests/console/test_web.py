"""The console's pages and API: content in both languages, filters, pages, evidence, tenancy, errors, escaping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from console.web import DEFAULTS, create_app
from console.web.auth import get_db
from console.web.formatting import page_numbers
from console.web.i18n import CATALOG_DIR, LANGUAGES, catalog
from tests.console.conftest import FAST_ARGON2, close_app, login, make_app, seed_accounts
from tests.store import sample_data as sd

WEB = Path(__file__).resolve().parents[2] / "console" / "web"
HOSTILE = sd.HOSTILE
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def rows(html: str, cls: str = "alert-row") -> list[str]:
    return re.findall(rf'<tr class="{cls}">(.*?)</tr>', html, re.S)


def text(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.get_data(as_text=True)


# ---------------------------------------------------------------- factory, i18n


def test_factory_connects_nothing_until_a_request(tmp_path: Path) -> None:
    db = tmp_path / "later.sqlite"
    app = create_app({"TESTING": True, "STORE_URL": f"sqlite:///{db}", "ARGON2": FAST_ARGON2})
    accounts = tmp_path / "later-console.sqlite"  # the console database's default place: beside the store
    assert not db.exists() and not accounts.exists()
    assert app.test_client().get("/api/v1/alerts").status_code == 401
    assert accounts.exists() and not db.exists()  # refused before the store was needed
    token = get_db(app).create_token(get_db(app).add_user("script", "long enough pw", "analyst").username)
    assert app.test_client().get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert db.exists()
    close_app(app)


def test_factory_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> None:
    monkeypatch.setenv("QINLING_STORE_URL", f"sqlite:///{db_path}")
    monkeypatch.setenv("QINLING_LANGUAGE", "en")
    monkeypatch.setenv("QINLING_ORGANIZATION", "globex")
    monkeypatch.setenv("QINLING_CONSOLE_DB", str(db_path.parent / "accounts.sqlite"))
    monkeypatch.setenv("QINLING_ARGON2", '{"time_cost": 1, "memory_cost": 8, "parallelism": 1}')
    app = create_app()
    assert app.config["LANGUAGE"] == "en" and app.config["PAGE_SIZE"] == DEFAULTS["PAGE_SIZE"]
    body = text(login(app.test_client(), "analyst").get("/alerts/"))
    assert "GLOBEX-ONLY" in body and "Monitoring &amp; early warning" in body
    close_app(app)


def test_catalogs_have_the_same_keys_and_cover_every_template_key() -> None:
    catalogs = {lang: catalog(lang) for lang in LANGUAGES}  # main catalog + every area catalog
    assert set(catalogs["zh-CN"]) == set(catalogs["en"])
    for lang in LANGUAGES:  # each area catalog exists in both languages
        areas = {p.name.removesuffix(f".{lang}.json") for p in CATALOG_DIR.glob(f"*.{lang}.json")}
        assert areas == {p.name.removesuffix(f".{LANGUAGES[0]}.json") for p in CATALOG_DIR.glob(f"*.{LANGUAGES[0]}.json")}
    used: set[str] = set()
    for path in [*WEB.glob("templates/**/*.html"), *WEB.glob("*.py")]:
        used |= set(re.findall(r"""\b_\(\s*["']([^"']+)["']""", path.read_text(encoding="utf-8")))
    assert used, "no _() keys found"
    static_keys = {k for k in used if not k.endswith(".")}
    assert static_keys <= set(catalogs["en"]), static_keys - set(catalogs["en"])
    # keys built at run time
    for prefix, names in (("severity.", ("critical", "high", "medium", "low")), ("lang.", LANGUAGES),
                          ("unit.", ("day", "hour", "minute", "second")),
                          ("role.", ("admin", "regulator", "analyst", "enterprise", "auditor")),
                          ("audit.outcome.", ("success", "failure", "locked")),
                          ("users.done.", ("disable", "enable", "passwd"))):
        assert {prefix + n for n in names} <= set(catalogs["en"])
    for code in (400, 401, 403, 404, 405, 415, 429, 500, 503):
        assert {f"error.{code}.title", f"error.{code}.message"} <= set(catalogs["en"])
    for lang, cat in catalogs.items():
        for key, value in cat.items():
            assert value.strip(), f"{lang}:{key} is empty"
            assert "<" not in value, f"{lang}:{key}: catalogs are plain text"


def test_chinese_by_default_with_planning_terms(client: FlaskClient) -> None:
    body = text(client.get("/"))
    assert '<html lang="zh-CN">' in body
    for term in ("Qinling 工业互联网安全态势感知平台", "态势感知", "监测预警", "资产", "严重", "高", "中", "低"):
        assert term in body
    assert "检查评估" in body  # 检查评估 pages exist now (self-assessment, captures); 通报应急 is the notices area's


def test_language_switch_by_query_and_cookie(client: FlaskClient) -> None:
    resp = client.get("/alerts/?lang=en")
    assert "Monitoring &amp; early warning" in text(resp)
    assert "lang=en" in resp.headers["Set-Cookie"]
    assert '<html lang="en">' in text(client.get("/assets/"))  # the cookie remembers
    switch = client.get("/lang/zh-CN?next=/assets/%3Fq%3Dwincc")
    assert switch.status_code == 303 and switch.headers["Location"] == "/assets/?q=wincc"
    assert "资产" in text(client.get("/assets/"))


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil"])
def test_language_switch_is_not_an_open_redirect(client: FlaskClient, target: str) -> None:
    resp = client.get("/lang/en", query_string={"next": target})
    assert resp.headers["Location"] == "/"


def test_unknown_language_falls_back(client: FlaskClient) -> None:
    assert '<html lang="zh-CN">' in text(client.get("/?lang=fr"))


# ---------------------------------------------------------------- overview


def test_overview_counts_and_chart(client_en: FlaskClient) -> None:
    body = text(client_en.get("/"))
    assert "Situational awareness" in body
    assert re.search(r'card-value">60<.*?Alerts', body, re.S)
    assert body.count('<span class="card-value">15</span>') == 4
    assert "Modbus write from unapproved host" in body and "qn-modbus-0001" in body
    assert "<svg" in body and 'class="bar-critical"' in body and "15 min per bar" in body
    assert "GLOBEX" not in body


def test_overview_on_an_empty_store(tmp_path: Path) -> None:
    seed_accounts(tmp_path / "accounts.sqlite")
    app = create_app({"TESTING": True, "STORE_URL": f"sqlite:///{tmp_path / 'e.sqlite'}", "LANGUAGE": "en",
                      "CONSOLE_DB": str(tmp_path / "accounts.sqlite"), "ARGON2": FAST_ARGON2})
    body = text(login(app.test_client(), "analyst").get("/"))
    assert "No alerts yet" in body and "<svg" not in body
    close_app(app)


# ---------------------------------------------------------------- alert list


def test_alert_list_newest_first_with_badges(client: FlaskClient) -> None:
    body = text(client.get("/alerts/"))
    found = rows(body)
    assert len(found) == 50
    assert "2024-05-01 12:55:00" in found[0] and "2024-05-01 12:50:00" in found[1]
    assert 'class="sev sev-low">低<' in found[0] and 'sev sev-critical">严重<' in found[3]
    assert "共 60 条，第 1/2 页" in body


def test_alert_list_pagination(client_en: FlaskClient) -> None:
    body = text(client_en.get("/alerts/?size=25&page=2"))
    found = rows(body)
    assert len(found) == 25 and "al-acme-034" in found[0]
    assert "60 in all, page 2 of 3" in body
    assert 'href="/alerts/?size=25&amp;page=1" rel="prev"' in body
    assert 'href="/alerts/?size=25&amp;page=3" rel="next"' in body
    assert '<span class="current" aria-current="page">2</span>' in body
    last = text(client_en.get("/alerts/?size=25&page=3"))
    assert len(rows(last)) == 10 and '<span class="disabled">Next</span>' in last


def test_pagination_keeps_filters(client_en: FlaskClient) -> None:
    body = text(client_en.get("/alerts/?protocol=modbus&size=10"))
    assert 'href="/alerts/?protocol=modbus&amp;size=10&amp;page=2"' in body


@pytest.mark.parametrize(
    "query, expected",
    [
        ("severity=critical", 15),
        ("severity=critical&severity=high", 30),
        ("protocol=s7comm", 6),
        ("asset=10.0.0.20", 30),  # either side
        ("asset=10.0.0.10", 60),
        ("rule=qn-modbus-0003", 20),
        ("technique=T0836", 20),
        ("from=2024-05-01T09:00&to=2024-05-01T10:00", 12),
        ("from=2024-05-01T12:00:00", 12),
        ("q=exception+BURST", 20),
        ("q=10.0.0.66&severity=low", 0),
        ("q=10.0.0.66&severity=medium", 15),
        ("severity=&protocol=&q=", 60),  # an empty form
    ],
)
def test_alert_filters(client: FlaskClient, query: str, expected: int) -> None:
    api = client.get(f"/api/v1/alerts?{query}").get_json()
    assert api["total"] == expected
    body = text(client.get(f"/alerts/?{query}"))
    assert len(rows(body)) == min(expected, 50)
    if expected == 0:
        assert "没有符合筛选条件的告警" in body


def test_time_filter_uses_the_console_zone(db_path: Path) -> None:
    app = make_app(db_path, TIMEZONE="Asia/Shanghai")
    c = login(app.test_client(), "analyst")
    assert c.get("/api/v1/alerts?from=2024-05-01T17:00&to=2024-05-01T18:00").get_json()["total"] == 12
    assert "2024-05-01 20:55:00" in text(c.get("/alerts/"))
    close_app(app)


def test_filter_form_is_refilled(client: FlaskClient) -> None:
    body = text(client.get("/alerts/?severity=high&protocol=modbus&asset=10.0.0.66&q=burst"))
    assert '<option value="high" selected>' in body
    assert '<option value="modbus" selected>' in body
    assert 'name="asset" value="10.0.0.66"' in body and 'name="q" value="burst"' in body


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("page=x", "page=x"),
        ("page=0", "page=0"),
        ("size=100000", "size=100000"),
        ("severity=urgent", "critical"),
        ("asset=not-an-ip", "asset=not-an-ip"),
        ("from=yesterday", "from=yesterday"),
        ("from=2024-05-02&to=2024-05-01", "end time"),
    ],
)
def test_bad_arguments_are_400_with_a_reason(client_en: FlaskClient, query: str, fragment: str) -> None:
    html = client_en.get(f"/alerts/?{query}")
    assert html.status_code == 400 and fragment in text(html) and "Bad request" in text(html)
    api = client_en.get(f"/api/v1/alerts?{query}")
    assert api.status_code == 400
    assert api.get_json()["error"] == "bad_request" and fragment in api.get_json()["message"]


# ---------------------------------------------------------------- alert detail and evidence


def test_alert_detail_shows_every_field_and_the_evidence(client_en: FlaskClient) -> None:
    body = text(client_en.get("/alerts/al-acme-004"))
    for expected in (
        "Modbus exception burst", "qn-modbus-0002", "Modbus exception burst (test rule)",
        "10.0.0.66:40004", "10.0.0.10:502", "2024-05-01 08:20:00.000", "sev-critical",
        "T0814", "Denial of Service", "MITRE ATT&amp;CK for ICS",
        "attack.pcap", sd.SHA, "9, 10", "site=acme-plant", "Acme",
    ):
        assert expected in body, expected
    evidence = rows(body, "evidence-row")
    assert len(evidence) == 2
    request, response = evidence
    assert ">9<" in request and "10.0.0.66:40004 → 10.0.0.10:502" in request
    assert "write_single_register" in request and ">104<" in request and ">1004<" in request and ">request<" in request
    assert ">10<" in response and "2 illegal_data_address" in response and "2024-05-01 08:20:00.012" in response


def test_alert_detail_technique_names_for_several(client_en: FlaskClient) -> None:
    body = text(client_en.get("/alerts/al-acme-003"))
    assert "Unauthorized Command Message" in body and "Modify Parameter" in body
    assert 'href="/alerts/?technique=T0836"' in body


def test_missing_evidence_is_reported(db_path: Path) -> None:
    import msgspec

    from pipeline.store.sqlite import SQLiteStore

    with SQLiteStore(db_path) as store:
        alert = store.get("alerts", "al-acme-001")
        assert alert and alert.evidence
        ev = msgspec.structs.replace(alert.evidence, event_ids=[*alert.evidence.event_ids, "ev-gone", "ev-globex-0-req"])  # type: ignore[misc]
        store.write([msgspec.structs.replace(alert, evidence=ev)])
    app = make_app(db_path, LANGUAGE="en")
    body = text(login(app.test_client(), "analyst").get("/alerts/al-acme-001"))
    assert len(rows(body, "evidence-row")) == 2  # globex's event is not shown to acme
    assert "2 triggering events are missing" in body and "ev-gone" in body
    close_app(app)


def test_alert_detail_404(client: FlaskClient) -> None:
    resp = client.get("/alerts/no-such-alert")
    assert resp.status_code == 404 and "未找到" in text(resp) and resp.mimetype == "text/html"


# ---------------------------------------------------------------- assets


def test_assets_list(client_en: FlaskClient) -> None:
    body = text(client_en.get("/assets/"))
    found = rows(body, "asset-row")
    assert len(found) == 3
    plc = found[0]
    for expected in ("10.0.0.10", "00:1d:9c:c7:b0:10", "modbus_slave", "modbus, s7comm", "M340", "v3.20",
                     "2024-05-01 08:00:00", "2024-05-01 12:55:00", ">120<"):
        assert expected in plc, expected
    assert 'href="/alerts/?asset=10.0.0.10"' in plc and 'href="/assets/acme:10.0.0.10"' in plc
    assert "GLOBEX" not in body


def test_assets_filters_and_pages(client_en: FlaskClient) -> None:
    assert len(rows(text(client_en.get("/assets/?role=modbus_master")), "asset-row")) == 2
    assert len(rows(text(client_en.get("/assets/?protocol=s7comm")), "asset-row")) == 1
    assert len(rows(text(client_en.get("/assets/?q=wincc")), "asset-row")) == 1
    body = text(client_en.get("/assets/?size=2&page=2"))
    assert len(rows(body, "asset-row")) == 1 and "3 in all, page 2 of 2" in body


def test_asset_detail(client_en: FlaskClient) -> None:
    body = text(client_en.get("/assets/acme:10.0.0.20"))
    assert "WinCC" in body and "Siemens" in body and "modbus_master" in body
    assert "Alerts involving this asset (30)" in body
    assert client_en.get("/assets/globex:192.168.7.1").status_code == 404


# ---------------------------------------------------------------- API


def test_api_alerts(client: FlaskClient) -> None:
    resp = client.get("/api/v1/alerts?size=5&page=2&severity=high")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    data = resp.get_json()
    assert (data["total"], data["page"], data["size"], data["pages"]) == (15, 2, 5, 3)
    assert [a["event"]["severity"] for a in data["items"]] == [73] * 5
    assert data["items"][0]["@timestamp"].startswith("2024-05-01T")


def test_api_alert_and_evidence(client: FlaskClient) -> None:
    alert = client.get("/api/v1/alerts/al-acme-004").get_json()
    assert alert["rule"]["id"] == "qn-modbus-0002" and alert["evidence"]["frames"] == [9, 10]
    ev = client.get("/api/v1/alerts/al-acme-004/evidence").get_json()
    assert [e["event"]["id"] for e in ev["events"]] == ["ev-acme-4-req", "ev-acme-4-resp"] and ev["missing"] == []


def test_api_assets(client: FlaskClient) -> None:
    data = client.get("/api/v1/assets").get_json()
    assert data["total"] == 3 and data["items"][0]["vendor"] == HOSTILE  # JSON carries the raw value
    assert client.get("/api/v1/assets/acme:10.0.0.66").get_json()["ip"] == "10.0.0.66"
    assert client.get("/api/v1/overview").get_json()["by_severity"] == {"critical": 15, "high": 15, "medium": 15, "low": 15}


@pytest.mark.parametrize("url", ["/api/v1/alerts/nope", "/api/v1/assets/nope", "/api/v1/nothing-here", "/api/v1/alerts/al-globex-000"])
def test_api_404_is_json(client_en: FlaskClient, url: str) -> None:
    resp = client_en.get(url)
    assert resp.status_code == 404 and resp.mimetype == "application/json"
    assert resp.get_json() == {"error": "not_found", "message": "No such page or record, or it belongs to another organization."}


def test_api_405_is_json(client: FlaskClient) -> None:
    resp = client.post("/api/v1/alerts")
    assert resp.status_code == 405 and resp.get_json()["error"] == "method_not_allowed"


# ---------------------------------------------------------------- tenancy


def test_tenant_never_sees_another_enterprise(client: FlaskClient) -> None:
    # markers only globex's documents contain (the URLs themselves may echo what they ask for)
    for url in ("/", "/alerts/?size=500", "/alerts/?q=secret", "/alerts/?asset=192.168.7.7", "/assets/",
                "/api/v1/alerts?size=500", "/api/v1/assets", "/api/v1/overview", "/alerts/?rule=qn-globex-secret",
                "/api/v1/alerts?q=secret", "/api/v1/alerts?asset=192.168.7.7"):
        body = text(client.get(url))
        assert "GLOBEX-ONLY" not in body and "al-globex" not in body and "192.168.7.1" not in body, url
    assert client.get("/api/v1/alerts?rule=qn-globex-secret").get_json()["total"] == 0
    assert "qn-globex-secret" not in text(client.get("/alerts/"))  # not even in the rule dropdown
    for url in ("/alerts/al-globex-000", "/api/v1/alerts/al-globex-000", "/api/v1/alerts/al-globex-000/evidence",
                "/assets/globex:192.168.7.1", "/api/v1/assets/globex:192.168.7.1"):
        assert client.get(url).status_code == 404, url


def test_other_tenant_and_no_tenant(db_path: Path) -> None:
    globex = make_app(db_path, ORGANIZATION="globex")
    data = login(globex.test_client(), "analyst").get("/api/v1/alerts").get_json()
    assert data["total"] == 3 and {a["organization"]["id"] for a in data["items"]} == {"globex"}
    # an acme user on a console pinned to globex sees nothing at all
    assert login(globex.test_client(), "acme-user").get("/api/v1/alerts").get_json()["total"] == 0
    close_app(globex)
    everyone = make_app(db_path, ORGANIZATION=None)
    assert login(everyone.test_client(), "analyst").get("/api/v1/alerts").get_json()["total"] == sd.N_ACME + 3
    close_app(everyone)


# ---------------------------------------------------------------- escaping and errors


def test_hostile_strings_are_escaped_everywhere(client: FlaskClient) -> None:
    for url in ("/", "/alerts/", "/alerts/al-acme-059", "/assets/", "/assets/acme:10.0.0.10", "/alerts/?q=<script>"):
        body = text(client.get(url))
        assert HOSTILE not in body, url
    assert ESCAPED in text(client.get("/alerts/al-acme-059"))
    assert ESCAPED in text(client.get("/assets/"))
    assert 'value="&lt;script&gt;"' in text(client.get("/alerts/?q=<script>"))
    for path in WEB.glob("templates/**/*.html"):
        assert "|safe" not in path.read_text(encoding="utf-8").replace(" ", ""), path


def test_html_404_page(client_en: FlaskClient) -> None:
    resp = client_en.get("/no/such/page")
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    body = text(resp)
    assert "404" in body and "Not found" in body and "Back to the overview" in body


def test_500_page_hides_the_details(db_path: Path) -> None:
    app = make_app(db_path, TESTING=False, LANGUAGE="en")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    boom.__dict__["_qinling_permission"] = "logged-in"
    resp = login(app.test_client(), "analyst").get("/boom")
    assert resp.status_code == 500 and "secret internals" not in text(resp) and "Internal server error" in text(resp)
    close_app(app)


def test_store_failure_is_503(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    seed_accounts(tmp_path / "accounts.sqlite")
    app = create_app({"TESTING": True, "STORE_URL": f"sqlite:///{tmp_path / 'file' / 'db.sqlite'}", "LANGUAGE": "en",
                      "CONSOLE_DB": str(tmp_path / "accounts.sqlite"), "ARGON2": FAST_ARGON2})
    c = login(app.test_client(), "analyst")
    resp = c.get("/api/v1/alerts")
    assert resp.status_code == 503 and resp.get_json()["error"] == "service_unavailable"
    assert "cannot open" in resp.get_json()["message"]
    assert c.get("/alerts/").status_code == 503
    close_app(app)


def test_page_numbers_window() -> None:
    assert page_numbers(1, 1) == [1]
    assert page_numbers(6, 20) == [1, None, 4, 5, 6, 7, 8, None, 20]
    assert page_numbers(2, 5) == [1, 2, 3, 4, 5]
