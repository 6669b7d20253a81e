"""Sensor figures: decode throughput against tshark and scapy, embedded replay, peak memory.

Every timing is CPU seconds (user + system) of the process doing the work — one core — because the
machine is shared and wall time swings with other people's load; wall figures are in the notes.
Sizes come from the environment so a quick run is possible:

    QINLING_BENCH_PACKETS   decode capture (default 1,000,000)
    QINLING_BENCH_REPLAY    replay capture (default 200,000; its decode-only peer uses the same file)
    QINLING_BENCH_MEMORY    long capture for peak RSS (default 10,000,000; 0 skips)
    QINLING_BENCH_SCAPY     frames scapy dissects (default 20,000; extrapolated)
    QINLING_BENCH_WORKERS   also time sensors.parallel.decode_parallel(path, N) when N > 1 (default 0: skip)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import ROOT, Row
from .capture import ensure

# The same fields our Modbus/DNP3/S7comm/IEC 104/ENIP/CIP/OPC UA/BACnet/MQTT events carry.
TSHARK_FIELDS = (
    "frame.number", "mbtcp.trans_id", "mbtcp.unit_id", "modbus.func_code",
    "dnp3.src", "dnp3.dst", "dnp3.al.seq", "dnp3.al.func",
    "s7comm.header.rosctr", "s7comm.header.pduref", "s7comm.param.func",
    "iec60870_104.type", "iec60870_asdu.typeid", "iec60870_asdu.causetx", "iec60870_asdu.addr",
    "enip.command", "enip.session", "cip.sc",
    "opcua.transport.type", "opcua.servicenodeid.numeric",
    "bvlc.function", "bacapp.type", "bacapp.invoke_id", "bacapp.confirmed_service", "bacapp.unconfirmed_service",
    "mqtt.msgtype", "mqtt.msgid", "mqtt.topic",
)  # fmt: skip

_SCAPY = r"""
import resource, sys, time
from scapy.all import load_contrib
from scapy.utils import PcapReader
for c in ("modbus", "iec104", "mqtt", "enipTCP", "opc_da", "bacnet", "s7"):
    try:
        load_contrib(c)
    except Exception:
        pass
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
n = int(sys.argv[2]); done = 0; size = 0
c0 = cpu()
for pkt in PcapReader(sys.argv[1]):
    pkt.summary()  # touches every layer: the dissection is lazy-free in scapy, this forces field access
    size += len(pkt)
    done += 1
    if done >= n:
        break
