"""Testbed label files: which capture frames belong to which scenario step (normal or attack).

A `*.labels.yml` names its capture and assigns every frame (1-based, compact ranges `1-3,7`) to
exactly one step; attack steps list the rule ids (`expect_rules`, rule pack or anomaly detectors)
that should alert on them. `holdout: true` marks a scenario kept for final figures only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


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
    description: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    capture: Path
    steps: tuple[Step, ...]
    holdout: bool = False
    labels: Path | None = None

    @property
    def normal_frames(self) -> set[int]:
        return {f for s in self.steps if s.kind == "normal" for f in s.frames}

    @property
    def attacks(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "attack")


def load(labels: str | Path) -> Scenario:
    labels = Path(labels)
    doc = yaml.safe_load(labels.read_text(encoding="utf-8"))
    capture = labels.parent / doc["capture"]
    if not capture.exists() and capture.with_name(capture.name + ".gz").exists():
        capture = capture.with_name(capture.name + ".gz")  # captures over a few MiB are committed gzip-compressed
    steps = tuple(
        Step(s["name"], s["kind"], frozenset(parse_ranges(s.get("frames"))), tuple(s.get("expect_rules") or ()),
             str(s.get("description") or ""))
        for s in doc["steps"]
    )
    return Scenario(doc.get("scenario", labels.stem), capture, steps, bool(doc.get("holdout", False)), labels)


def label_files(root: str | Path) -> list[Path]:
    return sorted(Path(root).glob("**/*.labels.yml"))
