"""A site's learned model as an artefact: joblib file + metadata JSON, versioned, swapped atomically.

Layout of a model directory::

    MODEL_DIR/CURRENT                      name of the version in use (replaced atomically)
    MODEL_DIR/<version>/model.joblib       SiteModel (baseline, multivariate scorer, training windows)
    MODEL_DIR/<version>/model.json         site, training window, features, library versions, sha256

A retrain writes a new version directory completely, then replaces CURRENT (write temp + rename):
a reader sees the old model or the new one, never half of either. The loader checks the sha256 in
the metadata against the joblib file and refuses a model learned for another site.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.schema import Event

from .baseline import Baseline, Learner
from .bindings import BindingLearner, Bindings
from .exceptions import ModelError, SiteMismatchError
from .features import Message, message_of
from .multivariate import DEFAULT_METHOD, FEATURES, MARGIN, Scorer, TrainingSet, Windower

FORMAT = 3  # 3: IP↔MAC bindings; 2: address ranges per address space (every protocol), float process values
READABLE = (2, 3)  # a format-2 model loads with bindings None (its binding detector stays silent until retrained)
KEEP_VERSIONS = 3


@dataclass
class SiteModel:
    site: str
    baseline: Baseline
    scorer: Scorer
    training: TrainingSet
    method: str = DEFAULT_METHOD
    relearned: list[dict[str, str]] = field(default_factory=list)
    bindings: Bindings | None = None  # None: learned before format 3

    @property
    def start(self) -> dt.datetime:
        return self.baseline.start

    @property
    def end(self) -> dt.datetime:
        return self.baseline.end

    def metadata(self) -> dict[str, Any]:
        import joblib
        import numpy
        import sklearn

        return {
            "format": FORMAT,
            "site": self.site,
            "training_window": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "features": list(FEATURES),
            "multivariate": {"method": self.method, "threshold": self.scorer.threshold,
                             "training_windows": self.scorer.train_rows},
            "baseline": self.baseline.summary(),
            **({"bindings": self.bindings.summary()} if self.bindings is not None else {}),
            "relearned": self.relearned,
            "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                         "numpy": numpy.__version__, "joblib": joblib.__version__},
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def relearn_link(self, client: str, server: str, events: list[Event]) -> SiteModel:
        """A new model where only client→server is relearned from `events` (its other traffic is ignored)."""
        pair = [e for e in events if (m := message_of(e)) is not None and m.link[:2] == (client, server)]
        if not pair:
            raise ModelError(f"relearn {client} → {server}: the traffic given holds no request/response of that pair")
        fresh = train(self.site, pair, method=self.method)
        import copy

        baseline = copy.deepcopy(self.baseline)
        baseline.replace_pair(client, server, fresh.baseline)
        training = self.training.without_pair(client, server)
        for f, row in zip(fresh.training.flows, fresh.training.rows):
            training.add(f, row)
        scorer = Scorer(self.method, self.scorer.margin).fit(training.matrix())
        note = {"client": client, "server": server, "start": fresh.start.isoformat(), "end": fresh.end.isoformat(),
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        return SiteModel(self.site, baseline, scorer, training, self.method, [*self.relearned, note], self.bindings)


def protocol_message(e: Event) -> Message | None:
    """The event's protocol message for the baseline detectors; None for ARP, which only the binding detector
    judges (an ARP exchange is address resolution between MACs, not a link, function or address of the plant)."""
    return None if e.arp is not None else message_of(e)


class ModelTrainer:
    """Learning phase: baseline learner and multivariate windows fed event by event."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.learner = Learner(site)
        self.windows = Windower()
        self.training = TrainingSet()
        self.bindings = BindingLearner()

    def observe(self, e: Event) -> None:
        self.bindings.observe(e)  # every event: ARP and flow records carry bindings too
        m = protocol_message(e)
        if m is None:
            return
        self.learner.observe(e)
        for flow, w in self.windows.add(e, m):
            self.training.add(flow, w.vector())

    def fit(self, method: str = DEFAULT_METHOD, margin: float | None = None) -> SiteModel:
        # The open windows are partial: they are left out rather than learned as short windows.
        self.windows.drop()
        baseline = self.learner.fit()
        scorer = Scorer(method, MARGIN if margin is None else margin).fit(self.training.matrix())
        return SiteModel(self.site, baseline, scorer, self.training, method, bindings=self.bindings.fit())


def train(site: str, events: Any, method: str = DEFAULT_METHOD, margin: float | None = None) -> SiteModel:
    t = ModelTrainer(site)
    for e in events:
        t.observe(e)
    return t.fit(method, margin)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(model: SiteModel, directory: str | os.PathLike[str]) -> Path:
    """Write a new version and make it current (atomically). Returns the version directory."""
    import joblib

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    version = Path(tempfile.mkdtemp(dir=root, prefix=f"{model.site}-{stamp}-"))
    blob = version / "model.joblib"
    joblib.dump(model, blob)
    meta = model.metadata() | {"sha256": _sha256(blob), "file": blob.name, "version": version.name}
    _write_atomic(version / "model.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    _write_atomic(root / "CURRENT", (version.name + "\n").encode())
    _prune(root, keep={version.name})
    return version


def _prune(root: Path, keep: set[str]) -> None:
    import shutil

    versions = sorted((p for p in root.iterdir() if p.is_dir() and (p / "model.json").exists()), key=lambda p: p.stat().st_mtime)
    for old in versions[:-KEEP_VERSIONS]:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def current_version(directory: str | os.PathLike[str]) -> str:
    pointer = Path(directory) / "CURRENT"
    try:
        return pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ModelError(f"{directory}: no model here (no CURRENT file); create one with `qinling learn PCAP... --out {directory}`") from None


def read_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
    version = Path(directory) / current_version(directory)
    try:
        meta: dict[str, Any] = json.loads((version / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{version}/model.json: unreadable model metadata ({e}); retrain the model") from None
    return meta


def load_model(directory: str | os.PathLike[str], site: str | None = None) -> tuple[SiteModel, dict[str, Any]]:
    """The current model of `directory` and its metadata; refuses a model learned for another `site`."""
    import joblib

    meta = read_metadata(directory)
    version = Path(directory) / meta["version"]
    if meta.get("format") not in READABLE:
        raise ModelError(f"{version}: model format {meta.get('format')} is not one this version reads {READABLE}; "
                         f"retrain it with `qinling learn`")
    if site is not None and meta.get("site") != site:
        raise SiteMismatchError(str(version), str(meta.get("site")), site)
    blob = version / meta.get("file", "model.joblib")
    if not blob.exists() or _sha256(blob) != meta.get("sha256"):
        raise ModelError(f"{blob}: checksum does not match model.json (file changed or truncated); retrain the model")
    model = joblib.load(blob)
    if not isinstance(model, SiteModel) or model.site != meta.get("site"):
        raise ModelError(f"{blob}: not a Qinling site model for {meta.get('site')!r}")
    return model, meta
