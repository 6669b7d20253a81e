"""Our DNP3 events vs tshark 4.0, per message, on the corpus DNP3 traces.

Compared per frame: application messages (function code, application sequence, IIN), link-only
frames (source, destination, control byte), and the object headers (group/variation list) of frames
holding one application message. Accepted differences: expected_differences.yml (section tshark).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from sensors.engine import decode_file
from tests.decoders.dnp3.conftest import sampled

pytestmark = pytest.mark.tshark

EXPECTED = Path(__file__).parent / "expected_differences.yml"
FIELDS = ("frame.number", "dnp3.src", "dnp3.dst", "dnp3.ctl", "dnp3.al.func", "dnp3.al.seq", "dnp3.al.iin", "dnp3.al.obj", "dnp3.len")


BATCH = 12  # traces per tshark run: tshark's start-up dominates on these small captures


def packet_count(path: Path) -> int:
    """Records in a classic pcap file (every DNP3 trace of the corpus is one)."""
    data = path.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, n = 24, 0
    while off + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, off + 8)[0]
        off += 16 + incl
        n += 1
    return n


def tshark_batch(tshark: str, paths: list[Path]) -> list[Counter[tuple[Any, ...]]]:
    """tshark once over the concatenation of `paths` (mergecap -a); records split back per file."""
    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / "merged.pcapng"
        subprocess.run(["mergecap", "-a", "-F", "pcapng", "-w", str(merged), *map(str, paths)], check=True, capture_output=True, timeout=120)
        cmd = [tshark, "-n", "-r", str(merged), "-T", "fields", "-E", "occurrence=a", "-Y", "dnp3"]
        for f in FIELDS:
            cmd += ["-e", f]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    bounds = []
    start = 0
    for p in paths:
        n = packet_count(p)
        bounds.append((start, start + n))
        start += n
    lines: list[list[str]] = [[] for _ in paths]
    for line in out.splitlines():
        frame = int(line.split("\t", 1)[0])
        for i, (lo, hi) in enumerate(bounds):
            if lo < frame <= hi:
                lines[i].append(str(frame - lo) + line[line.index("\t") :])
                break
    return [tshark_records(ls) for ls in lines]


def tshark_records(lines: list[str]) -> Counter[tuple[Any, ...]]:
    recs: Counter[tuple[Any, ...]] = Counter()
    for line in lines:
        cols = (line.split("\t") + [""] * len(FIELDS))[: len(FIELDS)]
        frame = int(cols[0])
        srcs, dsts, ctls, funcs, seqs, iins, objs, lens = (c.split(",") if c else [] for c in cols[1:])
        for s, d, c, n in zip(srcs, dsts, ctls, lens):
            ctl = int(c, 16)
            if not (ctl & 0x40 and ctl & 0x0F in (3, 4)) or int(n) == 5:  # no user data
                recs[("link", frame, int(s), int(d), ctl)] += 1
        iin_iter = iter(iins)
        for fc, seq in zip(funcs, seqs):
            iin = int(next(iin_iter, "-1"), 16) if int(fc) >= 129 else -1
            recs[("app", frame, int(fc), int(seq), iin)] += 1
        if len(funcs) == 1:
            recs[("objects", frame, tuple(int(o, 16) for o in objs))] += 1
    return recs


def our_records(path: Path) -> Counter[tuple[Any, ...]]:
    recs: Counter[tuple[Any, ...]] = Counter()
    per_frame: Counter[int] = Counter()
    apps = []
    for e in decode_file(path):
        d = e.dnp3
        if e.event.dataset != "dnp3" or e.anomaly is not None or d is None or e.evidence is None or e.evidence.frame is None:
            continue
        frame = e.evidence.frame
        if d.message_type == "link":
            ctl = (0x80 if d.link_dir else 0) | (0x40 if d.link_prm else 0) | (0x20 if d.link_fcb else 0) | (0x10 if d.link_fcv or d.link_dfc else 0) | (d.link_function_code or 0)
            recs[("link", frame, d.source, d.destination, ctl)] += 1
            continue
        assert d.function_code is not None and d.sequence is not None
        recs[("app", frame, d.function_code, d.sequence, d.iin if d.iin is not None else -1)] += 1
        per_frame[frame] += 1
        apps.append((frame, tuple(o.group << 8 | o.variation for o in d.objects or ())))
    for frame, objs in apps:
        if per_frame[frame] == 1:
            recs[("objects", frame, objs)] += 1
    return recs


def accepted() -> dict[tuple[str, str, int], dict[str, Any]]:
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for entry in (yaml.safe_load(EXPECTED.read_text()) or {}).get("tshark", []):
        assert entry.get("why"), f"{EXPECTED}: entry for {entry.get('file')} has no reason"
        for frame in entry["frames"]:
            out[(entry["file"], entry["kind"], int(frame))] = entry
    return out


def test_dnp3_agrees_with_tshark(tshark: str, traces: list[tuple[str, Path]]) -> None:
    if shutil.which("mergecap") is None:
        pytest.skip("mergecap (Wireshark) not on PATH")
    chosen = sampled(traces)
    batches = [[p for _, p in chosen[i : i + BATCH]] for i in range(0, len(chosen), BATCH)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs_all = [c for batch in pool.map(lambda b: tshark_batch(tshark, b), batches) for c in batch]
    allowed = accepted()
    used: set[tuple[str, str, int]] = set()
    unexplained: list[str] = []
    rows = []
    for (name, path), theirs in zip(chosen, theirs_all):
        ours = our_records(path)
        if theirs != ours:
            # Concatenated captures can share TCP 4-tuples, and tshark's conversation state then
            # crosses files: a merged result is only trusted when it agrees; otherwise the file alone.
            theirs = tshark_batch(tshark, [path])[0]
        only_t, only_o = theirs - ours, ours - theirs
        acc = 0
        for side, diff in (("only_tshark", only_t), ("only_ours", only_o)):
            for rec, n in sorted(diff.items(), key=str):
                key = (name, rec[0], rec[1])
                if key in allowed:
                    used.add(key)
                    acc += n
                else:
                    unexplained.append(f"{name} frame {rec[1]}: {side} {rec} (x{n})")
        rows.append((name, sum(theirs.values()), sum(ours.values()), sum((theirs & ours).values()), sum(only_t.values()), sum(only_o.values()), acc))
    width = min(max(len(r[0]) for r in rows), 70)
    print(f"\n{'trace':<{width}}  tshark    ours  agree  only_t  only_o  accepted")
    for r in rows:
        print(f"{r[0][-width:]:<{width}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>5}  {r[4]:>6}  {r[5]:>6}  {r[6]:>8}")
    tot = [sum(r[i] for r in rows) for i in range(1, 7)]  # type: ignore[misc]
    print(f"{'TOTAL':<{width}}  {tot[0]:>6}  {tot[1]:>6}  {tot[2]:>5}  {tot[3]:>6}  {tot[4]:>6}  {tot[5]:>8}")
    print(f"agreement: {tot[2] / max(tot[0], 1):.2%} of tshark records ({len(chosen)} traces)")
    stale = sorted(k for k in allowed if k not in used and any(k[0] == n for n, _ in chosen))
    assert not unexplained, "differences from tshark not in expected_differences.yml:\n" + "\n".join(unexplained)
    assert not stale, f"tshark entries in expected_differences.yml that no longer happen: {stale}"
    assert tot[2] >= 0.99 * tot[0]
