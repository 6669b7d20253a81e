"""The index stage: consume events and alerts from the bus, write them to the store, then commit.

    stop = threading.Event()
    stats = run_indexer(bus.consumer(["events", "alerts"], group="index"), store, stop=stop)

A batch is committed only after `store.write` and `store.flush` succeeded. When the store fails
(`StoreError`: node down, 429/503, paused), the batch is kept, the loop backs off (doubling up to
`max_backoff`) and writes the same batch again; nothing is committed meanwhile, so a crash or a
SIGTERM during an outage leaves those records to be delivered again. Writes are idempotent by
`event.id`, so a redelivered record is harmless. Bus errors (broker restarting) are retried too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import schema
from .bus import Consumer, Record
from .exceptions import BusError, StoreError
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class IndexStats:
    records: int = 0
    events: int = 0
    alerts: int = 0
    batches: int = 0
    store_errors: int = 0
    bus_errors: int = 0
    # (topic, partition) -> next offset committed by this indexer
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


def run_indexer(
    consumer: Consumer,
    store: Store,
    *,
    stop: threading.Event,
    until: Callable[[IndexStats], bool] | None = None,
    max_records: int = 2000,
    poll_timeout: float = 0.5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    on_batch: Callable[[list[Record]], None] | None = None,
) -> IndexStats:
    """Index until `stop` is set or `until(stats)` is true (checked after every batch and idle poll)."""
    stats = IndexStats()
    delay = backoff
    while not stop.is_set():
        if until is not None and until(stats):
            break
        try:
            batch = consumer.poll(max_records=max_records, timeout=poll_timeout)
        except BusError as e:
            stats.bus_errors += 1
            log.warning("index: poll failed (%s); retrying in %.1fs", e, delay)
            stop.wait(delay)
            delay = min(delay * 2, max_backoff)
            continue
        delay = backoff
        if not batch:
            continue
        docs = [schema.decode_event(r.value) for r in batch]
        if not _write(store, docs, stop, stats, backoff, max_backoff):
            return stats  # stopped during an outage: nothing committed, the batch is delivered again
        _commit(consumer, stop, stats, backoff, max_backoff)
        for r in batch:
            stats.committed[(r.topic, r.partition)] = max(stats.committed.get((r.topic, r.partition), 0), r.offset + 1)
        stats.records += len(batch)
        stats.batches += 1
        n_alerts = sum(1 for d in docs if d.event.kind == "alert")
        stats.alerts += n_alerts
        stats.events += len(docs) - n_alerts
        if on_batch is not None:
            on_batch(batch)
    return stats


def _write(store: Store, docs: list[schema.Event], stop: threading.Event, stats: IndexStats, backoff: float, max_backoff: float) -> bool:
    delay = backoff
    while True:
        try:
            store.write(docs)
            store.flush()
            return True
        except StoreError as e:
            stats.store_errors += 1
            log.warning("index: %d record(s) not stored yet (%s); keeping the batch, retrying in %.1fs", len(docs), e, delay)
        if stop.wait(delay):
            return False
        delay = min(delay * 2, max_backoff)


def _commit(consumer: Consumer, stop: threading.Event, stats: IndexStats, backoff: float, max_backoff: float) -> None:
    """Commit; on failure retry a few times, then go on: the next commit covers these records too,
    and a record delivered again is only written again (idempotent)."""
    delay = backoff
    for _ in range(2):  # then go on: the next commit covers these records too
        try:
            consumer.commit()
            return
        except BusError as e:
            stats.bus_errors += 1
            log.warning("index: commit failed (%s); retrying in %.1fs", e, delay)
        if stop.wait(delay):
            return
        delay = min(delay * 2, max_backoff)
