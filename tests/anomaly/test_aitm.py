"""T0830 Adversary-in-the-Middle on traffic: the held-out testbed capture pcaps/modbus/anomaly_aitm.pcap
(an attacker ARP-poisons the HMI and PLC1 and relays their Modbus traffic for 25 s) against the learned
IP↔MAC bindings (qn-anomaly-mac-binding), plus the bindings' persistence in the site model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from detection.anomaly.engine import AnomalyEngine
from detection.anomaly.model import load_model, save_model, train
from detection.anomaly.rules import MAC_BINDING

from .conftest import LEARN, SITE, events_of, scenario, split

NAME = "anomaly_aitm"
STEP = "aitm_hmi_plc1"


@pytest.fixture(scope="module")
def run() -> tuple[list, list]:  # type: ignore[type-arg]
    evs = events_of(NAME)
    return evs, AnomalyEngine(SITE, learn_first=LEARN).process_many(evs)


def _binding(alerts: list) -> list:  # type: ignore[type-arg]
    return [a for a in alerts if a.rule is not None and a.rule.id == MAC_BINDING.id]


def test_both_poisoned_bindings_alert_on_the_aitm_step(run: tuple[list, list]) -> None:  # type: ignore[type-arg]
    evs, alerts = run
    sc = scenario(NAME)
    step = next(s for s in sc.steps if s.name == STEP)
    assert sc.labels is not None
    (attacker,) = next(s for s in yaml.safe_load(sc.labels.read_text())["steps"] if s["name"] == STEP)["macs"]
    hosts = {"hmi": "10.10.1.10", "plc1": "10.10.1.101"}
    got = _binding(alerts)
    assert got, "the AitM step raised no qn-anomaly-mac-binding alert"
    claimed = set()
    for a in got:
        frames = set(a.evidence.frames or ())
        assert frames and frames <= step.frames, (a.message, frames)
        assert a.labels is not None and a.labels["feature"] == "ip-mac binding (arp)"
        claimed |= set(a.related.ip if a.related else ())
    # Both victims' addresses were claimed by the attacker's MAC, and the alert says one MAC holds both.
    assert set(hosts.values()) <= claimed
    assert any("adversary in the middle" in (a.message or "") for a in got)
    assert {a.source.mac for a in got if a.source is not None} == {attacker}  # the spoofed replies' sender
    # Detected at once: the first alert comes with the first spoofed reply the sensor saw.
    first_frame = min(step.frames)
    t_step = min(e.timestamp for e in evs if e.evidence and e.evidence.frame is not None and e.evidence.frame >= first_frame
                 and e.event.dataset == "arp" and e.arp is not None and e.arp.unsolicited)
    assert min(a.timestamp for a in got) - t_step < dt.timedelta(seconds=2)


@pytest.mark.parametrize("name", [NAME, "anomaly_setpoint", "anomaly_timing", "anomaly_holdout_links", "anomaly_holdout_mixed",
                                  "modbus_normal_only", "modbus_plant_attack"])
def test_no_binding_alert_on_normal_traffic(name: str) -> None:
    """On the AitM capture outside its step, and on every other Modbus testbed capture (new hosts included: an
    address never learned is not judged), the bindings raise nothing."""
    evs = events_of(name)
    sc = scenario(name)
    attack = {f for s in sc.steps if s.kind == "attack" for f in s.frames}
    alerts = _binding(AnomalyEngine(SITE, learn_first=LEARN).process_many(evs))
    on_normal = [a for a in alerts if not set(a.evidence.frames or ()) <= attack]
    assert not on_normal, [a.message for a in on_normal]
    if name != NAME:
        assert not alerts, [a.message for a in alerts]


def test_bindings_are_learned_from_arp_and_ip_and_persist(tmp_path: Path) -> None:
    learn, _ = split(events_of(NAME))
    model = train(SITE, learn)
    b = model.bindings
    assert b is not None
    for ip in ("10.10.1.10", "10.10.1.20", "10.10.1.101", "10.10.1.102"):
        assert len(b.macs[ip]) == 1, (ip, b.macs.get(ip))
        (mac,) = b.macs[ip]
        assert "ip source" in b.sources[(ip, mac)]
    assert any("arp" in how for how in b.sources.values())
    save_model(model, tmp_path / "m")
    loaded, meta = load_model(tmp_path / "m", SITE)
    assert meta["format"] == 3 and meta["bindings"] == b.summary()
    assert loaded.bindings is not None and loaded.bindings.macs == b.macs


def test_a_format_2_model_loads_and_its_binding_detector_stays_silent(tmp_path: Path) -> None:
    evs = events_of(NAME)
    learn, protect = split(evs)
    model = train(SITE, learn)
    del model.bindings  # as a model pickled before format 3: the attribute is absent, the class default (None) shows
    version = save_model(model, tmp_path / "m")
    meta_path = version / "model.json"
    meta = json.loads(meta_path.read_text())
    assert "bindings" not in meta
    meta_path.write_text(json.dumps(meta | {"format": 2}))
    loaded, _ = load_model(tmp_path / "m", SITE)
    assert loaded.bindings is None
    alerts = AnomalyEngine(SITE, model=loaded).process_many(protect)
    assert not _binding(alerts)


@pytest.mark.netns
@pytest.mark.slow
def test_a_fresh_aitm_run_relays_through_the_attacker_and_is_labelled_by_mac(tmp_path: Path) -> None:
    """The step live (root, namespaces): the victims' traffic really passes the attacker's NIC, and the labeller gives
    the step exactly the frames to or from the MAC its agent reported."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import rdpcap

    from tests.testbed.fresh import SKIP_REASON, can_run, run_scenario
    from tests.testbed.labels import expand_ranges

    if not can_run():
        pytest.skip(SKIP_REASON)
    run = run_scenario(NAME, tmp_path, [STEP], lead_in=6, timeout=150)
    step = next(s for s in run.labels["steps"] if s["name"] == STEP)
    (mac,) = step["macs"]
    owned = set(expand_ranges(step["frames"]))
    pkts = rdpcap(str(run.pcap))
    by_mac = {n for n, p in enumerate(pkts, start=1) if Ether in p and mac in (p[Ether].src, p[Ether].dst)}
    assert owned == by_mac
    spoofed = [p for p in pkts if ARP in p and p[ARP].op == 2 and p[ARP].hwsrc == mac and p[ARP].psrc in ("10.10.1.10", "10.10.1.101")]
    relayed = [p for p in pkts if TCP in p and p[Ether].src == mac and p[IP].src == "10.10.1.10" and p[TCP].dport == 502]
    assert len(spoofed) >= 20 and relayed, (len(spoofed), len(relayed))
    assert all(p[IP].ttl == 63 for p in relayed)  # forwarded by the attacker's kernel, one hop
