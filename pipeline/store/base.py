"""The query interface every store implements: filters, pagination, counts by field and time bucket."""

from __future__ import annotations

import datetime as dt
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from ..schema import Asset, Event

Index = Literal["events", "alerts", "assets"]
T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """What to select. Every store honours every field; tenancy (`organization`) is enforced here."""

    # dotted serialized field -> value, or a list/tuple of values (any of them)
    filters: Mapping[str, Any] = field(default_factory=dict)
    start: dt.datetime | None = None  # on @timestamp (assets: last_seen), inclusive
    end: dt.datetime | None = None  # exclusive
    text: str | None = None  # case-insensitive substring over message / rule name / ips
    organization: str | None = None  # when set, only this enterprise's documents
    sort: str = "@timestamp"
    descending: bool = True
    page: int = 1  # 1-based
    size: int = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size)) if self.size else 1


class Store(ABC):
    @abstractmethod
    def write(self, events: Sequence[Event]) -> None:
        """Events and alerts (routed by `event.kind`); idempotent by `event.id`."""

    @abstractmethod
    def write_assets(self, assets: Sequence[Asset]) -> None:
        """Upsert by `Asset.id`."""

    @abstractmethod
    def search(self, index: Literal["events", "alerts"], query: Query) -> Page[Event]: ...

    @abstractmethod
    def search_assets(self, query: Query) -> Page[Asset]: ...

    @abstractmethod
    def get(self, index: Literal["events", "alerts"], doc_id: str) -> Event | None: ...

    @abstractmethod
    def get_many(self, index: Literal["events", "alerts"], doc_ids: Sequence[str]) -> list[Event]: ...

    @abstractmethod
    def count_by(self, index: Index, field: str, query: Query, top: int = 10) -> list[tuple[Any, int]]:
        """Most frequent values of `field` among matching documents, most frequent first."""

    @abstractmethod
    def histogram(self, index: Literal["events", "alerts"], query: Query, interval: dt.timedelta) -> list[tuple[dt.datetime, int]]:
        """Document counts per time bucket of @timestamp (buckets aligned to the epoch, empty ones omitted)."""

    def flush(self) -> None:
        """Make writes durable and visible to searches."""

    def close(self) -> None:
        self.flush()
