"""The FINS decoder and rule pack on traffic from a real FINS client: pcaps/fins/fins_plant_attack.pcap, recorded in
network namespaces (tests/testbed/stacks/fins.py) from the PyPI ``fins`` library (fins.udp.UDPFinsConnection) on the
HMI, the engineering station and the attacker, the PLCs being OUR OWN FINS/UDP responder (W342; no FINS PLC stack
installs here).  Each attack step raises exactly its expected rules and normal traffic none, and every frame decodes as
tshark's omron dissector reads it.  A live test re-records a short version (needs root, ip netns and tcpdump)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.decoders.l2_testbed import decode, fired_per_step
from tests.testbed.fresh import SKIP_REASON, can_run, run_scenario
from tests.testbed.labels import expand_ranges, sha256

REPO = Path(__file__).resolve().parents[3]
NAME = "fins_plant_attack"
LABELS = REPO / "pcaps" / "fins" / f"{NAME}.labels.yml"
PCAP = LABELS.with_name(f"{NAME}.pcap")
ATTACKER, ENG, HMI = "10.10.1.66", "10.10.1.20", "10.10.1.10"
#: what each attack step must raise (the scenario's expect_rules, repeated so a change to either is noticed)
EXPECTED = {
    "controller_data_read": {"qn-fins-0007"},
    "program_upload": {"qn-fins-0003"},
    "dm_write_unlisted": {"qn-fins-0006"},
    "clock_write_then_stop": {"qn-fins-0001", "qn-fins-0008"},
    "program_download": {"qn-fins-0001", "qn-fins-0002"},
}


def _labels() -> dict[str, Any]:
    return yaml.safe_load(LABELS.read_text(encoding="utf-8"))


def _fins(events: list) -> list:
    return [e for e in events if e.event.dataset == "fins"]


def test_labels_cover_the_recorded_capture() -> None:
    doc = _labels()
    assert doc["stack"] == "fins" and doc["transport"] == "udp" and doc["port"] == 9600
    assert sha256(PCAP) == doc["sha256"]
    frames = sorted(f for s in doc["steps"] for f in expand_ranges(s["frames"]))
    assert frames == list(range(1, doc["frames_total"] + 1)), "every frame in exactly one step"
    assert [s["name"] for s in doc["steps"]] == ["normal_polling", *EXPECTED]
    assert {s["name"]: set(s["expect_rules"]) for s in doc["steps"][1:]} == EXPECTED
    # one UDP socket (client ip:port) per attack step, and the attacker sends nothing outside its steps
    for step in doc["steps"][1:]:
        assert len(step["connections"]) == 1 and step["connections"][0].startswith(f"{ATTACKER}:"), step
    atk_frames = {f for s in doc["steps"][1:] for f in expand_ranges(s["frames"])}
    events = _fins(decode(PCAP))
    assert all(e.evidence.frame in atk_frames for e in events if ATTACKER in (e.source.ip, e.destination.ip))


def test_each_attack_step_raises_its_rules_and_normal_traffic_none() -> None:
    """The whole rule pack through the product's replay (tests/testbed/verify.py), and rules/fins in process."""
    from tests.testbed.verify import alerts_per_step

    got, _ = alerts_per_step(LABELS)
    assert got == {"normal_polling": set(), **EXPECTED}
    fired, events = fired_per_step(_labels(), PCAP, "fins")
    assert not fired.get("normal_polling"), sorted(fired["normal_polling"])
    assert {k: v for k, v in fired.items() if v} == {k: v for k, v in EXPECTED.items() if v}
    # normal traffic is signature-clean although the engineering station writes DM 100 and reads the controller data
    eng = {(e.fins.command_name, e.fins.message_type) for e in _fins(events) if e.source.ip == ENG}
    assert {("memory_area_write", "command"), ("controller_data_read", "command")} <= eng
    # the attacker's clock write (0702, event.action time_sync) raises the clock rule, the stop after it the mode rule
    from detection.engine import DetectionEngine
    from detection.rules import load_rules

    alerts = DetectionEngine(load_rules([REPO / "rules" / "fins"]), organization_id="testbed").process_many(events)
    alerted = {f for a in alerts for f in a.evidence.frames or []}
    clock = [e.evidence.frame for e in _fins(events) if e.fins.command_name == "clock_write" and e.fins.message_type == "command"]
    stop = [e.evidence.frame for e in _fins(events) if e.fins.command_name == "stop" and e.fins.message_type == "command"]
    assert clock and set(clock) <= alerted and set(stop) <= alerted
    by_rule = {a.rule.id: set(a.evidence.frames or []) for a in alerts if a.rule is not None}
    assert set(clock) <= by_rule["qn-fins-0008"] and not set(stop) & by_rule["qn-fins-0008"]


