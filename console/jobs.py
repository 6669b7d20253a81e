"""The jobs the command line runs, wiring sensors → bus → detection → store. Stages never wire themselves."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from detection.assets import AssetTracker
from detection.engine import DetectionEngine
from detection.rules.loader import load_rules
from pipeline import schema
from pipeline.exceptions import BusError, StoreError
from pipeline.bus import TOPIC_ALERTS, TOPIC_EVENTS, Bus, EmbeddedBus
from pipeline.keys import asset_key
from pipeline.schema import Event
from pipeline.settings import Settings
from pipeline.stages import Sink, drain
from pipeline.store import Store, open_store

from . import decode_process

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
BATCH = 2000
GC_GEN0 = 100_000  # cycle-collector threshold during a replay (see fewer_collections)


def rules_dir(settings: Settings) -> Path:
    return Path(settings.rules_dir) if settings.rules_dir else PACKAGE_ROOT / "rules"


def lists_file(settings: Settings) -> Path:
    return Path(settings.lists_file) if settings.lists_file else rules_dir(settings) / "lists.yml"


log = logging.getLogger("qinling")


def open_bus(settings: Settings, client_id: str = "qinling", topics: Sequence[str] | None = None) -> Bus:
    """`embedded`, or Kafka at `kafka://HOST:PORT[,HOST:PORT]` (plain `kafka`: `kafka_bootstrap`).

    `topics`: the topics to create if missing (default events and alerts); a publish-only sensor
    names just its events topic, which is all a sensor account may touch (pipeline.kafka_acl)."""
    if not settings.uses_kafka:
        return EmbeddedBus()
    from pipeline.kafka_bus import KafkaBus

    return KafkaBus(
        settings.kafka_servers,
        partitions=settings.kafka_partitions,
        client_id=client_id,
        topics=tuple(topics) if topics is not None else (settings.topic(TOPIC_EVENTS), settings.topic(TOPIC_ALERTS)),
        replication_factor=settings.kafka_replication_factor,
        security=settings.kafka_security(),
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )


def open_store_for(settings: Settings, url: str | None = None) -> Store:
    """The store at `url` (default: settings.store), with the Elasticsearch credentials of the settings."""
    url = url or settings.store
    if url.startswith(("http://", "https://")):
        from pipeline.store.elastic import ElasticStore

        return ElasticStore(
            url,
            prefix=settings.es_index_prefix,
            api_key=settings.es_api_key or None,
            basic_auth=(settings.es_username, settings.es_password) if settings.es_username else None,
            ca_certs=settings.es_ca_certs or None,
        )
    return open_store(url)


def load_engine(settings: Settings) -> tuple[DetectionEngine, AssetTracker]:
    rules = load_rules(rules_dir(settings), lists_file(settings))
    engine = DetectionEngine(rules.rules, rules.lists, organization_id=settings.organization_id)
    return engine, AssetTracker(organization_id=settings.organization_id)


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


class StoreWriteError(StoreError):
    """A batch could not be written; says how much this run had stored before it (all of it intact)."""

    def __init__(self, cause: StoreError, stored: collections.Counter[str], failed: int) -> None:
        super().__init__(str(cause))
        self.cause, self.stored, self.failed = cause, stored, failed

    @property
    def disk_full(self) -> bool:
        text = str(self.cause).lower()
        return "disk is full" in text or "no space left" in text or "enospc" in text


class StoreSink(Sink[Event]):
    """Writes each batch in one transaction; counts what was stored, by `event.kind`."""

    def __init__(self, store: Store) -> None:
        self._store, self._pending = store, []  # type: tuple[Store, list[Event]]
        self.stored: collections.Counter[str] = collections.Counter()

    def add(self, item: Event) -> None:
        self._pending.append(item)

    def flush(self) -> None:
        if self._pending:
            try:
                self._store.write(self._pending)
                self._store.flush()
            except StoreWriteError:
                raise
            except StoreError as e:  # the batch is not committed on the bus: a rerun writes it (idempotently)
                raise StoreWriteError(e, collections.Counter(self.stored), len(self._pending)) from e
            self.stored.update(ev.event.kind for ev in self._pending)
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
    notes: list[str] = dataclasses.field(default_factory=list)  # facts worth a line (the live sensor's spool report)
    decode_process_cpu: float | None = None  # CPU seconds of replay's decode process, when it had one

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
        lines.extend(self.notes)
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
    known = {spec.name for spec in reg.values()}
    for name, extra in (ports or {}).items():
        if name not in known:
            raise SystemExit(f"qinling: no decoder named {name!r}; known: {', '.join(sorted(known))}")
        for key, spec in reg.items():  # every transport the protocol is registered on (ethertypes are not ports)
            if spec.name == name and spec.transport != "ethernet":
                reg[key] = dataclasses.replace(spec, default_ports=tuple(dict.fromkeys((*extra, *spec.default_ports))))
    return reg


def decode_files(
    paths: Sequence[str | Path],
    settings: Settings,
    summary: Summary,
    progress: bool = False,
    ports: Mapping[str, Sequence[int]] | None = None,
    engine: str = "native",
    remap: Mapping[str, Mapping[str, str]] | None = None,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Event]:
    """Every event of every capture, in order, with per-file counts and warnings in `summary`.

    `engine`: "native" (our decoders, the default) or "tshark" (sensors.tshark_engine: any protocol tshark dissects).
    `remap`: capture path -> IPv4 /16 prefixes its addresses move to (native engine; see sensors.engine.Sensor).
    `workers` > 1: the native engine in that many processes (sensors.parallel), the same events in the same order.
    `on_progress(bytes read, size)`: per capture, beside the progress bar. A capture that cannot be
    read (a SensorError) is a warning, and its row's `error`."""
    from sensors.engine import DecodeReport
    from sensors.exceptions import SensorError

    reg = registry(ports)
    for path in paths:
        path = Path(path)
        counts: dict[str, Any] = {"file": str(path), "packets": 0, "events": 0, "alerts": 0}
        summary.files.append(counts)
        report = DecodeReport()
        size = path.stat().st_size if path.exists() else 0
        with _progress(size, path.name, progress) as bar:

            def each_step(done: int, total: int) -> None:
                bar.update(done - bar.n)
                if on_progress is not None:
                    on_progress(done, total)

            try:
                if engine == "tshark":
                    from sensors.tshark_engine import decode_file_tshark

                    events = decode_file_tshark(path, organization_id=settings.organization_id, observer_id=settings.observer_id,
                                                on_progress=each_step, report=report)
                else:
                    from sensors.parallel import decode_parallel  # workers <= 1: decode_file itself

                    events = decode_parallel(path, workers, registry=reg, organization_id=settings.organization_id,
                                             observer_id=settings.observer_id, on_progress=each_step, report=report,
                                             remap=(remap or {}).get(str(path)))
                for ev in events:
                    counts["events"] += 1
                    summary.events[ev.event.dataset] += 1
                    yield ev
            except SensorError as e:
                summary.warnings.append(str(e))
                counts["error"] = str(e)
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
        extra: Sequence[Any] = (),
    ) -> None:
        self.summary, self.store = summary, store
        self.bus = bus or open_bus(settings)
        self.engine, self.assets = load_engine(settings)
        # More detectors with the engine's process(event)/finish() shape (the anomaly engine).
        self.extra = tuple(extra)
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
        # Events detection decoded this pump, by id of the record value: the sinks reuse them when
        # they read the very same bytes (the embedded bus) instead of decoding every event twice.
        self._decoded: dict[int, tuple[bytes, Event]] = {}

    def put(self, ev: Event) -> None:
        self.note_capture(ev.evidence.file_sha256 if ev.evidence else None)
        self.put_record(schema.encode(ev), _key(ev))

    def put_record(self, value: bytes, key: bytes | None) -> None:
        """An event already encoded for the bus (console.decode_process); `note_capture` first."""
        self.producer.send(TOPIC_EVENTS, value, key=key)
        self._sent += 1
        if self._sent % BATCH == 0:
            self.pump()

    def note_capture(self, sha256: str | None) -> None:
        """What `put` learns from an event's evidence: its capture's summary row (the newest) counts its alerts."""
        _note_capture(sha256, self.summary, self._file_rows)

    def pump(self) -> None:
        """Move everything through: detection, then the sinks. Commits follow each sink flush."""
        self.producer.flush()
        drain(self._detect_in, self._detect, [self._alerts], max_records=BATCH)
        drain(self._sink_in, self._for_sinks, self.sinks, max_records=BATCH)
        self._decoded.clear()

    def _for_sinks(self, values: Sequence[bytes]) -> Iterable[Event]:
        decoded = self._decoded
        for v in values:
            hit = decoded.pop(id(v), None)
            yield hit[1] if hit is not None and hit[0] is v else schema.decode_event(v)

    def _detect(self, values: Sequence[bytes]) -> Iterable[Event]:
        for v in values:
            ev = schema.decode_event(v)
            self._decoded[id(v)] = (v, ev)  # holding v keeps its id from being reused meanwhile
            self.assets.observe(ev)
            yield from self.engine.process(ev)
            for d in self.extra:
                yield from d.process(ev)

    def publish(self, alerts: Iterable[Event]) -> None:
        for a in alerts:
            self.assets.note_alert(a)
            _count_alert(a, self.summary, self._file_rows)
            self.producer.send(TOPIC_ALERTS, schema.encode(a), key=_key(a))
        self.producer.flush()

    def finish(self) -> Summary:
        self.pump()
        self.publish(self.engine.finish())
        for d in self.extra:
            self.publish(d.finish())
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


