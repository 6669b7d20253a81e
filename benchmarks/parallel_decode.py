"""Process per core: decode_parallel with 1 and 2 workers on the mixed ICS capture, tshark in the same run.

Wall time is what a second process buys; CPU time (every process: caller, reader, workers) is what
it costs. Workers are forkserver children, so their CPU seconds are read from the fork server's
reaped-children counters after the run. Each measurement runs in a fresh process; 1 and 2 workers
alternate for QINLING_BENCH_PARALLEL_ROUNDS rounds and the fastest wall time of each is kept.

    QINLING_BENCH_PARALLEL_PACKETS   frames of the mixed capture (default 200,000)
    QINLING_BENCH_PARALLEL_ROUNDS    alternating rounds (default 2)
    QINLING_BENCH_PARALLEL_WORKERS   the parallel figure's worker count (default 2)

    python -m benchmarks parallel_decode
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

from . import ROOT, Row
from .capture import ensure


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _forkserver_cpu() -> float:
    """CPU seconds of the fork server and every child it reaped (reader and workers), 0 when none ran."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])  # stat fields 14-17
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def measure(path: str, workers: int) -> dict[str, Any]:
    """One decode in this process (workers > 1: plus its reader and workers); run by `_fresh` in a new interpreter."""
    from sensors.engine import DecodeReport
    from sensors.parallel import decode_parallel

    import sensors.decoders  # noqa: F401  imported before the clock starts, as in a running sensor

    rep = DecodeReport()
    c0, w0 = _self_cpu(), time.perf_counter()
    n = 0
    for _ev in decode_parallel(path, workers, report=rep):
        n += 1
    wall = time.perf_counter() - w0
    own = _self_cpu() - c0
    return {"workers": workers, "packets": rep.packets, "events": n, "wall": wall, "cpu_caller": own,
            "cpu": own + _forkserver_cpu()}


def _fresh(path: str, workers: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.parallel_decode", path, str(workers)], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run() -> list[Row]:
    from .decode import _tshark  # the decode benchmark's tshark run: same fields, same accounting

    packets = _env("QINLING_BENCH_PARALLEL_PACKETS", 200_000)
    rounds = max(1, _env("QINLING_BENCH_PARALLEL_ROUNDS", 2))
    n = max(2, _env("QINLING_BENCH_PARALLEL_WORKERS", 2))
    path = str(ensure(packets))
    runs: dict[int, list[dict[str, Any]]] = {1: [], n: []}
    for _ in range(rounds):
        for w in (1, n):
            runs[w].append(_fresh(path, w))
            print(f"[bench] parallel_decode workers={w}: {json.dumps(runs[w][-1])}", file=sys.stderr, flush=True)
    one, many = (min(runs[w], key=lambda r: r["wall"]) for w in (1, n))
    if one["events"] != many["events"] or one["packets"] != many["packets"]:
        raise RuntimeError(f"workers={n} gave {many['events']} events for {one['events']} with one process")
    frames = one["packets"]
    walls = lambda w: ", ".join(f"{r['wall']:.1f}" for r in runs[w])  # noqa: E731
    rows = [
        Row("parallel", f"decode, 1 process, {frames:,} pkts, wall", frames / one["wall"], "pkt/s (wall)",
            note=f"{frames / one['cpu']:,.0f} pkt/s per CPU-s; wall s per round: {walls(1)}"),
        Row("parallel", f"decode_parallel workers={n}, wall", frames / many["wall"], "pkt/s (wall)", peer="1 process, wall",
            ratio=one["wall"] / many["wall"], note=f"wall s per round: {walls(n)}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"),
        Row("parallel", f"decode_parallel workers={n}, CPU (all processes)", frames / many["cpu"], "pkt/s per CPU-s",
            peer="1 process, CPU", ratio=one["cpu"] / many["cpu"],
            note=f"{many['cpu']:.1f} CPU-s vs {one['cpu']:.1f}; caller {many['cpu_caller']:.1f} CPU-s (merge, event decode)"),
    ]
    if shutil.which("tshark"):
        ts = _tshark(ensure(packets))
        rows += [
            Row("parallel", "tshark -T fields, wall", frames / ts["wall"], "pkt/s (wall)", note=f"{frames / ts['cpu']:,.0f} pkt/s per CPU-s"),
            Row("parallel", f"decode_parallel workers={n} / tshark, wall", ts["wall"] / many["wall"], "x", peer="tshark, same capture",
                ratio=ts["wall"] / many["wall"], note=f"1 process / tshark: {ts['wall'] / one['wall']:.2f}x"),
        ]
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
