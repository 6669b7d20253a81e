"""`qinling assets` and `qinling vulns import|match` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main

from .conftest import ATTACK, CORPUS, CSAF, PLC1, need


def test_assets_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assets", str(ATTACK), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    plc = next(a for a in out["assets"] if a["ip"] == PLC1)
    assert (plc["vendor"], plc["model"], plc["firmware"], plc["role"]) == ("Qinling Testbed", "QN-PLC", "1.0", "plc")
    assert out["commap"]["summary"]["edges"] == 6
    assert main(["assets", str(ATTACK)]) == 0
    text = capsys.readouterr().out
    assert "Qinling Testbed (秦岭测试床" in text and "engineering_station" in text


def test_assets_missing_manuf_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="libwireshark-data"):
        main(["assets", str(ATTACK), "--manuf", str(tmp_path / "manuf")])


def test_vulns_import_and_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = tmp_path / "idx.json"
    assert main(["vulns", "import", str(need(CSAF)), "--index", str(index)]) == 0
    assert "408 advisories, 6061 products" in capsys.readouterr().err
    assert main(["vulns", "match", str(need(CORPUS / "icsnpp-s7comm/traces/s7ident.pcap")), "--index", str(index), "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert len(findings) == 10 and {f["ip"] for f in findings} == {"172.17.0.2"}
