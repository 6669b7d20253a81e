"""Check a labelled capture against the rule pack, and write pcaps/README.md.

``verify`` replays the capture through ``python -m console replay --no-store``
(the product's own CLI, as a subprocess) and compares, per step, the rule ids of
the alerts whose evidence frames fall in that step with the step's
``expect_rules``.  An alert whose evidence spans several steps (thresholds)
counts for the step holding its last evidence frame (where it fired).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .labels import expand_ranges
from .runner import REPO_ROOT


def alerts_per_step(labels_path: Path) -> tuple[dict[str, set[str]], dict[str, Any]]:
    labels = yaml.safe_load(labels_path.read_text(encoding="utf-8"))
    pcap = labels_path.parent / labels["capture"]
    frame_step = {f: s["name"] for s in labels["steps"] for f in expand_ranges(s["frames"])}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "alerts.jsonl"
        subprocess.run(
            [sys.executable, "-m", "console", "replay", str(pcap), "--no-store",
             "--no-progress", "--out", str(out)],
            cwd=REPO_ROOT, check=True, capture_output=True, text=True,
        )
        got: dict[str, set[str]] = {s["name"]: set() for s in labels["steps"]}
        for line in out.read_text(encoding="utf-8").splitlines():
            alert = json.loads(line)
            frames = alert.get("evidence", {}).get("frames") or []
            if frames:
                got[frame_step[max(frames)]].add(alert["rule"]["id"])
    return got, labels


def verify(labels_path: Path) -> int:
    got, labels = alerts_per_step(labels_path)
    bad = 0
    for step in labels["steps"]:
        want = set(step["expect_rules"])
        have = got[step["name"]]
        ok = want == have
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {step['name']:26s} expect={sorted(want)} got={sorted(have)}")
    return 1 if bad else 0


#: stack per protocol, for the README (the versions the bundled captures were made with).
STACK_NOTES: dict[str, tuple[int | str, str]] = {
    "Modbus/TCP": (502, "pymodbus 3.16 (server and client)"),
    "S7comm": (102, "python-snap7 3.3.0 (`snap7.server.Server`, `snap7.client.Client`)"),
    "IEC 60870-5-104": (2404, "c104 2.2.1 (`c104.Server`, `c104.Client`)"),
    "OPC UA": (4840, "asyncua 2.1.0 (server and client)"),
    "EtherNet/IP": (44818, "cpppo 5.2.5 (Logix simulator, tag client), pycomm3 1.2.16 (raw CIP)"),
    "BACnet/IP": (47808, "bacpypes3 0.0.110 (device and clients)"),
    "MQTT": (1883, "Debian mosquitto 2.0.11 broker, paho-mqtt 2.2.0 clients"),
    "DNP3": (20000, "opendnp3 3.2.1 via yadnp3 3.2.1.4 (`DNP3Manager`: outstations, `IMaster`)"),
    "IEC 61850 MMS": (102, "libiec61850 1.6 via pyiec61850-ng 1.6.1.10 (`IedServer` IEDs, `IedConnection` clients)"),
    "IEC 61850 GOOSE": ("ethertype 0x88B8", "libiec61850 1.6 via pyiec61850-ng 1.6.1.10 (`GoosePublisher`, "
                                            "`tests/testbed/stacks/goose.py`); goose_plant_attack crafted with scapy"),
    "Omron FINS": (9600, "fins 1.0.5 clients (`fins.udp.UDPFinsConnection`) against our FINS/UDP responder (no PLC "
                           "stack installs; `tests/testbed/stacks/fins.py`)"),
    "PROFINET": ("DCP 0x8892, IO CM UDP 34964", "DCP: pnio-dcp 1.2.0 client against our DCP responder (no device stack "
                                                "installs; `tests/testbed/stacks/profinet.py`); profinet_plant_attack "
                                                "(DCP, IO CM) crafted with scapy"),
}


def write_readme(root: Path) -> Path:
    rows = []
    regen = []
    for lp in sorted(root.rglob("*.labels.yml")):
        lab = yaml.safe_load(lp.read_text(encoding="utf-8"))
        if lab.get("generated_by"):  # crafted (no stack for the protocol installs here): its own generator
            regen.append(f".venv/bin/{str(lab['generated_by']).split(' (')[0]:58s} # crafted")
        elif lab.get("stack") in ("goose", "profinet"):  # layer 2: its own recorder (tests/testbed/stacks/<stack>.py)
            regen.append(f"sudo .venv/bin/python -m tests.testbed.stacks.{lab['stack']} {lab['scenario']:21s} "
                         f"--out {root.name}/{lp.parent.relative_to(root)}/")
        else:
            regen.append(f"sudo .venv/bin/python -m tests.testbed run {lab['scenario']:28s} "
                         f"--out {root.name}/{lp.parent.relative_to(root)}/")
        pcap = lp.parent / lab["capture"]
        if not pcap.exists() and pcap.with_name(pcap.name + ".gz").exists():
            pcap = pcap.with_name(pcap.name + ".gz")  # stored compressed
        if not pcap.exists():
            print(f"readme: {lp}: capture {pcap.name} missing, left out", file=sys.stderr)
            regen.pop()
            continue
        attacks = [s for s in lab["steps"] if s["kind"] == "attack"]
        steps = ", ".join(f"`{s['name']}` ({s['frame_count']})" for s in attacks) or "none"
        rel = pcap.relative_to(root)
        crafted = " (crafted with scapy, not a testbed recording)" if lab.get("generated_by") else ""
        rows.append(
            f"| [`{rel}`]({rel}) | {pcap.stat().st_size // 1024} KiB | {lab['frames_total']} "
            f"| {lab.get('duration_s', '?')} s | {' '.join(str(lab.get('description', '')).split())}{crafted} | "
            f"normal: {lab['steps'][0]['frame_count']} frames; attack steps (frames): {steps} "
            f"| [`{lp.relative_to(root)}`]({lp.relative_to(root)}) |"
        )
    text = f"""# Captures

