"""The DNP3 testbed run live: opendnp3 outstations and masters (tests/testbed/stacks/dnp3.py) in
network namespaces, a shortened dnp3_plant_attack (three attack steps), captured, labelled and
replayed through the rule pack.  Needs root, ``ip netns`` and tcpdump (skipped otherwise); ~20 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testbed.fresh import SKIP_REASON, can_run, run_scenario

STEPS = ["integrity_recon", "direct_operate_crob", "cold_restart"]
ATTACKER = "10.10.1.66"


pytestmark = [
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.skipif(not can_run(), reason=SKIP_REASON),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    pytest.importorskip("opendnp3")
    fresh = run_scenario("dnp3_plant_attack", tmp_path_factory.mktemp("testbed_dnp3"), STEPS, lead_in=3)
    assert "client errors" not in fresh.stderr, fresh.stderr[-3000:]
    return fresh.pcap, fresh.labels, fresh.labels_path


def test_live_run_is_labelled_and_alerts_per_step(run: tuple[Path, dict, Path]) -> None:
    from tests.testbed.labels import expand_ranges
    from tests.testbed.verify import alerts_per_step

    pcap, labels, path = run
    assert labels["port"] == 20000 and labels["stack"] == "dnp3"
    assert [s["name"] for s in labels["steps"]] == ["normal_polling", *STEPS]
    seen = sorted(f for s in labels["steps"] for f in expand_ranges(s["frames"]))
    assert seen == list(range(1, labels["frames_total"] + 1))
    # DNP3 from the SCADA master, the attacker and both outstations.
    assert {"10.10.1.10", ATTACKER, "10.10.1.101", "10.10.1.102"} <= set(labels["dnp3_payload_frames_by_src"])
    got, _ = alerts_per_step(path)
    assert got == {"normal_polling": set(), "integrity_recon": {"qn-dnp3-0012"},
                   "direct_operate_crob": {"qn-dnp3-0004"},
                   "cold_restart": {"qn-dnp3-0001", "qn-dnp3-0012"}}


def test_live_run_decodes_clean_and_outstations_answer(run: tuple[Path, dict, Path]) -> None:
    from sensors.engine import decode_file

    pcap, _, _ = run
    responses: dict[str, set[str]] = {}
    for e in decode_file(pcap):
        if e.event.dataset != "dnp3":
            continue
        assert e.anomaly is None, e.anomaly
        d = e.dnp3
        assert d is not None and e.source is not None
        if d.message_type in ("response", "unsolicited_response"):
            responses.setdefault(e.source.ip, set()).add(e.event.action)
    # opendnp3 answered the attacker's operate and restart, and plc1 reported unsolicited.
    assert {"operate", "read"} <= responses["10.10.1.101"]
    assert "restart" in responses["10.10.1.102"]
    assert "read_status" in responses["10.10.1.101"]
