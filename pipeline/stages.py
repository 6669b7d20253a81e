"""Pipeline stages: a source yields batches, a sink has add() and flush(); commit follows flush."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from .bus import Consumer

T = TypeVar("T")


class Sink(ABC, Generic[T]):
    @abstractmethod
    def add(self, item: T) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """Make everything added durable; raise if it could not be (the batch is then replayed)."""


class ListSink(Sink[T]):
    """Keeps items in memory (tests, the CLI's --out files are written from here)."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._pending: list[T] = []

    def add(self, item: T) -> None:
        self._pending.append(item)

    def flush(self) -> None:
        self.items.extend(self._pending)
        self._pending.clear()


def drain(
    consumer: Consumer,
    process: Callable[[Sequence[bytes]], Iterable[T]],
    sinks: Sequence[Sink[T]],
    *,
    max_records: int = 1000,
    timeout: float = 0.0,
    stop_when_idle: bool = True,
) -> int:
    """Poll batches, process them, add results to every sink, flush, then commit. Returns records read."""
    total = 0
    while True:
        batch = consumer.poll(max_records=max_records, timeout=timeout)
        if not batch:
            if stop_when_idle:
                return total
            continue
        total += len(batch)
        for item in process([r.value for r in batch]):
            for s in sinks:
                s.add(item)
        for s in sinks:
            s.flush()
        consumer.commit()
