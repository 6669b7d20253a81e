"""Throughput of `--engine tshark` against the native engine on the same capture (CPU seconds, tshark's included).

    QINLING_BENCH_TSHARK   frames of the mixed ICS capture (default 20,000; 0 skips)

Runnable alone: `python -m benchmarks.tshark_engine`, or in the table: `python -m benchmarks tshark_engine`.
"""

from __future__ import annotations

import os
import resource
import shutil
import time

from . import Row
from .capture import ensure


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _time(fn: object, path: str) -> tuple[int, int, float, float]:
    from sensors.engine import DecodeReport

    rep = DecodeReport()
    c0, w0 = _cpu(), time.perf_counter()
    n = sum(1 for _ in fn(path, report=rep))  # type: ignore[operator]
    return rep.packets, n, _cpu() - c0, time.perf_counter() - w0


def run() -> list[Row]:
    packets = int(os.environ.get("QINLING_BENCH_TSHARK", 20_000))
    if not packets or shutil.which("tshark") is None:
        return []
    from sensors.engine import decode_file
    from sensors.tshark_engine import decode_file_tshark

    path = str(ensure(packets))
    np_, ne, nc, nw = _time(decode_file, path)
    tp, te, tc, tw = _time(decode_file_tshark, path)
    nrate, trate = np_ / nc, tp / tc
    return [
        Row("decode", f"native engine, {np_:,} pkts", nrate, "pkt/s (1 core)", note=f"{ne:,} events; wall {nw:.1f}s"),
        Row("decode", f"--engine tshark, {tp:,} pkts", trate, "pkt/s (1 core)", peer="native engine, same capture",
            ratio=trate / nrate, note=f"{te:,} events; wall {tw:.1f}s; CPU includes tshark"),
    ]


if __name__ == "__main__":
    from .__main__ import table

    print(table(run()))
