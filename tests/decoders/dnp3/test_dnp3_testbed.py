"""The DNP3 decoder on traffic from a real stack: the testbed capture pcaps/dnp3/dnp3_plant_attack.pcap
(opendnp3 outstations and masters, tests/testbed/stacks/dnp3.py), per frame against tshark, per
attack step against the labels, and the integrity-poll rule (qn-dnp3-0012) on it."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from detection.engine import DetectionEngine
from detection.rules import load_rules
from sensors.engine import decode_file
from tests.decoders.dnp3.conftest import REPO
from tests.scenarios import load

CAPTURE = REPO / "pcaps" / "dnp3" / "dnp3_plant_attack.pcap"
LABELS = CAPTURE.with_name("dnp3_plant_attack.labels.yml")
ATTACKER, HMI, ENG = "10.10.1.66", "10.10.1.10", "10.10.1.20"
# tshark 4.0 does not know g50v4 (time and interval, which opendnp3 puts in every integrity
# response) and stops reading a fragment's object headers there: compare objects up to it.
TSHARK_STOPS_AT = 0x3204


def _ours() -> dict[int, list[tuple[int, int, int, tuple[int, ...]]]]:
    """frame -> [(source, destination, function code, object headers)] of its DNP3 messages."""
    out: dict[int, list[tuple[int, int, int, tuple[int, ...]]]] = defaultdict(list)
    for e in decode_file(CAPTURE):
        if e.event.dataset != "dnp3":
            continue
        assert e.anomaly is None, f"frame {e.evidence and e.evidence.frame}: {e.anomaly}"
        d = e.dnp3
        assert d is not None and e.evidence is not None and e.evidence.frame is not None
        if d.message_type == "link":
            continue
        assert d.function_code is not None and d.source is not None and d.destination is not None
        objs = tuple(o.group << 8 | o.variation for o in d.objects or ())
        out[e.evidence.frame].append((d.source, d.destination, d.function_code, objs))
    return out


@pytest.mark.tshark
def test_function_code_and_addresses_agree_with_tshark_per_frame() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not on PATH")
    cmd = [tshark, "-n", "-r", str(CAPTURE), "-Y", "dnp3.al.func", "-T", "fields", "-E", "occurrence=a",
           "-e", "frame.number", "-e", "dnp3.src", "-e", "dnp3.dst", "-e", "dnp3.al.func", "-e", "dnp3.al.obj"]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout.splitlines()
    # Per frame: link addresses (one per link frame: a fragment longer than a link frame spans
    # several), application function codes, and the object headers when it holds one message.
    theirs: dict[int, tuple[set[int], set[int], list[int], tuple[int, ...]]] = {}
    for line in lines:
        frame, src, dst, func, objs = (line.split("\t") + [""] * 5)[:5]
        theirs[int(frame)] = ({int(x) for x in src.split(",")}, {int(x) for x in dst.split(",")},
                              sorted(int(x) for x in func.split(",")),
                              tuple(int(o, 16) for o in objs.split(",") if o))
    ours = _ours()
    assert len(theirs) > 200  # polls, controls, restarts, files, unsolicited responses
    assert set(ours) == set(theirs)
    differ = []
    for frame, (srcs, dsts, fcs, objs) in sorted(theirs.items()):
        msgs = ours[frame]
        mine = ({m[0] for m in msgs}, {m[1] for m in msgs}, sorted(m[2] for m in msgs))
        if mine != (srcs, dsts, fcs):
            differ.append(f"frame {frame}: tshark {(srcs, dsts, fcs)} ours {mine}")
        if len(msgs) == 1:
            o_objs = msgs[0][3]
            if TSHARK_STOPS_AT in objs:
                o_objs = o_objs[: objs.index(TSHARK_STOPS_AT) + 1]
            if o_objs != objs:
                differ.append(f"frame {frame}: objects tshark {objs} ours {o_objs}")
    assert not differ, "\n".join(differ[:20])
    # What the capture exercises: every function code the scenario sends, and responses.
    seen = {fc for _, _, fcs, _ in theirs.values() for fc in fcs}
    assert {1, 2, 3, 4, 5, 13, 14, 20, 21, 24, 25, 26, 27, 129, 130} <= seen


def test_every_attack_step_decodes_to_its_operation() -> None:
    sc = load(LABELS)
    by_frame = {}
    for e in decode_file(CAPTURE):
        d = e.dnp3
        if d is not None and e.evidence is not None and d.message_type == "request" and e.source is not None:
            by_frame[e.evidence.frame] = (e.source.ip, e.event.action, d.function_name)
    expected = {
        "integrity_recon": {("read", "read")},
        "direct_operate_crob": {("operate", "direct_operate")},
        "select_operate_crob": {("select", "select"), ("operate", "operate")},
        "analog_output": {("operate", "direct_operate")},
        "disable_unsolicited": {("subscribe", "disable_unsolicited")},
        "time_set": {("time_sync", "record_current_time"), ("time_sync", "write")},
        "file_delete": {("file_read", "open_file"), ("file_read", "close_file"), ("file_delete", "delete_file")},
        "cold_restart": {("restart", "cold_restart")},
        "warm_restart": {("restart", "warm_restart")},
    }
    steps = {s.name: s for s in sc.steps}
    assert set(expected) == {s.name for s in sc.steps if s.kind == "attack"}
    for name, ops in expected.items():
        got = {by_frame[f][1:] for f in steps[name].frames if f in by_frame}
        assert {by_frame[f][0] for f in steps[name].frames if f in by_frame} == {ATTACKER}, name
        assert ops <= got, f"{name}: {sorted(got)}"
    # The normal traffic holds the authorised masters' controls and time set, and no restart.
    normal = {by_frame[f] for f in steps["normal_polling"].frames if f in by_frame}
    assert {(ENG, "select", "select"), (ENG, "operate", "operate"), (ENG, "time_sync", "write")} <= normal
    assert {ip for ip, _, _ in normal} == {HMI, ENG}
    assert not any(a == "restart" for _, a, _ in normal)


def _integrity_alerts(masters: list[str], tmp_path: Path) -> list[tuple[str, str, int]]:
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump({"dnp3_masters": masters}))
    pack = load_rules([REPO / "rules" / "dnp3" / "integrity_poll_from_unexpected_master.yml"], site_lists=site)
    out = []
    for a in DetectionEngine(pack, organization_id="test").process_many(decode_file(CAPTURE)):
        assert a.rule is not None and a.rule.id == "qn-dnp3-0012" and a.evidence is not None
        assert a.source is not None and a.destination is not None
        out.append((a.source.ip, a.destination.ip, max(a.evidence.frames or [0])))
    return out


def test_integrity_poll_rule_fires_once_per_unknown_master_and_outstation(tmp_path: Path) -> None:
    sc = load(LABELS)
    steps = {s.name: s for s in sc.steps}
    # The attacker polls plc1 in four steps and plc2 in two (every opendnp3 master session starts
    # with an integrity poll): one alert per pair, on its first poll.
    polls = [f for f, (ip, act, fn) in _requests().items() if ip == ATTACKER and fn == "read" and act == "read"]
    assert len(polls) >= 8
    got = _integrity_alerts([HMI, ENG], tmp_path)
    assert [(s, d) for s, d, _ in got] == [(ATTACKER, "10.10.1.101"), (ATTACKER, "10.10.1.102")]
    assert got[0][2] in steps["integrity_recon"].frames
    assert got[1][2] in steps["cold_restart"].frames
    # The HMI's polls raise it as soon as the HMI is not a listed master.
    got = _integrity_alerts([ENG], tmp_path)
    assert {(s, d) for s, d, _ in got} == {(ATTACKER, "10.10.1.101"), (ATTACKER, "10.10.1.102"),
                                          (HMI, "10.10.1.101"), (HMI, "10.10.1.102")}


def _requests() -> dict[int, tuple[str, str, str]]:
    out = {}
    for e in decode_file(CAPTURE):
        d = e.dnp3
        if d is not None and e.evidence is not None and d.message_type == "request" and e.source is not None:
            out[e.evidence.frame] = (e.source.ip, e.event.action, d.function_name or "")
    return out
