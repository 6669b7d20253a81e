"""A fresh, shortened run of the libiec61850 MMS scenario (tests/testbed/stacks/mms.py) in real
namespaces: labelled frame by frame, the attack steps raise their alerts and normal traffic none, and the
IEDs' Identify answers are inventoried as the stack configured them.

Needs root, ``ip netns`` and tcpdump (skipped otherwise).  Takes ~15 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.testbed.labels import expand_ranges
from tests.testbed.plant import netns_available

REPO = Path(__file__).resolve().parents[3]
STEPS = ["breaker_operate", "file_delete"]

pytestmark = [
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tcpdump") is None or not netns_available(), reason="needs root, ip netns and tcpdump"),
]


@pytest.fixture(scope="module")
def mms_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    out = tmp_path_factory.mktemp("testbed_mms")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.testbed", "run", "mms_plant_attack", "--out", str(out), "--lead-in", "4", "--steps", ",".join(STEPS)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the runner tears its namespaces down on SIGTERM
        proc.communicate(timeout=15)
        raise
    assert proc.returncode == 0, stderr[-3000:]
    path = out / "mms_plant_attack.labels.yml"
    return out / "mms_plant_attack.pcap", yaml.safe_load(path.read_text()), path


def test_fresh_mms_run_is_labelled_and_alerts_per_step(mms_run: tuple[Path, dict, Path]) -> None:
    from scapy.utils import rdpcap

    from tests.testbed.verify import alerts_per_step

    pcap, labels, path = mms_run
    n = len(rdpcap(str(pcap)))
    assert labels["port"] == 102 and labels["stack"] == "mms" and labels["frames_total"] == n
    assert [s["name"] for s in labels["steps"]] == ["normal_polling", *STEPS]
    assert sorted(f for s in labels["steps"] for f in expand_ranges(s["frames"])) == list(range(1, n + 1))
    # the HMI polled both IEDs and the attacker reached one (MMS payload from each)
    assert {"10.10.1.10", "10.10.1.101", "10.10.1.102", "10.10.1.66"} <= set(labels["mms_payload_frames_by_src"])
    got, _ = alerts_per_step(path)
    assert got["normal_polling"] == set()
    assert got["breaker_operate"] == {"qn-mms-0006", "qn-mms-0007", "qn-mms-0008"}
    assert got["file_delete"] == {"qn-mms-0005"}


def test_fresh_mms_run_announces_the_configured_identity(mms_run: tuple[Path, dict, Path]) -> None:
    from tests.inventory.test_testbed_identity_mms import mismatches

    pcap, _, _ = mms_run
    assert mismatches(pcap) == []
