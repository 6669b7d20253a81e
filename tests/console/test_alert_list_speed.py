"""The alert list's cheaper reads: drop-down values reused per organization scope, and text searches
that count matches only up to a limit, saying "at least" honestly beyond it."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from console.web.store import get_store
from pipeline.store import Query
from tests.console.conftest import close_app, login, make_app
from tests.store import sample_data as sd


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}">(.*?)</select>', html, re.S)
    assert select, name
    return [v for v in re.findall(r'<option value="([^"]*)"', select.group(1)) if v]


def _new_alert(app, rule_id: str, protocol: str) -> None:  # type: ignore[no-untyped-def]
    base = sd.acme()[1][0]
    alert = msgspec.structs.replace(
        base, event=msgspec.structs.replace(base.event, id=f"al-acme-new-{rule_id}"),
        rule=msgspec.structs.replace(base.rule, id=rule_id), network=msgspec.structs.replace(base.network, protocol=protocol))
    with app.app_context():
        store = get_store()
        store.write([alert])
        store.flush()


def test_dropdowns_list_every_rule_and_protocol_of_the_scope_and_follow_new_alerts(db_path: Path) -> None:
    app = make_app(db_path)
    c = login(app.test_client(), "analyst")
    body = c.get("/alerts/").get_data(as_text=True)
    with app.app_context():  # what the page asked the store before: count_by over the scope, most frequent first
        everything = Query(organization="acme", size=0)
        want_rules = [str(r) for r, _n in get_store().count_by("alerts", "rule.id", everything, top=200)]
        want_protocols = [str(p) for p, _n in get_store().count_by("alerts", "network.protocol", everything, top=50)]
    rules, protocols = options(body, "rule"), options(body, "protocol")
    assert rules == want_rules and {r for r, _n, _t in sd.RULES} <= set(rules)
    assert protocols == want_protocols and "modbus" in protocols
    # a filtered page shows the same choices (they count every alert of the scope, whatever the filter)
    filtered = c.get("/alerts/?severity=critical&q=burst").get_data(as_text=True)
    assert options(filtered, "rule") == rules and options(filtered, "protocol") == protocols
    # a new alert (the unfiltered list's total changes) shows up at once, not after the reuse period
    _new_alert(app, "qn-test-9999", "dnp3")
    body = c.get("/alerts/").get_data(as_text=True)
    assert "qn-test-9999" in options(body, "rule") and "dnp3" in options(body, "protocol")
    close_app(app)


def test_dropdowns_are_per_organization(db_path: Path) -> None:
    app = make_app(db_path, ORGANIZATION=None)
    c = login(app.test_client(), "regulator")
    everything = options(c.get("/alerts/").get_data(as_text=True), "rule")
    with app.app_context():
        globex_rules = {str(r) for r, _n in get_store().count_by("alerts", "rule.id", Query(organization="globex"), top=200)}
    globex = options(c.get("/alerts/?org=globex").get_data(as_text=True), "rule")
    assert set(globex) == globex_rules and set(globex) <= set(everything)
    close_app(app)
