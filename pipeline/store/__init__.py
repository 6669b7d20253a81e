"""Stores for events, alerts and assets behind one query interface (SQLite | Elasticsearch)."""

from .base import Facet, Page, Query, Store

__all__ = ["Facet", "Page", "Query", "Store", "open_store"]


def open_store(url: str) -> Store:
    """`sqlite:///relative/path.sqlite`, `sqlite:////absolute/path.sqlite`, `sqlite://` (in memory), or
    `http(s)://host:9200` (Elasticsearch). SQLite URLs follow SQLAlchemy's convention: three slashes
    then the path, so a fourth slash makes it absolute."""
    if url.startswith("sqlite:"):
        from .sqlite import SQLiteStore

        rest = url.removeprefix("sqlite:").removeprefix("//")
        path = rest.removeprefix("/") if rest.startswith("/") else rest
        return SQLiteStore(path or ":memory:")
    if url.startswith(("http://", "https://")):
        from .elastic import ElasticStore  # type: ignore[import-not-found]

        return ElasticStore(url)  # type: ignore[no-any-return]
    from ..exceptions import StoreError

    raise StoreError(f"unknown store URL {url!r}: use sqlite:///PATH or http://HOST:9200 (see docs/settings.md)")
