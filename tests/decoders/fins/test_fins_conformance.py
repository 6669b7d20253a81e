"""Our FINS events vs ICSNPP's expected omron_fins_general.log and vs tshark 4.0, message by message.

- ICSNPP: each general-log row is one FINS frame; in log order it must match our FINS events in
  capture order on: command/response (ICF bit 6), gateway count, DNA/DA1/DA2/SNA/SA1/SA2, SID, command
  code and the response end code. ICSNPP labels the CS/CJ program area commands 0x0304..0x0308 with the
  CV-series numbers 0x0301..0x0305 (the wire carries 0x0304..0x0308, as tshark shows): mapped back.
- tshark: per frame, (command/response, command code, SID, end code).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.schema import Event

from .conftest import FINS_TRACES

BASELINES = {
    "icsnpp-omron-fins/traces/omron.pcap": "icsnpp-omron-fins/baseline/tests.omron_fins/omron_fins_general.log",
    "icsnpp-omron-fins/traces/omron_fins_tcp_commands_responses.pcap": "icsnpp-omron-fins/baseline/tests.omron_fins_tcp/omron_fins_general.log",
}
# ICSNPP's labels for the program area commands -> the code on the wire
_ICSNPP_PROGRAM_AREA = {0x0301: 0x0304, 0x0302: 0x0305, 0x0303: 0x0306, 0x0304: 0x0307, 0x0305: 0x0308}


EXPECTED = Path(__file__).parent / "expected_differences.yml"
# ICSNPP end code labels printed without their code
_NAMED_END_CODES = {"Third node not part of Network": 0x0203}


def _code(s: str) -> int | None:
    if s.strip() in _NAMED_END_CODES:
        return _NAMED_END_CODES[s.strip()]
    tail = s.rsplit("(", 1)[-1].rstrip(")")
    return int(tail, 16) if tail.startswith("0x") else None


def icsnpp_rows(path: Path) -> list[tuple[Any, ...]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        c = line.split("\t")
        kind = "response" if c[13].startswith("Response") else "command"
        code = _code(c[23])
        code = _ICSNPP_PROGRAM_AREA.get(code, code) if code is not None else None
        end = _code(c[24]) if kind == "response" else None
        rows.append((kind, int(c[15]), *(int(x, 16) for x in c[16:23]), code, end))
    return rows


def our_rows(events: list[Event]) -> list[tuple[Any, ...]]:
    rows = []
    for e in events:
        f = e.fins
        if e.event.dataset != "fins" or f is None or e.anomaly is not None or f.command_code is None:
            continue
        rows.append((f.message_type, f.gct, f.dna, f.da1, f.da2, f.sna, f.sa1, f.sa2, f.sid, f.command_code, f.end_code if f.message_type == "response" else None))
    return rows


def test_agreement_with_icsnpp(decoded: Callable[[str], list[Event]], corpus: Path) -> None:
    accepted = (yaml.safe_load(EXPECTED.read_text(encoding="utf-8")) or {}).get("icsnpp") or {}
    problems: list[str] = []
    table: list[str] = []
    total = same = listed_total = 0
    for rel, log in BASELINES.items():
        theirs, ours = icsnpp_rows(corpus / log), our_rows(decoded(rel))
        listed = {int(k) for k in (accepted.get(rel) or {})}
        n = max(len(theirs), len(ours))
        ok = n_listed = 0
        for i, (a, b) in enumerate(zip(theirs, ours), start=1):
            if a == b:
                ok += 1
                if i in listed:
                    problems.append(f"{rel} message {i}: listed but agrees now: remove it")
            elif i in listed:
                n_listed += 1
            else:
                problems.append(f"{rel} message {i}: ICSNPP {a} ours {b}")
        if len(theirs) != len(ours):
            problems.append(f"{rel}: ICSNPP logs {len(theirs)} FINS frames, we report {len(ours)}")
        total, same, listed_total = total + n, same + ok, listed_total + n_listed
        table.append(f"| {rel} | {n} | {ok} | {n_listed} |")
    print("\n| trace | FINS frames | agree with ICSNPP | accepted difference |\n|---|---|---|---|\n" + "\n".join(table) + f"\n| total | {total} | {same} | {listed_total} |")
    print(f"FINS agreement with ICSNPP {100.0 * same / max(total, 1):.2f}% raw, {100.0 * (same + listed_total) / max(total, 1):.2f}% counting the listed differences (ICSNPP's, each with its reason)")
    assert not problems, "\n".join(problems[:40])
    assert total and (same + listed_total) / total >= 0.99


def tshark_rows(tshark: str, path: Path) -> dict[int, list[tuple[Any, ...]]]:
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "omron.icf.dtb", "-e", "omron.command", "-e", "omron.sid", "-e", "omron.response.code", "-Y", "omron.command"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    rows: dict[int, list[tuple[Any, ...]]] = {}
    for line in out.splitlines():
        fr, dtb, cmd, sid, end = (line.split("\t") + [""] * 5)[:5]
        kind = "response" if int(dtb, 16) else "command"
        rows.setdefault(int(fr), []).append((kind, int(cmd, 16), int(sid, 16), int(end, 16) if end and kind == "response" else None))
    return rows


@pytest.mark.tshark
def test_agreement_with_tshark(decoded: Callable[[str], list[Event]], corpus: Path, tshark: str) -> None:
    problems: list[str] = []
    table: list[str] = []
    total = same = 0
    for rel in FINS_TRACES:
        if not (corpus / rel).is_file():
            continue
        theirs = tshark_rows(tshark, corpus / rel)
        ours: dict[int, list[tuple[Any, ...]]] = {}
        for e in decoded(rel):
            f = e.fins
            if e.event.dataset == "fins" and f is not None and e.anomaly is None and f.command_code is not None and e.evidence is not None and e.evidence.frame is not None:
                ours.setdefault(e.evidence.frame, []).append((f.message_type, f.command_code, f.sid, f.end_code if f.message_type == "response" else None))
        n = ok = 0
        for fr in sorted(set(theirs) | set(ours)):
            a, b = theirs.get(fr, []), ours.get(fr, [])
            n += max(len(a), len(b))
            if a == b:
                ok += len(a)
            else:
                problems.append(f"{rel} frame {fr}: tshark {a} ours {b}")
        total, same = total + n, same + ok
        table.append(f"| {rel} | {n} | {ok} |")
    print("\n| trace | FINS frames | agree with tshark |\n|---|---|---|\n" + "\n".join(table) + f"\n| total | {total} | {same} |")
    print(f"FINS agreement with tshark {100.0 * same / max(total, 1):.2f}%")
    assert not problems, "\n".join(problems[:40])
    assert total and same / total >= 0.99


# Memory area commands whose area and address ICSNPP's omron_fins_detail.log carries
_AREA_COMMANDS = (0x0101, 0x0102, 0x0103)


def test_memory_area_details_agree_with_icsnpp(decoded: Callable[[str], list[Event]], corpus: Path) -> None:
    """Memory area read/write/fill commands: (command, memory area code, address << 8 | bit) in log order."""
    theirs = []
    for line in (corpus / "icsnpp-omron-fins/baseline/tests.omron_fins/omron_fins_detail.log").read_text(encoding="utf-8").splitlines():
        c = line.split("\t")
        if line.startswith("#") or len(c) < 9 or not c[6].startswith("Command"):
            continue
        code = _code(c[5])
        if code in _AREA_COMMANDS and c[8].startswith("0x"):
            theirs.append((code, _code(c[7]), int(c[8], 16)))
    ours = [
        (f.command_code, f.memory_area_code, ((f.address or 0) << 8) | (f.bit or 0))
        for e in decoded("icsnpp-omron-fins/traces/omron.pcap")
        if (f := e.fins) is not None and e.anomaly is None and f.message_type == "command" and f.command_code in _AREA_COMMANDS
    ]
    print(f"\nFINS memory area commands: ICSNPP {len(theirs)}, ours {len(ours)}, agree {sum(a == b for a, b in zip(theirs, ours))}")
    assert theirs and theirs == ours
