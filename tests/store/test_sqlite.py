"""The SQLite store honours every Query field, enforces tenancy in SQL, and rejects bad queries."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import msgspec
import pytest

from pipeline import schema as s
from pipeline.exceptions import QueryError, StoreError
from pipeline.store import Query, open_store
from pipeline.store.sqlite import SQLiteStore, _KINDS
from tests.store import sample_data as sd

ACME = Query(organization="acme")


def q(**kw) -> Query:  # type: ignore[no-untyped-def]
    kw.setdefault("organization", "acme")
    return Query(**kw)


# ---------------------------------------------------------------- writes


def test_routes_alerts_and_events_to_their_index(store: SQLiteStore) -> None:
    assert store.search("alerts", ACME).total == sd.N_ACME
    assert store.search("events", ACME).total == 2 * sd.N_ACME
    assert store.stats() == {"events": 2 * sd.N_ACME + 6, "alerts": sd.N_ACME + 3, "assets": 4}


def test_writes_are_idempotent_by_id(store: SQLiteStore) -> None:
    events, alerts = sd.acme()
    store.write(events + alerts)
    store.write(alerts[:5])
    assert store.search("alerts", ACME).total == sd.N_ACME
    assert store.search("events", ACME).total == 2 * sd.N_ACME
    changed = msgspec.structs.replace(alerts[0], message="rewritten")
    store.write([changed])
    assert store.get("alerts", alerts[0].event.id).message == "rewritten"  # type: ignore[union-attr,arg-type]
    store.write_assets(sd.assets())
    assert store.search_assets(Query()).total == 4


def test_event_without_id_gets_a_content_hash_id(empty_store: SQLiteStore) -> None:
    ev = s.Event(timestamp=sd.BASE, event=s.EventInfo(kind="event", dataset="flow"), message="no id")
    empty_store.write([ev, ev])
    page = empty_store.search("events", Query())
    assert page.total == 1 and page.items == [ev]


def test_roundtrip_is_exact(store: SQLiteStore) -> None:
    _events, alerts = sd.acme()
    assert store.get("alerts", alerts[7].event.id) == alerts[7]  # type: ignore[arg-type]
    assert store.get("alerts", "nope") is None
    assert store.get("events", alerts[7].event.id) is None  # type: ignore[arg-type]


def test_get_many_keeps_order_and_skips_missing(store: SQLiteStore) -> None:
    ids = ["ev-acme-3-resp", "missing", "ev-acme-1-req", "ev-acme-3-resp"]
    got = store.get_many("events", ids)
    assert [e.event.id for e in got] == ["ev-acme-3-resp", "ev-acme-1-req"]


def test_reopening_the_file_keeps_data_and_uses_wal(store: SQLiteStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store.close()
    again = open_store(f"sqlite:///{tmp_path / 'qinling.sqlite'}")
    try:
        assert again.search("alerts", ACME).total == sd.N_ACME
    finally:
        again.close()
    with sqlite3.connect(tmp_path / "qinling.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_new_files_get_16k_pages_and_older_files_keep_theirs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    events, alerts = sd.acme()
    with SQLiteStore(tmp_path / "new.sqlite") as new:
        new.write(events + alerts)
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:  # a store written before 16 KiB pages: 4 KiB, already in WAL mode
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    with SQLiteStore(old) as reopened:
        reopened.write(events + alerts)
        assert reopened.search("alerts", ACME).total == sd.N_ACME
    sizes = {}
    for name in ("new.sqlite", "old.sqlite"):
        with sqlite3.connect(tmp_path / name) as db:
            sizes[name] = db.execute("PRAGMA page_size").fetchone()[0]
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sizes == {"new.sqlite": 16384, "old.sqlite": 4096}


def test_memory_store_via_url() -> None:
    store = open_store("sqlite://:memory:")
    sd.fill(store)
    assert store.search("alerts", Query()).total == sd.N_ACME + 3
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.search("alerts", Query())


def test_unopenable_path_is_a_store_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteStore(tmp_path / "file" / "db.sqlite")


# ---------------------------------------------------------------- filters


def test_scalar_filter(store: SQLiteStore) -> None:
    page = store.search("alerts", q(filters={"rule.id": "qn-modbus-0002"}, size=100))
    assert page.total == 20
    assert all(a.rule and a.rule.id == "qn-modbus-0002" for a in page.items)


def test_list_value_means_any_of(store: SQLiteStore) -> None:
    page = store.search("alerts", q(filters={"event.severity": [99, 73]}, size=100))
    assert page.total == 30
    assert {a.event.severity for a in page.items} == {99, 73}
    assert store.search("alerts", q(filters={"event.severity": []})).total == 0


def test_filters_combine_with_and(store: SQLiteStore) -> None:
    page = store.search("alerts", q(filters={"event.severity": 99, "network.protocol": "modbus"}, size=100))
    expected = [i for i in range(sd.N_ACME) if i % 4 == 0 and i % 10 != 5]
    assert page.total == len(expected)


def test_array_field_matches_either_side(store: SQLiteStore) -> None:
    # the PLC is the destination of every alert, the HMI the source of the odd ones
    assert store.search("alerts", q(filters={"related.ip": sd.PLC})).total == sd.N_ACME
    assert store.search("alerts", q(filters={"related.ip": sd.HMI})).total == sd.N_ACME // 2
    assert store.search("alerts", q(filters={"related.ip": [sd.HMI, sd.ROGUE]})).total == sd.N_ACME
    assert store.search("alerts", q(filters={"related.ip": "10.9.9.9"})).total == 0


def test_technique_filter(store: SQLiteStore) -> None:
    assert store.search("alerts", q(filters={"threat.technique.id": "T0836"})).total == 20
    assert store.search("alerts", q(filters={"threat.technique.id": ["T0814", "T0888"]})).total == 40


def test_nested_protocol_fields_on_events(store: SQLiteStore) -> None:
    page = store.search("events", q(filters={"modbus.exception_code": 2}, size=100))
    assert page.total == 20 and all(e.modbus and e.modbus.function_code == 134 for e in page.items)
    assert store.search("events", q(filters={"modbus.message_type": "request", "modbus.unit_id": 1})).total == 60
    assert store.search("events", q(filters={"evidence.frame": 7})).items[0].event.id == "ev-acme-3-req"


def test_none_means_missing(store: SQLiteStore) -> None:
    page = store.search("events", q(filters={"modbus.exception_code": None}))
    assert page.total == 100
    assert store.search("events", q(filters={"modbus.exception_code": [2, None]})).total == 120
    assert store.search("events", q(filters={"modbus.values": None})).total == 20


def test_bool_and_dict_key_filters(store: SQLiteStore) -> None:
    assert store.search("events", q(filters={"network.is_orig": True})).total == 60
    assert store.search("events", q(filters={"network.is_orig": False})).total == 60
    assert store.search("alerts", Query(filters={"labels.site": "globex-plant"})).total == 3


def test_event_id_filter_finds_evidence(store: SQLiteStore) -> None:
    alert = store.get("alerts", "al-acme-004")
    assert alert and alert.evidence and alert.evidence.event_ids
    page = store.search("events", q(filters={"event.id": alert.evidence.event_ids}, sort="@timestamp", descending=False))
    assert [e.event.id for e in page.items] == ["ev-acme-4-req", "ev-acme-4-resp"]


def test_time_range_is_start_inclusive_end_exclusive(store: SQLiteStore) -> None:
    start, end = sd.BASE + 10 * sd.STEP, sd.BASE + 20 * sd.STEP
    page = store.search("alerts", q(start=start, end=end, size=100, descending=False))
    assert page.total == 10
    assert page.items[0].timestamp == start and page.items[-1].timestamp == end - sd.STEP
    naive = store.search("alerts", q(start=start.replace(tzinfo=None), end=end.replace(tzinfo=None)))
    assert naive.total == 10  # naive means UTC


def test_text_search_is_case_insensitive_over_message_rule_and_ips(store: SQLiteStore) -> None:
    assert store.search("alerts", q(text="EXCEPTION burst")).total == 20
    assert store.search("alerts", q(text="10.0.0.66")).total == 30
    assert store.search("alerts", q(text="holding register 101 ")).total == 1
    assert store.search("alerts", q(text="<script>")).total == 1
    assert store.search("alerts", q(text="100%")).total == 0  # no LIKE wildcards
    assert store.search("alerts", q(text="   ")).total == sd.N_ACME


def test_values_are_parameters_not_sql(store: SQLiteStore) -> None:
    evil = "x' OR '1'='1"
    assert store.search("alerts", q(filters={"rule.id": evil})).total == 0
    assert store.search("alerts", q(text=evil)).total == 0
    assert store.stats()["alerts"] == sd.N_ACME + 3


# ---------------------------------------------------------------- tenancy


def test_organization_is_enforced_everywhere(store: SQLiteStore) -> None:
    acme_page = store.search("alerts", q(size=1000))
    assert all(a.organization and a.organization.id == "acme" for a in acme_page.items)
    assert store.search("alerts", q(filters={"rule.id": "qn-globex-secret"})).total == 0
    assert store.search("alerts", q(text="GLOBEX")).total == 0
    assert store.search("alerts", q(filters={"event.id": "al-globex-000"})).total == 0
    assert store.search("events", q(filters={"related.ip": "192.168.7.7"})).total == 0
    assert store.search_assets(q(text="GLOBEX")).total == 0
    assert "qn-globex-secret" not in dict(store.count_by("alerts", "rule.id", ACME))
    assert sum(n for _b, n in store.histogram("alerts", ACME, dt.timedelta(hours=1))) == sd.N_ACME
    assert store.search("alerts", Query(organization="globex")).total == 3
    assert store.search("alerts", Query(organization="nobody")).total == 0
    assert store.search("alerts", Query()).total == sd.N_ACME + 3  # no tenancy asked: everything


# ---------------------------------------------------------------- sort and pages


def test_default_sort_is_newest_first(store: SQLiteStore) -> None:
    page = store.search("alerts", q(size=5))
    assert [a.event.id for a in page.items] == [f"al-acme-{i:03d}" for i in (59, 58, 57, 56, 55)]


def test_sort_on_any_field_both_ways(store: SQLiteStore) -> None:
    asc = store.search("alerts", q(sort="event.severity", descending=False, size=100)).items
    assert [a.event.severity for a in asc] == sorted(a.event.severity for a in asc)  # type: ignore[type-var]
    desc = store.search("alerts", q(sort="event.severity", size=100)).items
    assert desc[0].event.severity == 99 and desc[-1].event.severity == 21
    by_port = store.search("alerts", q(sort="source.port", descending=False, size=3)).items
    assert [a.source.port for a in by_port] == [40000, 40001, 40002]  # type: ignore[union-attr]


def test_sort_puts_missing_values_last(store: SQLiteStore) -> None:
    for descending in (True, False):
        items = store.search("events", q(sort="modbus.exception_code", descending=descending, size=200)).items
        codes = [e.modbus.exception_code for e in items]  # type: ignore[union-attr]
        assert codes[:20] == [2] * 20 and codes[20:] == [None] * 100


def test_pagination_and_totals(store: SQLiteStore) -> None:
    seen: list[str] = []
    for n in range(1, 5):
        page = store.search("alerts", q(page=n, size=16))
        assert page.total == 60 and page.pages == 4 and page.page == n
        seen += [a.event.id for a in page.items]  # type: ignore[misc]
    assert len(seen) == 60 == len(set(seen))
    assert len(store.search("alerts", q(page=4, size=16)).items) == 12
    beyond = store.search("alerts", q(page=9, size=16))
    assert beyond.items == [] and beyond.total == 60
    counted = store.search("alerts", q(size=0))
    assert counted.items == [] and counted.total == 60


def test_pages_are_stable_on_ties(store: SQLiteStore) -> None:
    ids = []
    for n in range(1, 7):
        ids += [a.event.id for a in store.search("alerts", q(sort="rule.id", page=n, size=10)).items]
    assert len(set(ids)) == 60


# ---------------------------------------------------------------- aggregations


def test_count_by_scalar_field(store: SQLiteStore) -> None:
    assert store.count_by("alerts", "event.severity", ACME) == [(21, 15), (47, 15), (73, 15), (99, 15)]
    assert store.count_by("alerts", "network.protocol", ACME) == [("modbus", 54), ("s7comm", 6)]
    assert store.count_by("alerts", "network.protocol", ACME, top=1) == [("modbus", 54)]
    assert store.count_by("alerts", "rule.id", q(filters={"event.severity": 99}))[0][1] == 5


def test_count_by_array_field_counts_each_element(store: SQLiteStore) -> None:
    counts = dict(store.count_by("alerts", "related.ip", ACME))
    assert counts == {sd.PLC: 60, sd.HMI: 30, sd.ROGUE: 30}
    assert dict(store.count_by("alerts", "threat.technique.id", ACME)) == {"T0855": 20, "T0836": 20, "T0814": 20, "T0888": 20}
    assert store.count_by("assets", "protocols", ACME) == [("modbus", 3), ("s7comm", 1)]


def test_count_by_bool_and_missing(store: SQLiteStore) -> None:
    assert dict(store.count_by("events", "network.is_orig", ACME)) == {True: 60, False: 60}
    assert store.count_by("events", "modbus.exception_name", ACME) == [("illegal_data_address", 20)]


def test_histogram_buckets_align_to_epoch(store: SQLiteStore) -> None:
    hourly = store.histogram("alerts", ACME, dt.timedelta(hours=1))
    assert [b for b, _n in hourly] == [sd.BASE + dt.timedelta(hours=h) for h in range(5)]
    assert [n for _b, n in hourly] == [12, 12, 12, 12, 12]
    odd = store.histogram("alerts", ACME, dt.timedelta(minutes=7))
    assert all(int(b.timestamp()) % 420 == 0 for b, _n in odd)
    assert sum(n for _b, n in odd) == 60
    crit = store.histogram("alerts", q(filters={"event.severity": 99}), dt.timedelta(hours=1))
    assert sum(n for _b, n in crit) == 15


def test_histogram_omits_empty_buckets(store: SQLiteStore) -> None:
    sparse = store.histogram("alerts", q(filters={"event.id": ["al-acme-000", "al-acme-059"]}), dt.timedelta(minutes=5))
    assert sparse == [(sd.BASE, 1), (sd.BASE + 59 * sd.STEP, 1)]


# ---------------------------------------------------------------- assets


def test_assets_search(store: SQLiteStore) -> None:
    page = store.search_assets(ACME)
    assert [a.ip for a in page.items] == [sd.PLC, sd.HMI, sd.ROGUE]  # last_seen, newest first
    assert page.items[0] == sd.assets()[0]
    assert store.search_assets(q(filters={"roles": "modbus_master"})).total == 2
    assert store.search_assets(q(filters={"protocols": "s7comm"})).items[0].ip == sd.PLC
    assert store.search_assets(q(text="wincc")).items[0].ip == sd.HMI
    assert store.search_assets(q(filters={"id": f"acme:{sd.ROGUE}"})).total == 1
    assert store.search_assets(q(start=sd.BASE + 58 * sd.STEP)).total == 2  # on last_seen
    assert [a.ip for a in store.search_assets(q(sort="ip", descending=False)).items] == [sd.PLC, sd.HMI, sd.ROGUE]


# ---------------------------------------------------------------- bad queries


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda st: st.search("alerts", Query(filters={"rule.nope": 1})), "unknown field 'rule.nope'"),
        (lambda st: st.search("alerts", Query(filters={"severity": 1})), "did you mean event.severity"),
        (lambda st: st.search("alerts", Query(filters={"rule.id') OR 1=1 --": 1})), "unknown field"),
        (lambda st: st.search("alerts", Query(sort="nope")), "sort: unknown field"),
        (lambda st: st.search("alerts", Query(sort="related.ip")), "cannot sort"),
        (lambda st: st.search("alerts", Query(sort="rule")), "cannot sort"),
        (lambda st: st.search("alerts", Query(filters={"rule": "x"})), "object"),
        (lambda st: st.search("alerts", Query(filters={"rule.id": {"a": 1}})), "unsupported value"),
        (lambda st: st.search("alerts", Query(filters={"@timestamp": "yesterday"})), "not a time"),
        (lambda st: st.search("alerts", Query(page=0)), "page must be"),
        (lambda st: st.search("alerts", Query(size=-1)), "size must be"),
        (lambda st: st.search("alerts", Query(size=10**6)), "size must be"),
        (lambda st: st.search("bogus", Query()), "unknown index"),  # type: ignore[arg-type]
        (lambda st: st.search_assets(Query(filters={"modbus.unit_id": 1})), "in the assets index"),
        (lambda st: st.count_by("alerts", "nope", Query()), "count_by: unknown field"),
        (lambda st: st.count_by("alerts", "rule", Query()), "object"),
        (lambda st: st.count_by("alerts", "rule.id", Query(), top=0), "top must be"),
        (lambda st: st.histogram("alerts", Query(), dt.timedelta(0)), "interval must be"),
    ],
)
def test_bad_queries_raise_query_error(store: SQLiteStore, call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match=message) as info:
        call(store)
    assert isinstance(info.value, StoreError)


def test_timestamp_filter_uses_the_time_column(store: SQLiteStore) -> None:
    assert store.search("alerts", q(filters={"@timestamp": sd.BASE + 3 * sd.STEP})).items[0].event.id == "al-acme-003"
    assert store.search("alerts", q(filters={"@timestamp": "2024-05-01T08:15:00Z"})).total == 1


def test_field_kinds_cover_the_schema() -> None:
    assert set(_KINDS["events"]) == s.known_fields(s.Event)
    assert set(_KINDS["assets"]) == s.known_fields(s.Asset)


def test_indexes_serve_the_common_alert_filters(store: SQLiteStore) -> None:
    db = store._db
    assert db is not None
    for column, index in (("severity", "alerts_severity_ts"), ("rule_id", "alerts_rule_ts"), ("protocol", "alerts_protocol_ts")):
        plan = " ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN SELECT doc FROM alerts WHERE {column} = ? ORDER BY ts DESC", ["x"]))
        assert index in plan, plan
    plan = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN SELECT doc FROM alerts WHERE org = ? AND ts >= ?", ["a", 0]))
    assert "alerts_org_ts" in plan


def test_concurrent_readers_and_writer(empty_store: SQLiteStore) -> None:
    events, alerts = sd.acme()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for a in alerts:
                empty_store.write([a])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def read() -> None:
        try:
            for _ in range(50):
                page = empty_store.search("alerts", q(size=10))
                assert page.total >= len(page.items)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert empty_store.search("alerts", ACME).total == sd.N_ACME


def test_fields_inside_lists_of_structs(empty_store: SQLiteStore) -> None:
    def rec(i: int, file_number: int) -> s.Event:
        return s.Event(
            timestamp=sd.BASE + i * sd.STEP,
            event=s.EventInfo(kind="event", dataset="modbus", id=f"fr-{i}"),
            modbus=s.Modbus(transaction_id=i, unit_id=1, function_code=20, function_name="read_file_record",
                            message_type="request",
                            file_records=[s.FileRecord(file_number=file_number, record_number=1, values=[1, 2]),
                                          s.FileRecord(file_number=9, record_number=2)]),
        )

    empty_store.write([rec(0, 4), rec(1, 5), rec(2, 4)])
    assert empty_store.search("events", Query(filters={"modbus.file_records.file_number": 4})).total == 2
    assert empty_store.search("events", Query(filters={"modbus.file_records.file_number": [5, 9]})).total == 3
    assert empty_store.count_by("events", "modbus.file_records.file_number", Query()) == [(9, 3), (4, 2), (5, 1)]
    with pytest.raises(QueryError, match="list inside a list"):
        empty_store.search("events", Query(filters={"modbus.file_records.values": 1}))
    with pytest.raises(QueryError, match="cannot sort"):
        empty_store.search("events", Query(sort="modbus.file_records.file_number"))
