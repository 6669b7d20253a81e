"""The index stage: consume events and alerts from the bus, write them to the store, then commit.

    stop = threading.Event()
    stats = run_indexer(bus.consumer(["events", "alerts"], group="index"), store, stop=stop)

A batch is committed only after it is durable in the store: `store.write` and `store.flush`
succeeded, or, for a store with `write_encoded` (Elasticsearch), that call returned (a `_bulk`
request the node acknowledged after writing its translog; the records' bytes are indexed as they
are, without decoding them into events). Such a store is refreshed (made searchable) when the
consumer goes idle and at the end, not after every batch: its own refresh interval (1 s) covers a
busy stream, and a refresh per batch cost more than the writes. When the store fails
(`StoreError`: node down, 429/503, paused), the batch is kept, the loop backs off (doubling up to
`max_backoff`) and writes the same batch again; nothing is committed meanwhile, so a crash or a
SIGTERM during an outage leaves those records to be delivered again (`IndexStats.unstored` says
how many). Writes are idempotent by `event.id`, so a redelivered record is harmless. Bus errors
(broker restarting) are retried too.

A record the store will never accept (not an encoded event, refused by the mapping; on an
enterprise topic also another organization's event) is not retried: the rest of its batch is
stored and committed, and the record goes to the dead letters (pipeline.deadletter) with its
reason, so one bad record neither stalls the stage nor disappears.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import schema
from .bus import Consumer, Record
from .exceptions import BusError, RejectedError, StoreError
from .kafka_acl import TOPIC_PREFIX, forged
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
    malformed: int = 0  # records on an enterprise topic that are not events: not stored (logged)
    forged: int = 0  # events on an enterprise topic naming another organization: not stored (logged)
    rejected: int = 0  # records the store refused (not an event, refused by the mapping): not stored (logged)
    dead_letters: int = 0  # of malformed + forged + rejected, those kept in the dead letters
    unstored: int = 0  # stopped during a store outage: records of the last batch neither stored nor committed
    # (topic, partition) -> next offset committed by this indexer
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


def run_indexer(
    consumer: Consumer,
    store: Store,
    *,
    stop: threading.Event,
    until: Callable[[IndexStats], bool] | None = None,
    max_records: int = 5000,
    poll_timeout: float = 0.5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    on_batch: Callable[[list[Record]], None] | None = None,
    dead_letter: Callable[[Record, str], object] | None = None,
) -> IndexStats:
    """Index until `stop` is set or `until(stats)` is true (checked after every batch and idle poll).

    `dead_letter(record, reason)` keeps each record that will never be stored (e.g.
    `DeadLetters(dir, "index").put`); without it such records are only logged and counted."""
    stats = IndexStats()
    delay = backoff
    raw_writes = hasattr(store, "write_encoded")  # durable without a flush: refresh only when idle and at the end
    unrefreshed = False
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
            if unrefreshed:  # idle: make what was written searchable now rather than at the next refresh
                unrefreshed = not _refresh(store)
            continue
        set_aside: list[tuple[Record, str]] = []
        kept = _screen(batch, stats, set_aside) if any(r.topic.startswith(TOPIC_PREFIX) for r in batch) else batch
        written = _write(store, kept, stop, stats, backoff, max_backoff) if kept else (0, {})
        if written is None:
            stats.unstored = len(batch)
            return stats  # stopped during an outage: nothing committed, the batch is delivered again
        n_alerts, rejected = written
        for pos, why in sorted(rejected.items()):
            r = kept[pos]
            stats.rejected += 1
            log.error("index: record %s/%d@%d will not be stored: %s", r.topic, r.partition, r.offset, why)
            set_aside.append((r, why))
        if set_aside and not _set_aside(set_aside, dead_letter, stop, stats, backoff, max_backoff):
            stats.unstored = len(batch)
            return stats  # the dead letters cannot be written: commit nothing, the batch comes again
        unrefreshed = raw_writes
        _commit(consumer, stop, stats, backoff, max_backoff)
        for r in batch:
            stats.committed[(r.topic, r.partition)] = max(stats.committed.get((r.topic, r.partition), 0), r.offset + 1)
        stats.records += len(batch)
        stats.batches += 1
        stats.alerts += n_alerts
        stats.events += len(kept) - len(rejected) - n_alerts
        if on_batch is not None:
            on_batch(batch)
    if unrefreshed:
        _refresh(store)
    return stats


def _screen(batch: list[Record], stats: IndexStats, set_aside: list[tuple[Record, str]]) -> list[Record]:
    """Records from enterprise sensors' topics (`ent.<org>.events`, pipeline.kafka_acl) are untrusted:
    keep those that are events of that enterprise; count and log the rest (malformed: not an event;
    forged: another organization's id). They are committed with the batch, so one bad record can
    never stall the index stage for every other enterprise."""
    kept: list[Record] = []
    for r in batch:
        if r.topic.startswith(TOPIC_PREFIX):
            try:
                ev = schema.decode_event(r.value)
            except (ValueError, TypeError) as e:  # msgspec's DecodeError and ValidationError
                stats.malformed += 1
                log.warning("index: record %s/%d@%d is not an event (%s): not stored", r.topic, r.partition, r.offset, e)
                set_aside.append((r, f"not an event ({e})"))
                continue
            if forged(r.topic, ev):
                stats.forged += 1
                org = ev.organization.id if ev.organization else None
                log.warning("index: event %s on %s names organization %r: not stored", ev.event.id, r.topic, org)
                set_aside.append((r, f"forged: names organization {org!r} on {r.topic}"))
                continue
        kept.append(r)
    return kept


def _write(store: Store, batch: list[Record], stop: threading.Event, stats: IndexStats, backoff: float,
           max_backoff: float) -> tuple[int, dict[int, str]] | None:
    """Write the batch durably: (alerts written, {position: reason} of records never storable), or
    None when stopped during an outage.

    A store with `write_encoded` (Elasticsearch) takes the records' bytes as they are and is durable
    when it returns; the others get decoded events and a `flush`."""
    write_encoded = getattr(store, "write_encoded", None)
    rejected: dict[int, str] = {}
    docs = None
    if write_encoded is None:
        docs = []
        for pos, r in enumerate(batch):
            try:
                docs.append(schema.decode_event(r.value))
            except (ValueError, TypeError) as e:  # msgspec's DecodeError and ValidationError
                rejected[pos] = f"not an encoded event ({e})"
    delay = backoff
    while True:
        try:
            if docs is None:
                return int(write_encoded([r.value for r in batch])), rejected
            store.write(docs)
            store.flush()
            return sum(1 for d in docs if d.event.kind == "alert"), rejected
        except RejectedError as e:  # the others are written; these never will be
            return e.alerts, e.rejected
        except StoreError as e:
            stats.store_errors += 1
            log.warning("index: %d record(s) not stored yet (%s); keeping the batch, retrying in %.1fs", len(batch), e, delay)
        if stop.wait(delay):
            return None
        delay = min(delay * 2, max_backoff)


def _set_aside(records: list[tuple[Record, str]], dead_letter: Callable[[Record, str], object] | None,
               stop: threading.Event, stats: IndexStats, backoff: float, max_backoff: float) -> bool:
    """Hand records that will never be stored to the dead letters; False when stopped before that worked."""
    if dead_letter is None:
        return True
    delay = backoff
    todo = list(records)
    while todo:
        r, why = todo[0]
        try:
            dead_letter(r, why)
        except StoreError as e:
            log.error("index: %s; retrying in %.1fs", e, delay)
            if stop.wait(delay):
                return False
            delay = min(delay * 2, max_backoff)
            continue
        stats.dead_letters += 1
        todo.pop(0)
    return True


def _refresh(store: Store) -> bool:
    """Make written records searchable (they are durable already); a failure only delays that."""
    try:
        store.flush()
        return True
    except StoreError as e:
        log.warning("index: refresh failed (%s); the store's own refresh interval will do it", e)
        return False


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