def _note_file(ev: Event, summary: Summary, rows: dict[str, dict[str, Any]]) -> None:
    _note_capture(ev.evidence.file_sha256 if ev.evidence else None, summary, rows)


def _note_capture(sha: str | None, summary: Summary, rows: dict[str, dict[str, Any]]) -> None:
    if sha and sha not in rows and summary.files:
        rows[sha] = summary.files[-1]


def _count_alert(a: Event, s: Summary, rows: dict[str, dict[str, Any]]) -> None:
    s.alerts += 1
    s.alerts_by_rule[(a.rule.id if a.rule else "?", a.rule.name if a.rule else "?", a.event.severity or 0)] += 1
    row = rows.get(a.evidence.file_sha256 or "") if a.evidence else None
    if row is not None:
        row["alerts"] += 1


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
    workers: bool = True,
    engine: str = "native",
    anomaly: Any = None,
    remap: Mapping[str, Mapping[str, str]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Captures → events topic → detection → alerts topic → store and files. Returns the summary.

    `on_progress(bytes read, size)` follows the decoding of each capture on the embedded bus (the web
    console's progress bar); `progress` is the terminal's.

    `anomaly` (a `detection.anomaly.AnomalyEngine`) runs beside the rules on the embedded bus.

    On Kafka (`settings.bus`, or a Kafka `bus`) the events are published, then — unless `workers`
    is false — the detect and index stages run in this process as their own consumer groups, as
    separate `qinling detect` / `qinling index` workers would, until they have consumed everything
    published; `out` then receives the alerts read back from the store."""
    if bus is None and settings.uses_kafka:
        bus = open_bus(settings, client_id="qinling-replay", topics=None if workers else [settings.topic(TOPIC_EVENTS)])
    if bus is not None and not isinstance(bus, EmbeddedBus):
        if anomaly is not None:
            raise SystemExit("qinling: anomaly detection (--learn-first/--model) runs on the embedded bus only for now")
        return replay_kafka(paths, settings, bus, out=out, events_out=events_out, store=store, progress=progress,
                            ports=ports, workers=workers, engine=engine)
    with fewer_collections():
        return _replay_embedded(paths, settings, out=out, events_out=events_out, store=store, progress=progress, bus=bus,
                                ports=ports, engine=engine, anomaly=anomaly, remap=remap, on_progress=on_progress)


@contextlib.contextmanager
def fewer_collections(gen0: int = GC_GEN0) -> Iterator[None]:
    """Python's cycle collector runs every `gen0` net container allocations instead of every 700.

    A replay allocates millions of short-lived, acyclic structs (events, alerts, rule matches); at
    the default threshold the collector walks the young ones again and again (measured on the 200k
    mix: 11-20 % of the replay's wall time). Restored on the way out."""
    old = gc.get_threshold()
    gc.set_threshold(max(gen0, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _replay_embedded(paths: Sequence[str | Path], settings: Settings, *, out: IO[bytes] | None,
                     events_out: IO[bytes] | None, store: Store | None, progress: bool, bus: Bus | None,
                     ports: Mapping[str, Sequence[int]] | None, engine: str, anomaly: Any,
                     remap: Mapping[str, Mapping[str, str]] | None,
                     on_progress: Callable[[int, int], None] | None) -> Summary:
    summary = Summary()
    wiring = Wiring(settings, summary, out=out, events_out=events_out, store=store, bus=bus,
                    extra=[anomaly] if anomaly is not None else ())
    if decode_process.wanted(settings.replay_decode_process, paths, engine):
        # Decoding on a core of its own; this process detects and stores (console/decode_process.py).
        source = decode_process.DecodedRecords(paths, settings, summary, progress=progress, ports=ports, engine=engine,
                                               remap=remap, on_progress=on_progress)
        batches = iter(source)  # a generator: close() runs its cleanup
        put = wiring.put_record
        try:
            for sha, records in batches:
                wiring.note_capture(sha)
                for key, value in records:
                    put(value, key)
            summary.decode_process_cpu = source.cpu_seconds
            return wiring.finish()
        except StoreWriteError as e:
            total = wiring._sent + sum(len(r) for _, r in batches)
            raise StoreError(_store_failure(e, total)) from e
        finally:
            batches.close()  # stops the decode process now, on an error or Ctrl-C too
    events = decode_files(paths, settings, summary, progress=progress, ports=ports, engine=engine, remap=remap,
                          on_progress=on_progress)
    try:
        for ev in events:
            wiring.put(ev)
        return wiring.finish()
    except StoreWriteError as e:
        total = wiring._sent + sum(1 for _ in events)  # decoded only, to say exactly how many were not stored
        raise StoreError(_store_failure(e, total)) from e


def _store_failure(e: StoreWriteError, total_events: int) -> str:
    what = "the disk under the store is full" if e.disk_full else "the store refused a write"
    stored_events = e.stored.get("event", 0)
    return (f"{what} ({e.cause}). Stored by this run, intact: {stored_events} of {total_events} event(s) and "
            f"{e.stored.get('alert', 0)} alert(s). NOT stored: {total_events - stored_events} event(s) (the failed batch of "
            f"{e.failed} record(s) and everything after it) and the alerts they would raise. Nothing past what was stored "
            "was marked consumed: free space (or use another --store) and run the same command again; what is already "
            "stored is not stored twice.")


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
    """Live capture from `iface` through the same wiring; runs until `stop` is set, `count` or `timeout`.

    On Kafka the sensor only publishes its events (detect and index workers do the rest), through a
    bounded disk spool (`spool_dir`, `spool_max_bytes`, pipeline.spool): capture goes on while the
    broker is unreachable, and the summary's notes say how much was buffered, dropped or left on disk."""
    from sensors.live import sniff_events

    if settings.uses_kafka:
        return _live_kafka(iface, bpf, settings, stop=stop, count=count, timeout=timeout, ports=ports, on_started=on_started,
                           ignored=[x for x, v in (("--out", out), ("the store", store)) if v is not None])
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


SPOOL_DELIVERY_TIMEOUT_MS = 600_000  # a batch in flight when the broker went away is retried (idempotently) this long
SPOOL_DRAIN_TIMEOUT = 30.0  # seconds a stopping sensor waits for its backlog; the rest stays on disk for the next start


def _live_kafka(iface: str, bpf: str | None, settings: Settings, *, stop: Any, count: int | None, timeout: float | None,
                ports: Mapping[str, Sequence[int]] | None, on_started: Any, ignored: Sequence[str]) -> Summary:
    """Live capture → disk spool → the events topic."""
    from pipeline.spool import Spool, SpooledProducer
    from sensors.live import sniff_events

    summary = Summary()
    topic = settings.topic(TOPIC_EVENTS)
    bus = open_bus(settings, client_id="qinling-sensor")
    bus.delivery_timeout_ms = SPOOL_DELIVERY_TIMEOUT_MS  # type: ignore[attr-defined]
    spool = Spool(Path(settings.spool_dir) / settings.observer_id, settings.spool_max_bytes)
    if spool.stats.recovered:
        log.warning("sensor: %d event(s) left in %s by a previous run are sent first", spool.stats.recovered, spool.dir)
    producer = SpooledProducer(spool, bus.producer)
    if ignored:
        summary.warnings.append(f"on Kafka the sensor only publishes to {topic}; {' and '.join(ignored)} are written by the detect/index workers")

    def on_events(events: Sequence[Event]) -> None:
        for ev in events:
            summary.events[ev.event.dataset] += 1
            producer.send(topic, schema.encode(ev), key=_key(ev))
        producer.flush()

    try:
        sniff_events(iface, bpf, on_events, stop_event=stop, count=count, timeout=timeout, registry=registry(ports), on_started=on_started,
                     organization_id=settings.organization_id, observer_id=settings.observer_id)
    finally:
        stats = producer.close(timeout=SPOOL_DRAIN_TIMEOUT)
        bus.close()
    report = stats.summary(spool.dir)
    (summary.warnings if stats.dropped or stats.pending or stats.resent else summary.notes).append(report)
    return summary


_key = asset_key  # events and alerts are keyed by asset on both buses (pipeline.keys)


# ---------------------------------------------------------------- Kafka: workers and replay


def _caught_up(committed: Mapping[tuple[str, int], int], topic: str, start: Mapping[int, int], end: Mapping[int, int]) -> bool:
    """Every partition that received records between `start` and `end` is committed up to `end`."""
    return all(committed.get((topic, p), 0) >= off for p, off in end.items() if off > start.get(p, 0))


def detect_worker(settings: Settings, bus: Bus, *, max_records: int = BATCH, rewind: int | None = None,
                  on_alerts: Any = None, before_commit: Any = None, anomaly: Any = None) -> Any:
    """A DetectWorker consuming the events topic as group `settings.detect_group` (`anomaly`: an AnomalyEngine beside the rules)."""
    from detection.worker import DetectWorker

    engine, assets = load_engine(settings)
    n = settings.detect_rewind if rewind is None else rewind
    topics = settings.events_topics()
    consumer = bus.consumer(topics, group=settings.detect_group, rewind=n) if n and not isinstance(bus, EmbeddedBus) else \
        bus.consumer(topics, group=settings.detect_group)  # type: ignore[call-arg]
    return DetectWorker(engine, assets, consumer, bus.producer(), alerts_topic=settings.topic(TOPIC_ALERTS),
                        max_records=max_records, on_alerts=on_alerts, before_commit=before_commit, anomaly=anomaly)


def run_detect(settings: Settings, stop: threading.Event, *, bus: Bus | None = None, store: Store | None = None,
               assets_every: float = 30.0, **kw: Any) -> Any:
    """`qinling detect`: run until `stop`; the asset inventory goes to `store` every `assets_every` s and at the end."""
    own = bus is None
    bus = bus or open_bus(settings, client_id="qinling-detect")
    worker = detect_worker(settings, bus, **kw)
    last = [time.monotonic()]

    def write_assets(_w: Any = None, force: bool = False) -> None:
        if store is None or (not force and time.monotonic() - last[0] < assets_every):
            return
        from pipeline.exceptions import StoreError

        try:
            store.write_assets(worker.assets.snapshot())
            store.flush()
            last[0] = time.monotonic()
        except StoreError as e:
            log.warning("detect: asset inventory not written (%s); trying again later", e)

    try:
        worker.run(stop, on_idle=write_assets)
        worker.finish()
        write_assets(force=True)
    finally:
        worker.consumer.close()  # leave the group now: the partitions move at once, not after the session timeout
        if own:
            bus.close()
    return worker.stats


def run_index(settings: Settings, stop: threading.Event, store: Store, *, bus: Bus | None = None, until: Any = None,
              max_records: int = BATCH) -> Any:
    """`qinling index`: events and alerts → store, committing after each store flush; until `stop` or `until`."""
    from pipeline.deadletter import DeadLetters
    from pipeline.indexer import run_indexer

    own = bus is None
    bus = bus or open_bus(settings, client_id="qinling-index")
    consumer = bus.consumer([*settings.events_topics(), settings.topic(TOPIC_ALERTS)], group=settings.index_group)
    dead = DeadLetters(settings.dead_letter_dir, "index")
    try:
        return run_indexer(consumer, store, stop=stop, until=until, max_records=max_records, dead_letter=dead.put)
    finally:
        consumer.close()
        if own:
            bus.close()


def replay_kafka(
    paths: Sequence[str | Path],
    settings: Settings,
    bus: Bus,
    *,
    out: IO[bytes] | None = None,
    events_out: IO[bytes] | None = None,
    store: Store | None = None,
    progress: bool = False,
    ports: Mapping[str, Sequence[int]] | None = None,
    workers: bool = True,
    timeout: float = 600.0,
    engine: str = "native",
) -> Summary:
    """Publish every event, then run detect and index in this process until all of it is consumed."""
    from pipeline.kafka_bus import KafkaBus

    assert isinstance(bus, KafkaBus)
    t_events, t_alerts = settings.topic(TOPIC_EVENTS), settings.topic(TOPIC_ALERTS)
    summary = Summary()
    rows: dict[str, dict[str, Any]] = {}
    ev_start = bus.end_offsets(t_events)
    al_start = bus.end_offsets(t_alerts) if workers else {}  # a sensor account may not even describe the alerts topic
    producer = bus.producer()
    pending: list[Event] = []
    for ev in decode_files(paths, settings, summary, progress=progress, ports=ports, engine=engine):
        _note_file(ev, summary, rows)
        producer.send(t_events, schema.encode(ev), key=asset_key(ev))
        if events_out is not None:
            pending.append(ev)
            if len(pending) >= BATCH:
                events_out.write(schema.encode_many(pending))
                pending = []
    producer.flush()
    if events_out is not None and pending:
        events_out.write(schema.encode_many(pending))
    ev_end = bus.end_offsets(t_events)
    if not workers:
        summary.warnings.append(f"--no-workers: events published to {t_events}; `qinling detect` and `qinling index` workers take it from there")
        return summary

    stop = threading.Event()
    alert_ids: list[str] = []
    raised: list[Event] = []

    def on_alerts(alerts: list[Event]) -> None:
        for a in alerts:
            alert_ids.append(a.event.id or "")
            if store is None and out is not None:
                raised.append(a)
            _count_alert(a, summary, rows)

    detector = detect_worker(settings, bus, rewind=0, on_alerts=on_alerts, max_records=max(BATCH, 20000))
    deadline = time.monotonic() + timeout
    detect_done = threading.Event()
    al_end: dict[int, int] = {}
    errors: list[BaseException] = []

    def index() -> None:
        assert store is not None
        try:
            run_index(settings, stop, store, bus=bus, until=lambda st: detect_done.is_set()
                      and _caught_up(st.committed, t_events, ev_start, ev_end)
                      and _caught_up(st.committed, t_alerts, al_start, al_end))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)
            stop.set()

    indexer = threading.Thread(target=index, name="qinling-index", daemon=True) if store is not None else None
    if indexer is not None:
        indexer.start()
    try:
        detector.run(stop, until=lambda w: _caught_up(w.stats.committed, t_events, ev_start, ev_end) or time.monotonic() > deadline)
        detector.finish(stop)
        detector.producer.flush()
        al_end.update(bus.end_offsets(t_alerts))
        detect_done.set()
        if indexer is not None:
            while indexer.is_alive() and time.monotonic() < deadline:
                indexer.join(0.5)
            if indexer.is_alive():
                stop.set()
                indexer.join(30)
                raise BusError(f"replay: the index stage did not catch up within {timeout:.0f}s")
    finally:
        stop.set()
        detector.consumer.close()
    if errors:
        raise errors[0]
    if not _caught_up(detector.stats.committed, t_events, ev_start, ev_end):
        raise BusError(f"replay: the detect stage did not consume every event within {timeout:.0f}s")
    summary.assets = len(detector.assets)
    if store is not None:
        store.write_assets(detector.assets.snapshot())
        store.flush()
    if out is not None:
        # With a store the file holds what the store holds (read back), else what the detector raised.
        out.write(schema.encode_many(_read_back(store, alert_ids) if store is not None else raised))
        out.flush()
    return summary


def _read_back(store: Store, ids: Sequence[str]) -> list[Event]:
    """The alerts with these ids as the store holds them, in the order given (first occurrence)."""
    ids = list(dict.fromkeys(ids))
    found: dict[str, Event] = {}
    for i in range(0, len(ids), 1000):
        for a in store.get_many("alerts", ids[i : i + 1000]):
            if a.event.id:
                found[a.event.id] = a
    missing = [i for i in ids if i not in found]
    if missing:
        from pipeline.exceptions import StoreError

        raise StoreError(f"replay: {len(missing)} alert(s) are not in the store after indexing (first: {missing[0]})")
    return [found[i] for i in ids]
