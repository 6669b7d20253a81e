"""AnomalyEngine: per-site learning and protecting phases over the same event stream as DetectionEngine.

Phases: `learning` (events feed a ModelTrainer; no alerts) until the model is fitted — either given
up front (a loaded model: protecting from the first event) or learned from the stream's first
`learn_first` of event time — then `protecting` (detectors alert). The same `process(event) ->
alerts` / `finish() -> alerts` shape as DetectionEngine, so the replay wiring runs both.

`swap(model)` replaces the model between two events (under a lock): detector state (last requests,
suppression) carries over, so a retrain while events flow loses no alerts. `reload_if_changed()`
does that when the model directory's CURRENT pointer moved.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterable
from typing import Any

from pipeline.schema import Event

from ..engine import AlertFactory
from . import rules as R
from .bindings import BindingDetector
from .detectors import DETECTORS, AnomalyDetector, State
from .features import message_of
from .model import ModelTrainer, SiteModel, current_version, load_model, protocol_message
from .multivariate import DEFAULT_METHOD, Windower

TICK_EVERY = dt.timedelta(seconds=0.5)  # event time between clock ticks (cycle-stopped checks, window closes)


class MultivariateDetector(AnomalyDetector):
    """Scores each completed per-flow window with the site's multivariate model."""

    rule = R.MULTIVARIATE

    def __init__(self, model: SiteModel, alerts: AlertFactory) -> None:
        super().__init__(model.baseline, alerts)
        self.model = model

    def _judge(self, done: list[Any], now: dt.datetime | None) -> list[Event]:
        if not done:
            return []
        import numpy as np

        X = np.asarray([w.vector() for _, w in done])
        scores = self.model.scorer.score(X)
        out = []
        for (flow, w), s in zip(done, scores):
            if s <= self.model.scorer.threshold or w.last is None:
                continue
            vec = dict(zip(("requests", "reads", "writes"), (w.requests, w.reads, w.writes)))
            out.append(self.alert(w.triggers, w.last, at=now, feature=f"{self.model.method} window score",
                                  observed=f"{s:.3g} ({vec}, {len(w.addresses)} addresses, {len(w.functions)} functions)",
                                  baseline=f"threshold {self.model.scorer.threshold:.3g} from {self.model.scorer.train_rows} windows",
                                  message=f"Unusual traffic profile {flow[0]} → {flow[1]} ({flow[2]}): "
                                          f"{self.model.method} score {s:.3g} > {self.model.scorer.threshold:.3g}"))
        return out

    def window_event(self, event: Event, state: State) -> list[Event]:
        m = message_of(event)
        win: Windower = state.keys.setdefault("windows", Windower(whole_only=True))
        return self._judge(win.add(event, m), None) if m is not None else []

    def tick(self, now: dt.datetime, state: State) -> list[Event]:
        win: Windower = state.keys.setdefault("windows", Windower(whole_only=True))
        return self._judge(win.tick(now), now)

    def finish(self, now: dt.datetime | None, state: State) -> list[Event]:
        # A trailing partial window is not judged (it would look like a quiet flow), nor a leading one (Windower).
        out = self.tick(now, state) if now is not None else []
        state.keys.setdefault("windows", Windower(whole_only=True)).drop()
        return out