def test_decoded_events_follow_the_responder() -> None:
    """Every command got its answer (end code 0000), reads return what writes wrote, the identity is the responder's."""
    from tests.testbed.stacks.fins import IDENTITY

    events = _fins(decode(PCAP))
    assert not [e for e in events if e.anomaly], [e.anomaly for e in events if e.anomaly]
    cmds = [e for e in events if e.fins.message_type == "command"]
    resps = [e for e in events if e.fins.message_type == "response"]
    assert len(cmds) == len(resps) == len(events) // 2 and len(events) == sum(_labels()["fins_payload_frames_by_src"].values())
    assert all(r.fins.end_code == 0 and r.event.outcome == "success" and r.fins.request_frame for r in resps)
    # the HMI polls DM 0-9 only (memory area read of 10 words); the PLCs' node numbers are their last octets
    hmi = [e.fins for e in cmds if e.source.ip == HMI]
    assert hmi and {(f.command_name, f.memory_area_name, f.address, f.item_count) for f in hmi} == {
        ("memory_area_read", "dm_word", 0, 10)}
    for e in events:  # the library addresses DA1 = the PLC's last octet, SA1 = its own; the responder swaps them
        assert (e.fins.da1, e.fins.sa1) == (int(e.destination.ip.rsplit(".", 1)[1]), int(e.source.ip.rsplit(".", 1)[1]))
    ident = {(e.fins.controller_model, e.fins.controller_version) for e in resps if e.fins.command_name == "controller_data_read"}
    assert ident == {(IDENTITY["controller_model"], IDENTITY["controller_version"])}
    actions = {(e.source.ip, e.fins.command_name, e.event.action) for e in cmds if e.source.ip == ATTACKER}
    assert actions == {
        (ATTACKER, "controller_data_read", "identify"), (ATTACKER, "program_area_read", "program_upload"),
        (ATTACKER, "memory_area_write", "write"), (ATTACKER, "clock_write", "time_sync"),
        (ATTACKER, "clock_read", "read"), (ATTACKER, "stop", "mode_change"), (ATTACKER, "controller_status_read", "read_status"),
        (ATTACKER, "program_area_write", "program_download"), (ATTACKER, "run", "mode_change")}
    clocks = [e.fins.clock for e in events if e.fins.command_name in ("clock_write", "clock_read") and e.fins.clock]
    assert clocks and clocks[0] == "2019-03-04T05:06:07" and all(c.startswith("2019-03-04T05:06:") for c in clocks)


_TSHARK_FIELDS = ("frame.number", "omron.icf.dtb", "omron.command", "omron.sid", "omron.gct", "omron.dna", "omron.da1",
                  "omron.da2", "omron.sna", "omron.sa1", "omron.sa2", "omron.memory.area.read", "omron.memory.address",
                  "omron.memory.numitems", "omron.response.code", "omron.program_number", "omron.controller.model")


def _int(v: str) -> int | None:
    return int(v, 0) if v else None


