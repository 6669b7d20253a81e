"""CSAF 2.0 import and conservative matching against the inventory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from detection.vulns.csaf import Index, load_dir
from detection.vulns.match import match_inventory
from detection.vulns.versions import parse_range

from .conftest import ATTACK, CORPUS, CSAF, PLC1, inventory, need


def csaf(product: str, version: str, category: str = "product_version_range", vendor: str = "Qinling Testbed") -> dict[str, Any]:
    return {
        "document": {"csaf_version": "2.0", "category": "csaf_security_advisory", "title": f"{vendor} {product}",
                     "tracking": {"id": "QNSA-2026-0001", "initial_release_date": "2026-01-01T00:00:00Z",
                                  "current_release_date": "2026-01-01T00:00:00Z"},
                     "references": [{"category": "self", "url": "https://example.invalid/qnsa-2026-0001"}],
                     "notes": [{"category": "other", "title": "Critical infrastructure sectors", "text": "Energy"}]},
        "product_tree": {"branches": [{"category": "vendor", "name": vendor, "branches": [
            {"category": "product_name", "name": product, "branches": [
                {"category": category, "name": version, "product": {"name": f"{product} {version}", "product_id": "CSAFPID-0001"}}]}]}]},
        "vulnerabilities": [{
            "cve": "CVE-2026-0001", "title": "Unauthenticated write",
            "notes": [{"category": "summary", "text": "This vulnerability is known to be exploited."}],
            "product_status": {"known_affected": ["CSAFPID-0001"]},
            "scores": [{"products": ["CSAFPID-0001"], "cvss_v3": {"version": "3.1", "baseScore": 9.8, "baseSeverity": "CRITICAL",
                                                                "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],
            "remediations": [{"category": "vendor_fix", "details": "Update to 1.1", "product_ids": ["CSAFPID-0001"]}]}],
    }


def _index(tmp_path: Path, doc: dict[str, Any]) -> Index:
    (tmp_path / "adv").mkdir()
    (tmp_path / "adv" / "qnsa.json").write_text(json.dumps(doc))
    return load_dir(tmp_path / "adv")


def test_fixture_advisory_raises_a_finding_for_the_testbed_plc(tmp_path: Path) -> None:
    idx = _index(tmp_path, csaf("QN-PLC", "<=1.0"))
    findings = match_inventory(inventory(ATTACK).values(), idx)
    assert [(f.ip, f.advisory_id, f.status, f.match, f.matched_on) for f in findings] == [
        (PLC1, "QNSA-2026-0001", "affected", "exact", "QN-PLC")]
    f = findings[0]
    assert (f.cves, f.max_cvss, f.known_exploited, f.url, f.firmware) == (
        ["CVE-2026-0001"], 9.8, True, "https://example.invalid/qnsa-2026-0001", "1.0")
    assert f.remediations == [{"category": "vendor_fix", "details": "Update to 1.1", "url": None}]
    assert {(e["field"], e["value"], e["frame"]) for e in f.evidence} >= {("vendor", "Qinling Testbed", 291), ("firmware", "1.0", 291)}
    # The index survives a save/load round trip and matches the same way.
    idx.save(tmp_path / "i.json")
    assert [x.to_dict() for x in match_inventory(inventory(ATTACK).values(), Index.load(tmp_path / "i.json"))] == [f.to_dict()]


@pytest.mark.parametrize(("product", "version", "vendor"), [
    ("QN-PLC", "2.x", "Qinling Testbed"),  # other version line
    ("QN-PLC", "vers:generic/>=2.0|<3.0", "Qinling Testbed"),
    ("QN-RTU", "<=1.0", "Qinling Testbed"),  # other product
    ("QN-PLC", "<=1.0", "Other Vendor"),  # same product name, other vendor
])
def test_fixture_advisories_that_must_not_match(tmp_path: Path, product: str, version: str, vendor: str) -> None:
    idx = _index(tmp_path, csaf(product, version, vendor=vendor))
    assert match_inventory(inventory(ATTACK).values(), idx, include_possible=True) == []


def test_unknown_firmware_is_only_a_possible_finding(tmp_path: Path) -> None:
    idx = _index(tmp_path, csaf("QN-PLC", "<= 1.x.5"))  # a wildcard bound cannot be compared
    assert match_inventory(inventory(ATTACK).values(), idx) == []
    assert [f.status for f in match_inventory(inventory(ATTACK).values(), idx, include_possible=True)] == ["possible"]


@pytest.mark.parametrize(("rng", "version", "inside"), [
    ("vers:all/<V3.2.19", "V3.2.6", True), ("vers:all/<V3.2.19", "V3.2.19", False), ("<= 11.001", "11.1", True),
    ("vers:all/*", "anything", True), ("All versions", None, True), ("12.7.1-12.7.3", "12.7.2", True),
    ("R101 | R110", "R110", True), ("2.x", "2.4", True), ("2.x", "1.0", False), ("All versions < V3.X.16", "V3.2.6", None),
    ("<=1.0", None, None), ("HEN04123", "1.0", None), (">=1.220|<=1.281", "1.250", True),
])
def test_version_ranges(rng: str, version: str | None, inside: bool | None) -> None:
    assert parse_range(rng).contains(version) is inside


def test_all_real_advisories_load_and_s7_findings_on_the_corpus() -> None:
    started = time.perf_counter()
    idx = load_dir(need(CSAF))
    elapsed = time.perf_counter() - started
    st = idx.stats()
    print(f"\nCSAF: {st} in {elapsed:.1f} s")
    assert st["advisories"] == 408 and st["errors"] == 0 and idx.errors == []
    assert st["products"] == 6061 and st["cves"] == 1407
    assert elapsed < 20
    plc = inventory(CORPUS / "icsnpp-s7comm/traces/s7ident.pcap")["172.17.0.2"]
    findings = match_inventory([plc], idx)
    ids = {f.advisory_id for f in findings}
    # SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0) < V3.2.19: firmware V3.2.6 is affected
    assert {"ICSA-22-314-02", "ICSA-19-099-06"} <= ids and all(f.status == "affected" for f in findings)
    f = next(f for f in findings if f.advisory_id == "ICSA-22-314-02")
    assert (f.match, f.version_range, f.firmware) == ("exact", "vers:all/<V3.2.19", "V3.2.6")
    assert f.url == "https://www.cisa.gov/news-events/ics-advisories/icsa-22-314-02"
    print(f"s7ident.pcap: {len(findings)} findings, max CVSS {max(x.max_cvss or 0 for x in findings)}")
