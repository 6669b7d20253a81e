"""The web console: an app factory, one blueprint per area, and `serve()` for the command line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import secrets

from flask import Flask

from . import matrix, notices, province, triage  # 监测预警 triage, ATT&CK matrix, 通报应急, 省级态势
from . import admin, alerts, api, assets, auth, captures, errors, evidence, formatting, i18n, overview, store
from . import api_risk, assessment, inventory, risk, security
from . import dashboard, events  # 企业看板, 事件检索
from . import anomaly  # 学习模型, 检测评估

DEFAULTS: dict[str, Any] = {
    # sqlite:///PATH or http(s)://HOST:9200; when unset, QINLING_STORE (the pipeline's setting) is used
    "STORE_URL": None,
    "LANGUAGE": "zh-CN",  # default UI language: zh-CN | en (each browser may switch)
    "ORGANIZATION": None,  # when set, this console only ever reads this enterprise's data
    "TIMEZONE": "UTC",  # times are shown and typed in this IANA zone, e.g. Asia/Shanghai
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 500,
    "SECRET_KEY": "dev-only-change-me",  # signs the pre-login CSRF cookie; replaced by a random key outside tests
    # the console database (users, sessions, tokens, audit log, enterprises); default beside a SQLite
    # store (var/qinling.sqlite -> var/qinling-console.sqlite), else var/console.sqlite
    "CONSOLE_DB": None,
    # None: Secure cookies when the request came over HTTPS (e.g. behind a TLS proxy with ProxyFix);
    # True/False forces it. Set True in production behind TLS.
    "SESSION_COOKIE_SECURE": None,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_LIFETIME_HOURS": 8,
    "ARGON2": None,  # PasswordHasher keyword arguments; None: argon2-cffi's defaults (RFC 9106 low-memory)
    "PROXY_FIX": 0,  # number of trusted reverse proxies in front (X-Forwarded-For/-Proto), 0: none
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_prefixed_env("QINLING")
    else:
        app.config.update(test_config)
    if app.config["SECRET_KEY"] == DEFAULTS["SECRET_KEY"] and not app.config.get("TESTING"):
        app.config["SECRET_KEY"] = secrets.token_hex(32)  # only signs short-lived pre-login CSRF tokens
    if int(app.config.get("PROXY_FIX") or 0):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    store.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    formatting.init_app(app)
    errors.init_app(app)
    security.init_app(app)  # CSP, no framing, nosniff, referrer and opener policies on every response
    captures.init_app(app)
    for bp in (overview.bp, alerts.bp, assets.bp, admin.directory, admin.bp, captures.bp, evidence.bp, captures.api,
               evidence.api, api.bp, api.legacy):
        app.register_blueprint(bp)
    for bp in (inventory.bp, risk.bp, assessment.bp, api_risk.api):  # 资产 map and findings, 风险, 检查评估 (+ /api/v1)
        app.register_blueprint(bp)
    for bp in (triage.bp, matrix.bp, notices.bp, notices.api, province.bp):
        app.register_blueprint(bp)
    for bp in (events.bp, events.api, dashboard.bp, dashboard.api):
        app.register_blueprint(bp)
    for bp in (anomaly.bp, anomaly.api):
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
    console_db: str | None = None,
    csaf_index: str | None = None,
) -> None:
    """Serve the console until interrupted (werkzeug's threaded server: fine for a plant's SOC)."""
    from werkzeug.serving import run_simple

    app = create_app(
        {"STORE_URL": store_url, "LANGUAGE": language, "ORGANIZATION": organization, "TIMEZONE": timezone,
         "CONSOLE_DB": console_db, **({"CSAF_INDEX": csaf_index} if csaf_index else {})}
    )
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        store.close_store(app)
        auth.close_db(app)


__all__ = ["DEFAULTS", "create_app", "serve"]
