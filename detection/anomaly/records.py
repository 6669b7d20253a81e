"""Where models and evaluation results live on disk, and how the console reads them.

    var/models/<site>/CURRENT, <version>/model.{joblib,json}     `qinling learn` (model.py's layout)
    var/evaluations/<UTC time>-<n>.json                           `qinling evaluate` (one file per run)

An evaluation record holds the command line that produced it, its date, each scenario's report
(`Report.to_dict()`: per attack step detected or not and time to detect, false alerts per hour of
protected normal traffic, precision, recall) and the totals. Records are written atomically and
never rewritten; the console shows the newest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .exceptions import ModelError

DEFAULT_MODEL_ROOT = Path("var") / "models"
DEFAULT_EVALUATIONS = Path("var") / "evaluations"
RECORD_FORMAT = 1


def model_dir(root: str | os.PathLike[str], site: str) -> Path:
    if not site or "/" in site or site.startswith("."):
        raise ModelError(f"site {site!r} cannot name a model directory")
    return Path(root) / site


def totals(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures over every scenario of one run (held-out scenarios also on their own)."""

    def over(rs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        steps = [s for r in rs for s in r["steps"] if not s["in_learning"]]
        alerts = sum(r["alerts"] for r in rs)
        true = sum(r["true_alerts"] for r in rs)
        false = sum(r["false_alerts"] for r in rs)
        hours = sum(r["normal_hours"] for r in rs)
        ttd = [s["time_to_detect_s"] for s in steps if s["detected"] and s["time_to_detect_s"] is not None]
        return {"scenarios": len(rs), "steps": len(steps), "steps_detected": sum(s["detected"] for s in steps),
                "missed": [f"{r['scenario']}/{s['step']}" for r in rs for s in r["steps"]
                           if not s["in_learning"] and not s["detected"]],
                "alerts": alerts, "true_alerts": true, "false_alerts": false, "normal_hours": round(hours, 4),
                "false_per_hour": round(false / hours, 2) if hours else 0.0,
                "precision": round(true / alerts, 3) if alerts else 1.0,
                "recall": round(sum(s["detected"] for s in steps) / len(steps), 3) if steps else 1.0,
                "max_time_to_detect_s": max(ttd) if ttd else None}

    out = {"all": over(reports)}
    held = [r for r in reports if r.get("holdout")]
    if held:
        out["holdout"] = over(held)
    return out


def record_evaluation(directory: str | os.PathLike[str], command: Sequence[str], reports: Sequence[dict[str, Any]],
                      *, site: str, settings: dict[str, Any] | None = None, now: dt.datetime | None = None) -> Path:
    """Write one run's results as a new JSON file in `directory`; returns its path."""
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    doc = {"format": RECORD_FORMAT, "date": when.isoformat(timespec="seconds"), "command": " ".join(command),
           "site": site, "settings": settings or {}, "scenarios": list(reports), "totals": totals(reports)}
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".evaluation-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, ensure_ascii=False)
        stem = when.strftime("%Y%m%dT%H%M%SZ")
        for n in range(1000):
            target = root / f"{stem}-{n:03d}.json"
            try:
                os.link(tmp, target)  # never replaces an earlier record
                return target
            except FileExistsError:
                continue
        raise ModelError(f"{root}: too many evaluation records at {stem}")
    finally:
        os.unlink(tmp)


def evaluations(directory: str | os.PathLike[str], limit: int = 20) -> list[dict[str, Any]]:
    """The newest `limit` evaluation records, newest first (unreadable files are skipped, named in `errors`)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.glob("*.json"), reverse=True)[:limit]:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("format") == RECORD_FORMAT:
            out.append(doc | {"id": p.stem})
    return out


def site_models(root: str | os.PathLike[str], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every site with a model under `root`: its current model's metadata, age and last retrain."""
    from .model import read_metadata

    base = Path(root)
    if not base.is_dir():
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    out: list[dict[str, Any]] = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and (p / "CURRENT").exists()):
        try:
            meta = read_metadata(d)
        except ModelError as e:
            out.append({"site": d.name, "phase": "learning", "error": str(e)})
            continue
        created = dt.datetime.fromisoformat(meta["created"])
        relearned = meta.get("relearned") or []
        last = max([created.isoformat(), *(r.get("at", "") for r in relearned)])
        out.append({
            "site": meta.get("site", d.name), "phase": "protecting", "version": meta.get("version"),
            "created": meta["created"], "age_s": max(0, int((now - created).total_seconds())),
            "training_window": meta["training_window"], "features": meta.get("features", []),
            "multivariate": meta.get("multivariate", {}), "baseline": meta.get("baseline", {}),
            "versions": meta.get("versions", {}), "sha256": meta.get("sha256"), "relearned": relearned,
            "last_retrain": last,
        })
    return out
