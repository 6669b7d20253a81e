"""`python -m pipeline.services up|down|status|wait|logs|fetch [kafka] [elasticsearch]`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import manager as m


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments, shared with `qinling services`."""
    ap.add_argument("command", choices=["up", "down", "status", "wait", "logs", "fetch", "kill", "restart", "pause", "resume"])
    ap.add_argument("services", nargs="*", choices=[[], *m.SERVICES], metavar="SERVICE", help="kafka, elasticsearch (default: both)")
    ap.add_argument("--kafka-port", type=int)
    ap.add_argument("--controller-port", type=int)
    ap.add_argument("--es-port", type=int)
    ap.add_argument("--run-dir", help="run directory of an independent instance (default: $QINLING_SERVICES_DIR, else .cache/services/run)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for readiness (up, wait)")
    ap.add_argument("-n", "--lines", type=int, default=50, help="log lines (logs)")
    ap.add_argument("--json", action="store_true", help="status as JSON")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.services", description=m.__doc__.splitlines()[0] if m.__doc__ else None)
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(a: argparse.Namespace) -> int:
    services = a.services or list(m.SERVICES)
    try:
        s = m.Settings(run_dir=a.run_dir) if getattr(a, "run_dir", None) else m.Settings()
        if a.kafka_port:
            s.kafka_port = a.kafka_port
        if a.controller_port:
            s.controller_port = a.controller_port
        if a.es_port:
            s.es_port = a.es_port
        if a.command == "fetch":
            t0 = time.monotonic()
            took = m.fetch(services, s)
            sizes = m.cache_size(s)
            print(f"fetched in {time.monotonic() - t0:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in took.items())}); "
                  f"cache: {', '.join(f'{k} {v / 2**20:.0f} MiB' for k, v in sizes.items())}")
        elif a.command == "up":
            ready = m.up(services, s, timeout=a.timeout)
            st = m.status(s)
            for svc in services:
                print(f"{svc}: {st[svc]['address']} ready in {ready[svc]:.1f}s (pid {st[svc]['pid']}, RSS {st[svc]['rss_mib']} MiB)")
            print(f"addresses written to {s.run / 'env'}")
        elif a.command in ("kill", "pause", "resume", "restart"):
            for svc in a.services or [m.KAFKA]:
                if a.command == "restart":
                    print(f"{svc}: ready again in {m.restart(svc, s, timeout=a.timeout):.1f}s")
                else:
                    print(f"{svc}: {a.command} (pid {getattr(m, a.command)(svc, s)})")
        elif a.command == "wait":
            m.wait(services, s, timeout=a.timeout)
        elif a.command == "down":
            stopped = m.down(services, s)
            print("stopped: " + (", ".join(stopped) or "nothing (none of them was started by pipeline.services)"))
        elif a.command == "logs":
            print(m.logs(services, s, a.lines))
        else:
            st = m.status(s)
            if a.json:
                print(json.dumps(st, indent=2))
            else:
                for svc, d in st.items():
                    state = "ready" if d["ready"] else ("starting" if d["pid"] else "stopped")
                    extra = f" pid {d['pid']} RSS {d['rss_mib']} MiB" if d["pid"] else ""
                    print(f"{svc:14} {d['version']:8} {state:8} {d['address']}{extra}")
            return 0 if all(st[x]["ready"] for x in services) else 1
    except m.ServiceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
