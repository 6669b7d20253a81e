"""`qinling sensor` end to end: a real pymodbus client writes to a real pymodbus server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.store import Query, open_store

pytestmark = [pytest.mark.netns, pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")]
REPO = Path(__file__).resolve().parents[1]


def test_live_sensor_raises_alerts_and_stores_events(modbus_server: int, tmp_path: Path) -> None:
    from pymodbus.client import ModbusTcpClient

    port = modbus_server
    alerts_file, db = tmp_path / "alerts.jsonl", tmp_path / "live.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "sensor", "--iface", "lo", "--bpf", f"tcp port {port}",
         "--port", f"modbus={port}", "--timeout", "6", "--out", str(alerts_file), "--store", f"sqlite:///{db}"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "capturing on lo" in line, line
        client = ModbusTcpClient("127.0.0.1", port=port)
        assert client.connect()
        assert not client.read_holding_registers(0, count=4, device_id=1).isError()
        client.write_register(100, 4242, device_id=1)  # a critical setpoint (this small PLC answers with an exception)
        client.close()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    alerts = [json.loads(l) for l in alerts_file.read_text().splitlines()]
    fired = {a["rule"]["id"] for a in alerts}
    assert "qn-modbus-0001" in fired, fired  # write to a critical holding register
    write = next(a for a in alerts if a["rule"]["id"] == "qn-modbus-0001")
    assert write["evidence"]["sensor"] and write["destination"]["port"] == port
    store = open_store(f"sqlite:///{db}")
    try:
        events = store.search("events", Query(filters={"event.dataset": "modbus"}, size=100)).items
        assert {(e.modbus.function_code, e.modbus.message_type) for e in events if e.modbus} >= {
            (3, "request"), (3, "response"), (6, "request")
        }
        assert store.search("alerts", Query()).total == len(alerts)
    finally:
        store.close()
