"""What the layer-2 testbed tests share (tests/decoders/goose/test_goose_testbed.py, profinet/test_profinet_testbed.py):
a recorded capture decoded, the rules it fires per labelled step, and a short fresh recording by the stack's recorder
(tests/testbed/stacks/<stack>.py, in its own network namespaces)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from detection.engine import DetectionEngine
from detection.rules import load_rules
from pipeline.schema import Event
from sensors.engine import DecodeReport, decode_file
from tests.testbed.labels import expand_ranges

REPO = Path(__file__).resolve().parents[2]


def decode(pcap: Path) -> list[Event]:
    rep = DecodeReport()
    events = list(decode_file(pcap, report=rep))
    assert rep.decoder_errors == 0
    return events


def fired_per_step(labels: dict[str, Any], pcap: Path, pack: str) -> tuple[dict[str, set[str]], list[Event]]:
    """The rule ids of rules/<pack> that alerted, per step of ``labels`` owning an evidence frame; the events."""
    step_of = {f: s["name"] for s in labels["steps"] for f in expand_ranges(s["frames"])}
    events = decode(pcap)
    alerts = DetectionEngine(load_rules([REPO / "rules" / pack]), organization_id="testbed").process_many(events)
    fired: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        assert a.rule is not None and a.evidence is not None and a.evidence.frames
        for f in a.evidence.frames:
            fired[step_of[f]].add(a.rule.id)
    return fired, events


def record_fresh(stack: str, name: str, out: Path, steps: list[str], ns_prefix: str, timeout: float) -> dict[str, Any]:
    """Re-record scenario ``name`` with a 4 s lead-in and ``steps`` into ``out``; the recorder must succeed, leave no
    ``<ns_prefix>-<pid>-*`` namespace of its own behind and label exactly those steps. Returns the label file."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", f"tests.testbed.stacks.{stack}", name, "--out", str(out), "--lead-in",
                           "4", "--steps", ",".join(steps)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    own = [ln for ln in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
           if ln.startswith(f"{ns_prefix}-")]
    assert not [ln for ln in own if not _alive(ln)], f"namespaces left behind: {own}"
    doc: dict[str, Any] = yaml.safe_load((out / f"{name}.labels.yml").read_text(encoding="utf-8"))
    assert [s["name"] for s in doc["steps"]] == ["normal_polling", *steps]
    return doc


def _alive(ns_line: str) -> bool:
    """A <prefix>-<pid>-* namespace of a run still going (another test session) is not a leftover."""
    try:
        os.kill(int(ns_line.split()[0].split("-")[2]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True
