"""学习模型 and 检测评估 in the console: real models (learned from a testbed capture) and a real
`qinling evaluate` record, shown as pages (zh-CN and English) and as /api/v1 JSON, per tenancy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from flask import Flask

from detection.anomaly.model import save_model, train
from detection.anomaly.records import evaluations, record_evaluation
from tests.console.conftest import close_app, db_path, login, make_app  # noqa: F401 - db_path is a fixture

from .conftest import CAPTURES, events_of, split


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """Models for acme and globex, and the record `qinling evaluate` writes for the held-out capture."""
    from console.cli import main

    root = tmp_path_factory.mktemp("anomaly")
    models, runs = root / "models", root / "evaluations"
    for site in ("acme", "globex"):
        learn, _ = split(events_of("anomaly_setpoint", site))
        save_model(train(site, learn), models / site)
    cap = CAPTURES / "anomaly_holdout_mixed"
    assert main(["evaluate", f"{cap}.pcap", "--labels", f"{cap}.labels.yml", "--learn-first", "120s",
                 "--record", str(runs)]) == 0
    return models, runs


@pytest.fixture
def app(db_path: Path, recorded: tuple[Path, Path]) -> Iterator[Flask]:
    models, runs = recorded
    app = make_app(db_path, ORGANIZATION=None, MODEL_ROOT=str(models), EVALUATIONS_DIR=str(runs))
    yield app
    close_app(app)


def test_evaluate_records_command_date_and_figures(recorded: tuple[Path, Path]) -> None:
    _, runs = recorded
    [rec] = evaluations(runs)
    assert rec["command"].startswith("qinling evaluate ") and "--learn-first 120s" in rec["command"]
    assert "anomaly_holdout_mixed.labels.yml" in rec["command"] and rec["date"].endswith("+00:00")
    [sc] = rec["scenarios"]
    assert sc["scenario"] == "anomaly_holdout_mixed" and sc["holdout"]
    assert {s["step"] for s in sc["steps"]} == {"setpoint_step", "slow_recon_inputs", "new_function_hmi", "historian_burst"}
    assert all(s["detected"] and s["time_to_detect_s"] is not None for s in sc["steps"])
    t = rec["totals"]["holdout"]
    assert t["steps_detected"] == t["steps"] == 4 and t["false_per_hour"] <= 1.0 and t["recall"] == 1.0


def test_records_are_never_overwritten(tmp_path: Path) -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    a = record_evaluation(tmp_path, ["qinling", "evaluate", "a"], [], site="x", now=now)
    b = record_evaluation(tmp_path, ["qinling", "evaluate", "b"], [], site="x", now=now)
    assert a != b and json.loads(a.read_text())["command"].endswith(" a") and json.loads(b.read_text())["command"].endswith(" b")
    assert [r["command"][-1] for r in evaluations(tmp_path)] == ["b", "a"]


def test_models_page_zh_and_en(app: Flask) -> None:
    c = login(app.test_client(), "analyst")
    html = c.get("/anomaly/models").get_data(as_text=True)
    assert "学习模型" in html and "防护中" in html and "训练时间窗" in html and "库版本" in html
    meta = json.loads(next((Path(app.config["MODEL_ROOT"]) / "acme").glob("*/model.json")).read_text())
    assert meta["sha256"] in html and meta["versions"]["scikit-learn"] in html and meta["training_window"]["start"] in html
    c.set_cookie("lang", "en")
    html = c.get("/anomaly/models").get_data(as_text=True)
    assert "Learned models" in html and "Protecting" in html and "Last retrain" in html


def test_accuracy_page_zh_and_en(app: Flask) -> None:
    c = login(app.test_client(), "auditor")
    html = c.get("/anomaly/accuracy").get_data(as_text=True)
    assert "检测评估" in html and "每小时误报" in html and "精确率" in html and "historian_burst" in html
    assert "qinling evaluate" in html and "4/4" in html
    c.set_cookie("lang", "en")
    html = c.get("/anomaly/accuracy").get_data(as_text=True)
    assert "Detection accuracy" in html and "False alerts per hour" in html and "Time to detect" in html


def test_accuracy_page_without_records(db_path: Path, tmp_path: Path) -> None:
    app = make_app(db_path, ORGANIZATION=None, EVALUATIONS_DIR=str(tmp_path / "none"))
    try:
        c = login(app.test_client(), "analyst")
        assert "尚无评估记录" in c.get("/anomaly/accuracy").get_data(as_text=True)
        assert c.get("/api/v1/anomaly/accuracy").get_json() == {"latest": None, "history": []}
    finally:
        close_app(app)


def _schema(app: Flask, path: str) -> dict:  # type: ignore[type-arg]
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return {**schema, "components": doc["components"]}


def test_api_models_per_tenancy(app: Flask) -> None:
    admin = login(app.test_client(), "admin").get("/api/v1/anomaly/models").get_json()
    jsonschema.validate(admin, _schema(app, "/api/v1/anomaly/models"))
    assert {m["site"]: m["phase"] for m in admin["items"]} == {"acme": "protecting", "globex": "protecting"}
    m = admin["items"][0]
    assert m["age_s"] >= 0 and m["features"] and m["versions"]["joblib"] and len(m["sha256"]) == 64
    narrowed = login(app.test_client(), "admin").get("/api/v1/anomaly/models?org=globex").get_json()
    assert [m["site"] for m in narrowed["items"]] == ["globex"]
    globex_sha = narrowed["items"][0]["sha256"]
    for url in ("/api/v1/anomaly/models", "/api/v1/anomaly/models?org=globex", "/anomaly/models?org=globex"):
        body = login(app.test_client(), "acme-user").get(url).get_data(as_text=True)
        assert globex_sha not in body and "Globex" not in body and "acme" in body
    assert login(app.test_client(), "auditor").get("/api/v1/anomaly/models").status_code == 403
    assert app.test_client().get("/api/v1/anomaly/models").status_code == 401


def test_api_accuracy_and_tenancy_of_records(app: Flask, recorded: tuple[Path, Path]) -> None:
    _, runs = recorded
    got = login(app.test_client(), "acme-user").get("/api/v1/anomaly/accuracy").get_json()
    jsonschema.validate(got, _schema(app, "/api/v1/anomaly/accuracy"))
    assert got["latest"]["scenarios"][0]["scenario"] == "anomaly_holdout_mixed"
    assert got["latest"]["totals"]["holdout"]["steps_detected"] == 4
    # A record made for globex's own site is globex's: not shown to acme, shown to regulators.
    path = record_evaluation(runs, ["qinling", "evaluate", "GLOBEX-ONLY.pcap"], [], site="globex")
    try:
        assert "GLOBEX-ONLY" not in login(app.test_client(), "acme-user").get("/api/v1/anomaly/accuracy").get_data(as_text=True)
        assert "GLOBEX-ONLY" in login(app.test_client(), "regulator").get("/api/v1/anomaly/accuracy").get_data(as_text=True)
        assert "GLOBEX-ONLY" in login(app.test_client(), "globex-user").get("/anomaly/accuracy").get_data(as_text=True)
    finally:
        path.unlink()
