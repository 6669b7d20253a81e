"""The console's handle on the store: opened lazily, once per app, from the STORE_URL setting."""

from __future__ import annotations

import threading

from flask import Flask, current_app

from pipeline.store import Store, open_store

EXTENSION = "qinling.store"
FALLBACK_URL = "sqlite:///var/qinling.sqlite"


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: Store | None = None


def init_app(app: Flask) -> None:
    """Registers the holder; nothing connects until the first request needs data."""
    app.extensions[EXTENSION] = _Holder()


def store_url(app: Flask) -> str:
    return str(app.config.get("STORE_URL") or app.config.get("STORE") or FALLBACK_URL)


def get_store() -> Store:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    holder: _Holder = app.extensions[EXTENSION]
    with holder.lock:
        if holder.store is None:
            holder.store = open_store(store_url(app))
        return holder.store


def close_store(app: Flask) -> None:
    holder: _Holder = app.extensions[EXTENSION]
    with holder.lock:
        if holder.store is not None:
            holder.store.close()
            holder.store = None
