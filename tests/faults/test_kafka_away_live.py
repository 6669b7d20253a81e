"""FAULT (60 s): Kafka unreachable for 60 s while a live sensor keeps capturing real Modbus traffic.

Two `qinling sensor` processes capture the same pymodbus client/server conversation on loopback:
A with the default spool (everything must reach the topic exactly once, in order), B with a spool
too small for the outage (it must drop the newest, report exactly how many, and deliver the rest
exactly once). The broker is SIGKILLed, kept away 60 s, and restarted with its data.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline import schema
from pipeline.bus import TOPIC_EVENTS
from pipeline.kafka_bus import KafkaBus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.netns,
              pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")]
REPO = Path(__file__).resolve().parents[2]
OUTAGE = 60.0
SMALL_SPOOL = 200_000  # bytes: a few hundred events, far less than 60 s of traffic


def _sensor(name: str, port: int, kafka: str, prefix: str, spool: Path, max_bytes: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "QINLING_BUS": f"kafka://{kafka}", "QINLING_KAFKA_TOPIC_PREFIX": prefix, "QINLING_KAFKA_PARTITIONS": "2",
           "QINLING_SPOOL_DIR": str(spool), "QINLING_SPOOL_MAX_BYTES": str(max_bytes), "QINLING_OBSERVER_ID": name,
           "QINLING_ORGANIZATION_ID": "faults"}
    proc = subprocess.Popen([sys.executable, "-m", "console", "sensor", "--iface", "lo", "--bpf", f"tcp port {port}",
                             "--port", f"modbus={port}", "--no-store"], cwd=REPO, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    proc.reader = reader  # type: ignore[attr-defined]
    return proc, lines


def _wait_for(lines: list[str], text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in x for x in lines):
        assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n" + "".join(lines)
        time.sleep(0.05)


def _topic(kafka: str, topic: str) -> list[schema.Event]:
    """Every record of the topic, read by a fresh consumer group until nothing new comes for 5 s."""
    bus = KafkaBus(kafka, partitions=2, client_id="faults-check", topics=[topic])
    try:
        c = bus.consumer([topic], group=f"check-{time.monotonic_ns()}")
        out: list[schema.Event] = []
        quiet = time.monotonic() + 5
        while time.monotonic() < quiet:
            got = c.poll(5000, timeout=1.0)
            if got:
                out.extend(schema.decode_event(r.value) for r in got)
                quiet = time.monotonic() + 5
        return out
    finally:
        bus.close()


class Traffic:
    """A pymodbus client reading holding registers ~25 times a second until stopped."""

    def __init__(self, port: int) -> None:
        from pymodbus.client import ModbusTcpClient

        self.client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
        assert self.client.connect()
        self.ok = 0
        self.stop = threading.Event()
        self.errors: list[Any] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            r = self.client.read_holding_registers(self.ok % 50, count=4, device_id=1)
            if r.isError():
                self.errors.append(r)
            else:
                self.ok += 1
            time.sleep(0.04)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.client.close()


def _summary_events(lines: list[str]) -> int:
    m = [re.match(r"(\d+) events \(", x) for x in lines]
    found = [int(x.group(1)) for x in m if x]
    assert found, "".join(lines)
    return found[-1]


def test_kafka_away_60s_live_sensor_spools_to_disk_and_drains_exactly_once(services: Any, kafka_bootstrap: str, unique: str,
                                                                           modbus_server: int, tmp_path: Path) -> None:
    port = modbus_server
    a, a_lines = _sensor("sensor-a", port, kafka_bootstrap, f"{unique}-a-", tmp_path / "spool-a", 1 << 30)
    b, b_lines = _sensor("sensor-b", port, kafka_bootstrap, f"{unique}-b-", tmp_path / "spool-b", SMALL_SPOOL)
    try:
        _wait_for(a_lines, "capturing on lo", 60)
        _wait_for(b_lines, "capturing on lo", 60)
        with Traffic(port) as traffic:
            time.sleep(5)  # delivered as it happens
            services.kill("kafka")
            t_kill = time.monotonic()
            try:
                time.sleep(OUTAGE)  # the sensors keep capturing; their spools grow on disk
                during = traffic.ok
                spooled_a = list((tmp_path / "spool-a" / "sensor-a").glob("*.seg"))
            finally:
                services.restart("kafka")
            outage = time.monotonic() - t_kill
            time.sleep(10)  # the backlog drains while new traffic keeps coming
        requests = traffic.ok
        assert not traffic.errors, traffic.errors[:3]
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
        assert a.wait(120) == 0, "".join(a_lines)
        assert b.wait(120) == 0, "".join(b_lines)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait(10)
            p.reader.join(10)  # type: ignore[attr-defined]
            p.stderr.close()  # type: ignore[union-attr]
    assert outage >= OUTAGE and during > 1000 and spooled_a, (outage, during, spooled_a)
    print(f"\nKafka away {outage:.0f}s; {requests} Modbus requests\nsensor A:\n" + "".join(a_lines[-4:]) + "sensor B:\n" + "".join(b_lines[-5:]))

    # A: every event exactly once, in capture order per flow.
    events = _topic(kafka_bootstrap, f"{unique}-a-{TOPIC_EVENTS}")
    ids = collections.Counter(e.event.id for e in events)
    assert not [i for i, n in ids.items() if n > 1], f"duplicated on the topic: {sum(n - 1 for n in ids.values())}"
    modbus = [e for e in events if e.modbus is not None]
    per_message = collections.Counter((e.modbus.transaction_id, e.modbus.message_type) for e in modbus)  # type: ignore[union-attr]
    assert len(modbus) == 2 * requests and set(per_message.values()) == {1}, (len(modbus), requests)
    requests_seen = [e.modbus.transaction_id for e in modbus if e.modbus.message_type == "request"]  # type: ignore[union-attr]
    assert requests_seen == sorted(requests_seen), "the backlog drained out of order"
    assert len(events) == _summary_events(a_lines)
    report_a = next(x for x in a_lines if "record(s) delivered" in x)
    m = re.search(r"buffered up to (\d+) record", report_a)
    assert m and int(m.group(1)) > 1000, report_a  # about 60 s of traffic waited on disk
    assert "DROPPED" not in report_a and "still on disk" not in report_a, report_a

    # B: the spool filled; the newest were dropped and counted exactly; the rest arrived once.
    events_b = _topic(kafka_bootstrap, f"{unique}-b-{TOPIC_EVENTS}")
    ids_b = collections.Counter(e.event.id for e in events_b)
    assert set(ids_b.values()) == {1}
    report_b = next(x for x in b_lines if "record(s) delivered" in x)
    m = re.search(r"; (\d+) record\(s\) \(\d+ bytes\) DROPPED", report_b)
    assert m, report_b
    dropped = int(m.group(1))
    assert dropped > 0 and len(events_b) + dropped == _summary_events(b_lines), (len(events_b), dropped, report_b)
