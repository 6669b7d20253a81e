"""事件检索: /events and GET /api/v1/events — filters (CIDR too), sort, pages, facet counts that are what a click
selects, links from an event to its alerts and evidence, bad input answered 400, hostile strings escaped."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pipeline import schema as s
from pipeline.store import Query
from pipeline.store.sqlite import SQLiteStore
from tests.console.conftest import close_app, login, make_app
from tests.store import sample_data as sd

HOSTILE_ID = "ev-hostile"


@pytest.fixture
def open_app(db_path: Path) -> Iterator[Flask]:
    with SQLiteStore(db_path) as store:  # one event whose wire strings are hostile
        store.write([s.Event(timestamp=sd.BASE + dt.timedelta(hours=9), message=sd.HOSTILE,
                             event=s.EventInfo(kind="event", dataset="modbus", action="read", id=HOSTILE_ID),
                             source=s.Endpoint(ip="10.0.1.5", port=1502), destination=s.Endpoint(ip=sd.PLC, port=502),
                             network=s.Network(transport="tcp", protocol="modbus"), organization=s.Organization(id="acme"),
                             related=s.Related(ip=["10.0.1.5", sd.PLC]))])
    app = make_app(db_path, ORGANIZATION=None)
    yield app
    close_app(app)


@pytest.fixture
def analyst(open_app: Flask) -> FlaskClient:
    c = open_app.test_client()
    c.set_cookie("lang", "en")
    return login(c, "analyst")


def ids(html: str) -> list[str]:
    return re.findall(r'<tr class="event-row" data-id="([^"]+)"', html)


def total(html: str) -> int:
    m = re.search(r'class="pager-total">[^<]*?(\d+)', html)
    return int(m.group(1)) if m else 0


def facet_links(html: str) -> list[tuple[str, str, str, int]]:
    """(href, arg, value, count) of every clickable facet value on the page."""
    return [(htmllib.unescape(href), arg, htmllib.unescape(value), int(n)) for href, arg, value, n in re.findall(
        r'<a class="facet-value" href="([^"]+)" data-arg="([^"]+)" data-value="([^"]*)">.*?</a> <span class="count">(\d+)</span>',
        html)]


def test_filters_narrow_and_html_and_api_agree(analyst: FlaskClient) -> None:
    every = analyst.get("/api/v1/events?size=500").get_json()
    assert every["total"] == 127 and every["pages"] == 1
    for args, want in ((f"src={sd.ROGUE}", 30), ("src=10.0.0.64/28", 30), ("src=10.0.0.0/24", 120),
                       ("dst=192.168.7.0/24&org=globex", 6), (f"ip={sd.ROGUE}", 60), ("ip=10.0.1.0/24", 1),
                       ("action=read", 1), ("protocol=modbus&action=write&org=acme", 120), ("outcome=failure", 20),
                       ("q=10.0.0.66", 60), ("src=::ffff:10.0.0.66", 30),
                       ("from=2024-05-01T08:00&to=2024-05-01T08:10", 8), ("org=globex", 6), ("dataset=flow", 0)):
        api = analyst.get(f"/api/v1/events?{args}&size=500").get_json()
        page = analyst.get(f"/events/?{args}&size=500").get_data(as_text=True)
        assert api["total"] == want == total(page) or (want == 0 and api["total"] == 0 and not ids(page)), args
        assert ids(page) == [e["event"]["id"] for e in api["items"]], args


def test_sort_and_pages(analyst: FlaskClient) -> None:
    asc = analyst.get("/api/v1/events?sort=src&org=acme&size=500").get_json()["items"]
    ips = [e["source"]["ip"] for e in asc]
    assert ips == sorted(ips)
    oldest_first = analyst.get("/api/v1/events?sort=time&order=asc&size=500").get_json()["items"]
    times = [dt.datetime.fromisoformat(e["@timestamp"].replace("Z", "+00:00")) for e in oldest_first]
    assert times == sorted(times) and len(times) == 127
    pages = [analyst.get(f"/api/v1/events?size=50&page={n}").get_json() for n in (1, 2, 3)]
    seen = [e["event"]["id"] for p in pages for e in p["items"]]
    assert pages[0]["pages"] == 3 and len(seen) == len(set(seen)) == 127
    assert ids(analyst.get("/events/?size=50&page=3").get_data(as_text=True)) == [e["event"]["id"] for e in pages[2]["items"]]


def test_facet_counts_are_what_clicking_selects(analyst: FlaskClient) -> None:
    got = analyst.get("/api/v1/events?top=50").get_json()["facets"]
    assert set(got) == {"protocol", "dataset", "action", "src", "dst", "org"}
    assert {b["value"]: b["count"] for b in got["org"]["buckets"]} == {"acme": 121, "globex": 6}
    assert got["action"]["buckets"] == [{"value": "write", "count": 126}, {"value": "read", "count": 1}]
    for arg, facet in got.items():
        for b in facet["buckets"]:
            clicked = analyst.get("/api/v1/events", query_string={arg: b["value"], "size": 1}).get_json()
            assert clicked["total"] == b["count"], (arg, b)
    # the page: every facet link keeps the other filters, drops the page number, and selects its count
    page = analyst.get(f"/events/?src={sd.ROGUE}&page=1").get_data(as_text=True)
    links = facet_links(page)
    assert {arg for _h, arg, _v, _n in links} >= {"dst", "org"}
    for href, arg, value, n in links:
        args = parse_qs(urlsplit(href).query)
        assert args["src"] == [sd.ROGUE] and args[arg] == [value] and "page" not in args
        assert total(analyst.get(href).get_data(as_text=True)) == n, href


def test_facets_follow_the_filters(analyst: FlaskClient) -> None:
    narrowed = analyst.get(f"/api/v1/events?src={sd.ROGUE}&top=5").get_json()["facets"]
    assert narrowed["dst"]["buckets"] == [{"value": sd.PLC, "count": 30}]
    assert narrowed["src"]["buckets"] == [{"value": sd.ROGUE, "count": 30}]
    assert narrowed["org"]["buckets"] == [{"value": "acme", "count": 30}]
    page = analyst.get(f"/events/?src={sd.ROGUE}").get_data(as_text=True)
    assert 'class="chip active-chip" data-arg="src"' in page  # the chosen value, removable
    assert '<li class="active"><span class="value">10.0.0.66</span>' in page


def test_event_links_to_its_alerts_and_evidence(analyst: FlaskClient, open_app: Flask) -> None:
    body = analyst.get("/events/ev-acme-1-req").get_data(as_text=True)
    assert "/alerts/al-acme-001" in body and "/alerts/al-acme-001/export" in body
    assert sd.SHA in body and f"/captures/{sd.SHA}" not in body  # the hash; no capture page: none uploaded
    assert analyst.get("/api/v1/events/ev-acme-1-req").get_json()["event"]["id"] == "ev-acme-1-req"
    linked = analyst.get("/api/v1/events/ev-acme-1-req/alerts").get_json()
    assert [a["event"]["id"] for a in linked["items"]] == ["al-acme-001"]
    listing = analyst.get("/events/?org=acme&sort=time&order=asc&size=2").get_data(as_text=True)
    assert "/alerts/al-acme-000" in listing  # the list links each event to the alerts that name it
    assert analyst.get("/api/v1/events/nope").status_code == 404
    # a capture the console holds (uploaded for acme) is linked from its events
    from console.web import captures

    with open_app.app_context():
        captures.state(open_app).db.add(sd.SHA, "acme", "attack.pcap", 100, "pcap", "auditor")
    assert f"/captures/{sd.SHA}?org=acme" in analyst.get("/events/ev-acme-1-req").get_data(as_text=True)


@pytest.mark.parametrize("url,status", [
    ("/api/v1/events?src=zzz", 400), ("/api/v1/events?ip=10.0.0.0/99", 400), ("/api/v1/events?sort=bogus", 400),
    ("/api/v1/events?order=sideways", 400), ("/api/v1/events?top=0", 400), ("/api/v1/events?top=51", 400),
    ("/api/v1/events?from=2024-05-02&to=2024-05-01", 400), ("/api/v1/events?size=0", 400),
    ("/api/v1/events?from=yesterday", 400),
])
def test_bad_arguments_are_400_with_a_message(analyst: FlaskClient, url: str, status: int) -> None:
    resp = analyst.get(url)
    assert resp.status_code == status and resp.get_json()["error"] == "bad_request" and resp.get_json()["message"]
    assert analyst.get(url.replace("/api/v1/events", "/events/")).status_code == status


def test_filter_values_are_data_not_query_text(analyst: FlaskClient) -> None:
    for args in ({"protocol": "modbus' OR '1'='1"}, {"q": "') OR 1=1 --"}, {"action": '" OR ""="'},
                 {"dataset": "*"}, {"q": "%"}):
        data = analyst.get("/api/v1/events", query_string=args).get_json()
        assert data["total"] == 0, args


def test_hostile_strings_are_escaped(analyst: FlaskClient) -> None:
    page = analyst.get("/events/?action=read").get_data(as_text=True)
    assert sd.HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    detail = analyst.get(f"/events/{HOSTILE_ID}").get_data(as_text=True)
    assert sd.HOSTILE not in detail
    q = analyst.get("/events/", query_string={"q": sd.HOSTILE}).get_data(as_text=True)
    assert sd.HOSTILE not in q


def test_both_languages(open_app: Flask) -> None:
    zh = login(open_app.test_client(), "analyst").get("/events/").get_data(as_text=True)
    assert "事件检索" in zh and "分面统计" in zh and "源地址" in zh
    c = open_app.test_client()
    c.set_cookie("lang", "en")
    en = login(c, "analyst").get("/events/").get_data(as_text=True)
    assert "Event search" in en and "Facets" in en


def test_an_enterprise_user_gets_no_enterprise_facet(open_app: Flask) -> None:
    c = login(open_app.test_client(), "globex-user")
    page = c.get("/events/").get_data(as_text=True)
    assert 'data-field="organization.id"' not in page and total(page) == 6
    assert ids(page) and all(i.startswith("ev-globex-") for i in ids(page)) and sd.ROGUE not in page
    with SQLiteStore(Path(open_app.config["STORE_URL"].removeprefix("sqlite:///"))) as store:
        assert store.search("events", Query(organization="globex")).total == 6
