"""`python -m benchmarks [NAME ...]`: run every benchmark module (or the named ones) and print one table."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from . import Row


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(rows: list[Row]) -> str:
    head = ("group", "figure", "value", "unit", "peer (same run)", "ratio", "note")
    body = [
        (r.group, r.name, fmt(r.value), r.unit, r.peer, f"{r.ratio:.2f}x" if r.ratio is not None else "", r.note)
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(head, widths)), line("-" * w for w in widths)]
    for b in body:
        out.append(line((c.rjust(w) if i in (2, 5) else c.ljust(w)) for i, (c, w) in enumerate(zip(b, widths))).rstrip())
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("names", nargs="*", help=f"modules to run (default: all of {', '.join(discover())})")
    args = ap.parse_args(argv)
    names = args.names or discover()
    rows: list[Row] = []
    failed = 0
    for name in names:
        mod = importlib.import_module(f"benchmarks.{name}")
        run = getattr(mod, "run", None)
        if run is None:
            continue  # a helper module (capture generator, ...)
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(run())
        except Exception as e:  # one broken benchmark must not hide the others' figures
            failed += 1
            print(f"[bench] {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
        print(f"[bench] {name} done in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
