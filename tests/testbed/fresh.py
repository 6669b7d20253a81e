"""A fresh, shortened testbed run in a subprocess, for the tests that check a stack live.

    run = run_scenario("s7comm_plant_attack", out, ["szl_recon", "plc_stop"], lead_in=4, timeout=40)
    run.pcap, run.labels (the parsed label file), run.labels_path, run.pid, run.stderr
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .plant import netns_available

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = "needs root, ip netns and tcpdump"


def can_run() -> bool:
    return shutil.which("tcpdump") is not None and netns_available()


@dataclass(frozen=True)
class FreshRun:
    pcap: Path
    labels: dict[str, Any]
    labels_path: Path
    pid: int
    stderr: str


def run_scenario(name: str, out: Path, steps: list[str], *, lead_in: float, timeout: float = 60.0) -> FreshRun:
    """`python -m tests.testbed run NAME` with `steps` only; fails the test when the runner fails."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.testbed", "run", name, "--out", str(out), "--lead-in", str(lead_in), "--steps", ",".join(steps)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the runner tears its namespaces down on SIGTERM
        proc.communicate(timeout=15)
        raise
    assert proc.returncode == 0, stderr[-3000:]
    path = out / f"{name}.labels.yml"
    return FreshRun(out / f"{name}.pcap", yaml.safe_load(path.read_text()), path, proc.pid, stderr)
