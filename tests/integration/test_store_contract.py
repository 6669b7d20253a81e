"""One contract, two stores: every behaviour test runs on SQLiteStore and ElasticStore, and a battery
of queries must give both stores identical answers.

Elasticsearch tests use a unique index prefix each and drop it afterwards.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline import schema as s
from pipeline.exceptions import QueryError, StoreError
from pipeline.store.base import Facet, Query, Store
from pipeline.store.elastic import ElasticStore
from pipeline.store.sqlite import SQLiteStore

pytestmark = pytest.mark.elasticsearch

UTC = dt.timezone.utc
BASE = dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
STEP = dt.timedelta(minutes=7)
PLC, HMI, ROGUE, EWS = "10.0.0.10", "10.0.0.20", "10.0.0.66", "10.0.0.9"
RULES = [("qn-0001", "Modbus write from unapproved host", ["T0855", "T0836"]),
         ("qn-0002", "Exception burst", ["T0814"]),
         ("qn-0003", "Device identification scan", ["T0888"])]


# ---------------------------------------------------------------- data


def request(org: str, i: int, src: str, when: dt.datetime, *, fc: int = 6, outcome: str | None = None) -> s.Event:
    return s.Event(
        timestamp=when,
        event=s.EventInfo(kind="event", dataset="modbus", action="write" if fc in (6, 16) else "read",
                          id=f"ev-{org}-{i}", outcome=outcome),  # type: ignore[arg-type]
        message=None if i % 5 else f"packet {i} from {src}",
        source=s.Endpoint(ip=src, port=40000 + i),
        destination=s.Endpoint(ip=PLC, port=502),
        network=s.Network(transport="tcp", protocol="modbus", direction="request", is_orig=i % 2 == 0),
        organization=s.Organization(id=org),
        evidence=s.Evidence(file="a.pcap", frame=i + 1),
        related=s.Related(ip=[src, PLC]),
        modbus=s.Modbus(transaction_id=i, unit_id=1 + i % 3, function_code=fc, function_name="f%d" % fc,
                        message_type="request", address=100 + i, quantity=1, values=[i, i + 1],
                        exception_code=2 if i % 4 == 3 else None),
        labels={"site": f"{org}-plant", "line": str(i % 2)},
    )


def alert(org: str, i: int, src: str, when: dt.datetime, severity: int, message: str) -> s.Event:
    rid, name, techniques = RULES[i % 3]
    return s.Event(
        timestamp=when,
        event=s.EventInfo(kind="alert", dataset="qinling.alert", severity=severity, id=f"al-{org}-{i:03d}"),
        message=message,
        source=s.Endpoint(ip=src),
        destination=s.Endpoint(ip=PLC, port=502),
        network=s.Network(transport="tcp", protocol="s7comm" if i % 10 == 5 else "modbus"),
        organization=s.Organization(id=org, name=org.title()),
        related=s.Related(ip=[src, PLC]),
        rule=s.RuleInfo(id=rid, name=name),
        threat=s.Threat(technique=s.Technique(id=techniques)),
        labels={"site": f"{org}-plant"},
    )


def dataset() -> tuple[list[s.Event], list[s.Asset]]:
    events: list[s.Event] = []
    for i in range(40):  # acme, spread over three UTC days (3 indices per kind in Elasticsearch)
        when = BASE + i * STEP * 10 + dt.timedelta(microseconds=i)
        src = [ROGUE, HMI, EWS][i % 3]
        events.append(request("acme", i, src, when, fc=[6, 3, 16][i % 3], outcome=["success", "failure", None][i % 3]))
        msg = f"{src} wrote register {100 + i}" if i != 39 else "<script>alert(1)</script> WROTE 中文"
        events.append(alert("acme", i, src, when, [99, 73, 47, 21][i % 4], msg))
    for i in range(3):
        when = BASE + dt.timedelta(minutes=3) + i * STEP
        events.append(request("globex", i, "192.168.7.7", when))
        events.append(alert("globex", i, "192.168.7.7", when, 99, "GLOBEX-ONLY secret"))
    last = BASE + 39 * STEP * 10
    assets = [
        s.Asset(id=f"acme:{PLC}", ip=PLC, mac="00:1d:9c:c7:b0:10", organization=s.Organization(id="acme"),
                first_seen=BASE, last_seen=last, roles=["modbus_slave"], protocols=["modbus", "s7comm"], ports=[502],
                unit_ids=[1, 2, 3], peers=[HMI, ROGUE, EWS], vendor="Schneider", product="M340", events=120, alerts=40),
        s.Asset(id=f"acme:{HMI}", ip=HMI, organization=s.Organization(id="acme"), first_seen=BASE,
                last_seen=last - STEP, roles=["modbus_master"], protocols=["modbus"], peers=[PLC], vendor="Siemens", events=40),
        s.Asset(id=f"acme:{ROGUE}", ip=ROGUE, organization=s.Organization(id="acme"), first_seen=BASE + STEP,
                last_seen=last - 2 * STEP, roles=["modbus_master"], protocols=["modbus"], peers=[PLC], events=40),
        s.Asset(id="globex:192.168.7.1", ip="192.168.7.1", organization=s.Organization(id="globex"), first_seen=BASE,
                last_seen=BASE + STEP, roles=["modbus_slave"], protocols=["modbus"], vendor="GLOBEX-ONLY"),
    ]
    return events, assets


def fill(store: Store) -> None:
    events, assets = dataset()
    store.write(events[: len(events) // 2])
    store.write(events[len(events) // 2 :])
    store.write_assets(assets)
    store.flush()


# ---------------------------------------------------------------- fixtures

Factory = Callable[[], Store]


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[Callable[[str], Store]]:
    """`make_store("sqlite" | "elastic")` -> an empty store, cleaned up after the test."""
    made: list[Store] = []

    def make(kind: str) -> Store:
        if kind == "sqlite":
            st: Store = SQLiteStore(tmp_path / f"{len(made)}.sqlite")
        else:
            url = request.getfixturevalue("es_url")
            st = ElasticStore(url, prefix=f"{unique}-{len(made)}")
        made.append(st)
        return st

    yield make
    for st in made:
        if isinstance(st, ElasticStore):
            st.drop()
        st.close()


@pytest.fixture(params=["sqlite", "elastic"])
def store(request: pytest.FixtureRequest, make_store: Callable[[str], Store]) -> Store:
    st = make_store(request.param)
    fill(st)
    return st


@pytest.fixture(scope="module")
def pair(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """(SQLite, Elasticsearch) holding the same data, shared by the read-only comparison tests."""
    sq = SQLiteStore(tmp_path_factory.mktemp("pair") / "q.sqlite")
    es = ElasticStore(es_url, prefix="it-pair-" + os.urandom(4).hex())
    fill(sq)
    fill(es)
    yield sq, es
    es.drop()
    es.close()
    sq.close()


def ids(page: Any) -> list[str]:
    return [getattr(x.event, "id", None) if hasattr(x, "event") else x.id for x in page.items]


# ---------------------------------------------------------------- identical answers

QUERIES: list[tuple[str, str, Any]] = [
    ("search", "alerts", Query()),
    ("search", "events", Query(size=100, sort="@timestamp", descending=False)),
    ("search", "alerts", Query(organization="acme", text="WROTE", size=5, page=2, sort="event.severity")),
    ("search", "alerts", Query(text="中文")),
    ("search", "alerts", Query(text="10.0.0.6")),
    ("search", "alerts", Query(text="*")),
    ("search", "alerts", Query(organization="acme", text="globex")),
    ("search", "events", Query(filters={"related.ip": [ROGUE, "192.168.7.7"]}, sort="source.ip", descending=False, size=100)),
    ("search", "events", Query(filters={"event.outcome": None}, sort="modbus.exception_code", size=100)),
    ("search", "events", Query(filters={"event.outcome": ["failure", None]}, size=100)),
    ("search", "events", Query(filters={"modbus.exception_code": 2, "network.is_orig": True}, size=100)),
    ("search", "events", Query(filters={"labels.line": "1", "modbus.function_code": [3, 16]}, size=100)),
    ("search", "events", Query(filters={"message": None}, size=5, sort="message")),
    ("search", "events", Query(filters={"related.ip": []})),
    ("search", "events", Query(filters={"related.ip": "not-an-ip"})),
    ("search", "alerts", Query(filters={"threat.technique.id": "T0836"}, start=BASE + STEP * 30, end=BASE + STEP * 200)),
    ("search", "alerts", Query(start=BASE + 3 * STEP * 10, end=BASE + 3 * STEP * 10 + dt.timedelta(microseconds=3))),
    ("search", "alerts", Query(start=BASE + 3 * STEP * 10 + dt.timedelta(microseconds=4))),
    ("search", "alerts", Query(filters={"event.severity": [99, 21], "rule.id": "qn-0001"}, sort="rule.name", descending=False)),
    ("search", "alerts", Query(size=7, page=7)),
    ("search", "alerts", Query(size=0)),
    ("search", "alerts", Query(page=99)),
    # totals counted up to a limit: beyond it the total is the limit and not exact, pages go one past a full page
    ("search", "alerts", Query(text="wrote", total_limit=5, size=3)),
    ("search", "alerts", Query(total_limit=5, size=5, page=3)),
    ("search", "alerts", Query(total_limit=43)),
    ("search", "alerts", Query(total_limit=42, size=50)),
    ("search", "alerts", Query(total_limit=42, size=43)),
    ("search", "alerts", Query(total_limit=40, size=42)),
    ("search", "alerts", Query(total_limit=10, size=7, page=6)),
    ("search", "alerts", Query(total_limit=10, size=7, page=7)),
    ("search", "alerts", Query(organization="acme", text="globex", total_limit=1)),
    ("assets", "assets", Query()),
    ("assets", "assets", Query(sort="ip", descending=False)),
    ("assets", "assets", Query(text="schneider")),
    ("assets", "assets", Query(organization="acme", filters={"roles": "modbus_master"}, sort="events")),
    ("assets", "assets", Query(start=BASE + STEP * 300, sort="vendor")),
    ("count_by", "alerts", ("rule.id", Query())),
    ("count_by", "alerts", ("related.ip", Query(organization="acme"))),
    ("count_by", "alerts", ("source.ip", Query(), 2)),
    ("count_by", "alerts", ("threat.technique.id", Query(filters={"event.severity": 99}))),
    ("count_by", "events", ("network.is_orig", Query())),
    ("count_by", "events", ("modbus.function_code", Query(organization="acme"))),
    ("count_by", "events", ("modbus.exception_code", Query())),
    ("count_by", "events", ("labels.site", Query())),
    ("count_by", "events", ("message", Query(), 3)),
    ("count_by", "alerts", ("@timestamp", Query(organization="globex"))),
    ("count_by", "assets", ("roles", Query())),
    ("count_by", "assets", ("protocols", Query(organization="acme"))),
    # networks (CIDR) on IP fields: scalar, list, mixed with addresses and None, IPv4-mapped IPv6
    ("search", "events", Query(filters={"source.ip": ipaddress.ip_network("10.0.0.0/26")}, size=100)),
    ("search", "events", Query(filters={"related.ip": [ipaddress.ip_network("192.168.0.0/16"), ROGUE]}, size=100)),
    ("search", "alerts", Query(filters={"destination.ip": [ipaddress.ip_network("10.0.0.0/8"), None]}, size=100)),
    ("search", "alerts", Query(filters={"source.ip": ipaddress.ip_network("::ffff:10.0.0.64/126")}, size=100)),
    ("search", "events", Query(filters={"source.ip": ipaddress.ip_network("2001:db8::/32")})),
    ("assets", "assets", Query(filters={"ip": ipaddress.ip_network("10.0.0.0/27")}, sort="ip", descending=False)),
    # facets: several fields in one read, with their missing counts
    ("facets", "events", (["network.protocol", "event.action", "source.ip", "destination.ip", "organization.id"], Query())),
    ("facets", "events", (["source.ip", "event.outcome", "modbus.exception_code", "related.ip", "labels.line"],
                          Query(organization="acme", filters={"modbus.function_code": [6, 16]}), 2)),
    ("facets", "events", (["message", "network.is_orig", "modbus.unit_id"], Query(text="packet"), 3)),
    ("facets", "alerts", (["event.severity", "rule.id", "threat.technique.id", "related.ip"],
                          Query(filters={"source.ip": ipaddress.ip_network("10.0.0.0/28")}, start=BASE + STEP * 50))),
    ("facets", "assets", (["roles", "vendor", "protocols", "organization.id"], Query())),
    ("facets", "alerts", (["rule.id", "rule.id"], Query(organization="nobody"))),
    ("histogram", "alerts", (Query(organization="acme"), dt.timedelta(hours=1))),
    ("histogram", "events", (Query(), dt.timedelta(minutes=90))),
    ("histogram", "alerts", (Query(filters={"network.protocol": "s7comm"}), dt.timedelta(days=1))),
    ("histogram", "alerts", (Query(), dt.timedelta(seconds=7.5))),
]


def run(st: Store, kind: str, index: str, arg: Any) -> Any:
    if kind == "search":
        p = st.search(index, arg)  # type: ignore[arg-type]
        return [e.event.id for e in p.items], p.total, p.pages, p.exact, p.more
    if kind == "assets":
        p = st.search_assets(arg)
        return p.items, p.total
    if kind == "count_by":
        return st.count_by(index, arg[0], arg[1], *arg[2:])  # type: ignore[arg-type]
    if kind == "facets":
        return st.facets(index, arg[0], arg[1], *arg[2:])  # type: ignore[arg-type]
    return st.histogram(index, *arg)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind,index,arg", QUERIES, ids=[f"{k}-{i}-{n}" for n, (k, i, _) in enumerate(QUERIES)])
def test_both_stores_give_identical_answers(pair: tuple[Store, Store], kind: str, index: str, arg: Any) -> None:
    sq, es = pair
    assert run(es, kind, index, arg) == run(sq, kind, index, arg)


BAD = [
    ("search", "alerts", Query(filters={"no.such.field": 1})),
    ("search", "alerts", Query(sort="related.ip")),
    ("search", "alerts", Query(sort="rule")),
    ("search", "alerts", Query(page=0)),
    ("search", "alerts", Query(size=10_001)),
    ("search", "alerts", Query(total_limit=0)),
    ("search", "alerts", Query(total_limit=True)),
    ("search", "nope", Query()),
    ("count_by", "alerts", ("rule", Query())),
    ("count_by", "alerts", ("rule.id", Query(), 0)),
    ("histogram", "alerts", (Query(), dt.timedelta(0))),
    ("facets", "alerts", (["rule"], Query())),
    ("facets", "alerts", (["no.such.field"], Query())),
    ("facets", "alerts", (["rule.id"], Query(), 0)),
    ("facets", "alerts", ("rule.id", Query())),
    ("search", "events", Query(filters={"event.action": ipaddress.ip_network("10.0.0.0/8")})),
    ("search", "events", Query(filters={"labels.ip": ipaddress.ip_network("10.0.0.0/8")})),
]


@pytest.mark.parametrize("kind,index,arg", BAD, ids=[f"{k}-{n}" for n, (k, _, _) in enumerate(BAD)])
def test_both_stores_reject_the_same_bad_queries(pair: tuple[Store, Store], kind: str, index: str, arg: Any) -> None:
    for st in pair:
        with pytest.raises(QueryError):
            run(st, kind, index, arg)


def test_documents_round_trip_exactly(pair: tuple[Store, Store]) -> None:
    sq, es = pair
    events, assets = dataset()
    for ev in events:
        index = "alerts" if ev.event.kind == "alert" else "events"
        assert es.get(index, ev.event.id or "") == ev == sq.get(index, ev.event.id or "")  # type: ignore[arg-type]
    got = es.search_assets(Query(size=10, sort="ip", descending=False)).items
    assert got == sorted(assets, key=lambda a: a.ip)


# ---------------------------------------------------------------- behaviour, on each store


def test_writes_are_idempotent_by_event_id(store: Store) -> None:
    events, assets = dataset()
    before = store.search("alerts", Query(size=0)).total, store.search("events", Query(size=0)).total
    store.write(events)  # the same batch again (a bus replay)
    store.write_assets(assets)
    store.flush()
    assert (store.search("alerts", Query(size=0)).total, store.search("events", Query(size=0)).total) == before
    assert store.search_assets(Query()).total == 4


def test_upsert_replaces_the_document(store: Store) -> None:
    events, assets = dataset()
    changed = msgspec.structs.replace(assets[1], events=999)
    store.write_assets([changed])
    store.flush()
    (got,) = store.search_assets(Query(filters={"id": assets[1].id})).items
    assert got.events == 999


def test_tenancy_hides_other_organizations(store: Store) -> None:
    for index in ("events", "alerts"):
        page = store.search(index, Query(organization="acme", text="globex", size=100))  # type: ignore[arg-type]
        assert page.total == 0
        assert all(e.organization and e.organization.id == "acme" for e in store.search(index, Query(organization="acme", size=100)).items)  # type: ignore[arg-type]
    assert [v for v, _ in store.count_by("alerts", "organization.id", Query())] == ["acme", "globex"]
    assert store.count_by("alerts", "rule.id", Query(organization="globex")) == [(r[0], 1) for r in RULES]
    assert {a.id for a in store.search_assets(Query(organization="globex")).items} == {"globex:192.168.7.1"}


def test_facet_counts_are_what_clicking_them_selects(store: Store) -> None:
    q = Query(organization="acme", filters={"source.ip": ipaddress.ip_network("10.0.0.0/24")})
    fields = ["event.action", "source.ip", "modbus.exception_code", "related.ip", "event.outcome"]
    got = store.facets("events", fields, q, top=3)
    total = store.search("events", q).total
    assert list(got) == fields and total == 40
    for name, facet in got.items():
        assert isinstance(facet, Facet) and facet.field == name and len(facet.buckets) <= 3
        for value, n in facet.buckets:
            assert store.search("events", Query(organization="acme", filters={**q.filters, name: value})).total == n, (name, value)
        assert store.search("events", Query(organization="acme", filters={**q.filters, name: None})).total == facet.missing
        assert facet.buckets == store.count_by("events", name, q, top=3)
    assert got["event.outcome"].missing == 13 and sum(n for _, n in got["event.outcome"].buckets) == total - 13
    assert store.facets("alerts", [], Query()) == {}


def test_get_many_keeps_order_skips_missing_and_duplicates(store: Store) -> None:
    got = store.get_many("events", ["ev-acme-3", "missing", "ev-acme-1", "ev-acme-3", "al-acme-001"])
    assert [e.event.id for e in got] == ["ev-acme-3", "ev-acme-1"]
    assert store.get("alerts", "al-acme-001") is not None
    assert store.get("alerts", "ev-acme-1") is None


def test_pages_cover_every_document_once(store: Store) -> None:
    seen: list[str] = []
    page = 1
    while True:
        p = store.search("alerts", Query(size=9, page=page, sort="event.severity"))
        seen += [e.event.id or "" for e in p.items]
        if page >= p.pages:
            break
        page += 1
    assert len(seen) == len(set(seen)) == 43


def test_far_pages_read_from_the_daily_indices_holding_them(pair: tuple[Store, Store]) -> None:
    sq, es = pair
    assert isinstance(es, ElasticStore)
    queries = [Query(size=4), Query(size=5, descending=False), Query(size=3, organization="acme"),
               Query(size=6, filters={"event.severity": [99, 21]}), Query(size=50), Query(size=2, text="wrote")]
    routed, served = es.route_from, []
    es.route_from = 1  # every page after the first goes through _routed_page
    plain = es._routed_page
    es._routed_page = lambda *a: served.append(r := plain(*a)) or r  # type: ignore[method-assign]
    try:
        for index in ("alerts", "events"):
            for q in queries:
                days = {e.timestamp.date() for e in sq.search(index, Query(size=1000, organization=q.organization)).items}
                assert len(days) > 1  # the pages cross daily indices
                total = sq.search(index, q).total
                for page in range(1, total // q.size + 3):  # every page, and two past the end
                    qq = Query(**{**q.__dict__, "page": page})
                    a, b = es.search(index, qq), sq.search(index, qq)  # type: ignore[arg-type]
                    assert ([e.event.id for e in a.items], a.total, a.pages) == ([e.event.id for e in b.items], b.total, b.pages), (index, qq)
        assert len(served) > 50 and None not in served  # the daily-index reads answered, no fallback
    finally:
        es.route_from = routed
        del es._routed_page


def test_histogram_buckets_are_epoch_aligned_and_skip_empty_ones(store: Store) -> None:
    h = store.histogram("alerts", Query(organization="acme"), dt.timedelta(hours=5))
    assert sum(n for _, n in h) == 40
    assert all(t.timestamp() % (5 * 3600) == 0 for t, _ in h)
    assert all(n > 0 for _, n in h)


# ---------------------------------------------------------------- Elasticsearch specifics


def test_mappings_are_explicit_and_typed(es_url: str, unique: str) -> None:
    es = ElasticStore(es_url, prefix=unique)
    try:
        fill(es)
        indices = sorted(es.es.indices.get(index=f"{unique}-*").body)
        days = ["2024.05.01", "2024.05.02", "2024.05.03"]
        assert indices == sorted([f"{unique}-{k}-{d}" for k in ("events", "alerts") for d in days] + [f"{unique}-assets"])
        m = es.es.indices.get_mapping(index=f"{unique}-events-2024.05.01").body[f"{unique}-events-2024.05.01"]["mappings"]
        assert m["dynamic"] == "strict"
        p = m["properties"]
        assert p["@timestamp"]["type"] == "date_nanos"
        assert p["source"]["properties"]["ip"]["type"] == "ip"
        assert p["related"]["properties"]["ip"]["type"] == "ip"
        assert p["event"]["properties"]["id"]["type"] == "keyword"
        assert p["event"]["properties"]["severity"]["type"] == "long"
        assert p["modbus"]["properties"]["function_code"]["type"] == "long"
        assert p["modbus"]["properties"]["values"]["type"] == "long"
        assert p["modbus"]["properties"]["function_name"]["type"] == "keyword"
        assert p["message"]["type"] == "text"
        assert p["labels"]["properties"]["site"]["type"] == "keyword"  # free-form map: keys become keywords
        am = es.es.indices.get_mapping(index=f"{unique}-assets").body[f"{unique}-assets"]["mappings"]["properties"]
        assert am["ip"]["type"] == "ip" and am["last_seen"]["type"] == "date_nanos" and am["ports"]["type"] == "long"
    finally:
        es.drop()


def test_retention_deletes_whole_daily_indices(es_url: str, unique: str) -> None:
    es = ElasticStore(es_url, prefix=unique)
    try:
        fill(es)
        deleted = es.delete_indices_older_than(0, now=dt.datetime(2024, 5, 2, 12, tzinfo=UTC))
        assert deleted == [f"{unique}-alerts-2024.05.01", f"{unique}-events-2024.05.01"]
        left = es.search("alerts", Query(size=100)).items
        assert left and all(e.timestamp.date() >= dt.date(2024, 5, 2) for e in left)
        assert len(left) == len([e for e in dataset()[0] if e.event.kind == "alert" and e.timestamp.date() >= dt.date(2024, 5, 2)])
        assert es.search_assets(Query()).total == 4  # assets are not daily
        assert es.delete_indices_older_than(30, now=dt.datetime(2024, 5, 2, tzinfo=UTC)) == []
    finally:
        es.drop()


def test_deep_pages_beyond_the_result_window(es_url: str, unique: str, tmp_path: Path) -> None:
    es = ElasticStore(es_url, prefix=unique)
    sq = SQLiteStore(tmp_path / "deep.sqlite")
    try:
        events = [request("deep", i, HMI, BASE + dt.timedelta(seconds=i // 3)) for i in range(10_050)]
        for st in (es, sq):
            for i in range(0, len(events), 2000):
                st.write(events[i : i + 2000])
            st.flush()
        q = Query(size=30, page=335, sort="@timestamp")  # offset 10 020: past the 10 000 window
        a, b = es.search("events", q), sq.search("events", q)
        assert [e.event.id for e in a.items] == [e.event.id for e in b.items]
        assert a.total == b.total == 10_050 and len(a.items) == 30 and a.exact and b.exact
        q = Query(size=30, page=335, sort="@timestamp", total_limit=10_000)  # the same page, total counted to 10 000
        a, b = es.search("events", q), sq.search("events", q)
        assert [e.event.id for e in a.items] == [e.event.id for e in b.items] and len(a.items) == 30
        assert (a.total, a.exact, a.more, a.pages) == (b.total, b.exact, b.more, b.pages) == (10_000, False, False, 335)  # the last
        q = Query(size=30, page=334, sort="@timestamp", total_limit=10_000)  # offset 9 990: inside the window, one page follows
        a, b = es.search("events", q), sq.search("events", q)
        assert [e.event.id for e in a.items] == [e.event.id for e in b.items] and len(a.items) == 30
        assert (a.total, a.exact, a.more, a.pages) == (b.total, b.exact, b.more, b.pages) == (10_000, False, True, 335)
    finally:
        es.drop()
        sq.close()


def test_unreachable_node_is_a_clear_store_error() -> None:
    with pytest.raises(StoreError, match=r"http://127\.0\.0\.1:1 unreachable .*pipeline\.services up elasticsearch"):
        ElasticStore("http://127.0.0.1:1", retries=1, backoff=0.05, timeout=2)


def test_a_node_going_away_fails_writes_loudly_and_loses_nothing(es_url: str, unique: str) -> None:
    from pipeline.services import ELASTICSEARCH, Settings
    from pipeline.services.manager import _load_state, running_pid

    pid = running_pid(ELASTICSEARCH, _load_state(Settings()))
    if pid is None or not es_url.endswith(f":{_load_state(Settings()).es_port}"):
        pytest.skip("this Elasticsearch was not started by pipeline.services here: cannot pause it")
    es = ElasticStore(es_url, prefix=unique, timeout=2, retries=2, backoff=0.2)
    events, _ = dataset()
    try:
        es.write(events[:20])
        es.flush()
        os.kill(pid, signal.SIGSTOP)  # the node hangs: requests time out
        try:
            t0 = time.monotonic()
            with pytest.raises(StoreError, match=r"20 of 20 document\(s\) not written to Elasticsearch at .*after 3 attempts"):
                es.write(events[20:40])
            assert time.monotonic() - t0 < 30
        finally:
            os.kill(pid, signal.SIGCONT)
        es.write(events[20:40])  # the caller kept the batch: written now
        es.write(events[40:])
        es.flush()
        assert es.search("alerts", Query(size=0)).total + es.search("events", Query(size=0)).total == len(events)
        assert [e.event.id for e in es.get_many("events", [e.event.id or "" for e in events[:20]])] == [
            e.event.id for e in events[:20] if e.event.kind == "event"
        ]
    finally:
        es.drop()
