"""The web console: an app factory, one blueprint per area, and `serve()` for the command line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import alerts, api, assets, errors, formatting, i18n, overview, store

DEFAULTS: dict[str, Any] = {
    # sqlite:///PATH or http(s)://HOST:9200; when unset, QINLING_STORE (the pipeline's setting) is used
    "STORE_URL": None,
    "LANGUAGE": "zh-CN",  # default UI language: zh-CN | en (each browser may switch)
    "ORGANIZATION": None,  # when set, this console only ever reads this enterprise's data
    "TIMEZONE": "UTC",  # times are shown and typed in this IANA zone, e.g. Asia/Shanghai
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 500,
    "SECRET_KEY": "dev-only-change-me",
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_prefixed_env("QINLING")
    else:
        app.config.update(test_config)
    store.init_app(app)
    i18n.init_app(app)
    formatting.init_app(app)
    errors.init_app(app)
    for bp in (overview.bp, alerts.bp, assets.bp, api.bp):
        app.register_blueprint(bp)
    return app


def serve(
    store_url: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    language: str = "zh-CN",
    *,
    organization: str | None = None,
    timezone: str = "UTC",
) -> None:
    """Serve the console until interrupted (werkzeug's threaded server: fine for a plant's SOC)."""
    from werkzeug.serving import run_simple

    app = create_app(
        {"STORE_URL": store_url, "LANGUAGE": language, "ORGANIZATION": organization, "TIMEZONE": timezone}
    )
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        store.close_store(app)


__all__ = ["DEFAULTS", "create_app", "serve"]
