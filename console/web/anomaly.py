"""学习模型 and 检测评估: each site's anomaly model (phase, age, training window, features, library
versions, hash, last retrain) and the latest `qinling evaluate` figures, as pages and as JSON.

Models are read from MODEL_ROOT (`qinling learn`'s default var/models/<site>); evaluation records
from EVALUATIONS_DIR (`qinling evaluate`'s default var/evaluations). Both default to folders beside
the console database. A site is an enterprise (organization id): enterprise users see their own
site's model only. Evaluation records are the product's accuracy on labelled testbed scenarios;
an enterprise user does not see a record made for another enterprise's site.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template
from flask.typing import ResponseReturnValue

from detection.anomaly.records import evaluations, site_models

from .auth import LOGGED_IN, NO_ORGANIZATION, console_db_path, current_user, get_db, organization, requires

bp = Blueprint("anomaly", __name__, url_prefix="/anomaly")
api = Blueprint("anomaly_api", __name__, url_prefix="/api/v1/anomaly")
HISTORY = 10


def _folder(app: Flask, key: str, name: str) -> Path:
    configured = app.config.get(key)
    return Path(configured) if configured else Path(console_db_path(app)).resolve().parent / name


def model_root() -> Path:
    return _folder(current_app, "MODEL_ROOT", "models")


def evaluations_dir() -> Path:
    return _folder(current_app, "EVALUATIONS_DIR", "evaluations")


def models() -> list[dict[str, Any]]:
    """Every site this user may read: its model, or phase `learning` for an enterprise with no model yet."""
    org = organization()
    if org == NO_ORGANIZATION:
        return []
    rows = [m for m in site_models(model_root()) if org is None or m["site"] == org]
    known = {m["site"] for m in rows}
    for e in get_db().enterprises(only=org):
        if e.id not in known:
            rows.append({"site": e.id, "phase": "learning"})
    names = {e.id: e.name for e in get_db().enterprises(only=org)}
    for m in rows:
        m["name"] = names.get(m["site"])
    return sorted(rows, key=lambda m: m["site"])


def _visible(record: dict[str, Any]) -> bool:
    user = current_user()
    if user is None:
        return False
    if user.sees_all:
        return True
    site = record.get("site")
    return site == user.organization or site not in {e.id for e in get_db().enterprises()}


def history() -> list[dict[str, Any]]:
    return [r for r in evaluations(evaluations_dir(), limit=HISTORY * 3) if _visible(r)][:HISTORY]


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    d = dt.timedelta(seconds=seconds)
    if d.days:
        return f"{d.days}d {d.seconds // 3600}h"
    return f"{d.seconds // 3600}h {d.seconds % 3600 // 60}m" if d.seconds >= 3600 else f"{d.seconds // 60}m {d.seconds % 60}s"


@bp.app_template_filter("model_age")
def _model_age(seconds: int | None) -> str:
    return _age(seconds)


@bp.get("/models")
@requires("data.read")
def models_page() -> str:
    return render_template("anomaly/models.html", models=models(), root=str(model_root()))


@bp.get("/accuracy")
@requires(LOGGED_IN)
def accuracy_page() -> str:
    runs = history()
    return render_template("anomaly/accuracy.html", latest=runs[0] if runs else None, runs=runs,
                           folder=str(evaluations_dir()))


@api.get("/models")
@requires("data.read")
def api_models() -> ResponseReturnValue:
    rows = models()
    return jsonify({"items": rows, "total": len(rows)})


@api.get("/accuracy")
@requires(LOGGED_IN)
def api_accuracy() -> ResponseReturnValue:
    runs = history()
    return jsonify({"latest": runs[0] if runs else None,
                    "history": [{k: r[k] for k in ("id", "date", "command", "site", "totals")} for r in runs]})


def describe(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """The OpenAPI description of /api/v1/anomaly/* (console/web/openapi.py calls this)."""
    from .openapi import ORG, _get, _json, _listed, _ref

    when, num, count = {"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "integer", "minimum": 0}
    totals = {"type": "object", "required": ["steps", "steps_detected", "false_alerts", "false_per_hour", "precision", "recall"],
              "properties": {"scenarios": count, "steps": count, "steps_detected": count,
                             "missed": {"type": "array", "items": {"type": "string"}}, "alerts": count,
                             "true_alerts": count, "false_alerts": count, "normal_hours": num, "false_per_hour": num,
                             "precision": num, "recall": num, "max_time_to_detect_s": {"type": ["number", "null"]}}}
    step = {"type": "object", "required": ["step", "detected", "time_to_detect_s"],
            "properties": {"step": {"type": "string"}, "detected": {"type": "boolean"},
                           "time_to_detect_s": {"type": ["number", "null"], "description": "first alert − the step's first frame"},
                           "rules": {"type": "array", "items": {"type": "string"}},
                           "expect_rules": {"type": "array", "items": {"type": "string"}}, "in_learning": {"type": "boolean"}}}
    schemas.update({
        "ApiSiteModel": {
            "type": "object", "required": ["site", "phase"],
            "properties": {
                "site": {"type": "string", "description": "organization.id the model was learned for"},
                "name": {"type": ["string", "null"]},
                "phase": {"type": "string", "enum": ["learning", "protecting"]},
                "version": {"type": "string"}, "created": when, "age_s": count, "last_retrain": when,
                "training_window": {"type": "object", "properties": {"start": when, "end": when}},
                "features": {"type": "array", "items": {"type": "string"}},
                "baseline": {"type": "object", "additionalProperties": {"type": "integer"}},
                "multivariate": {"type": "object"}, "versions": {"type": "object", "additionalProperties": {"type": "string"}},
                "sha256": {"type": "string"}, "relearned": {"type": "array", "items": {"type": "object"}},
                "error": {"type": "string", "description": "the model directory could not be read"},
            },
        },
        "ApiEvaluation": {
            "type": "object", "required": ["id", "date", "command", "site", "totals"],
            "properties": {
                "id": {"type": "string"}, "date": when,
                "command": {"type": "string", "description": "the `qinling evaluate` command that produced these figures"},
                "site": {"type": "string"}, "settings": {"type": "object"}, "format": {"type": "integer"},
                "totals": {"type": "object", "required": ["all"], "properties": {"all": totals, "holdout": totals}},
                "scenarios": {"type": "array", "items": {"type": "object", "required": ["scenario", "holdout", "steps"],
                              "properties": {"scenario": {"type": "string"}, "holdout": {"type": "boolean"},
                                             "steps": {"type": "array", "items": step}, "alerts": count,
                                             "true_alerts": count, "false_alerts": count, "normal_hours": num,
                                             "false_per_hour": num, "precision": num, "recall": num, "frame_recall": num}}},
            },
        },
    })
    paths["/api/v1/anomaly/models"] = {"get": _get(
        "Each site's learned model (学习模型): phase, age, training window, features, library versions, hash, last retrain",
        "anomaly", _json(_listed(_ref("ApiSiteModel"))), "401", "403", params=[ORG])}
    paths["/api/v1/anomaly/accuracy"] = {"get": _get(
        "The latest `qinling evaluate` figures (检测评估) and the earlier runs' totals", "anomaly",
        _json({"type": "object", "required": ["latest", "history"],
               "properties": {"latest": {"oneOf": [_ref("ApiEvaluation"), {"type": "null"}]},
                              "history": {"type": "array", "items": _ref("ApiEvaluation")}}}), "401")}
