"""Risk arithmetic pinned on a hand-made situation and on the testbed capture's real alerts; communication map."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

from detection.assets import AssetTracker
from detection.commap import CommMap, build_commap
from detection.engine import DetectionEngine
from detection.risk import Gap, Score, asset_risk, enterprise_risk, group_risk, risk_report
from detection.rules import load_rules
from detection.zones import ZoneMap
from pipeline.schema import Asset, Endpoint, Event, EventInfo, Network, Organization, Related

from .conftest import ATTACK, ENG, HMI, PLC1, PLC2, REPO, commap, events

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def alert(sev: int, age_days: float, ip: str = "10.0.0.5", triage: str | None = None) -> Event:
    return Event(timestamp=NOW - dt.timedelta(days=age_days), event=EventInfo(kind="alert", dataset="qinling.alert", severity=sev),
                 related=Related(ip=[ip]), organization=Organization(id="ent1"), labels={"triage": triage} if triage else None)


def finding(cvss: float, adv: str, kev: bool = False) -> SimpleNamespace:
    return SimpleNamespace(asset_id="ent1:10.0.0.5", status="affected", max_cvss=cvss, advisory_id=adv, cves=["CVE-1"], known_exploited=kev)


PLC = Asset(id="ent1:10.0.0.5", ip="10.0.0.5", first_seen=NOW, last_seen=NOW, organization=Organization(id="ent1"),
            exposures=["modbus", "opcua_security_none"], name="PLC-5")


def test_asset_score_hand_made() -> None:
    alerts = [alert(73, 0), alert(47, 7), alert(99, 0, triage="false_positive"), alert(21, 0, triage="acknowledged"),
              alert(99, 0, ip="10.0.0.6")]  # another asset's
    s = asset_risk(PLC, alerts, [finding(9.8, "A1", kev=True), finding(5.0, "A2")], ["internet_control", "insecure"], NOW)
    assert [(c.key, c.points) for c in s.components] == [
        ("alerts.high", 10.0),  # 10 × 0.5^0
        ("alerts.medium", 2.5),  # 5 × 0.5^(7/7)
        ("alerts.low", 1.5),  # 2 × 0.75 (acknowledged)
        ("alerts.false_positive", 0.0),
        ("exposure.modbus", 6.0),
        ("exposure.opcua_security_none", 8.0),
        ("exposure.internet_control", 15.0),
        ("vulns.max_cvss", 19.6),  # 2 × 9.8
        ("vulns.known_exploited", 10.0),
        ("vulns.more_advisories", 0.4),  # +1 for one more advisory, capped at 30 for vulnerabilities
    ]
    assert s.score == 73.0
    assert all(c.reason_en and c.reason_zh for c in s.components)
    assert s.components[-4].reason_zh == "互联网与控制网直连"


def test_enterprise_city_industry_hand_made() -> None:
    a = Score("asset", "ent1:a", 73.0, [])
    b = Score("asset", "ent1:b", 20.0, [])
    e1 = enterprise_risk("ent1", [a, b], [Gap("backup", 8, "offline backups", "离线备份"), Gap("mfa", 5)])
    assert [(c.key, c.points) for c in e1.components] == [
        ("enterprise.worst_asset", 43.8), ("enterprise.top_assets", 18.6), ("gaps.backup", 8.0), ("gaps.mfa", 5.0)]
    assert e1.score == 75.4
    e2 = enterprise_risk("ent2", [Score("asset", "ent2:x", 30.0, [])])
    assert e2.score == 30.0  # 18 + 12
    city = group_risk("city", "西安", [e1, e2])
    assert [(c.key, c.points) for c in city.components] == [("city.worst_enterprise", 37.7), ("city.mean", 26.4)]
    assert city.score == 64.1


def test_trend_per_day() -> None:
    s = risk_report([PLC], [alert(73, 0), alert(73, 2)], now=NOW, days=3)["assets"][0]
    # exposure 14 every day; the older high alert (02-27 12:00) at each day's end: 0.5 d, 1.5 d, 2 d old
    # 02-27: 10×0.5^(0.5/7) = 9.5; 02-28: 10×0.5^(1.5/7) = 8.6; 03-01 (until now): 10 + 10×0.5^(2/7) = 18.2
    assert [t["date"] for t in s["trend"]] == ["2026-02-27", "2026-02-28", "2026-03-01"]
    assert [t["score"] for t in s["trend"]] == [23.5, 22.6, 32.2]


def test_testbed_capture_real_alerts() -> None:
    rs = load_rules(REPO / "rules", REPO / "rules" / "lists.yml")
    engine = DetectionEngine(rs.rules, rs.lists)
    tracker, cm, alerts = AssetTracker(oui=False), CommMap(), []
    for e in events(str(ATTACK)):
        tracker.observe(e)
        cm.observe(e)
        for a in engine.process(e):
            alerts.append(a)
            tracker.note_alert(a)
    assets = tracker.snapshot()
    now = max(a.timestamp for a in alerts) + dt.timedelta(days=1)
    r = risk_report(assets, alerts, graph=cm.graph(assets), now=now, days=2,
                    organizations={"default": {"name": "Testbed", "city": "西安", "industry": "water"}})
    scores = {s["subject"].split(":")[1]: s for s in r["assets"]}
    assert len(alerts) == 19
    assert {ip: s["score"] for ip, s in scores.items()} == {
        PLC1: 46.0, PLC2: 46.0, "10.10.1.66": 40.0, "10.10.1.70": 9.1, HMI: 0.0, ENG: 0.0}
    assert [(c["key"], c["points"]) for c in scores[PLC1]["breakdown"]] == [
        ("alerts.critical", 36.2), ("alerts.high", 3.8), ("alerts.medium", 0.0), ("exposure.modbus", 6.0)]
    assert [t["score"] for t in scores["10.10.1.70"]["trend"]] == [10.0, 9.1]
    assert [(s["subject"], s["score"]) for s in r["enterprises"]] == [("default", 38.9)]
    assert [(s["subject"], s["score"]) for s in r["cities"]] == [("西安", 39.0)]
    assert [(s["subject"], s["score"]) for s in r["industries"]] == [("water", 39.0)]


def test_commap_testbed() -> None:
    g = commap(ATTACK)
    assert g["summary"] == {"nodes": 6, "edges": 6, "zones": 1, "flagged": {"insecure": 6}}
    edge = next(e for e in g["edges"] if e["source"] == f"default:{HMI}" and e["target"] == f"default:{PLC1}")
    assert (edge["protocol"], edge["port"]) == ("modbus", 502)
    assert set(edge["functions"]) == {"read_holding_registers", "read_coils"}
    assert g["zones"][0]["kind"] == "ot"
    node = next(n for n in g["nodes"] if n["ip"] == PLC1)
    assert (node["role"], node["vendor"], node["zone"]) == ("plc", "Qinling Testbed", "10.10.1.0/24")


def _flow(src: str, dst: str, port: int, protocol: str | None = None) -> Event:
    return Event(timestamp=NOW, event=EventInfo(kind="event", dataset="flow", action="flow"),
                 source=Endpoint(ip=src, port=50000), destination=Endpoint(ip=dst, port=port),
                 network=Network(transport="tcp", protocol=protocol, bytes=100, packets=2))


def test_commap_zones_levels_and_flags(tmp_path: Path) -> None:
    zf = tmp_path / "zones.toml"
    zf.write_text('[[zones]]\nname = "control"\ncidrs = ["10.1.0.0/16"]\nlevel = 1\n\n'
                  '[[zones]]\nname = "office"\ncidrs = ["192.168.0.0/16"]\nlevel = 4\n')
    zones = ZoneMap.load(zf)
    evs = [_flow("192.168.1.5", "10.1.2.3", 502, "modbus"), _flow("8.8.8.8", "10.1.2.3", 102, "s7comm"),
           _flow("192.168.1.5", "10.1.2.9", 3389), _flow("10.1.2.3", "10.1.2.9", 502, "modbus")]
    g = build_commap(evs, zones=zones)
    flags = {(e["source"].split(":")[1], e["target"].split(":")[1]): e["flags"] for e in g["edges"]}
    assert flags[("192.168.1.5", "10.1.2.3")] == ["cross_zone", "it_ot", "level_skip", "insecure"]
    assert flags[("8.8.8.8", "10.1.2.3")] == ["cross_zone", "internet_control", "insecure"]
    assert flags[("192.168.1.5", "10.1.2.9")] == ["cross_zone", "it_ot", "level_skip", "remote_access"]
    assert flags[("10.1.2.3", "10.1.2.9")] == ["insecure"]
    assert {z["name"]: (z["level"], z["kind"]) for z in g["zones"]} == {
        "control": (1.0, "ot"), "office": (4.0, "it"), "internet": (None, "internet")}
    assert g["summary"]["flagged"]["it_ot"] == 2
