"""Reading the testbed's label files: which frames belong to which scenario step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def parse_ranges(spec: str | list[Any] | None) -> set[int]:
    """`"1-3,7"` → {1, 2, 3, 7}; also accepts a list of ints/ranges."""
    out: set[int] = set()
    if not spec:
        return out
    parts = spec.split(",") if isinstance(spec, str) else [str(p) for p in spec]
    for part in parts:
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # normal | attack
    frames: frozenset[int]
    expect_rules: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    name: str
    capture: Path
    steps: tuple[Step, ...]

    @property
    def normal_frames(self) -> set[int]:
        return {f for s in self.steps if s.kind == "normal" for f in s.frames}


def load(labels: Path) -> Scenario:
    doc = yaml.safe_load(labels.read_text(encoding="utf-8"))
    capture = labels.parent / doc["capture"]
    steps = tuple(
        Step(s["name"], s["kind"], frozenset(parse_ranges(s.get("frames"))), tuple(s.get("expect_rules") or ()))
        for s in doc["steps"]
    )
    return Scenario(doc.get("scenario", labels.stem), capture, steps)


def all_label_files() -> list[Path]:
    return sorted((REPO / "pcaps").glob("**/*.labels.yml"))
