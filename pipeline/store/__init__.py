"""Stores for events, alerts and assets behind one query interface (SQLite | Elasticsearch)."""

from .base import Page, Query, Store

__all__ = ["Page", "Query", "Store", "open_store"]


def open_store(url: str) -> Store:
    """`sqlite:///path/to/db.sqlite`, `sqlite://:memory:` or `http(s)://host:9200` (Elasticsearch)."""
    if url.startswith("sqlite:"):
        from .sqlite import SQLiteStore

        path = url.removeprefix("sqlite://")
        return SQLiteStore(path.removeprefix("/") if path.startswith("/:memory:") else path or ":memory:")
    if url.startswith(("http://", "https://")):
        from .elastic import ElasticStore  # type: ignore[import-not-found]

        return ElasticStore(url)  # type: ignore[no-any-return]
    from ..exceptions import StoreError

    raise StoreError(f"unknown store URL {url!r}: use sqlite:///PATH or http://HOST:9200")
