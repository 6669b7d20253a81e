"""Address spaces and process values beyond Modbus, read from real traffic: the testbed captures of
each protocol (pcaps/<proto>/*_plant_attack.pcap, real stacks) and a DNP3 trace of the corpus."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from detection.anomaly.baseline import Learner
from detection.anomaly.detectors import NewAddressDetector, State
from detection.anomaly.engine import AnomalyEngine
from detection.anomaly.features import message_of, point_values
from detection.engine import AlertFactory
from pipeline.schema import Event

from .conftest import REPO

_cache: dict[str, list[Event]] = {}


def events(path: Path | str) -> list[Event]:
    from sensors.engine import decode_file

    key = str(path)
    if key not in _cache:
        _cache[key] = list(decode_file(path, organization_id="site"))
    return _cache[key]


def plant(proto: str) -> list[Event]:
    return events(REPO / "pcaps" / proto / f"{proto}_plant_attack.pcap")


def targets_and_values(evs: list[Event]) -> tuple[dict[tuple[str, str], set[tuple[int, int]]], dict[tuple, list[float]]]:  # type: ignore[type-arg]
    targets: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)
    values: dict[tuple, list[float]] = defaultdict(list)  # type: ignore[type-arg]
    pending: dict = {}  # type: ignore[type-arg]
    for e in evs:
        m = message_of(e)
        if m is None:
            continue
        for space, lo, hi in m.targets:
            targets[(m.function, space)].add((lo, hi))
        for point, v in point_values(e, m, pending):
            values[point].append(v)
    return targets, values


def test_iec104_ioas_and_values() -> None:
    t, v = targets_and_values(plant("iec104"))
    assert t[("C_SE_NC_1", "C_SE")] == {(41, 41)} and t[("C_SC_NA_1", "C_SC")] == {(31, 31)}
    assert {p[4] for p in v if p[3] == "M_ME"} == {11, 12}  # float measurements of both RTUs
    meas = [x for p, xs in v.items() if p[3] == "M_ME" for x in xs]
    assert all(5.0 < x < 60.0 for x in meas) and len(set(meas)) > 10  # real changing values, not codes
    assert v[("10.10.1.101", "iec104", 47, "C_SE", 41)][0] == 42.5  # the set-point written
    assert set(v[("10.10.1.102", "iec104", 47, "M_SP", 21)]) <= {0.0, 1.0}


def test_s7_areas_and_values() -> None:
    t, v = targets_and_values(plant("s7comm"))
    assert (0, 31) in t[("read_var", "db1")] and t[("write_var", "db2")] == {(4, 5)}
    assert t[("write_var", "outputs")] == {(0, 1)}
    assert 1500.0 in v[("10.10.1.101", "s7comm", None, "db2", 4)]  # DB2.DBW4 = 0x05dc written by eng
    assert len(v[("10.10.1.102", "s7comm", None, "db1", 0)]) > 10  # read back every poll


def test_cip_tags_and_values() -> None:
    t, v = targets_and_values(plant("enip"))
    assert ("write_tag", "tag:Setpoint[1]") in t and ("read_tag", "tag:Temperature[0]") in t
    assert ("stop", "class 0x8e") in t  # a path without a tag: class and instance
    assert v[("10.10.1.101", "enip", None, "tag:Setpoint[1]", 0)][0] == 1500.0  # (INT)1500, little endian


def test_opcua_nodes_written() -> None:
    t, v = targets_and_values(plant("opcua"))
    assert ("Write", "node:ns=2;i=4") in t and ("Browse", "node:i=84") in t
    assert any(space.startswith("method:") for f, space in t if f == "Call")
    assert not v  # OPC UA events carry no values


def test_bacnet_objects_and_present_values() -> None:
    t, v = targets_and_values(plant("bacnet"))
    assert t[("write_property", "analog-value")] == {(1, 1)}
    temps = v[("10.10.1.101", "bacnet", None, "analog-input", 1)]
    assert temps and all(15.0 < x < 30.0 for x in temps)
    assert set(v[("10.10.1.102", "bacnet", None, "binary-value", 1)]) <= {0.0, 1.0}


def test_mqtt_topics_and_numeric_payloads() -> None:
    t, v = targets_and_values(plant("mqtt"))
    assert ("publish", "topic:plant/line1/tank/level") in t and ("subscribe", "filter:#") in t
    levels = v[("10.10.1.101", "mqtt", None, "topic:plant/line1/tank/level", 0)]
    assert len(levels) > 5 and all(40.0 <= x <= 60.0 for x in levels)
    assert not [p for p in v if p[3] == "topic:plant/line1/pump/cmd"]  # "start"/"stop" are not numbers


def test_mms_variables_and_values() -> None:
    """IEC 61850 MMS (libiec61850): every variable named is an address of its own; written values and
    read responses (paired with their request's names by the decoder) are points per variable."""
    t, v = targets_and_values(plant("mms"))
    ied1, ied2, dom = "10.10.1.101", "10.10.1.102", "QNIEDPROT"
    assert ("read", f"var:{dom}/MMXU1$MX$TotW$mag$f") in t and ("write", f"var:{dom}/PTOC1$SP$StrVal$setMag$f") in t
    assert ("write", f"var:{dom}/XCBR1$CO$Pos$Oper") in t  # a control (operate) names its object
    assert ("file_delete", "file:COMTRADE/fault_0001.cfg") in t
    assert any(space.startswith("domain:") for _f, space in t)  # getNameList names only a domain
    totw = v[(ied1, "mms", None, f"var:{dom}/MMXU1$MX$TotW$mag$f", 0)]
    assert len(totw) > 10 and all(700.0 < x < 1300.0 for x in totw) and len(set(totw)) > 10  # a drifting measurement
    assert v[(ied1, "mms", None, f"var:{dom}/PTOC1$SP$StrVal$setMag$f", 0)] == [120.0, 125.0, 9999.0]  # read, written, attack
    assert set(v[(ied2, "mms", None, f"bits:{dom}/XCBR1$ST$Pos$stVal", 0)]) == {0.0}  # Dbpos intermediate, 2-bit string
    assert not [p for p in v if "$Oper" in p[3] or p[3].endswith("$TotW")]  # structures carry no simple value


def test_dnp3_groups_and_points(corpus: Path) -> None:
    trace = corpus / "icsnpp-dnp3" / "traces" / "dnp3_example.pcap"
    if not trace.exists():
        pytest.skip("corpus trace missing")
    t, v = targets_and_values(events(trace))
    assert ("fc1", "g60v1") in t  # class 0 poll: all objects of the group
    assert (8, 8) in t[("fc3", "g12")] and (8, 8) in t[("fc4", "g12")]  # select/operate a CROB on index 8
    assert any(p[3] == "g40" for p in v) and any(p[3] == "g10" for p in v)


@pytest.mark.parametrize("proto", ["iec104", "s7comm", "enip", "opcua", "bacnet", "mqtt", "mms"])
def test_learned_per_protocol_and_a_new_target_alerts(proto: str) -> None:
    """Learn a capture's first requests of each link; any later request outside them alerts with its space."""
    evs = plant(proto)
    base = Learner("site").observe_many(evs).fit()
    assert base.links and all(isinstance(r, dict) for f in base.links.values() for r in f.values())
    assert sum(len(r) for f in base.links.values() for r in f.values()) >= 2
    # Drop one learned space of a function: a request into it is now a new address, explained by its space.
    link, funcs = next((lk, fs) for lk, fs in base.links.items() if any(len(s) for s in fs.values()))
    func, spaces = next((f, s) for f, s in funcs.items() if s)
    space = next(iter(spaces))
    del spaces[space]
    det, st = NewAddressDetector(base, AlertFactory("site")), State()
    alerts = [a for e in evs if (m := message_of(e)) is not None and m.link == link
              for a in det.on_event(e, m, st)]
    assert alerts, (link, func, space)
    assert space in alerts[0].labels["observed"] and alerts[0].labels["feature"] == "address range"


def test_engine_runs_every_protocol_capture() -> None:
    """No protocol's events break the engine (learn the first half, protect the rest)."""
    for proto in ("iec104", "s7comm", "enip", "opcua", "bacnet", "mqtt", "mms", "modbus"):
        evs = plant(proto)
        span = max(e.timestamp for e in evs) - min(e.timestamp for e in evs)
        eng = AnomalyEngine("site", learn_first=span / 2)
        eng.process_many(evs)
        assert eng.phase == "protecting"


GOOSE_DEV = REPO / "pcaps" / "goose" / "anomaly_goose.pcap"  # development capture (libiec61850 publishers)


def test_goose_links_are_publisher_macs_and_members_are_reported_points() -> None:
    """Layer 2: a GOOSE link runs from the publisher's MAC to its multicast group; the control block
    and data set are its addresses (the data set's members its range); allData members are the
    publisher's points, reported (never written), and an operation counter is learned as a counter."""
    evs = [e for e in events(GOOSE_DEV) if e.goose is not None]
    targets, values = targets_and_values(evs)
    assert ("publish", "gocb:QNIED2CTRL/LLN0$GO$gcbPos") in targets
    assert targets[("publish", "dataset:QNIED2CTRL/LLN0$dsPos")] == {(0, 2)}
    assert targets[("publish", "dataset:QNIED2CTRL/LLN0$dsPosExt")] == {(0, 3)}  # the re-configured block (attack)
    m = message_of(evs[0])
    assert m is not None and m.link[2] == "goose" and m.link[0].startswith("02:00:0a:0a:01:") and m.link[1].startswith("01:0c:cd:")
    ied2 = "02:00:0a:0a:01:ca"
    opcnt = values[(ied2, "goose", None, "goose:QNIED2CTRL/LLN0$GO$gcbPos[2]", 0)]
    assert opcnt == sorted(opcnt) and len(set(opcnt)) >= 3  # an operation counter counting up
    assert set(values[(ied2, "goose", None, "bits:QNIED2CTRL/LLN0$GO$gcbPos[0]", 0)]) <= {64.0, 128.0}  # Dbpos 01/10
    current = values[("02:00:0a:0a:01:c9", "goose", None, "goose:QNIED1MEAS/LLN0$GO$gcbMeas[0]", 0)]
    assert 1850.0 in current and all(95.0 <= v <= 105.0 for v in current if v != 1850.0)

    start = evs[0].timestamp
    learner = Learner("site")
    for e in evs:
        if (e.timestamp - start).total_seconds() < 120:
            learner.observe(e)
    b = learner.fit()
    env = b.values[(ied2, "goose", None, "goose:QNIED2CTRL/LLN0$GO$gcbPos[2]", 0)]
    assert env.counter and not env.beyond(env.hi + 50) and env.beyond(env.lo - 10)
    meas = b.values[("02:00:0a:0a:01:c9", "goose", None, "goose:QNIED1MEAS/LLN0$GO$gcbMeas[0]", 0)]
    assert not meas.counter and meas.beyond(1850.0)
    # heartbeats are cycles (T0), so a stream that stops is judged; bursts after state changes are not "sped up"
    assert any(k[2] == "goose" for k in b.cycles)


def test_protection_judges_no_partial_window_at_its_start() -> None:
    """The windows in progress when protection starts began before it: they hold only part of a
    window's traffic. anomaly_goose_b (development) raised three multivariate alerts on exactly
    those before they were dropped; a window that starts after protection is judged as before."""
    from detection.anomaly.multivariate import Windower

    evs = [e for e in events(REPO / "pcaps" / "goose" / "anomaly_goose_b.pcap") if e.goose is not None]
    msgs = [message_of(e) for e in evs]
    start = evs[0].timestamp.timestamp()
    cut = next(i for i, e in enumerate(evs) if e.timestamp.timestamp() >= start + 121.3)  # mid-window
    whole, partial = Windower(whole_only=True), Windower()
    judged_whole = [w for e, m in zip(evs[cut:cut + 400], msgs[cut:cut + 400]) for w in whole.add(e, m)]
    judged_all = [w for e, m in zip(evs[cut:cut + 400], msgs[cut:cut + 400]) for w in partial.add(e, m)]
    first_index = int(evs[cut].timestamp.timestamp() // 5.0)
    assert any(w.index == first_index for _, w in judged_all)  # without it, the partial window is judged
    assert judged_whole and all(w.index > first_index for _, w in judged_whole)
    assert [w.index for _, w in judged_whole] == [w.index for _, w in judged_all if w.index > first_index]
    engine = AnomalyEngine("site", learn_first=__import__("datetime").timedelta(seconds=120))
    alerts = engine.process_many(events(REPO / "pcaps" / "goose" / "anomaly_goose_b.pcap"))
    assert not [a for a in alerts if a.rule is not None and a.rule.id == "qn-anomaly-multivariate"]


def test_fins_memory_areas_are_address_spaces() -> None:
    """FINS (testbed: the real `fins` client library): a memory area is an address space of words, the
    PLC's node number the unit, the command the function; program area reads/writes are their own space."""
    evs = [e for e in events(REPO / "pcaps" / "fins" / "fins_plant_attack.pcap") if e.fins is not None]
    targets, _ = targets_and_values(evs)
    assert targets[("memory_area_read", "dm_word")] >= {(0, 9), (100, 100)}
    assert targets[("memory_area_write", "dm_word")] == {(100, 100)}
    assert {lo for lo, _ in targets[("program_area_read", "program 65535")]} == {0, 512, 1024, 1536}
    msgs = [m for m in map(message_of, evs) if m is not None and m.request]
    assert {m.unit for m in msgs} == {101, 102} and {m.link[2] for m in msgs} == {"fins"}
    learner = Learner("site").observe_many([e for e in evs if e.source is not None and e.source.ip != "10.10.1.66"])
    b = learner.fit()
    state, det = State(), NewAddressDetector(b, AlertFactory("site"))
    eng_write = next(e for e in evs if e.fins.command_name == "memory_area_write" and e.source.ip == "10.10.1.20")
    m = message_of(eng_write)
    assert m is not None and det.on_event(eng_write, m, state) == []  # the learned DM 100 write
    import msgspec

    elsewhere = msgspec.structs.replace(eng_write, fins=msgspec.structs.replace(eng_write.fins, address=300))
    m = message_of(elsewhere)
    assert m is not None and [a.rule.id for a in det.on_event(elsewhere, m, state)] == ["qn-anomaly-new-address"]