Every capture here is generated by the testbed (`tests/testbed/`): real protocol
stacks (one module per protocol in `tests/testbed/stacks/`) as masters, PLCs/RTUs/devices and
attackers in Linux network namespaces on one bridge, captured with tcpdump on the bridge
(`-U -s 0`) - GOOSE (layer 2) has its own recorder with the same labels, `tests/testbed/stacks/goose.py` -
and so has PROFINET DCP, `tests/testbed/stacks/profinet.py` -
except the layer-2 captures made before a stack installed here (profinet_plant_attack, goose_plant_attack): those
captures are crafted with scapy by a deterministic generator named in their labels
(`generated_by`) and marked "crafted" below.  Regenerate with

```sh
""" + "\n".join(regen) + """
.venv/bin/python -m tests.testbed readme                 # rewrites this file
.venv/bin/python -m tests.testbed verify pcaps/<proto>/<scenario>.labels.yml
```

Stacks (versions the bundled captures were made with):

| protocol | port | stack |
|---|---|---|
""" + "\n".join(f"| {k} | {v[0]} | {v[1]} |" for k, v in STACK_NOTES.items()) + """

(without root: `--fallback-loopback` puts the hosts on 127.10.1.x on `lo` and the
PLCs on port **5020**; tcpdump still needs CAP_NET_RAW; the labels record the port.)

Plant (fixed; `rules/lists.yml` uses it): HMI / SCADA master / BMS 10.10.1.10, engineering
station 10.10.1.20, PLC1 10.10.1.101, PLC2 10.10.1.102 (servers of the scenario's protocol;
the MQTT broker runs on PLC1, PLC2 is a field gateway there), attacker 10.10.1.66, rogue new
master 10.10.1.70.

