"""Data for the inventory, risk and self-assessment page tests: the shared sample store plus one identified acme
PLC (vendor, model, firmware, serial with evidence), a CSAF index with an advisory it matches, and an app
over them with the risk clock pinned.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from flask import Flask

from detection.commap import build_commap
from detection.risk import Gap, risk_report
from detection.vulns.csaf import Index, load_dir
from detection.vulns.match import match_inventory
from pipeline import schema as s
from pipeline.store import Query
from pipeline.store.sqlite import SQLiteStore
from tests.console.conftest import make_app
from tests.store import sample_data as sd

NOW = dt.datetime(2024, 5, 1, 13, 0, tzinfo=dt.timezone.utc)  # just after the sample's last alert
QN_PLC = "10.0.0.30"
ORGS = {"acme": {"name": "Acme 某石化", "city": "榆林市", "industry": "petrochemical"},
        "globex": {"name": "Globex 某水务", "city": "宝鸡市", "industry": "water"}}


def advisory() -> dict[str, Any]:
    return {
        "document": {"csaf_version": "2.0", "category": "csaf_security_advisory", "title": "Qinling Testbed QN-PLC",
                     "tracking": {"id": "QNSA-2026-0001", "initial_release_date": "2026-01-01T00:00:00Z",
                                  "current_release_date": "2026-01-01T00:00:00Z"},
                     "references": [{"category": "self", "url": "https://example.invalid/qnsa-2026-0001"}]},
        "product_tree": {"branches": [{"category": "vendor", "name": "Qinling Testbed", "branches": [
            {"category": "product_name", "name": "QN-PLC", "branches": [
                {"category": "product_version_range", "name": "<=1.0",
                 "product": {"name": "QN-PLC <=1.0", "product_id": "CSAFPID-0001"}}]}]}]},
        "vulnerabilities": [{
            "cve": "CVE-2026-0001", "title": "Unauthenticated write",
            "product_status": {"known_affected": ["CSAFPID-0001"]},
            "scores": [{"products": ["CSAFPID-0001"], "cvss_v3": {"version": "3.1", "baseScore": 9.8, "baseSeverity": "CRITICAL",
                                                                "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],
            "remediations": [{"category": "vendor_fix", "details": "Update to 1.1", "product_ids": ["CSAFPID-0001"]}]}],
    }


def build_index(tmp_path: Path) -> tuple[Path, Index]:
    (tmp_path / "adv").mkdir(exist_ok=True)
    (tmp_path / "adv" / "qnsa.json").write_text(json.dumps(advisory()))
    index = load_dir(tmp_path / "adv")
    index.save(tmp_path / "csaf-index.json")
    return tmp_path / "csaf-index.json", index


def identified_plc(vendor_key: str) -> s.Asset:
    when = sd.BASE + dt.timedelta(minutes=7)

    def ev(fld: str, value: str, source: str, frame: int) -> s.AssetEvidence:
        return s.AssetEvidence(field=fld, value=value, source=source, strength=3, event_id="ev-acme-1-req", frame=frame,
                               file="attack.pcap", timestamp=when)

    return s.Asset(id=f"acme:{QN_PLC}", ip=QN_PLC, organization=s.Organization(id="acme"), first_seen=sd.BASE, last_seen=when,
                   roles=["modbus_slave"], protocols=["modbus", "opcua"], ports=[502, 4840], vendor="Qinling Testbed",
                   vendor_key=vendor_key, vendor_zh="秦岭测试", model="QN-PLC", firmware="1.0", serial="SN-0042", role="plc",
                   zone="10.0.0.0/24", exposures=["modbus", "opcua_security_none"],
                   evidence=[ev("vendor", "Qinling Testbed", "modbus.objects.vendor_name", 3),
                             ev("model", "QN-PLC", "modbus.objects.product_code", 3),
                             ev("firmware", "1.0", "modbus.objects.revision", 3),
                             ev("serial", "SN-0042", "opcua.server.serial", 5)])


def seed(db_path: Path, tmp_path: Path) -> Path:
    """Adds the identified PLC to the store and builds the CSAF index; returns the index path."""
    path, index = build_index(tmp_path)
    with SQLiteStore(db_path) as store:
        store.write_assets([identified_plc(index.advisories[0].products[0].vendor_key)])
    return path


def analysis_app(db_path: Path, tmp_path: Path, **config: object) -> Flask:
    index = seed(db_path, tmp_path)
    return make_app(db_path, ORGANIZATION=None, RISK_NOW=NOW.isoformat(), CSAF_INDEX=str(index), **config)


def expected_report(db_path: Path, index_path: Path, org: str | None = None,
                    gaps: dict[str, list[Gap]] | None = None) -> dict[str, Any]:
    """risk_report over the same inputs the console reads (all of one store's data, or one enterprise's)."""
    with SQLiteStore(db_path) as store:
        assets = store.search_assets(Query(organization=org, sort="last_seen", size=5000)).items
        alerts = store.search("alerts", Query(organization=org, size=5000)).items
        events = store.search("events", Query(organization=org, size=10_000)).items
    findings = match_inventory(assets, Index.load(index_path))
    orgs = {k: v for k, v in ORGS.items() if org is None or k == org}
    return risk_report(assets, alerts, findings, build_commap(events, assets), organizations=orgs, gaps=gaps or {},
                       now=NOW, days=14)
