"""Evidence export: the zip for an alert replayed on the command line (`qinling replay`) — the pcap slice
holds exactly the alert's frames, byte for byte; the events are the alert's event_ids; the report's
hashes are the files'; the reproduce command gives the same alert id. Without the capture: no slice,
and the report says so. Audited; tenancy-bound."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from scapy.utils import RawPcapReader

from console.cli import main as qinling
from console.web import captures
from tests.console.conftest import close_app, login, make_app

ROOT = Path(__file__).resolve().parents[2]
ATTACK = ROOT / "pcaps" / "modbus" / "modbus_plant_attack.pcap"


@pytest.fixture
def replayed(db_path: Path, tmp_path: Path) -> dict[str, object]:
    """The attack capture replayed for acme by the command line into the console's store."""
    out = tmp_path / "cli-alerts.jsonl"
    assert qinling(["replay", str(ATTACK), "--org", "acme", "--store", f"sqlite:///{db_path}", "--out", str(out),
                    "--no-progress"]) == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert alerts
    return {"alerts": alerts, "db_path": db_path}


@pytest.fixture
def open_app(replayed: dict[str, object]) -> Iterator[Flask]:
    app = make_app(replayed["db_path"], ORGANIZATION=None)  # type: ignore[arg-type]
    yield app
    captures.close(app)
    close_app(app)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name.split("/", 1)[1]: z.read(name) for name in z.namelist()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def records(pcap: bytes) -> list[bytes]:
    with RawPcapReader(io.BytesIO(pcap)) as r:  # type: ignore[arg-type]
        return [bytes(data) for data, _meta in r]


def test_cli_replayed_alert_exports_a_verifiable_zip(open_app: Flask, replayed: dict[str, object], tmp_path: Path) -> None:
    alerts = replayed["alerts"]
    alert = max(alerts, key=lambda a: len(a["evidence"]["frames"]))  # type: ignore[arg-type, index]
    aid, frames = alert["event"]["id"], sorted(set(alert["evidence"]["frames"]))
    c = login(open_app.test_client(), "auditor")
    resp = c.get(f"/alerts/{aid}/evidence.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    files = unzip(resp.data)
    assert set(files) == {"alert.json", "events.jsonl", "frames.pcap", "REPORT.md", "SHA256SUMS"}
    # the slice: exactly the alert's frames, identical to the original records
    original = records(ATTACK.read_bytes())
    assert records(files["frames.pcap"]) == [original[f - 1] for f in frames]
    assert files["frames.pcap"][:24] == ATTACK.read_bytes()[:24]
    # the events: the alert's event_ids, in order
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    assert [e["event"]["id"] for e in events] == alert["evidence"]["event_ids"]
    assert json.loads(files["alert.json"])["event"]["id"] == aid
    # the report: the hashes, the rule, the frames, the command
    report = files["REPORT.md"].decode()
    capture_sha = sha(ATTACK.read_bytes())
    for digest in (capture_sha, sha(files["frames.pcap"]), sha(files["events.jsonl"]), sha(files["alert.json"])):
        assert digest in report
    assert alert["rule"]["id"] in report and ", ".join(map(str, frames)) in report
    command = re.search(r"^qinling replay (.+)$", report, re.M)
    assert command and command.group(1) == f"modbus_plant_attack.pcap --org acme --no-store --out alerts.jsonl"
    sums = dict(reversed(line.split("  ")) for line in files["SHA256SUMS"].decode().splitlines())
    assert sums == {name: sha(data) for name, data in files.items() if name != "SHA256SUMS"}
    # and the command does reproduce it
    again = tmp_path / "alerts.jsonl"
    assert qinling(["replay", str(ATTACK), "--org", "acme", "--no-store", "--out", str(again), "--no-progress"]) == 0
    assert aid in {json.loads(line)["event"]["id"] for line in again.read_text().splitlines()}
    grep = re.search(r"grep -c '(.+)' alerts\.jsonl", report)
    assert grep and sum(bool(re.search(grep.group(1).replace('\\"', '"'), line)) for line in again.read_text().splitlines()) == 1
    # the API serves the same export; both are audited
    assert unzip(c.get(f"/api/v1/alerts/{aid}/evidence.zip").data)["frames.pcap"] == files["frames.pcap"]
    audit = login(open_app.test_client(), "admin").get("/api/v1/audit?action=evidence.export").get_json()
    assert audit["total"] == 2 and {e["target"] for e in audit["items"]} == {aid}
    assert audit["items"][0]["detail"]["capture_sha256"] == capture_sha and audit["items"][0]["detail"]["slice"] is True


def test_without_the_capture_the_zip_has_no_slice_and_says_so(replayed: dict[str, object]) -> None:
    app = make_app(replayed["db_path"], ORGANIZATION=None, CAPTURE_PATHS=[])  # type: ignore[arg-type]
    try:
        alert = replayed["alerts"][0]  # type: ignore[index]
        c = login(app.test_client(), "analyst")
        files = unzip(c.get(f"/alerts/{alert['event']['id']}/evidence.zip").data)
        assert "frames.pcap" not in files and "events.jsonl" in files
        assert "not available" in files["REPORT.md"].decode()
        page = c.get(f"/alerts/{alert['event']['id']}/export").get_data(as_text=True)
        assert 'class="warning"' in page and "evidence.zip" in page
    finally:
        close_app(app)


def test_evidence_is_bound_to_the_enterprise(open_app: Flask, replayed: dict[str, object]) -> None:
    aid = replayed["alerts"][0]["event"]["id"]  # type: ignore[index]
    own = login(open_app.test_client(), "acme-user")
    assert own.get(f"/alerts/{aid}/evidence.zip").status_code == 200
    other = login(open_app.test_client(), "globex-user")
    for url in (f"/alerts/{aid}/evidence.zip", f"/api/v1/alerts/{aid}/evidence.zip", f"/alerts/{aid}/export"):
        assert other.get(url).status_code == 404
    auditor = login(open_app.test_client(), "auditor")
    assert auditor.get(f"/alerts/{aid}/export?org=globex").status_code == 404
    page = auditor.get(f"/alerts/{aid}/export")
    assert page.status_code == 200 and aid in page.get_data(as_text=True)
    assert open_app.test_client().get(f"/api/v1/alerts/{aid}/evidence.zip").status_code == 401
