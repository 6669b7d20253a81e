"""Our S7comm events vs tshark 4.0, per PDU, on every S7 corpus trace.

Each S7comm PDU is (ROSCTR, PDU reference, job function or userdata function group + sub-function);
COTP connection TPDUs (CR/CC/DR/DC) are (cotp, code). A PDU agrees when tshark shows the same PDU in
the same frame. Read/write item addresses (area, DB, byte address) and SZL ids are compared per
frame where both sides saw exactly one PDU there. tshark 4.0 has no S7comm-plus dissector (it is a
plugin), so S7comm-plus is compared with ICSNPP only.

Accepted differences (expected_differences.yml, `tshark:`), each with its reason:
- `late_frame`: traces captured mid-connection where the engine releases a segment only when the
  peer acknowledges it, so the request is reported at its response's frame; such a PDU counts as
  agreeing when tshark shows the identical PDU at an earlier frame (engine limitation, reported).
- `frames`: per trace, frames whose item/SZL details differ, with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.schema import Event

from .conftest import S7_TRACES

pytestmark = pytest.mark.tshark

EXPECTED = Path(__file__).parent / "expected_differences.yml"
FIELDS = (
    "s7comm.header.rosctr",
    "s7comm.header.pduref",
    "s7comm.param.func",
    "s7comm.param.userdata.funcgroup",
    "s7comm.param.userdata.subfunc",
    "cotp.type",
    "s7comm.param.item.area",
    "s7comm.param.item.db",
    "s7comm.param.item.address.byte",
    "s7comm.data.userdata.szl_id",
    "s7comm.param.modetrans.subfunc",  # mode-transition pushes: tshark puts the sub-function (new mode) here
)
DETAIL = ("area", "db_number", "byte_address", "szl_id")
Pdu = tuple[Any, ...]
_TIMERS_COUNTERS = {0x1C, 0x1D, 0x1E, 0x1F}


def _int(s: str) -> int:
    return int(s, 16) if s.startswith("0x") else int(s)


def tshark_view(tshark: str, path: Path) -> tuple[dict[int, list[Pdu]], dict[int, dict[str, tuple[int, ...]]]]:
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", *[a for f in FIELDS for a in ("-e", f)], "-Y", "s7comm || cotp.type != 0x0f"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    pdus: dict[int, list[Pdu]] = {}
    detail: dict[int, dict[str, tuple[int, ...]]] = {}
    for line in out.splitlines():
        cols = (line.split("\t") + [""] * len(FIELDS))[: len(FIELDS) + 1]
        v = [[_int(x) for x in c.split(",") if x] for c in cols[1:]]
        rosctr, ref, func, group, sub, cotp = v[:6]
        mode = v[10]
        mi = si = 0
        frame = int(cols[0])
        lst: list[Pdu] = [("cotp", c) for c in cotp if c != 0x0F]
        fi = gi = 0
        for i, r in enumerate(rosctr):
            if r in (1, 3) and fi < len(func):
                lst.append((r, ref[i] if i < len(ref) else -1, func[fi]))
                fi += 1
            elif r == 7 and gi < len(group):
                if group[gi] == 0 and mi < len(mode):
                    subfunction = mode[mi]
                    mi += 1
                else:
                    subfunction = sub[si] if si < len(sub) else -1
                    si += 1
                lst.append((r, ref[i] if i < len(ref) else -1, group[gi], subfunction))
                gi += 1
            else:
                lst.append((r, ref[i] if i < len(ref) else -1))
        if lst:
            pdus[frame] = lst
            detail[frame] = {k: tuple(sorted(x)) for k, x in zip(DETAIL, v[6:10])}
    return pdus, detail


def our_view(events: list[Event]) -> tuple[dict[int, list[Pdu]], dict[int, dict[str, tuple[int, ...]]]]:
    pdus: dict[int, list[Pdu]] = {}
    acc: dict[int, dict[str, list[int]]] = {}
    for e in events:
        s = e.s7comm
        if e.event.dataset != "s7comm" or s is None or e.anomaly is not None or e.evidence is None or e.evidence.frame is None:
            continue
        fr = e.evidence.frame
        if s.protocol == "cotp":
            pdus.setdefault(fr, []).append(("cotp", s.cotp_pdu_code))
            continue
        if s.protocol != "s7comm":
            continue
        if s.rosctr in (1, 3) and s.function_code is not None:
            pdu: Pdu = (s.rosctr, s.pdu_reference, s.function_code)
        elif s.rosctr == 7 and s.function_group is not None:
            pdu = (7, s.pdu_reference, s.function_group, s.subfunction_code)
        else:
            pdu = (s.rosctr, s.pdu_reference)
        pdus.setdefault(fr, []).append(pdu)
        d = acc.setdefault(fr, {k: [] for k in DETAIL})
        if s.rosctr == 1 and s.items:
            for it in s.items:
                if it.syntax_id == 0x10:
                    d["area"].append(it.area or 0)
                    d["db_number"].append(it.db_number or 0)
                    if (it.area or 0) not in _TIMERS_COUNTERS and (it.transport_size or 0) not in _TIMERS_COUNTERS:
                        d["byte_address"].append(it.byte_address or 0)
        if s.szl_id is not None:
            d["szl_id"].append(s.szl_id)
    return pdus, {f: {k: tuple(sorted(x)) for k, x in d.items()} for f, d in acc.items()}


def _accepted() -> dict[str, Any]:
    return (yaml.safe_load(EXPECTED.read_text(encoding="utf-8")) or {}).get("tshark") or {}


def compare(theirs: dict[int, list[Pdu]], ours: dict[int, list[Pdu]]) -> tuple[int, int, int, list[str]]:
    """-> (same frame, late frame, total PDUs (union), problems)."""
    left: Counter[tuple[int, Pdu]] = Counter((f, p) for f, ps in theirs.items() for p in ps)
    same = late = 0
    unmatched: list[tuple[int, Pdu]] = []
    for f, ps in sorted(ours.items()):
        for p in ps:
            if left[(f, p)] > 0:
                left[(f, p)] -= 1
                same += 1
            else:
                unmatched.append((f, p))
    problems: list[str] = []
    for f, p in unmatched:
        earlier = sorted(k for k, n in left.items() if n > 0 and k[1] == p and k[0] < f)
        if earlier:
            left[earlier[-1]] -= 1
            late += 1
        else:
            problems.append(f"frame {f}: we report {p}, tshark does not")
    problems += [f"frame {f}: tshark reports {p}, we do not" for (f, p), n in sorted(left.items()) for _ in range(n)]
    total = same + late + len(problems)
    return same, late, total, problems


def test_agreement_with_tshark(decoded: Callable[[str], list[Event]], s7_corpus: Path) -> None:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark not on PATH")
    accepted = _accepted()
    late_ok = set(accepted.get("late_frame") or {})
    frame_ok = {rel: {int(k) for k in v} for rel, v in (accepted.get("frames") or {}).items()}
    problems: list[str] = []
    rows: list[str] = []
    t_same = t_late = t_total = t_det = t_det_ok = 0
    present = [rel for rel in S7_TRACES if (s7_corpus / rel).is_file()]
    with ThreadPoolExecutor(max_workers=4) as pool:  # tshark start-up dominates: run them side by side
        views = dict(zip(present, pool.map(lambda rel: tshark_view(exe, s7_corpus / rel), present)))
    for rel in present:
        tp, td = views[rel]
        op, od = our_view(decoded(rel))
        same, late, total, probs = compare(tp, op)
        problems += [f"{rel} {p}" for p in probs]
        if late and rel not in late_ok:
            problems.append(f"{rel}: {late} PDU(s) reported at a later frame than tshark's; not listed under late_frame")
        if not late and rel in late_ok:
            problems.append(f"{rel}: listed under late_frame but every PDU is at tshark's frame now: remove it")
        det = det_ok = 0
        listed = frame_ok.get(rel, set())
        for f in sorted(set(td) & set(od)):
            if len(tp.get(f, [])) != 1 or len(op.get(f, [])) != 1:
                continue
            det += 1
            if td[f] == od[f]:
                det_ok += 1
                if f in listed:
                    problems.append(f"{rel} frame {f}: listed under frames but agrees now: remove it")
            elif f not in listed:
                problems.append(f"{rel} frame {f}: details differ: tshark {td[f]} ours {od[f]}")
        for f in listed - set(td) - set(od):
            problems.append(f"{rel} frame {f}: listed under frames but absent: remove it")
        t_same, t_late, t_total, t_det, t_det_ok = t_same + same, t_late + late, t_total + total, t_det + det, t_det_ok + det_ok
        rows.append(f"| {rel} | {total} | {same} | {late} | {total - same - late} | {det_ok}/{det} |")
    print("\n| trace | PDUs | same frame | late frame (engine) | differ | item/SZL details agree |\n|---|---|---|---|---|---|\n" + "\n".join(rows))
    print(f"| total | {t_total} | {t_same} | {t_late} | {t_total - t_same - t_late} | {t_det_ok}/{t_det} |")
    print(f"PDU agreement {100.0 * (t_same + t_late) / max(t_total, 1):.2f}%, details {100.0 * t_det_ok / max(t_det, 1):.2f}%")
    assert not problems, "\n".join(problems[:40])
    assert t_total and (t_same + t_late) / t_total >= 0.99 and t_det_ok / max(t_det, 1) >= 0.99
