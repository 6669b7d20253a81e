"""One measurement in a fresh process, printed as one JSON line (so peak RSS is this run's alone).

    python -m benchmarks._worker decode|replay|memory|detect PCAP [--workers N]

CPU seconds (user + system of this process, children included) are the timing that matters on a
shared machine; wall seconds are reported beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any


def vm_hwm_kib() -> int:
    """Peak resident set size of this process (kernel's high-water mark), KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def decode(path: str, workers: int) -> dict[str, Any]:
    from sensors.engine import DecodeReport, decode_file

    import sensors.decoders  # noqa: F401  imported before the clock starts, as in a running sensor

    rep = DecodeReport()
    c0, w0 = cpu(), time.perf_counter()
    n = 0
    if workers > 1:
        from sensors.parallel import decode_parallel

        events = decode_parallel(path, workers, report=rep)
    else:
        events = decode_file(path, report=rep)
    for _ev in events:
        n += 1
    return {"packets": rep.packets, "bytes": rep.bytes, "events": n, "flows": rep.flows, "tcp_gaps": rep.tcp_gaps,
            "cpu": cpu() - c0, "wall": time.perf_counter() - w0, "hwm_kib": vm_hwm_kib()}


def memory(path: str, detect: bool) -> dict[str, Any]:
    """Stream a long capture through the sensor (and detection), sampling live flows and buffered bytes."""
    from sensors.engine import DecodeReport, Sensor
    from sensors.pcapfile import CaptureReader

    import sensors.decoders  # noqa: F401

    engine = assets = None
    if detect:
        from console.jobs import load_engine
        from pipeline.settings import Settings

        engine, assets = load_engine(Settings())
    rep = DecodeReport()
    max_flows = max_pending = 0
    samples = []
    events = alerts = 0
    c0, w0 = cpu(), time.perf_counter()
    with CaptureReader(path) as reader:
        sensor = Sensor(file_sha256=reader.sha256, file=reader.name, report=rep)
        process = sensor.process
        for frame, stamp, linktype, data in reader:
            out = process(frame, stamp, linktype, data)
            if out:
                events += len(out)
                if engine is not None:
                    for ev in out:
                        assets.observe(ev)
                        alerts += len(engine.process(ev))
            if frame % 100_000 == 0:
                live = len(sensor.flows)
                pending = sum(f.stream.halves[0].pending_bytes + f.stream.halves[1].pending_bytes
                              for f in sensor.flows if f.stream is not None)
                max_flows, max_pending = max(max_flows, live), max(max_pending, pending)
                samples.append((frame, live, vm_hwm_kib()))
        tail = sensor.finish()
        events += len(tail)
        if engine is not None:
            for ev in tail:
                alerts += len(engine.process(ev))
            alerts += len(engine.finish())
    return {"packets": rep.packets, "bytes": rep.bytes, "events": events, "alerts": alerts, "flows": rep.flows,
            "max_live_flows": max_flows, "max_pending_bytes": max_pending, "samples": samples[-5:],
            "cpu": cpu() - c0, "wall": time.perf_counter() - w0, "hwm_kib": vm_hwm_kib()}


def replay(path: str, decode_process: str = "auto") -> dict[str, Any]:
    """`qinling replay PCAP --store sqlite:///...` as the command line wires it (embedded bus)."""
    from console.jobs import Summary, replay as run_replay
    from pipeline.settings import Settings
    from pipeline.store import open_store

    import sensors.decoders  # noqa: F401
    import console.jobs  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="qinling-bench-") as tmp:
        store = open_store(f"sqlite:///{tmp}/replay.sqlite")
        c0, w0 = cpu(), time.perf_counter()
        summary: Summary = run_replay([path], Settings(replay_decode_process=decode_process), store=store)
        store.close()
        c, w = cpu() - c0 + (summary.decode_process_cpu or 0.0), time.perf_counter() - w0
        size = os.path.getsize(f"{tmp}/replay.sqlite")
    return {"packets": sum(f["packets"] for f in summary.files), "events": sum(summary.events.values()),
            "alerts": summary.alerts, "assets": summary.assets, "db_bytes": size, "cpu": c, "wall": w,
            "hwm_kib": vm_hwm_kib(), "decode_process": summary.decode_process_cpu is not None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("decode", "replay", "memory", "detect"))
    ap.add_argument("pcap")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--decode-process", choices=("auto", "on", "off"), default="auto",
                    help="replay: decode in a process of its own (setting replay_decode_process)")
    a = ap.parse_args()
    if a.what == "decode":
        r = decode(a.pcap, a.workers)
    elif a.what == "replay":
        r = replay(a.pcap, a.decode_process)
    else:
        r = memory(a.pcap, detect=a.what == "detect")
    print(json.dumps(r))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
