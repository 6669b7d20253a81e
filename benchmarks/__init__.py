"""Benchmarks: each module exposes `run() -> list[Row]`; `python -m benchmarks` prints one table.

Every figure is compared with a peer measured in the same run (timings on a shared machine are
noisy, ratios much less so), so a row names its peer and the ratio to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"


@dataclass(frozen=True)
class Row:
    """One figure: `value unit`, and (when it has one) the peer it is compared with and value / peer."""

    group: str  # "decode", "replay", "memory", "kafka", ...
    name: str
    value: float
    unit: str
    peer: str = ""
    ratio: float | None = None
    note: str = ""
