"""`qinling`: the command line, where the stages are wired together."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pipeline import schema
from pipeline.exceptions import PipelineError
from pipeline.settings import Settings, load


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        k: getattr(args, k, None)
        for k in ("store", "organization_id", "observer_id", "rules_dir", "lists_file", "language", "bus")
    }
    return load(getattr(args, "config", None), **overrides)


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes] | None]:
    """`-` is stdout; a file is written atomically-ish (kept when the job fails midway: nothing is lost)."""
    if path is None:
        yield None
    elif path == "-":
        yield sys.stdout.buffer
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            yield f


def _check_captures(paths: Sequence[str]) -> list[str]:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise SystemExit("qinling: no such capture file: " + ", ".join(missing))
    return list(paths)


def _ports(specs: Sequence[str] | None) -> dict[str, list[int]]:
    """`["modbus=5020", "modbus=1502"]` → {"modbus": [5020, 1502]}."""
    out: dict[str, list[int]] = {}
    for spec in specs or ():
        name, _, port = spec.partition("=")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SystemExit(f"qinling: --port {spec!r}: use PROTOCOL=PORT, e.g. modbus=5020")
        out.setdefault(name.strip(), []).append(int(port))
    return out


def cmd_decode(args: argparse.Namespace) -> int:
    from .jobs import Summary, decode_files

    settings = _settings(args)
    summary = Summary()
    with _output(args.out or "-") as out:
        assert out is not None
        batch: list[schema.Event] = []
        captures = _check_captures(args.pcaps)
        for ev in decode_files(captures, settings, summary, progress=args.progress and args.out not in (None, "-"), ports=_ports(args.port),
                               engine=args.engine, workers=_workers(args)):
            batch.append(ev)
            if len(batch) >= 1000:
                out.write(schema.encode_many(batch))
                batch = []
        out.write(schema.encode_many(batch))
    print(summary.table(), file=sys.stderr)
    return 0 if not summary.warnings else 3


def _workers(args: argparse.Namespace) -> int:
    """`--workers N|auto`: decoding processes for one capture (1: in this process; 0 or auto: one per CPU)."""
    from sensors.parallel import resolve_workers

    try:
        n = resolve_workers(args.workers)
    except ValueError:
        raise SystemExit(f"qinling: --workers {args.workers!r}: give a number of processes, or 0 / auto for one per CPU") from None
    if n > 1 and args.engine != "native":
        raise SystemExit("qinling: --workers applies to the native engine; tshark runs as its own process")
    return n


def cmd_replay(args: argparse.Namespace) -> int:
    from .jobs import open_store_for, replay

    settings = _settings(args)
    store = None
    if args.store_enabled:
        store = open_store_for(settings)
    try:
        with _output(args.out) as out, _output(args.events_out) as events_out:
            summary = replay(
                _check_captures(args.pcaps),
                settings,
                out=out,
                events_out=events_out,
                store=store,
                progress=args.progress,
                ports=_ports(args.port),
                workers=args.workers,
                engine=args.engine,
                anomaly=_anomaly_engine(args, settings),
            )
    finally:
        if store is not None:
            store.close()
    print(summary.table(), file=sys.stderr)
    if not args.workers:
        return 0
    return 0 if not summary.warnings else 3


def _anomaly_engine(args: argparse.Namespace, settings: Settings) -> Any:
    """`--learn-first DURATION` (learn from the capture's start, then protect) or `--model DIR`."""
    if not (args.learn_first or args.model):
        return None
    import datetime as dt

    from detection.anomaly.engine import AnomalyEngine
    from detection.rules.model import parse_duration

    learn = None
    if args.learn_first:
        seconds = parse_duration(args.learn_first)
        if seconds is None or seconds <= 0:
            raise SystemExit(f"qinling: --learn-first {args.learn_first!r}: use a duration like 120s, 5m or 1h")
        learn = dt.timedelta(seconds=seconds)
    return AnomalyEngine(settings.organization_id, learn_first=learn, model_dir=args.model)


def _worker_signals() -> threading.Event:
    """SIGTERM and SIGINT end the loop after the current batch (which is committed first)."""
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_detect(args: argparse.Namespace) -> int:
    import time

    from .jobs import open_store_for, run_detect

    settings = _settings(args)
    stop = _worker_signals()
    store = open_store_for(settings) if args.store_enabled else None
    pause = args.pause_before_commit

    def before_commit(batch: list) -> None:  # type: ignore[type-arg]
        print(f"detect: batch of {len(batch)} record(s) processed, committing", file=sys.stderr, flush=True)
        if pause:
            time.sleep(pause)

    print(f"detect: consuming {settings.topic('events')} as group {settings.detect_group!r} on {settings.kafka_servers if settings.uses_kafka else 'the embedded bus'}",
          file=sys.stderr, flush=True)
    anomaly = None
    if args.model:
        from detection.anomaly.engine import AnomalyEngine
        from detection.anomaly.exceptions import AnomalyError

        try:
            anomaly = AnomalyEngine(settings.organization_id, model_dir=args.model)
        except AnomalyError as e:
            print(f"qinling: {e}", file=sys.stderr)
            return 2
        print(f"detect: anomaly model {anomaly.version} of site {anomaly.site!r} (a retrained model in {args.model} "
              f"replaces it between batches)", file=sys.stderr, flush=True)
    try:
        stats = run_detect(settings, stop, store=store, max_records=args.max_records, before_commit=before_commit,
                           anomaly=anomaly)
    finally:
        if store is not None:
            store.close()
    print(f"detect: stopped after {stats.records} record(s), {stats.alerts} alert(s), {stats.warmup} re-read for state", file=sys.stderr)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from .jobs import open_store_for, run_index

    settings = _settings(args)
    stop = _worker_signals()
    store = open_store_for(settings)
    print(f"index: consuming {settings.topic('events')}, {settings.topic('alerts')} as group {settings.index_group!r} into {settings.redacted()['store']}",
          file=sys.stderr, flush=True)
    try:
        stats = run_index(settings, stop, store, max_records=args.max_records)
    finally:
        store.close()
    print(f"index: stopped after {stats.events} event(s) and {stats.alerts} alert(s)", file=sys.stderr)
    not_stored = stats.malformed + stats.forged + stats.rejected
    if not_stored:
        print(f"index: {not_stored} record(s) will never be stored ({stats.malformed} not events, {stats.forged} forged, "
              f"{stats.rejected} refused by the store); {stats.dead_letters} kept with their reasons in "
              f"{settings.dead_letter_dir}/", file=sys.stderr)
    if stats.unstored:
        print(f"index: stopped while the store was failing: the last {stats.unstored} record(s) are neither stored nor "
              f"committed; the next `qinling index` stores them", file=sys.stderr)
        return 3
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from .web import serve

    settings = _settings(args)
    serve(settings.store, host=args.host, port=args.port, language=settings.language)
    return 0


def cmd_sensor(args: argparse.Namespace) -> int:
    from .jobs import live

    settings = _settings(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = None
    if args.store_enabled:
        from pipeline.store import open_store

        store = open_store(settings.store)
    try:
        with _output(args.out) as out:
            summary = live(args.iface, args.bpf, settings, out=out, store=store, stop=stop, count=args.count,
                           timeout=args.timeout, ports=_ports(args.port),
                           on_started=lambda: print(f"capturing on {args.iface}" + (f" ({args.bpf})" if args.bpf else ""),
                                                    file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        return 130
    finally:
        if store is not None:
            store.close()
    print(summary.table(), file=sys.stderr)
    return 0


def cmd_rules_lint(args: argparse.Namespace) -> int:
    from detection.rules.lint import lint

    from .jobs import PACKAGE_ROOT

    paths = args.paths or [str(PACKAGE_ROOT / "rules")]
    errors = lint([Path(p) for p in paths])
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("rules OK", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qinling", description="Qinling industrial-internet security situational awareness")
    p.add_argument("--config", help="settings TOML file (default: $QINLING_CONFIG); see docs/settings.md")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, store: bool = True) -> None:
        sp.add_argument("--org", dest="organization_id", help="enterprise id stamped on every event")
        sp.add_argument("--observer", dest="observer_id", help="sensor id")
        sp.add_argument("--rules", dest="rules_dir", help="rules folder (default: bundled rules/)")
        sp.add_argument("--lists", dest="lists_file", help="named lists file (default: rules/lists.yml)")
        sp.add_argument("--port", action="append", metavar="PROTO=PORT",
                        help="also decode PROTO on this server port (repeatable), e.g. --port modbus=5020")
        if store:
            sp.add_argument("--store", help="sqlite:///PATH or http://HOST:9200 (default: settings)")
            sp.add_argument("--no-store", dest="store_enabled", action="store_false", help="write nothing to the store")

    d = sub.add_parser("decode", help="decode captures into events (JSON lines)")
    d.add_argument("pcaps", nargs="+", metavar="PCAP")
    d.add_argument("--out", help="events file (default: stdout)")
    d.add_argument("--no-progress", dest="progress", action="store_false")
    common(d, store=False)
    d.add_argument("--engine", choices=("native", "tshark"), default="native",
                   help="native decoders (default) or tshark: any protocol tshark dissects, slower (docs/protocols/tshark.md)")
    d.add_argument("--workers", default="1", metavar="N",
                   help="decode each capture in N processes, frames sharded by flow; the same events in the same order "
                        "(default 1: this process; 0 or auto: one per CPU)")
    d.set_defaults(func=cmd_decode)

    r = sub.add_parser("replay", help="decode captures, run detection, store and print alerts")
    r.add_argument("pcaps", nargs="+", metavar="PCAP")
    r.add_argument("--out", help="alerts file (JSON lines; - for stdout)")
    r.add_argument("--events-out", help="also write decoded events here")
    r.add_argument("--bus", help="embedded | kafka://HOST:PORT[,HOST:PORT] (default: settings)")
    r.add_argument("--no-workers", dest="workers", action="store_false",
                   help="Kafka: only publish the events; running `qinling detect` / `qinling index` workers do the rest")
    r.add_argument("--no-progress", dest="progress", action="store_false")
    r.add_argument("--learn-first", metavar="DURATION",
                   help="anomaly detection with no prior model: learn the capture's first DURATION (e.g. 120s), then protect")
    r.add_argument("--model", metavar="DIR", help="anomaly detection with the site's model from `qinling learn`")
    common(r)
    r.add_argument("--engine", choices=("native", "tshark"), default="native",
                   help="native decoders (default) or tshark: any protocol tshark dissects, slower (docs/protocols/tshark.md)")
    r.set_defaults(func=cmd_replay)

    de = sub.add_parser("detect", help="worker: events topic → detection → alerts topic (until SIGTERM)")
    de.add_argument("--bus", help="kafka://HOST:PORT[,HOST:PORT] (default: settings)")
    de.add_argument("--max-records", type=int, default=2000, help="records per micro-batch")
    de.add_argument("--model", metavar="DIR", help="also anomaly detection with the site's model (`qinling learn --out DIR`); "
                    "a model of another site is refused; a retrained model is picked up between batches")
    de.add_argument("--pause-before-commit", type=float, default=0.0, help=argparse.SUPPRESS)  # fault tests
    common(de)
    de.set_defaults(func=cmd_detect)

    ix = sub.add_parser("index", help="worker: events and alerts topics → store (until SIGTERM)")
    ix.add_argument("--bus", help="kafka://HOST:PORT[,HOST:PORT] (default: settings)")
    ix.add_argument("--max-records", type=int, default=2000, help="records per batch")
    ix.add_argument("--store", help="sqlite:///PATH or http://HOST:9200 (default: settings)")
    ix.set_defaults(func=cmd_index, store_enabled=True)

    c = sub.add_parser("console", help="serve the web console")
    c.add_argument("--store", help="sqlite:///PATH or http://HOST:9200")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=5000)
    c.add_argument("--lang", dest="language", choices=["zh-CN", "en"])
    c.set_defaults(func=cmd_console)

    s = sub.add_parser("sensor", help="capture live traffic from an interface")
    s.add_argument("--iface", required=True)
    s.add_argument("--bpf", help="capture filter, e.g. 'tcp port 502'")
    s.add_argument("--out", help="alerts file (JSON lines; - for stdout)")
    s.add_argument("--count", type=int, help="stop after N packets")
    s.add_argument("--timeout", type=float, help="stop after N seconds")
    common(s)
    s.set_defaults(func=cmd_sensor)

    ru = sub.add_parser("rules", help="rule tools")
    rsub = ru.add_subparsers(dest="rules_command", required=True)
    lint = rsub.add_parser("lint", help="check rule files; report every problem with file:line")
    lint.add_argument("paths", nargs="*", help="rule files or folders (default: bundled rules/)")
    lint.set_defaults(func=cmd_rules_lint)

    import importlib

    from .commands import MODULES

    for name in MODULES:
        importlib.import_module(name).register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PipelineError as e:
        print(f"qinling: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:  # Ctrl-C in a command that does not stop gracefully by itself: no traceback
        print("qinling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