Each `*.labels.yml` assigns **every frame exactly once** (1-based frame numbers,
as in Wireshark, compact ranges) to a step: `normal_polling` (kind `normal`:
HMI polling, authorised engineering writes, ARP, ...) or one attack step (kind
`attack`: exactly the frames of the attacker's TCP connection(s) or UDP socket(s) of that
step, matched by client ip:port; ICMP about them by the step's time window).  `expect_rules` lists the rule ids whose alerts fall in
the step when the whole capture is replayed against `rules/` (after suppression,
thresholds and new-terms learning); `verify` checks that.  The labels also carry the
file's sha256, hosts, port, each step's connections and what the PLC answered.

| capture | size | frames | duration | content | steps | labels |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + """

Notes on the simulated PLCs (pymodbus 3.16 server behaviour, kept as is):

* Unknown function codes (FC 90 / 0x5A UMAS, FC 0x41) are answered with an
  exception whose function code is **0x80** (not request-fc | 0x80), exception 1;
  the decoder flags this as `value_mismatch` (qn-modbus-0013).
* FC 8 sub-function 4 (Force Listen Only) is answered (a real device goes silent)
  and the server keeps answering everyone afterwards; sub-functions 1 and 10 are answered normally.
* Unit id 0 writes are executed as broadcast and not answered.
* A malformed MBAP header (protocol id != 0, length 255 with 6 bytes following)
  gets no answer; the server waits for the missing bytes until the connection closes.
* Reads past the datastore end (holding registers >= 200, coils >= 64) give exception 2.

Notes on the other stacks (behaviour kept as is, see each scenario's comments):

* S7comm (python-snap7 server): block upload/download only for DBs; the download step uploads
  DB2 first, so its upload alert (qn-s7comm-0003) is suppressed there (same hosts, 300 s).
* IEC 104 (c104): the client cannot send C_RP_NA_1, so reset_process goes over a plain socket
  (STARTDT, one I-frame); the RTU answers it with a negative confirmation (unknown IOA).
* OPC UA (asyncua): the HMI and the engineering station use Basic256Sha256 SignAndEncrypt with a
  user name (the server certificate is given to them, so no GetEndpoints over None first); the
  server also offers policy None and anonymous logins, which the attacker uses.
* EtherNet/IP (cpppo): Reset and Stop are not implemented by the simulator, which answers with an
  empty SendRRData and closes the session (qn-enip-0011, invalid_length).  The attacker's
  ListIdentity goes to the subnet broadcast (qn-enip-0012): qn-enip-0008 needs 5 distinct
  destinations, this cell has 4 live hosts and a broadcast is a single destination.
* BACnet (bacpypes3): the device does not implement ReinitializeDevice or
  DeviceCommunicationControl and rejects them (unrecognized-service); the requests are on the
  wire and alert.  Clients send from ephemeral UDP ports.
* Identity (what the asset inventory reads; `identity(cfg)` in each stack module is the single
  source the server uses and `tests/inventory/test_testbed_identity.py` compares with):
  S7 PLCs answer SZL 0x0011 / 0x001C / 0x0111 as an S7-300 CPU 317-2 PN/DP (6ES7 317-2EK14-0AB0,
  V3.2.8, serial by seed) - python-snap7's own answers lack the partial-list header and carry fixed
  values, so the testbed server formats them; EtherNet/IP controllers announce a CIP identity
  (vendor 1, 1756-L71/B LOGIX5571, revision 20.13, serial by seed) through cpppo's `[Identity]`
  configuration, read by unicast (engineering station) and broadcast (attacker) ListIdentity;
  BACnet devices carry vendor-name / model-name / firmware-revision / application-software-version
  / serial-number in their device object, which the BMS reads; the OPC UA server sets its
  application URI and name and its BuildInfo (read by the attacker over policy None; the decoder
  keeps only the endpoints' application URI so far).  Modbus PLCs answer Read Device
  Identification (43/14).  IEC 104 has no identification service (c104 announces nothing) and
  MQTT 3.1.1 none either (mosquitto's `$SYS/broker/version` is published only to a `$SYS/#`
  subscriber; no scenario subscribes to it).
* MQTT (mosquitto, anonymous allowed): all normal clients log in with a user name; the
  attacker's second step is anonymous too, its qn-mqtt-0001 is suppressed (300 s).
"""
    out = root / "README.md"
    out.write_text(text, encoding="utf-8")
    return out
