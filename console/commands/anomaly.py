"""`qinling learn` and `qinling evaluate`: learned-baseline models from captures, and accuracy on labelled scenarios."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detection.anomaly.records import DEFAULT_EVALUATIONS, DEFAULT_MODEL_ROOT
from pipeline.schema import Event


def register(sub: Any) -> None:
    le = sub.add_parser("learn", help="learn a site's baseline model from captures (or relearn one link)")
    le.add_argument("pcaps", nargs="+", metavar="PCAP")
    le.add_argument("--site", required=True, help="site (organization id) the model is for")
    le.add_argument("--out", metavar="MODEL_DIR",
                    help="model directory (a new version is made current; default var/models/SITE, where the console looks)")
    le.add_argument("--relearn-link", nargs=2, metavar=("SRC", "DST"),
                    help="relearn only this client → server pair of the existing model in --out from the captures")
    le.add_argument("--method", default=None, help="multivariate model: iforest | lof | robust_z (default: the measured best)")
    le.add_argument("--port", action="append", metavar="PROTO=PORT", help="also decode PROTO on this port")
    le.add_argument("--config", dest="config_file", help=argparse.SUPPRESS)
    le.set_defaults(func=cmd_learn)

    ev = sub.add_parser("evaluate", help="replay labelled captures through rules and anomaly detection; "
                                         "per attack step detected or not, time to detect, false alerts per hour")
    ev.add_argument("pcaps", nargs="+", metavar="PCAP")
    ev.add_argument("--labels", nargs="+", required=True, metavar="FILE", help="*.labels.yml (matched to PCAPs by capture name)")
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="DIR", help="protect with this site model from the first event")
    src.add_argument("--learn-first", metavar="DURATION", nargs="+",
                     help="learn from each capture's first DURATION (e.g. 120s), then protect; one DURATION for all "
                          "captures or one per capture, in order")
    ev.add_argument("--site", default="default", help="site (organization id); must match --model's site")
    ev.add_argument("--no-rules", dest="rules", action="store_false", help="anomaly detectors only (no rule pack)")
    ev.add_argument("--method", default=None, help="multivariate model for --learn-first (default: the measured best)")
    ev.add_argument("--compare-models", action="store_true",
                    help="instead: compare the multivariate methods (multivariate alerts only) on the captures")
    ev.add_argument("--margins", default="0,0.5,1", help="--compare-models: threshold margins to try (comma-separated)")
    ev.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    ev.add_argument("--record", metavar="DIR", default=str(DEFAULT_EVALUATIONS),
                    help="record the figures, the command and the date here for the console's accuracy page "
                         "(default: %(default)s)")
    ev.add_argument("--no-record", dest="record", action="store_const", const=None, help="record nothing")
    ev.add_argument("--port", action="append", metavar="PROTO=PORT", help="also decode PROTO on this port")
    ev.set_defaults(func=cmd_evaluate)


def _registry(specs: Sequence[str] | None) -> Any:
    from sensors.decoders import REGISTRY
    import dataclasses

    reg = dict(REGISTRY)
    for spec in specs or ():
        name, _, port = spec.partition("=")
        if name not in reg or not port.isdigit():
            raise SystemExit(f"qinling: --port {spec!r}: expected PROTO=PORT with PROTO one of {', '.join(sorted(reg))}")
        reg[name] = dataclasses.replace(reg[name], default_ports=(int(port), *reg[name].default_ports))
    return reg


def decode(paths: Sequence[str | Path], site: str, ports: Sequence[str] | None = None) -> list[Event]:
    from sensors.engine import decode_file

    reg = _registry(ports)
    out: list[Event] = []
    for p in paths:
        out.extend(decode_file(p, organization_id=site, registry=reg))
    return out


def _duration(text: str) -> dt.timedelta:
    from detection.rules.model import parse_duration

    s = parse_duration(text)
    if s is None:
        raise SystemExit(f"qinling: {text!r} is not a duration (e.g. 90s, 2m, 1h)")
    return dt.timedelta(seconds=s)


def cmd_learn(args: argparse.Namespace) -> int:
    from detection.anomaly.exceptions import AnomalyError
    from detection.anomaly.model import load_model, save_model, train
    from detection.anomaly.multivariate import DEFAULT_METHOD

    from detection.anomaly.records import model_dir

    events = decode(args.pcaps, args.site, args.port)
    try:
        if args.out is None:
            args.out = str(model_dir(DEFAULT_MODEL_ROOT, args.site))
        if args.relearn_link:
            client, server = args.relearn_link
            model, _ = load_model(args.out, args.site)
            model = model.relearn_link(client, server, events)
            what = f"relearned {client} → {server}"
        else:
            model = train(args.site, events, method=args.method or DEFAULT_METHOD)
            what = "learned"
        version = save_model(model, args.out)
    except AnomalyError as e:
        print(f"qinling: {e}", file=sys.stderr)
        return 2
    meta = json.loads((version / "model.json").read_text(encoding="utf-8"))
    print(f"{what} site {args.site!r} from {len(events)} events "
          f"({meta['training_window']['start']} .. {meta['training_window']['end']}): {meta['baseline']}, "
          f"multivariate {meta['multivariate']['method']} on {meta['multivariate']['training_windows']} windows")
    print(f"model {version} (sha256 {meta['sha256'][:16]}…) is current in {args.out}")
    return 0


def _pair(pcaps: Sequence[str], labels: Sequence[str]) -> list[tuple[str, Any]]:
    from detection.labels import load

    scs = [load(p) for p in labels]
    by_name = {sc.capture.name: sc for sc in scs}
    out = []
    for i, p in enumerate(pcaps):
        name = Path(p).name
        sc = by_name.get(name) or by_name.get(name.removesuffix(".gz")) or (scs[i] if len(scs) == len(pcaps) else None)
        if sc is None:
            raise SystemExit(f"qinling: no --labels file names capture {Path(p).name!r}")
        out.append((p, sc))
    return out


def run_scenario(pcap: str | Path, site: str, *, learn_first: dt.timedelta | None = None, model_dir: str | None = None,
                 rules: bool = True, method: str | None = None, margin: float | None = None, enabled: Sequence[str] | None = None,
                 ports: Sequence[str] | None = None, settings_overrides: Mapping[str, Any] | None = None,
                 ) -> tuple[list[Event], list[Event], dt.datetime | None]:
    """Decode one capture, run the rule pack and the anomaly engine over it. (events, alerts, protect_from)."""
    from detection.anomaly.engine import AnomalyEngine
    from detection.anomaly.multivariate import DEFAULT_METHOD

    events = decode([pcap], site, ports)
    engine = AnomalyEngine(site, learn_first=learn_first, model_dir=model_dir, method=method or DEFAULT_METHOD,
                           margin=margin, enabled=enabled)
    alerts: list[Event] = []
    if rules:
        from pipeline.settings import load as load_settings

        from console.jobs import load_engine

        rule_engine, _ = load_engine(load_settings(None, organization_id=site, **(settings_overrides or {})))
        alerts.extend(rule_engine.process_many(events))
    alerts.extend(engine.process_many(events))
    protect_from = None
    if learn_first is not None and events:
        protect_from = min(e.timestamp for e in events) + learn_first
    return events, alerts, protect_from


def cmd_evaluate(args: argparse.Namespace) -> int:
    from detection.anomaly.evaluate import evaluate

    learns = [_duration(d) for d in args.learn_first] if args.learn_first else [None]
    if len(learns) not in (1, len(args.pcaps)):
        raise SystemExit(f"qinling: --learn-first: give one DURATION or one per capture ({len(args.pcaps)})")
    learn_for = dict(zip(args.pcaps, learns * len(args.pcaps) if len(learns) == 1 else learns))
    learn_first = learns[0]
    pairs = _pair(args.pcaps, args.labels)
    if args.compare_models:
        return _compare(pairs, args, learn_first)
    from detection.anomaly.exceptions import AnomalyError

    reports = []
    for pcap, sc in pairs:
        try:
            events, alerts, protect_from = run_scenario(pcap, args.site, learn_first=learn_for[pcap], model_dir=args.model,
                                                        rules=args.rules, method=args.method, ports=args.port)
        except AnomalyError as e:
            print(f"qinling: {e}", file=sys.stderr)
            return 2
        rep = evaluate(sc, events, alerts, protect_from=protect_from)
        reports.append(rep)
        print(rep.table())
        print()
    steps = [s for r in reports for s in r.steps if not s.in_learning]
    missed = [s.name for s in steps if not s.detected]
    false = sum(len(r.false_alerts) for r in reports)
    hours = sum(r.normal_seconds for r in reports) / 3600.0
    print(f"total: {sum(s.detected for s in steps)}/{len(steps)} attack steps detected, {false} false alerts in "
          f"{hours * 60:.1f} min protected ({false / hours if hours else 0:.1f}/h)" + (f"; missed: {', '.join(missed)}" if missed else ""))
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=2), encoding="utf-8")
    if args.record:
        from detection.anomaly.records import record_evaluation

        path = record_evaluation(args.record, _command(args),
                                 [r.to_dict() for r in reports], site=args.site,
                                 settings={"learn_first": args.learn_first, "model": args.model, "rules": args.rules,
                                           "method": args.method})
        print(f"recorded in {path}")
    return 0 if not missed else 1


def _command(args: argparse.Namespace) -> list[str]:
    """The command line that reproduces this run (its arguments as parsed, defaults left out)."""
    cmd = ["qinling", "evaluate", *args.pcaps, "--labels", *args.labels]
    cmd += ["--model", args.model] if args.model else ["--learn-first", *args.learn_first]
    if args.site != "default":
        cmd += ["--site", args.site]
    if not args.rules:
        cmd.append("--no-rules")
    if args.method:
        cmd += ["--method", args.method]
    for spec in args.port or ():
        cmd += ["--port", spec]
    return cmd


def _compare(pairs: list[tuple[str, Any]], args: argparse.Namespace, learn_first: dt.timedelta | None) -> int:
    """Multivariate methods side by side: only the multivariate detector's alerts are scored."""
    from detection.anomaly import rules as R
    from detection.anomaly.evaluate import evaluate
    from detection.anomaly.multivariate import METHODS

    if learn_first is None:
        raise SystemExit("qinling: --compare-models needs --learn-first")
    rows = []
    for method, margin in [(m, float(g)) for m in METHODS for g in args.margins.split(",")]:
        detected = total = false = 0
        seconds = 0.0
        per = []
        for pcap, sc in pairs:
            events, alerts, protect_from = run_scenario(pcap, args.site, learn_first=learn_first, rules=False,
                                                        method=method, margin=margin, enabled=[R.MULTIVARIATE.id], ports=args.port)
            rep = evaluate(sc, events, alerts, protect_from=protect_from)
            judged = [s for s in rep.steps if not s.in_learning]
            detected += sum(s.detected for s in judged)
            total += len(judged)
            false += len(rep.false_alerts)
            seconds += rep.normal_seconds
            per.append(f"{sc.name}: {sum(s.detected for s in judged)}/{len(judged)} steps, {len(rep.false_alerts)} false")
        rows.append({"method": method, "margin": margin, "steps_detected": detected, "steps": total, "false_alerts": false,
                     "false_per_hour": round(false * 3600 / seconds, 1) if seconds else 0.0, "per_capture": per})
        print(f"{method:9} margin {margin:<4g} {detected}/{total} attack steps, {false} false alerts "
              f"({rows[-1]['false_per_hour']}/h)   " + "; ".join(per))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0
