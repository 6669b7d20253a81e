"""The GOOSE decoder and rule pack on traffic from a real stack: pcaps/goose/goose_testbed_attack.pcap, recorded
from libiec61850's GoosePublisher in network namespaces (tests/testbed/stacks/goose.py): each attack step raises
exactly its expected rules and normal traffic none, and every frame decodes as tshark reads it. A live test
re-records a short version of the scenario (needs root, ip netns and tcpdump)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.decoders.l2_testbed import decode, fired_per_step, record_fresh
from tests.scenarios import load
from tests.testbed.fresh import SKIP_REASON, can_run
from tests.testbed.labels import sha256

REPO = Path(__file__).resolve().parents[3]
NAME = "goose_testbed_attack"
LABELS = REPO / "pcaps" / "goose" / f"{NAME}.labels.yml"
GOOSE_RULES = {f"qn-goose-{n:04d}" for n in range(1, 5)}  # qn-goose-0005 (malformed PDU): libiec61850 sends none


def test_labels_cover_the_recorded_capture() -> None:
    doc = yaml.safe_load(LABELS.read_text(encoding="utf-8"))
    sc = load(LABELS)
    assert doc["stack"] == "goose" and "libiec61850" in doc["transport"] and not doc.get("generated_by")
    assert sha256(sc.capture) == doc["sha256"]
    frames = sorted(f for s in sc.steps for f in s.frames)
    assert frames == list(range(1, doc["frames_total"] + 1)), "every frame in exactly one step"
    # the attacker's own MAC sent frames, and the spoofed steps' frames are attributed by their bytes
    assert doc["goose_payload_frames_by_src"][doc["hosts"]["atk"]["mac"]] > 0
    assert sum(doc["goose_payload_frames_by_src"].values()) == doc["frames_total"]


def test_each_attack_step_raises_its_rules_and_normal_traffic_none() -> None:
    doc = yaml.safe_load(LABELS.read_text(encoding="utf-8"))
    fired, events = fired_per_step(doc, load(LABELS).capture, "goose")
    goose = [e for e in events if e.event.dataset == "goose"]
    assert len(goose) == doc["frames_total"]
    assert all(e.goose is not None and e.goose.parse_status == "ok" for e in goose), "libiec61850 frames decode cleanly"
    assert any(e.network is not None and e.network.vlan_id == [10] for e in goose), "VLAN-tagged GOOSE not decoded"
    assert {len(e.goose.all_data or []) for e in goose if e.goose} >= {3, 5}
    types = {v.type for e in goose if e.goose for v in e.goose.all_data or []}
    assert {"boolean", "bit_string", "float", "integer", "unsigned", "utc_time"} <= types
    assert not fired.get("normal_polling"), f"normal traffic raised {sorted(fired['normal_polling'])}"
    for step in doc["steps"][1:]:
        assert step["expect_rules"], step["name"]
        assert fired.get(step["name"], set()) == set(step["expect_rules"]), step["name"]
    assert set().union(*(set(s["expect_rules"]) for s in doc["steps"])) == GOOSE_RULES


@pytest.mark.tshark
def test_decoded_fields_agree_with_tshark_per_frame(tshark: str) -> None:
    pcap = load(LABELS).capture
    mine = {}
    for e in decode(pcap):
        g = e.goose
        assert g is not None and e.evidence is not None
        mine[e.evidence.frame] = (g.appid, g.gocb_ref, g.st_num, g.sq_num, g.simulation, g.nds_com, g.conf_rev, g.dat_set)
    out = subprocess.run([tshark, "-r", str(pcap), "-Y", "goose", "-T", "fields", "-E", "occurrence=f", "-e", "frame.number",
                          "-e", "goose.appid", "-e", "goose.gocbRef", "-e", "goose.stNum", "-e", "goose.sqNum", "-e", "goose.simulation",
                          "-e", "goose.ndsCom", "-e", "goose.confRev", "-e", "goose.datSet"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    b = {"1": True, "True": True, "0": False, "False": False}
    theirs = {}
    for line in out.splitlines():
        fr, appid, ref, st, sq, sim, nds, conf, ds = (line.split("\t") + [""] * 9)[:9]
        theirs[int(fr)] = (int(appid, 16) if appid.startswith("0x") else int(appid), ref, int(st), int(sq), b.get(sim), b.get(nds),
                           int(conf), ds)
    differ = {f: (theirs.get(f), mine.get(f)) for f in set(mine) | set(theirs) if theirs.get(f) != mine.get(f)}
    print(f"\nGOOSE vs tshark on {pcap.name}: {len(theirs) - len(differ)} frames agree, {len(differ)} differ")
    assert len(theirs) == yaml.safe_load(LABELS.read_text())["frames_total"]
    assert not differ, sorted(differ.items())[:5]
    sims = {f for f, v in mine.items() if v[4]}
    nds = {f for f, v in mine.items() if v[5]}
    assert sims and nds, "the capture has simulation and ndsCom frames"


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.skipif(not can_run(), reason=SKIP_REASON)
def test_fresh_recording_from_libiec61850(tmp_path: Path) -> None:
    """Re-record a short version (4 s lead-in, three steps) and check the labels and rules on it (~20 s)."""
    steps = ["st_num_jump", "replay_old_frame", "needs_commissioning"]
    doc = record_fresh("goose", NAME, tmp_path, steps, "qn-goose", timeout=90)
    assert all(s["frame_count"] > 0 for s in doc["steps"])
    fired, _ = fired_per_step(doc, tmp_path / f"{NAME}.pcap", "goose")
    assert not fired.get("normal_polling"), fired
    assert fired["st_num_jump"] == {"qn-goose-0002", "qn-goose-0003"}
    assert fired["replay_old_frame"] == {"qn-goose-0003"}
    assert fired["needs_commissioning"] == {"qn-goose-0004"}

