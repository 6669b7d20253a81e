"""Fuzz suite plumbing: a bounded hypothesis budget and a per-target count of inputs tried.

The counts are printed at the end of the run and written to `.cache/fuzz/hypothesis-summary.json`
(or $QINLING_FUZZ_SUMMARY); docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tests.fuzz.targets import COUNTS, REPO

_STARTED = time.process_time()


def summary_path() -> Path:
    return Path(os.environ.get("QINLING_FUZZ_SUMMARY") or REPO / ".cache" / "fuzz" / "hypothesis-summary.json")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not COUNTS:
        return
    cpu = time.process_time() - _STARTED
    terminalreporter.write_sep("-", f"fuzz inputs tried per target ({sum(COUNTS.values()):,} in all, {cpu:.1f} s CPU)")
    for target, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{target:24} {n:>8,}")
    path = summary_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cpu_seconds": round(cpu, 1), "inputs": dict(sorted(COUNTS.items()))}, indent=2) + "\n")
    terminalreporter.write_line(f"written to {path}")
