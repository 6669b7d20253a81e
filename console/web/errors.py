"""Error pages: HTML for people, `{"error", "message"}` JSON under /api, always the real status."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError, ServiceUnavailable

from pipeline.exceptions import QueryError, StoreError

from .i18n import _


def _wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def handle_http(e: HTTPException) -> ResponseReturnValue:
    code = e.code or 500
    # werkzeug's stock English text unless the code that aborted said something specific
    stock = type(e).description
    message = e.description if e.description and e.description != stock else _(f"error.{code}.message")
    if message == f"error.{code}.message":
        message = stock or e.name
    if _wants_json():
        error = e.name.lower().replace(" ", "_").replace("'", "")
        response = jsonify({"error": error, "message": message})
        response.status_code = code
        if code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="qinling"'
        return response
    title = _(f"error.{code}.title")
    if title == f"error.{code}.title":
        title = e.name
    return render_template("error.html", code=code, title=title, message=message), code


def handle_query_error(e: QueryError) -> ResponseReturnValue:
    return handle_http(BadRequest(str(e)))


def handle_store_error(e: StoreError) -> ResponseReturnValue:
    current_app.logger.error("store unavailable: %s", e)
    return handle_http(ServiceUnavailable(_("error.store", detail=str(e))))


def handle_internal(e: InternalServerError) -> ResponseReturnValue:
    if e.original_exception is not None:
        current_app.logger.exception("unhandled error", exc_info=e.original_exception)
    return handle_http(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(InternalServerError, handle_internal)
    app.register_error_handler(QueryError, handle_query_error)
    app.register_error_handler(StoreError, handle_store_error)
