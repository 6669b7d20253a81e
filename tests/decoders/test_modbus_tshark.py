"""Our Modbus events vs tshark, per PDU (frame, transaction id, unit id, function code), on every Modbus trace.

Traces: the shared corpus list (conftest.MODBUS_TRACES) plus every capture under the repo's pcaps/.
Accepted differences live in expected_differences/modbus.yml with their reasons.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from sensors.engine import decode_file
from tests.decoders.conftest import MODBUS_TRACES, REPO

pytestmark = pytest.mark.tshark

EXPECTED = Path(__file__).parent / "expected_differences" / "modbus.yml"
Pdu = tuple[int, int, int, int]  # frame, transaction id, unit id, function code


def repo_pcaps() -> list[Path]:
    root = REPO / "pcaps"
    return sorted(p for ext in ("*.pcap", "*.pcapng") for p in root.rglob(ext))


def tshark_pdus(tshark: str, path: Path) -> Counter[Pdu]:
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", "-e", "mbtcp.trans_id", "-e", "mbtcp.unit_id", "-e", "modbus.func_code", "-Y", "mbtcp"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    pdus: Counter[Pdu] = Counter()
    for line in out.splitlines():
        frame, tids, units, fcs = (line.split("\t") + ["", "", ""])[:4]
        # Several PDUs in one frame come as comma-separated repeated fields, in order.
        t, u, f = tids.split(","), units.split(","), fcs.split(",")
        for i, tid in enumerate(t):
            if not tid:
                continue
            fc = int(f[i]) if i < len(f) and f[i] else -1
            pdus[(int(frame), int(tid), int(u[i]) if i < len(u) and u[i] else -1, fc)] += 1
    return pdus


def our_pdus(path: Path) -> tuple[Counter[Pdu], Counter[str]]:
    pdus: Counter[Pdu] = Counter()
    anomalies: Counter[str] = Counter()
    for e in decode_file(path):
        if e.event.dataset != "modbus":
            continue
        if e.anomaly is not None:
            anomalies[e.anomaly.code] += 1
        elif e.modbus is not None and e.evidence is not None and e.evidence.frame is not None:
            m = e.modbus
            pdus[(e.evidence.frame, m.transaction_id, m.unit_id, m.function_code)] += 1
    return pdus, anomalies


def accepted() -> dict[tuple[str, int, str], dict[str, Any]]:
    out: dict[tuple[str, int, str], dict[str, Any]] = {}
    for entry in yaml.safe_load(EXPECTED.read_text()) or []:
        assert entry.get("why"), f"{EXPECTED}: entry for {entry.get('file')} has no reason"
        for frame in entry["frames"]:
            out[(entry["file"], int(frame), entry["side"])] = entry
    return out


def test_modbus_agrees_with_tshark(tshark: str, corpus: Path) -> None:
    traces = [(name, corpus / name) for name in MODBUS_TRACES if (corpus / name).is_file()]
    traces += [(str(p.relative_to(REPO)), p) for p in repo_pcaps()]
    assert traces
    allowed = accepted()
    used: set[tuple[str, int, str]] = set()
    unexplained: list[str] = []
    rows = []
    for name, path in traces:
        theirs = tshark_pdus(tshark, path)
        ours, anomalies = our_pdus(path)
        only_t, only_o = theirs - ours, ours - theirs
        accepted_here = 0
        for side, diff in (("only_tshark", only_t), ("only_ours", only_o)):
            for pdu, n in sorted(diff.items()):
                key = (name, pdu[0], side)
                if key in allowed:
                    used.add(key)
                    accepted_here += n
                else:
                    unexplained.append(f"{name} frame {pdu[0]}: {side} tid={pdu[1]} unit={pdu[2]} fc={pdu[3]} (x{n})")
        both = sum((theirs & ours).values())
        rows.append((name, sum(theirs.values()), sum(ours.values()), both, sum(only_t.values()), sum(only_o.values()), accepted_here, sum(anomalies.values())))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'trace':<{width}}  tshark    ours  agree  only_t  only_o  accepted  anomalies")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>5}  {r[4]:>6}  {r[5]:>6}  {r[6]:>8}  {r[7]:>9}")
    tot = [sum(r[i] for r in rows) for i in range(1, 8)]  # type: ignore[misc]
    print(f"{'TOTAL':<{width}}  {tot[0]:>6}  {tot[1]:>6}  {tot[2]:>5}  {tot[3]:>6}  {tot[4]:>6}  {tot[5]:>8}  {tot[6]:>9}")
    stale = sorted(k for k in allowed if k not in used and any(k[0] == n for n, _ in traces))
    assert not unexplained, "differences from tshark not in expected_differences/modbus.yml:\n" + "\n".join(unexplained)
    assert not stale, f"entries in expected_differences/modbus.yml that no longer happen: {stale}"
