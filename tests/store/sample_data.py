"""A small, realistic data set shared by the store and console tests: two enterprises on one store.

`acme` has 60 Modbus/S7 alerts five minutes apart, each with the request/response events that
triggered it, and three assets (one with a hostile vendor string). `globex` has three alerts and one
asset that `acme` must never see.
"""

from __future__ import annotations

import datetime as dt

from pipeline import schema as s

BASE = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=5)
HOSTILE = "<script>alert(1)</script>"
SHA = "ab" * 32
PLC, HMI, ROGUE = "10.0.0.10", "10.0.0.20", "10.0.0.66"

RULES = [
    ("qn-modbus-0001", "Modbus write from unapproved host", ["T0855", "T0836"]),
    ("qn-modbus-0002", "Modbus exception burst", ["T0814"]),
    ("qn-modbus-0003", "Device identification scan", ["T0888"]),
]
LEVELS = [99, 73, 47, 21]  # critical, high, medium, low by i % 4
N_ACME = 60


def _modbus_pair(org: str, i: int, src: str, dst: str, when: dt.datetime, exception: bool) -> list[s.Event]:
    req = s.Event(
        timestamp=when,
        event=s.EventInfo(kind="event", dataset="modbus", action="write", id=f"ev-{org}-{i}-req"),
        source=s.Endpoint(ip=src, port=40000 + i),
        destination=s.Endpoint(ip=dst, port=502),
        network=s.Network(transport="tcp", protocol="modbus", direction="request", is_orig=True),
        organization=s.Organization(id=org),
        evidence=s.Evidence(file="attack.pcap", file_sha256=SHA, frame=2 * i + 1),
        related=s.Related(ip=[src, dst]),
        modbus=s.Modbus(transaction_id=i, unit_id=1, function_code=6, function_name="write_single_register",
                        message_type="request", address=100 + i, quantity=1, values=[1000 + i]),
    )
    resp = s.Event(
        timestamp=when + dt.timedelta(milliseconds=12),
        event=s.EventInfo(kind="event", dataset="modbus", action="write", id=f"ev-{org}-{i}-resp",
                          outcome="failure" if exception else "success"),
        source=s.Endpoint(ip=dst, port=502),
        destination=s.Endpoint(ip=src, port=40000 + i),
        network=s.Network(transport="tcp", protocol="modbus", direction="response", is_orig=False),
        organization=s.Organization(id=org),
        evidence=s.Evidence(file="attack.pcap", file_sha256=SHA, frame=2 * i + 2),
        related=s.Related(ip=[dst, src]),
        modbus=s.Modbus(transaction_id=i, unit_id=1, function_code=134 if exception else 6,
                        function_name="write_single_register", message_type="response",
                        exception_code=2 if exception else None,
                        exception_name="illegal_data_address" if exception else None,
                        address=None if exception else 100 + i, values=None if exception else [1000 + i],
                        request_frame=2 * i + 1),
    )
    return [req, resp]


def _alert(org: str, i: int, when: dt.datetime, src: str, dst: str, rule: tuple[str, str, list[str]],
           severity: int, protocol: str, events: list[s.Event], message: str) -> s.Event:
    rid, rname, techniques = rule
    return s.Event(
        timestamp=when,
        event=s.EventInfo(kind="alert", dataset="qinling.alert", action="write", severity=severity,
                          id=f"al-{org}-{i:03d}"),
        message=message,
        source=s.Endpoint(ip=src, port=40000 + i),
        destination=s.Endpoint(ip=dst, port=502),
        network=s.Network(transport="tcp", protocol=protocol),
        organization=s.Organization(id=org, name=org.title()),
        evidence=s.Evidence(file="attack.pcap", file_sha256=SHA,
                            frames=[e.evidence.frame for e in events if e.evidence and e.evidence.frame],
                            event_ids=[e.event.id for e in events if e.event.id]),
        related=s.Related(ip=[src, dst]),
        rule=s.RuleInfo(id=rid, name=rname, description=f"{rname} (test rule)"),
        threat=s.Threat(technique=s.Technique(id=techniques)),
        labels={"site": f"{org}-plant"},
    )


def acme() -> tuple[list[s.Event], list[s.Event]]:
    """(events, alerts) for enterprise `acme`; alert i is at BASE + i*STEP."""
    events: list[s.Event] = []
    alerts: list[s.Event] = []
    for i in range(N_ACME):
        when = BASE + i * STEP
        src = ROGUE if i % 2 == 0 else HMI
        rule = RULES[i % 3]
        pair = _modbus_pair("acme", i, src, PLC, when, exception=rule[0] == "qn-modbus-0002")
        events.extend(pair)
        message = f"{src} wrote holding register {100 + i} on {PLC}"
        if i == N_ACME - 1:
            message = f"{HOSTILE} wrote a register"
        protocol = "s7comm" if i % 10 == 5 else "modbus"
        alerts.append(_alert("acme", i, when, src, PLC, rule, LEVELS[i % 4], protocol, pair, message))
    return events, alerts


def globex() -> tuple[list[s.Event], list[s.Event]]:
    events: list[s.Event] = []
    alerts: list[s.Event] = []
    for i in range(3):
        when = BASE + dt.timedelta(minutes=2) + i * STEP
        pair = _modbus_pair("globex", i, "192.168.7.7", "192.168.7.1", when, exception=False)
        events.extend(pair)
        alerts.append(_alert("globex", i, when, "192.168.7.7", "192.168.7.1",
                             ("qn-globex-secret", "GLOBEX-ONLY rule", ["T0843"]), 99, "modbus", pair,
                             "GLOBEX-ONLY secret alert"))
    return events, alerts


def assets() -> list[s.Asset]:
    last = BASE + (N_ACME - 1) * STEP
    org = s.Organization(id="acme")
    return [
        s.Asset(id=f"acme:{PLC}", ip=PLC, mac="00:1d:9c:c7:b0:10", organization=org, first_seen=BASE,
                last_seen=last, roles=["modbus_slave"], protocols=["modbus", "s7comm"], ports=[502],
                unit_ids=[1], peers=[HMI, ROGUE], vendor=HOSTILE, product="M340", revision="v3.20",
                events=120, alerts=60),
        s.Asset(id=f"acme:{HMI}", ip=HMI, mac="00:0c:29:aa:bb:20", organization=org, first_seen=BASE,
                last_seen=last - STEP, roles=["modbus_master"], protocols=["modbus"], peers=[PLC],
                vendor="Siemens", product="WinCC", events=60, alerts=30),
        s.Asset(id=f"acme:{ROGUE}", ip=ROGUE, organization=org, first_seen=BASE + STEP,
                last_seen=last - 2 * STEP, roles=["modbus_master"], protocols=["modbus"], peers=[PLC],
                events=60, alerts=30),
        s.Asset(id="globex:192.168.7.1", ip="192.168.7.1", organization=s.Organization(id="globex"),
                first_seen=BASE, last_seen=BASE + STEP, roles=["modbus_slave"], protocols=["modbus"],
                vendor="GLOBEX-ONLY vendor", events=6, alerts=3),
    ]


def fill(store) -> None:  # type: ignore[no-untyped-def]
    for events, alerts in (acme(), globex()):
        store.write(events + alerts)
    store.write_assets(assets())
