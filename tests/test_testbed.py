"""End-to-end testbed check: a shortened scenario in real namespaces, captured and labelled.

Needs root and ``ip netns`` (skipped otherwise).  Takes ~20 s.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.testbed.fresh import SKIP_REASON, can_run, run_scenario
from tests.testbed.labels import expand_ranges

STEPS = ["recon_device_id", "register_sweep", "unauthorised_write"]
ATTACKER = "10.10.1.66"


pytestmark = [
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.skipif(not can_run(), reason=SKIP_REASON),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    fresh = run_scenario("modbus_plant_attack", tmp_path_factory.mktemp("testbed"), STEPS, lead_in=8)
    labels = dict(fresh.labels, _runner_pid=fresh.pid)
    return fresh.pcap, labels


def _packets(pcap: Path) -> list:
    from scapy.utils import rdpcap

    return list(rdpcap(str(pcap)))


def test_no_namespaces_left_behind(run: tuple[Path, dict]) -> None:
    pid = run[1]["_runner_pid"]
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [ln.split()[0] for ln in out.splitlines() if ln.split()]
    assert not [n for n in names if n.startswith("qn-") and n.endswith(f"-{pid}")]


def test_pcap_has_modbus_from_expected_hosts(run: tuple[Path, dict]) -> None:
    from scapy.layers.inet import IP, TCP

    pcap, labels = run
    assert pcap.exists() and pcap.stat().st_size > 0
    assert labels["capture"] == pcap.name and labels["port"] == 502
    requests_from: set[str] = set()
    responses_from: set[str] = set()
    for pkt in _packets(pcap):
        if IP in pkt and TCP in pkt and len(pkt[TCP].payload):
            if pkt[TCP].dport == 502:
                requests_from.add(pkt[IP].src)
            elif pkt[TCP].sport == 502:
                responses_from.add(pkt[IP].src)
    assert {"10.10.1.10", ATTACKER} <= requests_from  # HMI polling + attacker
    assert {"10.10.1.101", "10.10.1.102"} <= responses_from  # both PLCs answer


def test_labels_cover_every_frame_exactly_once(run: tuple[Path, dict]) -> None:
    pcap, labels = run
    n = len(_packets(pcap))
    assert labels["frames_total"] == n
    seen: list[int] = []
    for step in labels["steps"]:
        frames = expand_ranges(step["frames"])
        assert len(frames) == step["frame_count"]
        seen.extend(frames)
    assert sorted(seen) == list(range(1, n + 1))
    names = [s["name"] for s in labels["steps"]]
    assert names == ["normal_polling", *STEPS]
    assert labels["frames_assigned_by_time_window"] == 0


def test_attack_steps_carry_attacker_payload_to_502(run: tuple[Path, dict]) -> None:
    from scapy.layers.inet import IP, TCP

    pcap, labels = run
    pkts = _packets(pcap)
    for step in labels["steps"]:
        frames = expand_ranges(step["frames"])
        if step["kind"] == "normal":
            # No attacker TCP in the normal frames (ARP from the attacker is fine).
            assert not any(IP in pkts[i - 1] and TCP in pkts[i - 1]
                           and ATTACKER in (pkts[i - 1][IP].src, pkts[i - 1][IP].dst)
                           for i in frames)
            continue
        assert frames, step["name"]
        payload = [pkts[i - 1] for i in frames
                   if IP in pkts[i - 1] and TCP in pkts[i - 1] and len(pkts[i - 1][TCP].payload)]
        to_plc = [p for p in payload if p[IP].src == ATTACKER and p[TCP].dport == 502]
        assert to_plc, f"{step['name']}: no attacker payload to port 502"
        # Every frame of the step is one of the step's own connections.
        conns = {c.split(" -> ")[0] for c in step["connections"]}
        for i in frames:
            p = pkts[i - 1]
            ends = {f"{p[IP].src}:{p[TCP].sport}", f"{p[IP].dst}:{p[TCP].dport}"}
            assert ends & conns, (step["name"], i)
    sweep = next(s for s in labels["steps"] if s["name"] == "register_sweep")
    n_req = sum(1 for i in expand_ranges(sweep["frames"])
                if TCP in pkts[i - 1] and pkts[i - 1][TCP].dport == 502
                and len(pkts[i - 1][TCP].payload))
    assert n_req >= 55  # 60 single-register reads (a few may coalesce into one segment)


# ------------------------------------------------------------------ a non-Modbus stack (S7comm)
S7_STEPS = ["szl_recon", "plc_stop"]


@pytest.fixture(scope="module")
def s7_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """python-snap7 PLCs and clients (tests/testbed/stacks/s7comm.py), ~15 s."""
    fresh = run_scenario("s7comm_plant_attack", tmp_path_factory.mktemp("testbed_s7"), S7_STEPS, lead_in=4, timeout=40)
    return fresh.pcap, fresh.labels, fresh.labels_path


def test_s7comm_stack_run_is_labelled_and_alerts_per_step(s7_run: tuple[Path, dict, Path]) -> None:
    from scapy.layers.inet import IP, TCP

    from tests.testbed.verify import alerts_per_step

    pcap, labels, path = s7_run
    pkts = _packets(pcap)
    assert labels["port"] == 102 and labels["stack"] == "s7comm"
    assert labels["frames_total"] == len(pkts)
    assert [s["name"] for s in labels["steps"]] == ["normal_polling", *S7_STEPS]
    seen = sorted(f for s in labels["steps"] for f in expand_ranges(s["frames"]))
    assert seen == list(range(1, len(pkts) + 1))
    # Real S7comm (TPKT version 3, S7 protocol id 0x32) from the HMI and from the attacker.
    s7_from = {p[IP].src for p in pkts if IP in p and TCP in p and p[TCP].dport == 102
               and bytes(p[TCP].payload)[:1] == b"\x03" and b"\x32" in bytes(p[TCP].payload)[7:8]}
    assert {"10.10.1.10", ATTACKER} <= s7_from
    got, _ = alerts_per_step(path)
    assert got["normal_polling"] == set()
    assert got["szl_recon"] == {"qn-s7comm-0008"}
    assert got["plc_stop"] == {"qn-s7comm-0001"}


def test_s7comm_fresh_run_announces_the_configured_identity(s7_run: tuple[Path, dict, Path]) -> None:
    """The PLC the attacker's SZL reads reach (plc1) is inventoried as tests/testbed/stacks/s7comm.py configured it."""
    from tests.inventory.test_testbed_identity import mismatches

    pcap, labels, _ = s7_run
    assert mismatches("s7comm", pcap, ips={labels["hosts"]["plc1"]["ip"]}) == []
