"""The detect stage as a worker: events from the bus → DetectionEngine + AssetTracker → alerts onto the bus.

    worker = DetectWorker(engine, assets, consumer, producer, alerts_topic="alerts")
    worker.run(stop)                        # until stop is set (SIGTERM), or `until(worker)` holds

One micro-batch at a time: poll until `max_records` records or the bus is idle for a poll, merge
the batch's partitions by event time (each partition stays in its own order), run the engine,
publish the alerts, flush the producer, and only then commit. A crash therefore replays records
rather than losing them, and the alerts they raise again carry the same deterministic ids, which
stores write idempotently.

State (threshold windows, new-terms, suppression, assets) lives in this worker's memory. Events
are keyed by asset (`pipeline.keys`), so one asset's traffic reaches one worker in order. When a
worker takes a partition over, a consumer made with `rewind=N` re-reads up to N records before
the committed offset (`warmup_positions`): they rebuild the windows and publish nothing (their
alerts were published by the previous owner before it committed). Records this worker already
applied (a redelivery after a broker restart or failed commit) are skipped, so nothing is counted
twice in a window.

Anomaly detection (`anomaly=`, a `detection.anomaly.engine.AnomalyEngine` holding one site's model)
runs beside the rules on the same records and its alerts take the same path (published, flushed,
then committed). Between two micro-batches, at most every `reload_every` seconds, the worker asks
the engine to swap in its model directory's current version (`reload_if_changed`): a model
retrained meanwhile replaces the old one at a batch boundary, with the detectors' state kept, so
no alert of a batch in flight is lost or raised twice. A model that fails to load (other site,
bad checksum) is logged and the old one kept.

Limitation, by design: rules keyed by *source* across assets (an address sweep over several PLCs,
a ListIdentity scan) see only the assets of this worker's partitions; with several workers such
a sweep may be split and detected late or not at all. One worker (or one partition) sees all.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline import schema
from pipeline.bus import Consumer, Producer, Record
from pipeline.exceptions import BusError
from pipeline.kafka_acl import forged
from pipeline.keys import asset_key
from pipeline.schema import Event

from .anomaly.exceptions import AnomalyError
from .assets import AssetTracker
from .engine import DetectionEngine

if TYPE_CHECKING:
    from .anomaly.engine import AnomalyEngine

log = logging.getLogger(__name__)
TP = tuple[str, int]


@dataclass
class DetectStats:
    records: int = 0  # consumed and applied
    warmup: int = 0  # re-read to rebuild state (no alerts published)
    skipped: int = 0  # redelivered records already applied by this worker
    alerts: int = 0
    batches: int = 0
    bus_errors: int = 0
    malformed: int = 0  # records that are not events: skipped (counted, logged)
    forged: int = 0  # events on an enterprise's topic naming another organization: refused (pipeline.kafka_acl)
    model_reloads: int = 0  # anomaly model versions swapped in while running
    model_errors: int = 0  # retrained models that failed to load (the old one was kept)
    committed: dict[TP, int] = field(default_factory=dict)  # (topic, partition) -> next offset committed


class DetectWorker:
    def __init__(
        self,
        engine: DetectionEngine,
        assets: AssetTracker,
        consumer: Consumer,
        producer: Producer,
        *,
        alerts_topic: str,
        max_records: int = 2000,
        poll_timeout: float = 0.2,
        linger: float = 0.2,  # at most this long gathering a batch: bounds the latency a quiet stream adds
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        on_alerts: Callable[[list[Event]], None] | None = None,
        before_commit: Callable[[list[Record]], None] | None = None,
        anomaly: AnomalyEngine | None = None,
        reload_every: float = 5.0,
    ) -> None:
        self.engine, self.assets = engine, assets
        self.consumer, self.producer = consumer, producer
        self.alerts_topic = alerts_topic
        self.max_records, self.poll_timeout, self.linger = max_records, poll_timeout, linger
        self.backoff, self.max_backoff = backoff, max_backoff
        self.on_alerts = on_alerts
        self.before_commit = before_commit
        self.anomaly, self.reload_every = anomaly, reload_every
        self._checked = time.monotonic()
        self.stats = DetectStats()
        self._applied: dict[TP, int] = {}  # next offset not yet applied to the engine's state

    # ------------------------------------------------------------ one micro-batch
    def _gather(self, stop: threading.Event) -> list[Record]:
        batch = self.consumer.poll(max_records=self.max_records, timeout=self.poll_timeout)
        if not batch:
            return batch
        deadline = time.monotonic() + self.linger
        while len(batch) < self.max_records and time.monotonic() < deadline and not stop.is_set():
            more = self.consumer.poll(max_records=self.max_records - len(batch), timeout=min(self.poll_timeout, 0.05))
            if not more:
                break
            batch.extend(more)
        return batch

    def _ordered(self, batch: list[Record]) -> Iterable[tuple[Record, Event]]:
        """The batch's partitions merged by event time; each partition keeps its offset order.

        A record that is not an event (a sensor account can write any bytes to its topic) is counted
        in `stats.malformed`, logged and skipped: it must not stop detection for everyone else."""
        parts: dict[TP, list[tuple[Record, Event]]] = {}
        for r in batch:
            try:
                ev = schema.decode_event(r.value)
            except (ValueError, TypeError) as e:  # msgspec.DecodeError / ValidationError are ValueErrors
                self.stats.malformed += 1
                log.warning("detect: record %s/%d@%d is not an event (%s): skipped", r.topic, r.partition, r.offset, e)
                continue
            parts.setdefault((r.topic, r.partition), []).append((r, ev))
        if len(parts) == 1:
            return next(iter(parts.values()))
        return heapq.merge(*(parts[k] for k in sorted(parts)), key=lambda re: re[1].timestamp)

    def reload_model(self, force: bool = False) -> bool:
        """Between batches: swap in the anomaly model directory's current version if it changed."""
        if self.anomaly is None or (not force and time.monotonic() - self._checked < self.reload_every):
            return False
        self._checked = time.monotonic()
        try:
            swapped = self.anomaly.reload_if_changed()
        except AnomalyError as e:
            self.stats.model_errors += 1
            log.warning("detect: new anomaly model not loaded, keeping the current one: %s", e)
            return False
        if swapped:
            self.stats.model_reloads += 1
            log.info("detect: anomaly model %s of site %r now in use", self.anomaly.version, self.anomaly.site)
        return swapped

    def _detect(self, ev: Event) -> list[Event]:
        raised = self.engine.process(ev)
        if self.anomaly is not None:
            more = self.anomaly.process(ev)
            if more:
                raised = [*raised, *more]
        return raised

    def step(self, stop: threading.Event) -> int:
        """Consume, detect, publish, commit one micro-batch. Returns the records it consumed."""
        self.reload_model()
        batch = self._gather(stop)
        if not batch:
            return 0
        warm = getattr(self.consumer, "warmup_positions", None) or {}
        alerts: list[Event] = []
        for r, ev in self._ordered(batch):
            tp = (r.topic, r.partition)
            if r.offset < self._applied.get(tp, -1):
                self.stats.skipped += 1
                continue
            self._applied[tp] = r.offset + 1
            if forged(r.topic, ev):  # a sensor stamped another enterprise's id on its own topic's events
                self.stats.forged += 1
                log.warning("detect: event %s on %s names organization %r: refused", ev.event.id, r.topic,
                            ev.organization.id if ev.organization else None)
                continue
            raised = self._detect(ev)
            self.assets.observe(ev)
            if r.offset < warm.get(tp, -1):
                self.stats.warmup += 1  # state only: the previous owner published these alerts
                continue
            self.stats.records += 1
            for a in raised:
                self.assets.note_alert(a)
            alerts.extend(raised)
        if not self._publish(alerts, stop):
            return len(batch)  # stopped before the alerts were durable: commit nothing
        if self.before_commit is not None:
            self.before_commit(batch)
        self._commit(stop)
        for r in batch:
            tp = (r.topic, r.partition)
            self.stats.committed[tp] = max(self.stats.committed.get(tp, 0), r.offset + 1)
        self.stats.batches += 1
        self.stats.alerts += len(alerts)
        if alerts and self.on_alerts is not None:
            self.on_alerts(alerts)
        return len(batch)

    def _publish(self, alerts: list[Event], stop: threading.Event) -> bool:
        """Send and flush; on a bus error send the whole list again (same ids: duplicates are harmless)."""
        delay = self.backoff
        while True:
            try:
                for a in alerts:
                    self.producer.send(self.alerts_topic, schema.encode(a), key=asset_key(a))
                self.producer.flush()
                return True
            except BusError as e:
                self.stats.bus_errors += 1
                log.warning("detect: %d alert(s) not acknowledged (%s); sending again in %.1fs", len(alerts), e, delay)
            if stop.wait(delay):
                return False
            delay = min(delay * 2, self.max_backoff)

    def _commit(self, stop: threading.Event) -> None:
        delay = self.backoff
        for _ in range(2):  # then go on: the next commit covers these records too
            try:
                self.consumer.commit()
                return
            except BusError as e:
                self.stats.bus_errors += 1
                log.warning("detect: commit failed (%s); retrying in %.1fs", e, delay)
            if stop.wait(delay):
                return
            delay = min(delay * 2, self.max_backoff)

    # ------------------------------------------------------------ the loop
    def run(self, stop: threading.Event, until: Callable[[DetectWorker], bool] | None = None,
            on_idle: Callable[[DetectWorker], None] | None = None) -> DetectStats:
        """Run micro-batches until `stop` is set or `until(self)` holds; bus errors are retried."""
        delay = self.backoff
        while not stop.is_set():
            if until is not None and until(self):
                break
            try:
                n = self.step(stop)
            except BusError as e:
                self.stats.bus_errors += 1
                log.warning("detect: %s; retrying in %.1fs", e, delay)
                stop.wait(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            delay = self.backoff
            if n == 0 and on_idle is not None:
                on_idle(self)
        return self.stats

    def finish(self, stop: threading.Event | None = None) -> list[Event]:
        """End of input: publish whatever the engines still hold (a polling cycle that stopped at the end)."""
        held = self.engine.finish()
        if self.anomaly is not None:
            held = [*held, *self.anomaly.finish()]
        if held and self._publish(held, stop or threading.Event()):
            for a in held:
                self.assets.note_alert(a)
            self.stats.alerts += len(held)
            if self.on_alerts is not None:
                self.on_alerts(held)
        return held
