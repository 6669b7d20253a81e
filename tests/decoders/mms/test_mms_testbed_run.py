"""A fresh, shortened run of the libiec61850 MMS scenario (tests/testbed/stacks/mms.py) in real
namespaces: labelled frame by frame, the attack steps raise their alerts and normal traffic none, and the
IEDs' Identify answers are inventoried as the stack configured them.

Needs root, ``ip netns`` and tcpdump (skipped otherwise).  Takes ~15 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testbed.fresh import SKIP_REASON, can_run, run_scenario
from tests.testbed.labels import expand_ranges

STEPS = ["breaker_operate", "file_delete"]

pytestmark = [
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.skipif(not can_run(), reason=SKIP_REASON),
]


@pytest.fixture(scope="module")
def mms_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    fresh = run_scenario("mms_plant_attack", tmp_path_factory.mktemp("testbed_mms"), STEPS, lead_in=4)
    return fresh.pcap, fresh.labels, fresh.labels_path


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
