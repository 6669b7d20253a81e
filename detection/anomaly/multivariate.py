"""Multivariate detector: a scikit-learn model over windowed per-flow traffic features.

Every `WINDOW` seconds of event time, each flow (client → server, protocol; ports ignored so a
second session of the same master counts with the first) that sent requests becomes one feature
vector. Learning collects the vectors; protecting scores each completed window and alerts when its
anomaly score exceeds the threshold set from the training scores (`threshold()`).

Methods (compared by measurement in docs/accuracy.md; `DEFAULT_METHOD` is the one kept):
- `iforest`: IsolationForest on robust-scaled features;
- `lof`: LocalOutlierFactor(novelty=True) on robust-scaled features;
- `robust_z`: the largest robust z-score (median/MAD per feature) of the vector.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.schema import Event

from ..engine import Trigger, trigger_of
from .features import Message

WINDOW = 5.0
FEATURES: tuple[str, ...] = (
    "log_requests", "log_reads", "log_writes", "log_other", "functions", "log_addresses", "units",
    "log_request_bytes", "log_response_bytes", "exception_ratio", "mean_gap", "gap_cv", "sessions",
)
METHODS = ("iforest", "lof", "robust_z")
DEFAULT_METHOD = "lof"  # measured: docs/accuracy.md
MARGIN = 0.5  # threshold = max training score + MARGIN × (max − median) of the training scores
MAX_EVIDENCE = 200

FlowKey = tuple[str, str, str]


@dataclass
class Window:
    index: int
    requests: int = 0
    reads: int = 0
    writes: int = 0
    other: int = 0
    functions: set[str] = field(default_factory=set)
    addresses: set[int | str] = field(default_factory=set)
    units: set[int] = field(default_factory=set)
    request_bytes: int = 0
    response_bytes: int = 0
    responses: int = 0
    exceptions: int = 0
    times: list[float] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    triggers: list[Trigger] = field(default_factory=list)
    last: Event | None = None

    def add(self, e: Event, m: Message) -> None:
        if len(self.triggers) < MAX_EVIDENCE:
            self.triggers.append(trigger_of(e))
        self.last = e
        if m.request:
            self.requests += 1
            action = e.event.action
            if action == "read":
                self.reads += 1
            elif action == "write":
                self.writes += 1
            else:
                self.other += 1
            self.functions.add(m.function)
            if m.address is not None:
                self.addresses.add(m.address)
            if m.unit is not None:
                self.units.add(m.unit)
            self.request_bytes += m.size
            self.times.append(e.timestamp.timestamp())
            if e.source is not None and e.source.port is not None:
                self.sessions.add(str(e.source.port))
        else:
            self.responses += 1
            self.response_bytes += m.size
            self.exceptions += m.exception

    def vector(self) -> list[float]:
        ts = sorted(self.times)
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        mean_gap = sum(gaps) / len(gaps) if gaps else WINDOW
        sd = math.sqrt(sum((g - mean_gap) ** 2 for g in gaps) / len(gaps)) if gaps else 0.0
        lg = math.log1p
        return [lg(self.requests), lg(self.reads), lg(self.writes), lg(self.other), float(len(self.functions)),
                lg(len(self.addresses)), float(len(self.units)), lg(self.request_bytes), lg(self.response_bytes),
                self.exceptions / self.responses if self.responses else 0.0, mean_gap,
                sd / mean_gap if mean_gap > 0 else 0.0, float(len(self.sessions))]


class Windower:
    """Cuts events into per-flow windows; `close(now)` returns the windows that ended before `now`.

    With `whole_only`, the windows of the first interval it sees are dropped, not returned: they
    began before its first event (protection starting mid-window, after learning or a restart), so
    they hold only part of a window's traffic and would look like a quiet flow."""

    def __init__(self, width: float = WINDOW, whole_only: bool = False) -> None:
        self.width = width
        self.open: dict[FlowKey, Window] = {}
        self.whole_only = whole_only
        self.first_whole: int | None = None

    def add(self, e: Event, m: Message) -> list[tuple[FlowKey, Window]]:
        ts = e.timestamp.timestamp()
        idx = int(ts // self.width)
        if self.whole_only and self.first_whole is None:
            self.first_whole = idx if ts == idx * self.width else idx + 1
        done = self.close_before(idx)
        w = self.open.get(m.link)
        if w is None:
            w = self.open[m.link] = Window(idx)
        w.add(e, m)
        return done

    def close_before(self, idx: int) -> list[tuple[FlowKey, Window]]:
        done = [(k, w) for k, w in self.open.items() if w.index < idx]
        for k, _ in done:
            del self.open[k]
        first = self.first_whole
        return [(k, w) for k, w in done if w.requests and (first is None or w.index >= first)]

    def tick(self, now: dt.datetime) -> list[tuple[FlowKey, Window]]:
        return self.close_before(int(now.timestamp() // self.width))

    def drop(self) -> None:
        self.open.clear()


class Scorer:
    """A fitted multivariate model: `score(X)` is higher for more anomalous rows."""

    def __init__(self, method: str = DEFAULT_METHOD, margin: float = MARGIN, seed: int = 0) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown multivariate method {method!r}; known: {', '.join(METHODS)}")
        self.method, self.margin, self.seed = method, margin, seed
        self.model: Any = None
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.threshold = math.inf
        self.train_rows = 0

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        assert self.center is not None and self.scale is not None
        return (X - self.center) / self.scale

    def fit(self, X: np.ndarray) -> Scorer:
        X = np.asarray(X, dtype=float)
        self.train_rows = len(X)
        if len(X) < 5:
            self.threshold = math.inf  # too little to learn from: the detector stays silent
            return self
        self.center = np.median(X, axis=0)
        mad = np.median(np.abs(X - self.center), axis=0) * 1.4826
        self.scale = np.maximum(mad, np.maximum(0.1 * np.abs(self.center), 0.5))
        Z = self._scaled(X)
        if self.method == "iforest":
            from sklearn.ensemble import IsolationForest

            self.model = IsolationForest(n_estimators=200, random_state=self.seed).fit(Z)
        elif self.method == "lof":
            from sklearn.neighbors import LocalOutlierFactor

            self.model = LocalOutlierFactor(n_neighbors=min(20, len(Z) - 1), novelty=True).fit(Z)
        s = self.score(X)
        top, med = float(np.max(s)), float(np.median(s))
        self.threshold = top + self.margin * max(top - med, 1e-6)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self.center is None:
            return np.zeros(len(X))
        Z = self._scaled(X)
        if self.method == "robust_z":
            return np.max(np.abs(Z), axis=1)
        return -np.asarray(self.model.score_samples(Z))


@dataclass
class TrainingSet:
    """The learning phase's windows, kept with the model so one flow's rows can be replaced (relearn one pair)."""

    flows: list[FlowKey] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)

    def add(self, flow: FlowKey, row: list[float]) -> None:
        self.flows.append(flow)
        self.rows.append(row)

    def without_pair(self, client: str, server: str) -> TrainingSet:
        keep = [i for i, f in enumerate(self.flows) if not (f[0] == client and f[1] == server)]
        return TrainingSet([self.flows[i] for i in keep], [self.rows[i] for i in keep])

    def matrix(self) -> np.ndarray:
        return np.asarray(self.rows, dtype=float).reshape(-1, len(FEATURES))


def windows_of(events: list[Event], messages: list[Message], width: float = WINDOW) -> list[tuple[FlowKey, Window]]:
    """Every completed window of a sequence of events (a trailing partial window per flow is left out)."""
    win = Windower(width)
    out: list[tuple[FlowKey, Window]] = []
    for e, m in zip(events, messages):
        out.extend(win.add(e, m))
    return out


def group_pairs(flows: list[FlowKey]) -> dict[tuple[str, str], list[int]]:
    g: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(flows):
        g[(f[0], f[1])].append(i)
    return g
