"""Writing a crafted capture and its label file in the testbed's format (GOOSE and PROFINET, whose
captures are made with scapy because no stack for them installs here)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from scapy.utils import wrpcap

from tests.testbed.labels import compact_ranges

T0_STEP = 0.25  # seconds between crafted frames


def _step(label: str, frames: list[int], steps: Mapping[str, tuple[str, str]]) -> dict[str, object]:
    if label == "normal":
        return {"name": "normal", "kind": "normal", "frames": compact_ranges(frames), "frame_count": len(frames), "expect_rules": [],
                "description": "Everything not in an attack step."}
    name, text = steps[label]
    return {"name": name, "kind": "attack", "frames": compact_ranges(frames), "frame_count": len(frames), "expect_rules": [label],
            "description": text}


def write_capture(out: Path, name: str, labelled: Sequence[tuple[str, Any]], steps: Mapping[str, tuple[str, str]], t0: float,
                  **meta: Any) -> tuple[Path, Path]:
    """`labelled`: (label, scapy packet) in capture order, label "normal" or the rule id an attack step must raise
    (`steps` maps it to the step's name and description). `meta`: description, generated_by, hosts, … for the labels."""
    frames, labels = [], []
    for i, (label, pkt) in enumerate(labelled):
        pkt.time = t0 + i * T0_STEP
        frames.append(pkt)
        labels.append(label)
    out.mkdir(parents=True, exist_ok=True)
    pcap = out / f"{name}.pcap"
    wrpcap(str(pcap), frames)
    by_label: dict[str, list[int]] = {}
    for n, label in enumerate(labels, 1):
        by_label.setdefault(label, []).append(n)
    doc = {"scenario": name, "description": meta.pop("description"), "generated_by": meta.pop("generated_by"), "capture": pcap.name,
           "sha256": hashlib.sha256(pcap.read_bytes()).hexdigest(), "frames_total": len(frames), **meta,
           "steps": [_step(k, v, steps) for k, v in by_label.items()]}
    lab = out / f"{name}.labels.yml"
    lab.write_text("# Generated; do not edit. Frame numbers are 1-based, as in Wireshark.\n" + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return pcap, lab
