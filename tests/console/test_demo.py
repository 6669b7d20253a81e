"""`qinling demo` seeding: two enterprises replayed from the bundled captures, one user per role, tenancy holds."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from console.commands.demo import ENTERPRISES, seed
from console.web import create_app
from pipeline.store import Query
from pipeline.store.sqlite import SQLiteStore
from tests.console.conftest import FAST_ARGON2, close_app, login


def test_demo_seeds_two_enterprises_and_keeps_them_apart(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    (root / "stale").mkdir(parents=True)  # anything from an earlier demo goes
    seeded = seed(root, "demo-password-1", hasher=PasswordHasher(**FAST_ARGON2))
    assert not (root / "stale").exists() and seeded.seconds < 60
    assert {e.id for e in ENTERPRISES} == set(seeded.alerts) and all(n > 0 for n in seeded.alerts.values())
    assert len({e.city for e in ENTERPRISES}) == 2 and len({e.industry for e in ENTERPRISES}) == 2
    with SQLiteStore(root / "store.sqlite") as store:
        ids = {}
        for ent in ENTERPRISES:
            page = store.search("alerts", Query(organization=ent.id, size=1000))
            assert page.total == seeded.alerts[ent.id]
            ids[ent.id] = {a.event.id for a in page.items}
            alert = page.items[0]
            assert alert.evidence and alert.evidence.event_ids
            evidence = store.search("events", Query(organization=ent.id, filters={"event.id": alert.evidence.event_ids}))
            assert evidence.total == len(set(alert.evidence.event_ids))  # evidence ids were qualified too
        a, b = (ids[e.id] for e in ENTERPRISES)
        assert a and b and not a & b  # the same captures, no shared alert id
    app = create_app({"TESTING": True, "STORE_URL": seeded.store_url, "CONSOLE_DB": seeded.console_db,
                      "ARGON2": FAST_ARGON2})
    try:
        ent_a = login(app.test_client(), "enterprise-a", "demo-password-1")
        data = ent_a.get("/api/v1/alerts?size=500").get_json()
        assert data["total"] == seeded.alerts["ent-a"] and {x["organization"]["id"] for x in data["items"]} == {"ent-a"}
        foreign = next(iter(ids["ent-b"]))
        assert ent_a.get(f"/api/v1/alerts/{foreign}").status_code == 404
        assert ent_a.get(f"/alerts/{foreign}").status_code == 404
        regulator = login(app.test_client(), "regulator", "demo-password-1")
        assert regulator.get("/api/v1/alerts").get_json()["total"] == sum(seeded.alerts.values())
        assert regulator.get(f"/alerts/{foreign}").status_code == 200
        ents = regulator.get("/api/v1/enterprises").get_json()["items"]
        assert [(e["id"], e["city"], e["industry"]) for e in ents] == [("ent-a", "榆林市", "petrochemical"), ("ent-b", "宝鸡市", "water")]
        for username in ("admin", "analyst", "auditor", "enterprise-b"):
            login(app.test_client(), username, "demo-password-1")
        assert "某水务" in regulator.get("/enterprises/?lang=zh-CN").get_data(as_text=True)
    finally:
        close_app(app)
