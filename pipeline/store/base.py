"""The query interface every store implements: filters, pagination, counts by field and time bucket, facets."""

from __future__ import annotations

import datetime as dt
import ipaddress
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

    # dotted serialized field -> value, or a list/tuple of values (any of them). On IP fields (`*.ip`,
    # `related.ip`, an asset's `ip`) a value may be an `ipaddress.ip_network(...)`: any address inside it.
    filters: Mapping[str, Any] = field(default_factory=dict)
    start: dt.datetime | None = None  # on @timestamp (assets: last_seen), inclusive
    end: dt.datetime | None = None  # exclusive
    text: str | None = None  # case-insensitive substring over message / rule name / ips
    organization: str | None = None  # when set, only this enterprise's documents
    sort: str = "@timestamp"
    descending: bool = True
    page: int = 1  # 1-based
    size: int = 50
    # None: Page.total is the exact number of matches. N: matches are counted up to N only (cheaper on
    # big text searches); beyond N, Page.total is N and Page.exact False ("at least N").
    total_limit: int | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int
    exact: bool = True  # False: total is a lower bound (Query.total_limit reached)
    more: bool = False  # with an inexact total: at least one document follows this page

    @property
    def pages(self) -> int:
        """Pages to offer; with an inexact total, up to this page and one past it while documents follow."""
        n = max(1, math.ceil(self.total / self.size)) if self.size else 1
        return n if self.exact else max(n, self.page + self.more)


@dataclass(frozen=True)
class Facet:
    """One field's most frequent values among the documents a Query selects (a terms aggregation).

    `buckets` are ordered like `count_by` (count descending, then value ascending), and a value's count is
    the number of documents that adding `{field: value}` to the query's filters would select (for a list
    field: documents holding that value). `missing` counts the selected documents without a value (a list
    field: an empty one) — what `{field: None}` would select.
    """

    field: str
    buckets: list[tuple[Any, int]]
    missing: int


def ip_network(value: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A network filter value as both stores compare it: IPv4-mapped IPv6 networks become IPv4 ones
    (Elasticsearch stores ::ffff:a.b.c.d as a.b.c.d)."""
    if isinstance(value, ipaddress.IPv6Network) and value.prefixlen >= 96 and value.network_address.ipv4_mapped:
        v4 = value.network_address.ipv4_mapped
        return str(ipaddress.IPv4Network(f"{v4}/{value.prefixlen - 96}"))
    return str(value)


def is_network(value: Any) -> bool:
    return isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network))


def is_ip_field(name: str) -> bool:
    """Fields holding IP addresses (mapped as `ip` in Elasticsearch): the only ones a network may filter."""
    return name.rsplit(".", 1)[-1] == "ip"


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
    def facets(self, index: Index, fields: Sequence[str], query: Query, top: int = 10) -> dict[str, Facet]:
        """`Facet` of each field (duplicates once) among the documents `query` selects, read together."""

    @abstractmethod
    def histogram(self, index: Literal["events", "alerts"], query: Query, interval: dt.timedelta) -> list[tuple[dt.datetime, int]]:
        """Document counts per time bucket of @timestamp (buckets aligned to the epoch, empty ones omitted)."""

    def flush(self) -> None:
        """Make writes durable and visible to searches."""

    def close(self) -> None:
        self.flush()
