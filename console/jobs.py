"""The jobs the command line runs, wiring sensors → bus → detection → store. Stages never wire themselves."""

from __future__ import annotations

import collections
import dataclasses
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from detection.assets import AssetTracker
from detection.engine import DetectionEngine
from detection.rules.loader import load_rules
from pipeline import schema
from pipeline.bus import TOPIC_ALERTS, TOPIC_EVENTS, Bus, EmbeddedBus
from pipeline.schema import Event
from pipeline.settings import Settings
from pipeline.stages import Sink, drain
from pipeline.store import Store, open_store

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
BATCH = 2000


def rules_dir(settings: Settings) -> Path:
    return Path(settings.rules_dir) if settings.rules_dir else PACKAGE_ROOT / "rules"


def lists_file(settings: Settings) -> Path:
    return Path(settings.lists_file) if settings.lists_file else rules_dir(settings) / "lists.yml"


def open_bus(settings: Settings) -> Bus:
    if settings.bus == "embedded":
        return EmbeddedBus()
    if settings.bus == "kafka":
        from pipeline.kafka_bus import KafkaBus  # type: ignore[import-not-found]

        return KafkaBus(settings.kafka_bootstrap)  # type: ignore[no-any-return]
    raise SystemExit(f"qinling: unknown bus {settings.bus!r} (use embedded or kafka)")


class JsonlSink(Sink[Event]):
    """Appends events as JSON lines; flush() writes them and fsyncs nothing more than the OS buffers."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out, self._pending = out, []  # type: tuple[IO[bytes], list[Event]]

    def add(self, item: Event) -> None:
        self._pending.append(item)

    def flush(self) -> None:
        if self._pending:
            self._out.write(schema.encode_many(self._pending))
            self._out.flush()
            self._pending = []


class StoreSink(Sink[Event]):
    def __init__(self, store: Store) -> None:
        self._store, self._pending = store, []  # type: tuple[Store, list[Event]]

    def add(self, item: Event) -> None:
        self._pending.append(item)

    def flush(self) -> None:
        if self._pending:
            self._store.write(self._pending)
            self._store.flush()
            self._pending = []


class KindFilter(Sink[Event]):
    """Passes on only events of one `event.kind` (alerts to the --out file, say)."""

    def __init__(self, kind: str, inner: Sink[Event]) -> None:
        self._kind, self._inner = kind, inner

    def add(self, item: Event) -> None:
        if item.event.kind == self._kind:
            self._inner.add(item)

    def flush(self) -> None:
        self._inner.flush()


@dataclasses.dataclass
class Summary:
    files: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    events: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    alerts_by_rule: collections.Counter[tuple[str, str, int]] = dataclasses.field(default_factory=collections.Counter)
    alerts: int = 0
    assets: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)

    def table(self) -> str:
        lines = []
        if self.files:
            lines.append(f"{'capture':40} {'packets':>9} {'events':>8} {'alerts':>7}")
            for f in self.files:
                lines.append(f"{f['file'][-40:]:40} {f['packets']:>9} {f['events']:>8} {f['alerts']:>7}")
            lines.append("")
        if self.alerts_by_rule:
            lines.append(f"{'severity':9} {'rule':14} {'alerts':>6}  title")
            for (rid, title, sev), n in sorted(self.alerts_by_rule.items(), key=lambda kv: (-kv[0][2], kv[0][0])):
                lines.append(f"{schema.LEVEL_OF_SEVERITY.get(sev, str(sev)):9} {rid:14} {n:>6}  {title}")
            lines.append("")
        by_ds = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items()))
        lines.append(f"{sum(self.events.values())} events ({by_ds}), {self.alerts} alerts, {self.assets} assets")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled, file=sys.stderr, leave=False)


def registry(ports: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """The decoder registry, with extra server ports per protocol (`--port modbus=5020`)."""
    from sensors.decoders import REGISTRY

    reg = dict(REGISTRY)
    for name, extra in (ports or {}).items():
        if name not in reg:
            raise SystemExit(f"qinling: no decoder named {name!r}; known: {', '.join(sorted(reg))}")
        spec = reg[name]
        reg[name] = dataclasses.replace(spec, default_ports=tuple(dict.fromkeys((*extra, *spec.default_ports))))
    return reg


def decode_files(
    paths: Sequence[str | Path],
    settings: Settings,
    summary: Summary,
    progress: bool = False,
    ports: Mapping[str, Sequence[int]] | None = None,
) -> Iterator[Event]:
    """Every event of every capture, in order, with per-file counts and warnings in `summary`."""
    from sensors.engine import DecodeReport, decode_file
    from sensors.exceptions import SensorError

    reg = registry(ports)
    for path in paths:
        path = Path(path)
        counts: dict[str, Any] = {"file": str(path), "packets": 0, "events": 0, "alerts": 0}
        summary.files.append(counts)
        report = DecodeReport()
        size = path.stat().st_size if path.exists() else 0
        with _progress(size, path.name, progress) as bar:

            def on_progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            try:
                for ev in decode_file(
                    path,
                    registry=reg,
                    organization_id=settings.organization_id,
                    observer_id=settings.observer_id,
                    on_progress=on_progress,
                    report=report,
                ):
                    counts["events"] += 1
                    summary.events[ev.event.dataset] += 1
                    yield ev
            except SensorError as e:
                summary.warnings.append(str(e))
                continue
            finally:
                counts["packets"] = report.packets
        summary.warnings.extend(f"{path}: {w}" if str(path) not in w else w for w in report.warnings)


class Wiring:
    """Events in → events topic → detection → alerts topic → sinks (store, files). One per job."""

    def __init__(
        self,
        settings: Settings,
        summary: Summary,
        *,
        out: IO[bytes] | None = None,
        events_out: IO[bytes] | None = None,
        store: Store | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.summary, self.store = summary, store
        self.bus = bus or open_bus(settings)
        rules = load_rules(rules_dir(settings), lists_file(settings))
        self.engine = DetectionEngine(rules.rules, rules.lists, organization_id=settings.organization_id)
        self.assets = AssetTracker(organization_id=settings.organization_id)
        self.producer = self.bus.producer()
        self._detect_in = self.bus.consumer([TOPIC_EVENTS], group="detect")
        self._sink_in = self.bus.consumer([TOPIC_EVENTS, TOPIC_ALERTS], group="sink")
        self.sinks: list[Sink[Event]] = []
        if store is not None:
            self.sinks.append(StoreSink(store))
        if out is not None:
            self.sinks.append(KindFilter("alert", JsonlSink(out)))
        if events_out is not None:
            self.sinks.append(KindFilter("event", JsonlSink(events_out)))
        self._alerts = _AlertPublisher(self)
        self._sent = 0
        self._file_rows: dict[str, dict[str, Any]] = {}  # capture sha256 -> its summary row

    def put(self, ev: Event) -> None:
        sha = ev.evidence.file_sha256 if ev.evidence else None
        if sha and sha not in self._file_rows and self.summary.files:
            self._file_rows[sha] = self.summary.files[-1]
        self.producer.send(TOPIC_EVENTS, schema.encode(ev), key=_key(ev))
        self._sent += 1
        if self._sent % BATCH == 0:
            self.pump()

    def pump(self) -> None:
        """Move everything through: detection, then the sinks. Commits follow each sink flush."""
        self.producer.flush()
        drain(self._detect_in, self._detect, [self._alerts], max_records=BATCH)
        drain(self._sink_in, lambda vs: (schema.decode_event(v) for v in vs), self.sinks, max_records=BATCH)

    def _detect(self, values: Sequence[bytes]) -> Iterable[Event]:
        for v in values:
            ev = schema.decode_event(v)
            self.assets.observe(ev)
            yield from self.engine.process(ev)

    def publish(self, alerts: Iterable[Event]) -> None:
        s = self.summary
        for a in alerts:
            self.assets.note_alert(a)
            s.alerts += 1
            s.alerts_by_rule[(a.rule.id if a.rule else "?", a.rule.name if a.rule else "?", a.event.severity or 0)] += 1
            row = self._file_rows.get(a.evidence.file_sha256 or "") if a.evidence else None
            if row is not None:
                row["alerts"] += 1
            self.producer.send(TOPIC_ALERTS, schema.encode(a), key=_key(a))
        self.producer.flush()

    def finish(self) -> Summary:
        self.pump()
        self.publish(self.engine.finish())
        self.pump()
        snapshot = self.assets.snapshot()
        self.summary.assets = len(snapshot)
        if self.store is not None:
            self.store.write_assets(snapshot)
            self.store.flush()
        return self.summary


class _AlertPublisher(Sink[Event]):
    """The detection stage's sink: alerts go onto the alerts topic."""

    def __init__(self, wiring: Wiring) -> None:
        self._wiring, self._pending = wiring, []  # type: tuple[Wiring, list[Event]]

    def add(self, item: Event) -> None:
        self._pending.append(item)

    def flush(self) -> None:
        self._wiring.publish(self._pending)
        self._pending = []


