"""The auditor's journey (检查评估): sign in, upload a bundled capture for an enterprise, watch the replay's
progress reach done, open one of the alerts it raised, download its evidence zip, and check the zip:
the slice holds exactly the alert's frames, the events are its event_ids, the report has the hashes."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from scapy.utils import RawPcapReader

ROOT = Path(__file__).resolve().parents[3]
CAPTURE = ROOT / "pcaps" / "modbus" / "modbus_plant_attack.pcap"

pytestmark = pytest.mark.browser  # every journey file says so (`make journeys` selects -m browser)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def records(pcap: bytes) -> list[bytes]:
    with RawPcapReader(io.BytesIO(pcap)) as r:  # type: ignore[arg-type]
        return [bytes(data) for data, _meta in r]


def test_auditor_uploads_watches_the_replay_and_exports_evidence(journey) -> None:  # type: ignore[no-untyped-def]
    j = journey("auditor")  # zh-CN, the console's default
    page = j.page
    j.nav("nav.captures")
    assert page.locator("h1").inner_text() == j.t("captures.title")
    page.set_input_files("input[name=capture]", str(CAPTURE))
    page.select_option("select[name=org]", "ent-a")
    j.click_text(j.t("captures.submit"), j.t("captures.submit"), role="button")

    # the capture's page: a <progress> kept up to date by polling, until the replay is done
    bar = page.locator("#replay-progress")
    assert bar.count() == 1
    seen = {page.locator("#replay").get_attribute("data-status")}
    page.locator("#replay-counts").wait_for(timeout=30_000)  # rendered once the replay has finished
    seen.add(page.locator("#replay").get_attribute("data-status"))
    assert seen <= {"queued", "replaying", "done"} and "done" in seen
    assert page.locator("#replay-progress").get_attribute("value") == "100"
    counts = page.locator("#replay-counts").inner_text()
    links = page.locator("a.alert-link")
    assert links.count() > 0, counts
    assert page.locator("#capture-sha256").inner_text() == sha(CAPTURE.read_bytes())

    # one alert, and its evidence
    links.first.click()
    page.wait_for_load_state()
    alert_id = page.locator("#alert-id").inner_text().strip()
    assert page.locator("h1").count() == 1
    zipped = j.download(page.locator("#download-evidence"))
    with zipfile.ZipFile(zipped) as z:
        files = {name.split("/", 1)[1]: z.read(name) for name in z.namelist()}
    assert {"alert.json", "events.jsonl", "frames.pcap", "REPORT.md", "SHA256SUMS"} <= set(files)
    alert = json.loads(files["alert.json"])
    assert alert["event"]["id"] == alert_id and alert["organization"]["id"] == "ent-a"
    frames = sorted(set(alert["evidence"]["frames"]))
    original = records(CAPTURE.read_bytes())
    assert records(files["frames.pcap"]) == [original[f - 1] for f in frames]
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    assert [e["event"]["id"] for e in events] == alert["evidence"]["event_ids"]
    report = files["REPORT.md"].decode()
    for digest in (sha(CAPTURE.read_bytes()), sha(files["frames.pcap"]), sha(files["events.jsonl"])):
        assert digest in report
    assert f"--org ent-a" in report and alert_id in report
    assert not [m for m in j.log if m.startswith("error")], j.log
