"""全省态势: the province dashboard's numbers from the seeded data; who may see it; the map is ours (inline SVG)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from flask import Flask

from console.web.province import CITIES, dashboard, xy
from console.web.store import get_store
from pipeline import schema as s
from tests.console.conftest import close_app, login, make_app
from tests.store import sample_data as sd


@pytest.fixture
def open_app(db_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = make_app(db_path, ORGANIZATION=None)
    yield app
    close_app(app)


def test_numbers_from_the_seeded_data(open_app: Flask) -> None:
    c = login(open_app.test_client(), "regulator")
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat(timespec="seconds")
    for org, alert, deadline in (("acme", "al-acme-004", past), ("globex", "al-globex-000",
                                 (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).isoformat(timespec="seconds"))):
        c.post("/api/v1/notices", json={"organization": org, "title": f"n {org}", "deadline": deadline, "alert_ids": [alert]},
               headers={"X-CSRF-Token": token})
    fresh = s.Event(timestamp=dt.datetime.now(dt.timezone.utc), message="fresh",
                    event=s.EventInfo(kind="alert", dataset="qinling.alert", severity=99, id="al-acme-fresh"),
                    organization=s.Organization(id="acme"), rule=s.RuleInfo(id="qn-x", name="x"),
                    source=s.Endpoint(ip=sd.ROGUE), destination=s.Endpoint(ip=sd.PLC), related=s.Related(ip=[sd.ROGUE, sd.PLC]))
    with open_app.app_context():
        get_store().write([fresh])
    d = board(open_app)
    assert d.enterprises == 2
    assert d.by_city == [("宝鸡市", 1, 3), ("榆林市", 1, sd.N_ACME + 1)]
    assert d.by_industry == [("petrochemical", 1, sd.N_ACME + 1), ("water", 1, 3)]
    # 60 acme alerts five minutes apart from 08:00 and 3 globex ones: all on 2024-05-01
    assert d.days[-1] == dt.datetime.now(dt.timezone.utc).date().isoformat() and len(d.days) == 14
    assert {lv: sum(v) for lv, v in d.trend.items()} == {"critical": 1, "high": 0, "medium": 0, "low": 0}
    assert d.notices == {"open": 2, "overdue": 1} and [n.organization for n in d.overdue] == ["acme"]
    assert [e["subject"] for e in d.top_risk] == ["acme", "globex"] and d.top_risk[0]["score"] > 0 == d.top_risk[1]["score"]
    assert {c["name"]: c["alerts"] for c in d.cities} == {"宝鸡市": 3, "榆林市": sd.N_ACME + 1}
    html = c.get("/province/").get_data(as_text=True)
    assert '<svg class="province-map"' in html and "榆林市" in html and "西安市" in html and "http" not in html.split("<svg", 1)[1].split("</svg>")[0].replace("http://www.w3.org", "")
    assert re.search(r'id="n-overdue">1<', html) and re.search(r'id="n-enterprises">2<', html)


def board(app: Flask):  # type: ignore[no-untyped-def]
    from flask import g

    from console.web.auth import get_db

    with app.test_request_context("/province/"):
        g.user = get_db().user("regulator")
        return dashboard()


def test_trend_ends_at_the_newest_alert(open_app: Flask) -> None:
    d = board(open_app)  # the seeded alerts are old (a replayed capture): the trend ends on their day
    assert d.days[-1] == "2024-05-01"
    assert {lv: sum(v) for lv, v in d.trend.items()} == {"critical": 15 + 3, "high": 15, "medium": 15, "low": 15}
    assert d.trend["critical"][-1] == 18 and d.trend_peak == sd.N_ACME + 3


def test_who_sees_the_dashboard(open_app: Flask) -> None:
    for user, status in (("admin", 200), ("regulator", 200), ("analyst", 200), ("acme-user", 403), ("auditor", 403)):
        assert login(open_app.test_client(), user).get("/province/").status_code == status, user


def test_map_positions_are_inside_the_box() -> None:
    assert len(CITIES) == 10
    for name in CITIES:
        x, y = xy(name) or (-1, -1)
        assert 0 < x < 360 and 0 < y < 480, name
    assert xy("榆林") == xy("榆林市") and xy("Nowhere") is None
    assert xy("榆林市")[1] < xy("西安市")[1] < xy("安康市")[1]  # type: ignore[index]  # north is up
