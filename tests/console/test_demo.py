"""`qinling demo` seeding: two enterprises replayed from the bundled captures, one user per role, tenancy holds."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from console.commands.demo import CSAF_DIR, ENTERPRISES, PLANTS, Seeded, captures, plan, seed, seed_csaf
from console.web import create_app
from pipeline.store import Query
from pipeline.store.sqlite import SQLiteStore
from tests.console.conftest import FAST_ARGON2, close_app, login


def test_demo_seeds_two_enterprises_and_keeps_them_apart(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    (root / "stale").mkdir(parents=True)  # anything from an earlier demo goes
    csaf = CSAF_DIR if CSAF_DIR.is_dir() else None  # the shared CSAF advisories, when this checkout has them
    seeded = seed(root, "demo-password-1", hasher=PasswordHasher(**FAST_ARGON2), csaf_dir=csaf)
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
        assert a and b and not a & b  # no shared alert id
        for ent in ENTERPRISES:  # every asset is one device: no two protocols name different models for it
            assets = store.search_assets(Query(organization=ent.id, sort="last_seen", size=5000)).items
            assert assets and any(x.model for x in assets), ent.id
            for x in assets:
                models = {(ev.source.split(".")[0], ev.value) for ev in x.evidence if ev.field == "model"}
                assert len({p for p, _ in models}) <= 1, (ent.id, x.ip, models)
    app = create_app({"TESTING": True, "STORE_URL": seeded.store_url, "CONSOLE_DB": seeded.console_db,
                      "ARGON2": FAST_ARGON2, "CSAF_INDEX": seeded.csaf_index or str(root / "no-index.json")})
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
        findings = ent_a.get("/api/v1/findings").get_json()
        if csaf is None:
            assert seeded.csaf_index is None and findings == {"items": [], "total": 0, "problem": "missing"}
        else:  # the testbed's S7 PLCs announce an S7-300 CPU 317-2 PN/DP order number the advisories name
            assert seeded.advisories > 100 and Path(seeded.csaf_index or "").is_file()
            affected = [f for f in findings["items"] if f["status"] == "affected"]
            assert len(affected) == seeded.findings["ent-a"] > 0 and findings["problem"] is None
            assert {f["organization"] for f in findings["items"]} == {"ent-a"}
            assert any("6ES7317-2EK14-0AB0" in f["product"] or "CPU 317-2" in f["product"] for f in affected)
            assert seeded.findings["ent-b"] > 0  # the water utility's ControlLogix (1756-L71)
    finally:
        close_app(app)


def test_demo_without_csaf_advisories_has_no_index(tmp_path: Path) -> None:
    seeded = Seeded("sqlite:///x", "x", "pw")
    seed_csaf(seeded, tmp_path, None)
    seed_csaf(seeded, tmp_path, tmp_path / "no-such-dir")
    assert seeded.csaf_index is None and seeded.findings == {} and not (tmp_path / "csaf-index.json").exists()


def test_demo_plants_are_replayed_on_their_own_subnets() -> None:
    """Each enterprise runs its own plants; the first keeps 10.10, each later one moves to 10.11, 10.12, ..."""
    planned = plan(captures())
    assert set(planned) == {e.id for e in ENTERPRISES}
    dirs = {ent: [p.parent.name for p, _ in items] for ent, items in planned.items()}
    assert set(dirs["ent-a"]) == set(PLANTS["ent-a"]) and set(dirs["ent-b"]) == set(PLANTS["ent-b"])
    assert not set(dirs["ent-a"]) & set(dirs["ent-b"])
    for ent, items in planned.items():
        subnets = {}
        for p, remap in items:
            subnets.setdefault(p.parent.name, set()).add((remap or {}).get("10.10", "10.10"))
        assert all(len(s) == 1 for s in subnets.values())  # a plant's captures share its subnet
        assert sorted(s for (s,) in subnets.values()) == [f"10.{10 + n}" for n in range(len(subnets))]
    # a seed from a few captures: an enterprise that runs none of them replays them all (the browser journeys' site)
    one = [p for p in captures() if p.name == "modbus_plant_attack.pcap"]
    assert plan(one) == {e.id: [(one[0], None)] for e in ENTERPRISES}


def test_sensor_remap_moves_addresses_not_payloads() -> None:
    from sensors.engine import decode_file

    path = next(p for p in captures() if p.name == "opcua_plant_attack.pcap")
    plain = [e for e in decode_file(path) if e.source is not None]
    moved = [e for e in decode_file(path, remap={"10.10": "10.12"}) if e.source is not None]
    assert len(plain) == len(moved)
    arp = 0
    for a, b in zip(plain, moved):
        if a.arp is not None:  # layer 2: the ARP packet's own addresses move, the MACs stay
            arp += 1
            assert b.arp is not None and (b.source, b.destination) == (a.source, a.destination)
            for x, y in ((a.arp.sender_ip, b.arp.sender_ip), (a.arp.target_ip, b.arp.target_ip)):
                assert y == ("10.12." + x[6:] if x.startswith("10.10.") else x)
            continue
        for x, y in ((a.source, b.source), (a.destination, b.destination)):
            want = "10.12." + x.ip[6:] if x.ip.startswith("10.10.") else x.ip
            assert y.ip == want
        assert a.opcua == b.opcua  # payload fields (endpoint URLs with the recorded address) untouched
    assert arp > 0
    from sensors.engine import Sensor

    try:
        Sensor(remap={"10.10.1": "10.12.1"})
    except ValueError as e:
        assert "/16" in str(e)
    else:
        raise AssertionError("a non-/16 remap was accepted")