def replay(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    out: IO[bytes] | None = None,
    events_out: IO[bytes] | None = None,
    store: Store | None = None,
    progress: bool = False,
    bus: Bus | None = None,
    ports: Mapping[str, Sequence[int]] | None = None,
) -> Summary:
    """Captures → events topic → detection → alerts topic → store and files. Returns the summary."""
    summary = Summary()
    wiring = Wiring(settings, summary, out=out, events_out=events_out, store=store, bus=bus)
    for ev in decode_files(paths, settings, summary, progress=progress, ports=ports):
        wiring.put(ev)
    return wiring.finish()


def live(
    iface: str,
    bpf: str | None,
    settings: Settings,
    *,
    out: IO[bytes] | None = None,
    store: Store | None = None,
    stop: Any = None,
    count: int | None = None,
    timeout: float | None = None,
    ports: Mapping[str, Sequence[int]] | None = None,
    on_started: Any = None,
) -> Summary:
    """Live capture from `iface` through the same wiring; runs until `stop` is set, `count` or `timeout`."""
    from sensors.live import sniff_events

    summary = Summary()
    wiring = Wiring(settings, summary, out=out, store=store)

    def on_events(events: Sequence[Event]) -> None:
        for ev in events:
            summary.events[ev.event.dataset] += 1
            wiring.put(ev)
        wiring.pump()

    sniff_events(iface, bpf, on_events, stop_event=stop, count=count, timeout=timeout, registry=registry(ports), on_started=on_started,
                 organization_id=settings.organization_id, observer_id=settings.observer_id)
    return wiring.finish()


def _key(ev: Event) -> bytes | None:
    cid = ev.network.community_id if ev.network else None
    return cid.encode() if cid else None