print(done, size, cpu() - c0)
"""


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _worker(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks._worker", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _tshark(path: Path) -> dict[str, Any]:
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    w0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        lines = 0
        for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
            lines += chunk.count(b"\n")
            null.write(chunk)
        _pid, status, ru = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"tshark exited with status {status}")
    return {"lines": lines, "cpu": ru.ru_utime + ru.ru_stime, "wall": time.perf_counter() - w0}


def _scapy(path: Path, n: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _SCAPY, str(path), str(n)], cwd=ROOT, check=True, capture_output=True, text=True)
    done, size, c = out.stdout.split()
    return {"packets": int(done), "bytes": int(size), "cpu": float(c)}


def decode_rows(packets: int) -> list[Row]:
    path = ensure(packets)
    workers = _env("QINLING_BENCH_WORKERS", 0)
    ours = _worker("decode", str(path))
    rate = ours["packets"] / ours["cpu"]
    mbit = ours["bytes"] * 8 / ours["cpu"] / 1e6
    rows = [Row("decode", f"sensors.engine.decode_file, {ours['packets']:,} pkts", rate, "pkt/s (1 core)", note=(
        f"{mbit:.0f} Mbit/s; {ours['events']:,} events; wall {ours['wall']:.0f}s for {ours['cpu']:.0f} CPU-s"))]
    if shutil.which("tshark"):
        ts = _tshark(path)
        trate = ours["packets"] / ts["cpu"]
        rows.append(Row("decode", f"tshark -T fields ({len(TSHARK_FIELDS)} fields)", trate, "pkt/s (1 core)", note=(
            f"{ours['bytes'] * 8 / ts['cpu'] / 1e6:.0f} Mbit/s; {ts['lines']:,} lines; wall {ts['wall']:.0f}s")))
        rows.append(Row("decode", "decode_file / tshark", rate / trate, "x", peer="tshark, same capture", ratio=rate / trate))
    n = _env("QINLING_BENCH_SCAPY", 20_000)
    if n:
        sc = _scapy(path, n)
        srate = sc["packets"] / sc["cpu"]
        rows.append(Row("decode", f"scapy dissection (first {sc['packets']:,} frames, extrapolated)", srate, "pkt/s (1 core)",
                        peer="decode_file", ratio=srate / rate,
                        note=f"est. {ours['packets'] / srate / 60:.0f} CPU-min for the whole capture"))
    if workers > 1:
        par = _worker("decode", str(path), "--workers", str(workers))
        prate = par["packets"] / par["wall"]
        srate_wall = ours["packets"] / ours["wall"]
        rows.append(Row("decode", f"decode_file(workers={workers}), wall clock", prate, "pkt/s (wall)", peer="workers=1 wall",
                        ratio=prate / srate_wall, note=f"{par['cpu']:.0f} CPU-s over all processes"))
    return rows


def replay_rows(packets: int) -> list[Row]:
    """Replay in one process (CPU rate against decode's CPU rate), then with decoding in a process of its
    own, replay's default on 2+ CPUs (wall-clock rate against decode's wall-clock rate, same run)."""
    path = ensure(packets)
    dec = _worker("decode", str(path))
    rep = _worker("replay", str(path), "--decode-process", "off")
    two = _worker("replay", str(path), "--decode-process", "on")
    drate, dwall = dec["packets"] / dec["cpu"], dec["packets"] / dec["wall"]
    rrate, twall = rep["packets"] / rep["cpu"], two["packets"] / two["wall"]
    return [
        Row("replay", f"decode only, {dec['packets']:,} pkts", drate, "pkt/s (1 core)",
            note=f"{dec['events']:,} events; wall clock {dwall:,.0f} pkt/s"),
        Row("replay", "embedded replay (decode+detect+SQLite), one process", rrate, "pkt/s (1 core)", peer="decode only",
            ratio=rrate / drate,
            note=f"{rep['events']:,} events, {rep['alerts']:,} alerts, {rep['db_bytes'] / 2**20:.0f} MiB db, wall {rep['wall']:.0f}s"),
        Row("replay", "embedded replay, decoding in its own process (default)", twall, "pkt/s (wall)",
            peer="decode only, wall", ratio=twall / dwall,
            note=f"{two['cpu']:.0f} CPU-s over both processes (one process: {rep['cpu']:.0f}); same {two['alerts']:,} alerts"
            if two["alerts"] == rep["alerts"] and two["events"] == rep["events"] else
            f"DIFFERENT RESULT: {two['events']:,} events, {two['alerts']:,} alerts"),
        Row("replay", "  events stored", rep["events"] / rep["cpu"], "events/s"),
        Row("replay", "  alerts raised", rep["alerts"] / rep["cpu"], "alerts/s"),
        Row("replay", "  replay peak RSS (VmHWM)", rep["hwm_kib"] / 1024, "MiB", peer="decode only", ratio=rep["hwm_kib"] / dec["hwm_kib"],
            note="one process; bus log trimmed as groups commit; assets, rule state, SQLite cache remain"),
    ]


def memory_rows(packets: int) -> list[Row]:
    path = ensure(packets)
    try:
        sensor = _worker("memory", str(path))
        det = _worker("detect", str(path))
    finally:
        if os.environ.get("QINLING_BENCH_KEEP") != "1":
            path.unlink(missing_ok=True)  # ~1 GB: regenerated when next needed (~2 min)
    mib = sensor["hwm_kib"] / 1024
    dmib = det["hwm_kib"] / 1024
    return [
        Row("memory", f"sensor peak RSS, {sensor['packets']:,} pkts streamed", mib, "MiB", note=(
            f"live flows max {sensor['max_live_flows']:,} of {sensor['flows']:,}; buffered TCP bytes max {sensor['max_pending_bytes']:,}")),
        Row("memory", "sensor + detection peak RSS (same capture)", dmib, "MiB", peer="sensor alone", ratio=dmib / mib,
            note=f"detection stage ~{dmib - mib:.0f} MiB; {det['alerts']:,} alerts"),
    ]


def run() -> list[Row]:
    rows: list[Row] = []
    parts = [(decode_rows, _env("QINLING_BENCH_PACKETS", 1_000_000)), (replay_rows, _env("QINLING_BENCH_REPLAY", 200_000)),
             (memory_rows, _env("QINLING_BENCH_MEMORY", 10_000_000))]
    for part, n in parts:
        if not n:
            continue
        try:
            rows += part(n)
        except (subprocess.CalledProcessError, RuntimeError, OSError, ValueError) as e:  # keep the other parts' figures
            err = getattr(e, "stderr", "") or ""
            print(f"[bench] {part.__name__} failed: {e}\n{err[-2000:]}", file=sys.stderr)
            rows.append(Row(part.__name__.removesuffix("_rows"), "FAILED (see stderr)", float("nan"), ""))
    return rows
