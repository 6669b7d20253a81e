"""The bus every stage talks to: topics of keyed records, batches, commit after the sink flushed.

Two implementations share this interface: `EmbeddedBus` (in-process, the default) and the Kafka bus
(`pipeline.kafka_bus`). No stage knows which one it runs on.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

TOPIC_EVENTS = "events"
TOPIC_ALERTS = "alerts"


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    offset: int
    partition: int = 0


class Producer(ABC):
    @abstractmethod
    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """Block until every record sent so far is durable on the bus."""

    def close(self) -> None:
        self.flush()


class Consumer(ABC):
    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        """Next batch (possibly empty after `timeout` seconds)."""

    @abstractmethod
    def commit(self) -> None:
        """Acknowledge everything returned by `poll` so far. Call only after the sink flushed."""

    def close(self) -> None:
        pass


class Bus(ABC):
    @abstractmethod
    def producer(self) -> Producer: ...

    @abstractmethod
    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A consumer that starts at the group's last committed position (a crash replays, never loses)."""

    def close(self) -> None:
        pass


class EmbeddedBus(Bus):
    """In-process log per topic with committed offsets per consumer group.

    Retention: once every group that consumes a topic has committed past a record, the record is
    dropped (a long replay holds only what is in flight). A group that first subscribes after that
    starts at the oldest record still kept, as a Kafka group past the retention would.
    """

    def __init__(self) -> None:
        self._logs: dict[str, list[Record]] = {}
        self._base: dict[str, int] = {}  # offset of each log's first kept record
        self._committed: dict[tuple[str, str], int] = {}
        self._groups: dict[str, set[str]] = {}  # topic -> groups consuming it
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._waiting = 0  # consumers blocked in poll(): only they need waking by an append

    def producer(self) -> Producer:
        return _EmbeddedProducer(self)

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        return _EmbeddedConsumer(self, list(topics), group)

    def _append(self, topic: str, key: bytes | None, value: bytes) -> None:
        with self._lock:  # the condition's own lock, without Condition.__enter__'s Python frame
            log = self._logs.get(topic)
            if log is None:
                log = self._logs[topic] = []
            log.append(Record(topic, key, value, self._base.get(topic, 0) + len(log)))
            if self._waiting:
                self._cond.notify_all()

    def _read(self, topic: str, pos: int, n: int) -> list[Record]:
        base = self._base.get(topic, 0)
        log = self._logs.get(topic, [])
        start = max(pos - base, 0)
        return log[start : start + n]

    def _join(self, group: str, topic: str) -> int:
        self._groups.setdefault(topic, set()).add(group)
        return max(self._committed.get((group, topic), 0), self._base.get(topic, 0))

    def _commit(self, group: str, topic: str, pos: int) -> None:
        self._committed[(group, topic)] = pos
        done = min(self._committed.get((g, topic), 0) for g in self._groups.get(topic, {group}))
        base = self._base.get(topic, 0)
        if done > base:
            del self._logs.setdefault(topic, [])[: done - base]
            self._base[topic] = done

    def size(self, topic: str) -> int:
        """Records ever appended to `topic` (its next offset)."""
        with self._cond:
            return self._base.get(topic, 0) + len(self._logs.get(topic, ()))

    def retained(self, topic: str) -> int:
        """Records of `topic` still held in memory."""
        with self._cond:
            return len(self._logs.get(topic, ()))


class _EmbeddedProducer(Producer):
    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self._bus._append(topic, key, value)

    def flush(self) -> None:
        pass  # appends are synchronous


class _EmbeddedConsumer(Consumer):
    def __init__(self, bus: EmbeddedBus, topics: list[str], group: str) -> None:
        self._bus, self._topics, self._group = bus, topics, group
        with bus._cond:
            self._pos = {t: bus._join(group, t) for t in topics}

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        with self._bus._cond:
            while True:
                out: list[Record] = []
                for t in self._topics:
                    take = self._bus._read(t, self._pos[t], max_records - len(out))
                    self._pos[t] += len(take)
                    out.extend(take)
                    if len(out) >= max_records:
                        break
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                self._bus._waiting += 1
                try:
                    self._bus._cond.wait(remaining)
                finally:
                    self._bus._waiting -= 1

    def commit(self) -> None:
        with self._bus._cond:
            for t, pos in self._pos.items():
                self._bus._commit(self._group, t, pos)