def _tshark(tshark: str) -> dict[int, tuple]:
    cmd = [tshark, "-r", str(PCAP), "-d", "udp.port==9600,omron", "-Y", "omron", "-T", "fields", "-E", "occurrence=f",
           "-E", "separator=|", *[x for f in _TSHARK_FIELDS for x in ("-e", f)]]
    out: dict[int, tuple] = {}
    for line in subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout.splitlines():
        v = line.split("|")
        resp = _int(v[1]) == 1
        header = tuple(_int(x) for x in v[2:11])
        area = (_int(v[11]), _int(v[12]), _int(v[13])) if not resp and v[11] else None
        out[int(v[0])] = ("response" if resp else "command", *header, area, _int(v[14]) if resp else None,
                          _int(v[15]) if not resp else None, v[16].strip() or None)
    return out


@pytest.mark.tshark
def test_decoded_fields_agree_with_tshark_per_frame(tshark: str) -> None:
    theirs = _tshark(tshark)
    mine: dict[int, tuple] = {}
    for e in _fins(decode(PCAP)):
        f = e.fins
        area = (f.memory_area_code, f.address, f.item_count) if f.command_code in (0x0101, 0x0102) and f.message_type == "command" else None
        resp = f.message_type == "response"
        # tshark shows the end code where its dissector knows the response layout, the model where it is 94 bytes
        end = f.end_code if resp and theirs.get(e.evidence.frame, (None,) * 12)[11] is not None else None
        prog = f.program_number if not resp and f.command_code in (0x0306, 0x0307) else None
        model = f.controller_model if resp and theirs.get(e.evidence.frame, (None,) * 14)[13] else None
        mine[e.evidence.frame] = (f.message_type, f.command_code, f.sid, f.gct, f.dna, f.da1, f.da2, f.sna, f.sa1, f.sa2,
                                  area, end, prog, model)
    assert len(theirs) == len(mine) == sum(_labels()["fins_payload_frames_by_src"].values())
    differ = {k: (theirs.get(k), mine.get(k)) for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k)}
    print(f"\nFINS vs tshark on {PCAP.name}: {len(theirs) - len(differ)} of {len(theirs)} frames agree")
    assert not differ, sorted(differ.items())[:5]
    # the comparison covered the interesting fields, not only headers
    assert {v[10][0] for v in theirs.values() if v[10]} == {0x82}
    assert sum(1 for v in theirs.values() if v[11] == 0) > 40 and {v[12] for v in theirs.values() if v[12]} == {0xFFFF}
    assert {v[13] for v in theirs.values() if v[13]} == {"CJ2M-CPU31"}
    assert {v[1] for v in theirs.values()} == {0x0101, 0x0102, 0x0306, 0x0307, 0x0401, 0x0402, 0x0501, 0x0601, 0x0701, 0x0702}


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.skipif(not can_run(), reason=SKIP_REASON)
def test_fresh_recording_from_the_fins_library(tmp_path: Path) -> None:
    """Re-record a short version (3 s lead-in, three attack steps) and check labels and rules on it (~15 s)."""
    pytest.importorskip("fins.udp", reason="fins not installed (the test extra)")
    steps = ["controller_data_read", "dm_write_unlisted", "program_download"]
    run = run_scenario(NAME, tmp_path, steps, lead_in=3, timeout=90)
    assert "client errors" not in run.stderr, run.stderr[-3000:]
    doc = run.labels
    assert [s["name"] for s in doc["steps"]] == ["normal_polling", *steps]
    assert all(s["frame_count"] >= 2 for s in doc["steps"])
    assert {HMI, ENG, ATTACKER, "10.10.1.101"} <= set(doc["fins_payload_frames_by_src"])
    fired, events = fired_per_step(doc, run.pcap, "fins")
    assert not fired.get("normal_polling"), fired
    assert {k: fired.get(k, set()) for k in steps} == {k: EXPECTED[k] for k in steps}
    fins = _fins(events)
    assert not [e for e in fins if e.anomaly]
    assert all(e.fins.end_code == 0 for e in fins if e.fins.message_type == "response")