class AnomalyEngine:
    """Learned-baseline detection for one site (organization id)."""

    def __init__(
        self,
        site: str,
        model: SiteModel | None = None,
        *,
        learn_first: dt.timedelta | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        method: str = DEFAULT_METHOD,
        margin: float | None = None,
        enabled: Iterable[str] | None = None,
        on_learned: Any = None,
    ) -> None:
        if model is None and learn_first is None and model_dir is None:
            raise ValueError("AnomalyEngine needs a model, a model_dir or learn_first")
        self.site = site
        self.learn_first = learn_first
        self.model_dir = model_dir
        self.method = method
        self.margin = margin
        self.enabled = tuple(enabled) if enabled is not None else (*DETECTORS, R.MAC_BINDING.id, R.MULTIVARIATE.id)
        self.on_learned = on_learned
        self.factory = AlertFactory(site)
        self._lock = threading.RLock()
        self._version: str | None = None
        self.detectors: list[AnomalyDetector] = []
        self.states: dict[str, State] = {}
        self.trainer: ModelTrainer | None = None
        self.model: SiteModel | None = None
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None
        self._last_tick: dt.datetime | None = None
        self.learned_until: dt.datetime | None = None
        self.alerts = 0
        if model is None and model_dir is not None:
            model, meta = load_model(model_dir, site)
            self._version = meta["version"]
        if model is not None:
            self.swap(model)
        else:
            self.trainer = ModelTrainer(site)

    @property
    def version(self) -> str | None:
        """The model directory version in use (None: learned in memory, or still learning)."""
        return self._version

    @property
    def phase(self) -> str:
        return "protecting" if self.model is not None else "learning"

    # ------------------------------------------------------------ model
    def swap(self, model: SiteModel) -> None:
        """Use `model` from the next event on; detector state is kept."""
        if model.site != self.site:
            from .exceptions import SiteMismatchError

            raise SiteMismatchError("<in memory>", model.site, self.site)
        with self._lock:
            self.model = model
            if not self.detectors:
                for rid in self.enabled:
                    if rid == R.MULTIVARIATE.id:
                        self.detectors.append(MultivariateDetector(model, self.factory))
                    elif rid == R.MAC_BINDING.id:
                        self.detectors.append(BindingDetector(model.baseline, self.factory, model.bindings))
                    else:
                        self.detectors.append(DETECTORS[rid](model.baseline, self.factory))
                    self.states[rid] = State()
            for d in self.detectors:
                d.baseline = model.baseline
                if isinstance(d, MultivariateDetector):
                    d.model = model
                elif isinstance(d, BindingDetector):
                    d.bindings = model.bindings

    def reload_if_changed(self) -> bool:
        """Swap in the model directory's current version if it changed since loaded. True when swapped."""
        if self.model_dir is None:
            return False
        version = current_version(self.model_dir)
        if version == self._version:
            return False
        model, meta = load_model(self.model_dir, self.site)
        self.swap(model)
        self._version = meta["version"]
        return True

    def relearn_link(self, client: str, server: str, events: list[Event]) -> SiteModel:
        """Accept a configuration change: relearn client→server from `events`, keep the rest of the site's model."""
        if self.model is None:
            from .exceptions import NotTrainedError

            raise NotTrainedError(f"site {self.site!r} is still learning; nothing to relearn yet")
        model = self.model.relearn_link(client, server, events)
        self.swap(model)
        return model

    # ------------------------------------------------------------ events
    def process(self, event: Event) -> list[Event]:
        if event.event.kind != "event":
            return []
        org = event.organization
        if org is not None and org.id and org.id != self.site:
            return []  # another enterprise's traffic on a shared topic: not this site's model to judge
        with self._lock:
            t = event.timestamp
            if self.first is None:
                self.first = t
            if self.last is None or t > self.last:
                self.last = t
            if self.model is None:
                assert self.trainer is not None and self.learn_first is not None
                if t < self.first + self.learn_first:
                    self.trainer.observe(event)
                    return []
                self._learned()
            return self._protect(event)

    def _learned(self) -> None:
        assert self.trainer is not None
        model = self.trainer.fit(self.method, self.margin)
        self.learned_until = self.last
        self.trainer = None
        self.swap(model)
        if self.on_learned is not None:
            self.on_learned(model)

    def _protect(self, event: Event) -> list[Event]:
        out: list[Event] = []
        t = event.timestamp
        if self._last_tick is None or t - self._last_tick >= TICK_EVERY:
            self._last_tick = t
            for d in self.detectors:
                out.extend(d.tick(t, self.states[d.rule.id]))
        for d in self.detectors:
            if isinstance(d, BindingDetector):  # link-layer evidence: ARP and flow records too, not only protocol messages
                out.extend(d.on_frame(event, self.states[d.rule.id]))
        m = protocol_message(event)
        if m is not None:
            for d in self.detectors:
                st = self.states[d.rule.id]
                if isinstance(d, BindingDetector):
                    continue
                if isinstance(d, MultivariateDetector):
                    out.extend(d.window_event(event, st))
                else:
                    out.extend(d.on_event(event, m, st))
        self.alerts += len(out)
        return out

    def process_many(self, events: Iterable[Event]) -> list[Event]:
        out: list[Event] = []
        for e in events:
            out.extend(self.process(e))
        out.extend(self.finish())
        return out

    def finish(self) -> list[Event]:
        with self._lock:
            if self.model is None:
                if self.trainer is None or self.trainer.learner.events == 0:
                    return []
                self._learned()  # a capture shorter than learn_first: the whole of it is learned
                return []
            out: list[Event] = []
            for d in self.detectors:
                out.extend(d.finish(self.last, self.states[d.rule.id]))
            self.alerts += len(out)
            return out
