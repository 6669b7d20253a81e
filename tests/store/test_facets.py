"""Facets and network (CIDR) filters on the SQLite store; tests/integration/test_store_contract.py checks that
Elasticsearch gives the same answers."""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.exceptions import QueryError
from pipeline.store import Facet, Query
from pipeline.store.sqlite import SQLiteStore
from tests.store import sample_data as sd

ACME = Query(organization="acme")


def test_facets_count_the_selected_documents_with_missing(store: SQLiteStore) -> None:
    got = store.facets("events", ["event.action", "source.ip", "modbus.exception_code", "organization.id"], ACME, top=2)
    assert got["event.action"] == Facet("event.action", [("write", 120)], 0)
    assert got["source.ip"] == Facet("source.ip", [(sd.PLC, 60), (sd.HMI, 30)], 0)
    assert got["modbus.exception_code"] == Facet("modbus.exception_code", [(2, 20)], 100)
    assert got["organization.id"].buckets == [("acme", 120)]  # tenancy holds inside facets too
    everyone = store.facets("events", ["organization.id"], Query())
    assert everyone["organization.id"].buckets == [("acme", 120), ("globex", 6)]


def test_facets_follow_the_filters(store: SQLiteStore) -> None:
    q = Query(organization="acme", filters={"source.ip": sd.ROGUE}, text="")
    got = store.facets("events", ["destination.ip", "network.direction"], q)
    assert got["destination.ip"].buckets == [(sd.PLC, 30)]
    assert got["network.direction"].buckets == [("request", 30)]
    assert store.facets("assets", ["roles", "vendor"], ACME)["vendor"].missing == 1


def test_network_filters_on_ip_fields(store: SQLiteStore) -> None:
    net = ipaddress.ip_network
    assert store.search("events", Query(filters={"source.ip": net("192.168.7.0/24")})).total == 6
    assert store.search("events", Query(filters={"destination.ip": net("10.0.0.64/30")})).total == 30
    assert store.search("events", Query(filters={"related.ip": [net("10.0.0.64/30"), "192.168.7.1"]})).total == 66
    assert store.search("alerts", Query(filters={"source.ip": net("::ffff:10.0.0.0/120")})).total == sd.N_ACME
    assert store.search_assets(Query(filters={"ip": net("10.0.0.0/28")})).total == 1
    assert store.search("events", Query(filters={"source.ip": ipaddress.ip_address(sd.ROGUE)})).total == 30


@pytest.mark.parametrize("call,message", [
    (lambda st: st.facets("alerts", ["rule"], Query()), "object"),
    (lambda st: st.facets("alerts", ["x') OR 1=1 --"], Query()), "unknown field"),
    (lambda st: st.facets("alerts", "rule.id", Query()), "list of field names"),
    (lambda st: st.facets("alerts", ["rule.id"], Query(), top=0), "top must be"),
    (lambda st: st.search("events", Query(filters={"event.action": ipaddress.ip_network("10.0.0.0/8")})), "IP fields only"),
])
def test_bad_facet_and_network_queries(store: SQLiteStore, call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match=message):
        call(store)


def test_filter_values_stay_values(store: SQLiteStore) -> None:
    hostile = "10.0.0.10' OR '1'='1"
    assert store.search("events", Query(filters={"source.ip": hostile})).total == 0
    assert store.facets("events", ["source.ip"], Query(filters={"source.ip": hostile}))["source.ip"] == Facet("source.ip", [], 0)
    assert store.facets("events", ["source.ip"], Query(text="') OR 1=1 --"))["source.ip"].buckets == []
