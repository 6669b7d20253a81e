"""The OpenAPI 3.1 document of `/api/v1`, written by hand beside the routes it describes.

Events, alerts and assets are described by the pipeline's own schema (msgspec generates it from the
frozen structs, `additionalProperties: false` throughout), so the document cannot drift from what
the store returns. A test checks that every /api/v1 route is documented and every documented path
is a route, and schemathesis calls each operation against the app.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from pipeline.schema import Asset, Event

from .accounts import ROLES

VERSION = "1.0.0"

_ERROR_CODES = {
    "400": "The arguments or body are not valid; `message` says which.",
    "401": "Not signed in, or the session or token is not valid.",
    "403": "Signed in, but this role may not do that (or the CSRF token is missing).",
    "404": "No such record, or it belongs to another enterprise.",
    "413": "The upload is larger than the console's MAX_UPLOAD_BYTES (200 MiB by default).",
    "415": "The body must be application/json.",
    "429": "Too many failed logins for this user from this address; try again later.",
    "503": "The data store is unavailable.",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: {"description": _ERROR_CODES[c], "content": {"application/json": {"schema": _ref("ApiError")}}}
            for c in codes}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _q(name: str, description: str, schema: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}, **kw}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}


PAGING = [
    _q("page", "1-based page number", {"type": "integer", "minimum": 1, "maximum": 1_000_000}),
    _q("size", "items per page (at most the console's MAX_PAGE_SIZE, 500 by default)",
       {"type": "integer", "minimum": 1, "maximum": 500}),
]
ORG = _q("org", "only this enterprise (roles that see every enterprise; ignored for enterprise users, "
                "who only ever see their own)")
TIME = {"type": "string", "description": "ISO 8601, or YYYY-MM-DD[ HH:MM[:SS]] in the console's time zone"}


def _paged(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "total", "page", "size", "pages"],
        "properties": {
            "items": {"type": "array", "items": item},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "size": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": False,
    }


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "total"], "additionalProperties": False,
            "properties": {"items": {"type": "array", "items": item}, "total": {"type": "integer", "minimum": 0}}}


def _get(summary: str, tag: str, ok: dict[str, Any], *errors: str, params: list[dict[str, Any]] | None = None,
         public: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {"200": ok, **_errors(*errors)}}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


def _own_schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    counted = {"type": ["integer", "null"], "minimum": 0}
    return {
        "ApiError": {
            "type": "object", "required": ["error", "message"], "additionalProperties": False,
            "properties": {"error": {"type": "string", "description": "snake_case HTTP reason, e.g. not_found"},
                           "message": {"type": "string", "description": "what was wrong, in the UI language"}},
        },
        "ApiUser": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "username", "role", "organization", "display_name", "disabled", "created_at"],
            "properties": {
                "id": {"type": "integer"}, "username": {"type": "string"},
                "role": {"type": "string", "enum": list(ROLES)},
                "organization": {**nullable_str, "description": "the enterprise an enterprise user is bound to"},
                "display_name": {"type": "string"}, "disabled": {"type": "boolean"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
        "ApiSession": {
            "type": "object", "required": ["user", "csrf_token"], "additionalProperties": False,
            "properties": {"user": _ref("ApiUser"),
                           "csrf_token": {"type": "string", "description": "send as X-CSRF-Token on state-changing calls made with the session cookie"}},
        },
        "ApiCredentials": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}},
        },
        "ApiEnterprise": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "name", "city", "industry", "alerts", "assets"],
            "properties": {
                "id": {"type": "string", "description": "the organization.id on its events"},
                "name": {"type": "string"}, "city": {"type": "string", "description": "prefecture-level city"},
                "industry": {"type": "string"},
                "alerts": {**counted, "description": "null for roles that read no traffic data"},
                "assets": counted,
            },
        },
        "ApiAuditEntry": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "@timestamp", "actor", "action", "target", "outcome", "ip", "detail"],
            "properties": {
                "id": {"type": "integer"}, "@timestamp": {"type": "string", "format": "date-time"},
                "actor": {"type": "string", "description": "username, or cli:<os user> for `qinling users`"},
                "action": {"type": "string", "description": "login, logout, user.add, user.passwd, user.disable, user.enable, token.create, ..."},
                "target": {"type": "string"}, "outcome": {"type": "string", "enum": ["success", "failure", "locked"]},
                "ip": {"type": "string"}, "detail": {"type": "object"},
            },
        },
        "ApiEvidence": {
            "type": "object", "required": ["events", "missing"], "additionalProperties": False,
            "properties": {"events": {"type": "array", "items": _ref("Event")},
                           "missing": {"type": "array", "items": {"type": "string"},
                                       "description": "event ids the alert names that are not in the events index (or not yours)"}},
        },
        "ApiCapture": {
            "type": "object", "additionalProperties": False,
            "required": ["sha256", "organization", "name", "size", "format", "uploader", "uploaded_at", "status",
                         "progress", "packets", "events", "alerts", "warnings", "error", "started_at", "finished_at"],
            "properties": {
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "organization": {"type": "string", "description": "the enterprise it is replayed for"},
                "name": {"type": "string", "description": "the uploaded file's name, cleaned; shown only"},
                "size": {"type": "integer", "minimum": 0}, "format": {"type": "string", "enum": ["pcap", "pcapng"]},
                "uploader": {"type": "string"}, "uploaded_at": {"type": "string", "format": "date-time"},
                "status": {"type": "string", "enum": ["queued", "replaying", "done", "failed"]},
                "progress": {"type": "integer", "minimum": 0, "maximum": 100, "description": "percent of the file read"},
                "packets": {"type": "integer", "minimum": 0}, "events": {"type": "integer", "minimum": 0},
                "alerts": {"type": "integer", "minimum": 0},
                "warnings": {"type": "array", "items": {"type": "string"}, "description": "e.g. a truncated capture"},
                "error": {"type": "string", "description": "why the replay failed; empty otherwise"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "finished_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "ApiCaptureUpload": {
            "type": "object", "required": ["capture"],
            "properties": {
                "capture": {"type": "string", "format": "binary", "description": "a pcap or pcapng file"},
                "org": {"type": "string", "description": "enterprise to replay for (ignored for enterprise users)"},
            },
        },
        "ApiOverview": {
            "type": "object", "additionalProperties": False,
            "required": ["alerts", "events", "assets", "by_severity", "top_rules", "top_protocols", "top_ips"],
            "properties": {
                "alerts": {"type": "integer"}, "events": {"type": "integer"}, "assets": {"type": "integer"},
                "by_severity": {"type": "object", "required": ["critical", "high", "medium", "low"],
                                "additionalProperties": {"type": "integer"}},
                "top_rules": {"type": "array", "items": {"type": "object", "required": ["id", "name", "count"],
                              "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "count": {"type": "integer"}}}},
                "top_protocols": {"type": "array", "items": {"type": "object", "required": ["protocol", "count"],
                                  "properties": {"protocol": {"type": "string"}, "count": {"type": "integer"}}}},
                "top_ips": {"type": "array", "items": {"type": "object", "required": ["ip", "count"],
                            "properties": {"ip": {"type": "string"}, "count": {"type": "integer"}}}},
            },
        },
    }


def _casework(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """监测预警 triage (console/web/triage.py) and 通报应急 notices (console/web/notices.py)."""
    from .notices import SEVERITIES, STATES as NOTICE_STATES, TRANSITIONS as NOTICE_ACTIONS
    from .triage import ACTIONS, STATES

    def errors(*codes: str) -> dict[str, Any]:
        more = {"409": "The action is not possible from the record's current state."}
        return {c: {"description": more.get(c) or _ERROR_CODES[c], "content": {"application/json": {"schema": _ref("ApiError")}}}
                for c in codes}

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}

    text, when = {"type": "string"}, {"type": "string", "format": "date-time"}
    maybe = {"type": ["string", "null"]}
    schemas.update({
        "ApiTriage": {
            "type": "object", "additionalProperties": False,
            "required": ["alert_id", "state", "assignee", "updated_at", "updated_by", "history"],
            "properties": {
                "alert_id": text, "state": {"type": "string", "enum": list(STATES)}, "assignee": maybe,
                "updated_at": maybe, "updated_by": maybe,
                "history": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["@timestamp", "actor", "action", "state", "note", "detail"],
                    "properties": {"@timestamp": text, "actor": text, "action": {"type": "string", "enum": list(ACTIONS)},
                                   "state": {"type": "string", "enum": list(STATES)}, "note": text, "detail": {"type": "object"}}}},
            },
        },
        "ApiTriageAction": {
            "type": "object", "required": ["action"],
            "properties": {"action": {"type": "string", "enum": list(ACTIONS)}, "note": text,
                           "assignee": {"type": "string", "description": "assign: an analyst's or admin's username"},
                           "days": {"type": "integer", "minimum": 1, "maximum": 365, "description": "suppress: for how long"}},
        },
        "ApiNoticeFile": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "sha256", "filename", "content_type", "size", "uploaded_by", "@timestamp"],
            "properties": {"id": {"type": "integer"}, "sha256": text, "filename": text, "content_type": text,
                           "size": {"type": "integer"}, "uploaded_by": text, "@timestamp": text},
        },
        "ApiNotice": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "organization", "title", "body", "severity", "deadline", "state", "overdue", "alert_ids",
                         "finding_ids", "remediation", "created_by", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer"}, "organization": text, "title": text, "body": text,
                "severity": {"type": "string", "enum": list(SEVERITIES)}, "deadline": when,
                "state": {"type": "string", "enum": list(NOTICE_STATES)},
                "overdue": {"type": "boolean", "description": "past the deadline and not closed"},
                "alert_ids": {"type": "array", "items": text}, "finding_ids": {"type": "array", "items": text},
                "remediation": text, "created_by": text, "created_at": text, "updated_at": text,
                "history": {"type": "array", "items": {"type": "object"}},
                "files": {"type": "array", "items": _ref("ApiNoticeFile")},
            },
        },
        "ApiNoticeNew": {
            "type": "object", "required": ["organization", "title", "deadline", "alert_ids"],
            "properties": {"organization": text, "title": text, "body": text,
                           "severity": {"type": "string", "enum": list(SEVERITIES)}, "deadline": when,
                           "alert_ids": {"type": "array", "items": text, "minItems": 1},
                           "finding_ids": {"type": "array", "items": text}},
        },
        "ApiNoticeAction": {
            "type": "object", "required": ["action"],
            "properties": {"action": {"type": "string", "enum": list(NOTICE_ACTIONS)}, "note": text,
                           "remediation": {"type": "string", "description": "answer: what the enterprise did"}},
        },
    })
    alert_id = [_path_param("alert_id", "event.id of the alert")]
    notice_id = [_path_param("notice_id", "the notice's id")]
    paths.update({
        "/api/v1/alerts/{alert_id}/triage": {
            "get": _get("Triage state and history of an alert", "triage", _json(_ref("ApiTriage")), "401", "403", "404", "503",
                        params=alert_id),
            "post": {"summary": "A triage action (analyst, admin; comment: anyone who may read the alert)", "tags": ["triage"],
                     "parameters": alert_id, "requestBody": body("ApiTriageAction"),
                     "responses": {"200": _json(_ref("ApiTriage")), **errors("400", "401", "403", "404", "409")}},
        },
        "/api/v1/notices": {
            "get": _get("Notices (通报); enterprise users: their own", "notices", _json(_listed(_ref("ApiNotice"))),
                        "400", "401", "403", params=[
                            _q("state", "only this state (open: not closed)", {"type": "string", "enum": [*NOTICE_STATES, "open"]}),
                            _q("overdue", "only overdue ones", {"type": "string", "enum": ["1", "0"]}), ORG]),
            "post": {"summary": "Issue a notice to an enterprise (regulator, admin)", "tags": ["notices"],
                     "requestBody": body("ApiNoticeNew"),
                     "responses": {"201": _json(_ref("ApiNotice"), "Issued"), **errors("400", "401", "403")}},
        },
        "/api/v1/notices/{notice_id}": {
            "get": _get("One notice with its history and files", "notices", _json(_ref("ApiNotice")), "401", "403", "404",
                        params=notice_id)},
        "/api/v1/notices/{notice_id}/actions": {
            "post": {"summary": "acknowledge, answer (the enterprise); close, return (regulator, admin)", "tags": ["notices"],
                     "parameters": notice_id, "requestBody": body("ApiNoticeAction"),
                     "responses": {"200": _json(_ref("ApiNotice")), **errors("400", "401", "403", "404", "409")}}},
    })


@functools.cache
def _document() -> dict[str, Any]:
    (_event, _asset), components = msgspec.json.schema_components((Event, Asset), ref_template="#/components/schemas/{name}")
    schemas = {**components, **_own_schemas()}
    alert_params = [
        _q("severity", "any of these levels (repeat the argument)",
           {"type": "array", "items": {"type": "string", "enum": ["critical", "high", "medium", "low"]}},
           style="form", explode=True),
        _q("protocol", "network.protocol, e.g. modbus"),
        _q("rule", "rule.id, e.g. qn-modbus-0003"),
        _q("technique", "ATT&CK for ICS technique id, e.g. T0855"),
        _q("asset", "an IP address on either side", {"type": "string", "format": "ip"}),
        _q("from", "@timestamp at or after", TIME),
        _q("to", "@timestamp before (after `from`)", TIME),
        _q("q", "case-insensitive text in the message, rule name or IPs"),
        _q("triage", "triage state (open: not closed; closed: resolved or false_positive)",
           {"type": "string", "enum": ["new", "acknowledged", "in_progress", "escalated", "resolved", "false_positive",
                                       "open", "closed"]}),
        _q("suppressed", "hide: leave out alerts an active suppression covers; only: just those",
           {"type": "string", "enum": ["hide", "only"]}),
        ORG, *PAGING,
    ]
    asset_params = [_q("protocol", "a protocol the asset speaks"), _q("role", "e.g. modbus_slave"),
                    _q("q", "IP, MAC, vendor or product"), ORG, *PAGING]
    data_errors = ("400", "401", "403", "503")
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {"get": _get("This document", "meta", _json({"type": "object"}), public=True)},
        "/api/v1/session": {
            "post": {
                "summary": "Sign in: opens a cookie session (the response's csrf_token goes in X-CSRF-Token)",
                "tags": ["session"], "security": [],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ApiCredentials")}}},
                "responses": {"200": _json(_ref("ApiSession"), "Signed in; Set-Cookie carries the new session id"),
                              **_errors("400", "401", "415", "429")},
            },
            "get": _get("Who is signed in", "session", _json(_ref("ApiSession")), "401"),
            "delete": {"summary": "Sign out (with a cookie session, send X-CSRF-Token)", "tags": ["session"],
                       "responses": {"204": {"description": "Signed out"}, **_errors("401", "403")}},
        },
        "/api/v1/alerts": {"get": _get("Alerts (监测预警), newest first", "alerts", _json(_paged(_ref("Event"))),
                                       *data_errors, params=alert_params)},
        "/api/v1/alerts/{alert_id}": {"get": _get("One alert", "alerts", _json(_ref("Event")), "401", "403", "404", "503",
                                                  params=[_path_param("alert_id", "event.id of the alert")])},
        "/api/v1/alerts/{alert_id}/evidence": {
            "get": _get("The events that triggered an alert", "alerts", _json(_ref("ApiEvidence")), "401", "403", "404", "503",
                        params=[_path_param("alert_id", "event.id of the alert")])},
        "/api/v1/alerts/{alert_id}/evidence.zip": {
            "get": {"summary": "Evidence export (检查评估): pcap slice of the alert's frames, its events (JSON lines), the "
                               "alert, REPORT.md with hashes and the command that reproduces it",
                    "tags": ["captures"], "parameters": [_path_param("alert_id", "event.id of the alert")],
                    "responses": {"200": {"description": "a zip", "content": {"application/zip": {
                                  "schema": {"type": "string", "format": "binary"}}}},
                                  **_errors("401", "403", "404", "503")}}},
        "/api/v1/captures": {
            "get": _get("Uploaded captures and their replay status (auditors: every enterprise; enterprise users: their own)",
                        "captures", _json(_listed(_ref("ApiCapture"))), "401", "403", params=[ORG]),
            "post": {
                "summary": "Upload a capture (multipart field `capture`) and queue its replay for enterprise `org`",
                "tags": ["captures"],
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _ref("ApiCaptureUpload")}}},
                "responses": {"202": _json(_ref("ApiCapture"), "Stored and queued for replay"),
                              "200": _json(_ref("ApiCapture"), "Already uploaded for this enterprise: nothing new queued"),
                              **_errors("400", "401", "403", "413", "503")},
            },
        },
        "/api/v1/captures/{sha256}": {
            "get": _get("One capture: replay status and progress (poll it)", "captures", _json(_ref("ApiCapture")),
                        "401", "403", "404", params=[_path_param("sha256", "SHA-256 of the capture file"), ORG])},
        "/api/v1/assets": {"get": _get("Asset inventory, most recently seen first", "assets",
                                       _json(_paged(_ref("Asset"))), *data_errors, params=asset_params)},
        "/api/v1/assets/{asset_id}": {"get": _get("One asset", "assets", _json(_ref("Asset")), "401", "403", "404", "503",
                                                  params=[_path_param("asset_id", "Asset.id, e.g. ent-a:10.0.0.10")])},
        "/api/v1/overview": {"get": _get("Situational-awareness counts (态势感知)", "overview", _json(_ref("ApiOverview")),
                                         *data_errors, params=[ORG])},
        "/api/v1/enterprises": {"get": _get("Enterprises (an enterprise user: its own) with alert and asset counts",
                                            "enterprises", _json(_listed(_ref("ApiEnterprise"))), "401", "503",
                                            params=[ORG])},
        "/api/v1/users": {"get": _get("Console users (admin, auditor)", "admin", _json(_listed(_ref("ApiUser"))), "401", "403")},
        "/api/v1/audit": {"get": _get("Audit log, newest first (admin, auditor)", "admin",
                                      _json(_paged(_ref("ApiAuditEntry"))), "400", "401", "403",
                                      params=[_q("actor", "only this actor"), _q("action", "only this action"), *PAGING])},
    }
    _casework(schemas, paths)
    from . import anomaly, dashboard, events  # 事件检索, 企业看板: each area describes its own routes

    events.describe(schemas, paths)
    dashboard.describe(schemas, paths)
    anomaly.describe(schemas, paths)  # 学习模型, 检测评估
    from . import api_risk  # 风险, 资产通信, 漏洞, 检查评估

    api_risk.describe(schemas, paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Qinling console API",
            "version": VERSION,
            "description": "工业互联网安全态势感知平台 — the console's data as JSON. Sign in with POST /api/v1/session "
                           "(cookie session + CSRF header) or send `Authorization: Bearer <token>` "
                           "(tokens from `qinling users token NAME`). Enterprise users only ever see their own "
                           "enterprise's documents; a foreign id answers 404.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "tags": [{"name": t} for t in ("session", "overview", "dashboard", "alerts", "events", "assets", "captures", "enterprises", "anomaly", "risk", "assessment", "admin", "meta")],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token from `qinling users token`"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "qinling_session"},
            },
        },
    }


def document() -> dict[str, Any]:
    import copy

    return copy.deepcopy(_document())
