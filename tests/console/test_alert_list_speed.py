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


def test_text_search_counts_up_to_the_limit_and_says_so(db_path: Path) -> None:
    app = make_app(db_path, ALERT_TEXT_TOTAL_LIMIT=10)
    c = login(app.test_client(), "analyst")
    with app.app_context():
        matching = get_store().search("alerts", Query(organization="acme", text="wrote", size=0)).total
    assert matching > 20
    body = c.get("/alerts/?q=wrote&size=5").get_data(as_text=True)
    assert "共 10+ 条，第 1 页" in body and 'rel="next"' in body and len(re.findall(r'<tr class="alert-row">', body)) == 5
    # past the counted matches the pages still come, and still say "10+"
    body = c.get("/alerts/?q=wrote&size=5&page=3").get_data(as_text=True)
    assert "共 10+ 条，第 3 页" in body and 'rel="next"' in body and len(re.findall(r'<tr class="alert-row">', body)) == 5
    # the last page: no next link
    last = -(-matching // 5)
    body = c.get(f"/alerts/?q=wrote&size=5&page={last}").get_data(as_text=True)
    assert 'rel="next"' not in body and len(re.findall(r'<tr class="alert-row">', body)) == matching - 5 * (last - 1)
    # under the limit, and without text, totals stay exact
    body = c.get("/alerts/?q=globex&size=5").get_data(as_text=True)
    assert "+ 条" not in body
    body = c.get("/alerts/?size=5").get_data(as_text=True)
    assert "共 60 条，第 1/12 页" in body
    # a triage filter on top (the list scans the store in batches) still finds every match
    assert c.get("/alerts/?q=wrote&triage=new&size=50&page=2").status_code == 200
    close_app(app)
