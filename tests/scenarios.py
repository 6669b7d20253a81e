"""Reading the testbed's label files (the parsing lives in `detection.labels`; evaluate uses it too)."""

from __future__ import annotations

from pathlib import Path

from detection.labels import Scenario, Step, label_files, load, parse_ranges

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "Scenario", "Step", "all_label_files", "load", "parse_ranges"]


def all_label_files() -> list[Path]:
    return label_files(REPO / "pcaps")
