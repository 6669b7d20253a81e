"""CLI::

    python -m tests.testbed run modbus_plant_attack --out pcaps/modbus/ [--fallback-loopback]
    python -m tests.testbed run modbus_plant_attack --out /tmp/x --lead-in 8 \\
        --steps recon_device_id,register_sweep,unauthorised_write
    python -m tests.testbed list
    python -m tests.testbed cleanup          # delete stale qn-<role>-<pid> namespaces of dead runs
    python -m tests.testbed verify pcaps/modbus/modbus_plant_attack.labels.yml
    python -m tests.testbed readme           # rewrite pcaps/README.md from the labels files
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from .labels import write_labels
from .plant import cleanup_stale, netns_available
from .runner import list_scenarios, load_scenario, log, shorten, Runner


def _sigterm(_signo: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # unwind through the runner's finally blocks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.testbed")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario and write <out>/<scenario>.pcap + .labels.yml")
    r.add_argument("scenario", help="scenario name (tests/testbed/scenarios/*.yml) or a path")
    r.add_argument("--out", type=Path, default=Path("pcaps/modbus"))
    r.add_argument("--fallback-loopback", action="store_true",
                   help="no namespaces: hosts are 127.10.1.x on lo, PLC port 5020")
    r.add_argument("--lead-in", type=float, default=None,
                   help="override seconds of normal-only traffic before the first attack")
    r.add_argument("--steps", default=None,
                   help="comma-separated subset of attack steps to run (in scenario order)")
    r.add_argument("--run-log", type=Path, default=None,
                   help="also write the raw run record (agent events) as JSON here")
    sub.add_parser("list", help="list scenarios")
    sub.add_parser("cleanup", help="delete qn-<role>-<pid> namespaces whose pid is dead")
    v = sub.add_parser("verify", help="replay a labelled capture through the rule pack and "
                                      "compare alerts per step with expect_rules")
    v.add_argument("labels", type=Path, nargs="+")
    rd = sub.add_parser("readme", help="rewrite <root>/README.md from every *.labels.yml")
    rd.add_argument("--root", type=Path, default=Path("pcaps"))
    args = ap.parse_args(argv)

    if args.cmd == "list":
        for name in list_scenarios():
            print(name)
        return 0
    if args.cmd == "verify":
        from .verify import verify

        return max(verify(p) for p in args.labels)
    if args.cmd == "readme":
        from .verify import write_readme

        print(write_readme(args.root))
        return 0
    if args.cmd == "cleanup":
        for ns in cleanup_stale():
            print(f"deleted {ns}")
        return 0

    fallback = bool(args.fallback_loopback)
    if not fallback and not netns_available():
        log("network namespaces unavailable (need root and `ip netns`); "
            "re-run with --fallback-loopback")
        return 2
    sc = load_scenario(args.scenario)
    steps = [s for s in args.steps.split(",") if s] if args.steps is not None else None
    sc = shorten(sc, args.lead_in, steps)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    try:
        record = Runner(sc, args.out, fallback).run()
    except KeyboardInterrupt:
        log("interrupted; everything torn down")
        return 130
    if args.run_log:
        args.run_log.write_text(json.dumps(record, default=str, indent=1), encoding="utf-8")
    labels = write_labels(record, args.out)
    size = record["pcap"].stat().st_size
    log(f"wrote {record['pcap']} ({size} bytes) and {labels}")
    summary = {name: len(st["locals"]) for name, st in record["steps"].items()}
    print(json.dumps({"pcap": str(record["pcap"]), "labels": str(labels), "bytes": size,
                      "connections_per_step": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
