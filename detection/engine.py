"""Rules to alerts: compiled predicates, one detector class per rule kind, state passed in, event time.

Semantics (time is always the events' `@timestamp`, so a pcap replayed twice gives the same alerts):

- match: every matching event raises one alert.
- threshold: per `by` key a sliding window keeps the matching events whose timestamps lie within
  `window` of the newest one (inclusive). When the window holds more than `count` events — or, with
  `distinct`, more than `count` distinct values of that field (events lacking it are ignored) — one
  alert is raised carrying every event in the window as evidence, and that key's window is emptied.
  A long sweep therefore raises one alert per `count + 1` events, not one per packet; `suppress`
  thins that further.
- new_terms: the combination of `fields` values is remembered from the first time it is seen. The
  learning period runs from the first event the engine processed (any event) for `learn` (events
  older than that first one are judged, not learned); a
  combination first seen at or after its end raises one alert, once. Events lacking a field are
  ignored.
- suppress: after an alert for a key (the `by` fields of the triggering event), further alerts of the
  rule for that key within `window` are dropped and counted in `DetectionEngine.suppressed`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pipeline import schema
from pipeline.schema import Event, EventInfo, Evidence, Organization, Related, RuleInfo, Technique, Threat

from .predicates import Lists, Predicate, compile_match, implied_by_dataset, required_datasets
from .rules.model import TEMPLATE_FIELD, NamedList, Rule, RuleSet

ALERT_DATASET = "qinling.alert"
Key = tuple[Any, ...]


# ---------------------------------------------------------------- state


@dataclass
class Clock:
    """Event time as the engine has seen it: the first and the latest `@timestamp`."""

    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def advance(self, t: dt.datetime) -> None:
        if self.first is None:
            self.first = t
        if self.last is None or t > self.last:
            self.last = t


@dataclass
class State:
    """What one rule's detector remembers, keyed by the rule's key (`by` fields, terms, ...)."""

    clock: Clock
    keys: dict[Key, Any] = field(default_factory=dict)


class Trigger(NamedTuple):
    """A matching event as a window remembers it (small: no reference to the event itself)."""

    time: dt.datetime
    frame: int | None
    event_id: str
    distinct: Any
    ips: tuple[str, ...]


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _event_id(e: Event) -> str:
    if e.event.id:
        return e.event.id
    frame = e.evidence.frame if e.evidence is not None else None
    return f"{e.timestamp.isoformat()}#{frame}"


def _ips(e: Event) -> tuple[str, ...]:
    out = []
    for ep in (e.source, e.destination):
        if ep is not None and ep.ip:
            out.append(ep.ip)
    return tuple(out)


def trigger_of(e: Event, distinct: Any = None) -> Trigger:
    return Trigger(e.timestamp, e.evidence.frame if e.evidence is not None else None, _event_id(e), distinct, _ips(e))


@functools.lru_cache(maxsize=65536)
def _ip_order(ip: str) -> tuple[int, Any]:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a))
    except ValueError:
        return (99, ip)


def alert_id(rule_id: str, event_ids: Iterable[str]) -> str:
    """Deterministic: sha1 of the rule id and the sorted triggering event ids, 20 hex digits."""
    h = hashlib.sha1(rule_id.encode("utf-8"))
    for eid in sorted(set(event_ids)):
        h.update(b"\n")
        h.update(eid.encode("utf-8"))
    return h.hexdigest()[:20]


# ---------------------------------------------------------------- compiled rules and alerts


def _fmt(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return str(v)


class CompiledRule:
    """A rule with its predicate, key accessors and message renderer ready for the hot path."""

    def __init__(self, rule: Rule, lists: Lists) -> None:
        self.rule = rule
        self.predicate: Predicate = compile_match(rule.match, lists, rule.location)
        self.datasets = required_datasets(rule.match, lists)
        # what the engine tests once it dispatched an event to this rule by its dataset
        self.dispatched: Predicate = self.predicate if self.datasets is None else \
            compile_match(implied_by_dataset(rule.match), lists, rule.location)
        self.info = RuleInfo(id=rule.id, name=rule.title, description=rule.description, ruleset=rule.ruleset)
        self.threat = Threat(technique=Technique(id=list(rule.attack), name=list(rule.attack_names))) if rule.attack else None
        self._template = rule.message or rule.title
        self._fields = {name: schema.getter(name) for name in TEMPLATE_FIELD.findall(self._template) if name != "count"}
        # The template split once: literal, then (getter or None for {count}, literal) per placeholder.
        pieces = TEMPLATE_FIELD.split(self._template)
        self._head = pieces[0]
        self._parts = tuple((None if pieces[i] == "count" else self._fields[pieces[i]], pieces[i + 1])
                            for i in range(1, len(pieces), 2))

    def render(self, e: Event, count: int) -> str:
        out = [self._head]
        for get, literal in self._parts:
            out.append(str(count) if get is None else _fmt(get(e)))
            out.append(literal)
        return "".join(out)


def key_getter(fields: Sequence[str]) -> Callable[[Event], Key]:
    getters = [schema.getter(f) for f in fields]
    return lambda e: tuple(_hashable(g(e)) for g in getters)


class AlertFactory:
    """Builds the alert `Event` for a rule from its triggering events (the last one is passed whole)."""

    def __init__(self, organization_id: str | None = None) -> None:
        self.organization = Organization(id=organization_id) if organization_id else None

    def build(
        self, cr: CompiledRule, triggers: Sequence[Trigger], last: Event, *, count: int | None = None, reason: str | None = None
    ) -> Event:
        rule = cr.rule
        ids = list(dict.fromkeys(t.event_id for t in triggers))
        frames = sorted({t.frame for t in triggers if t.frame is not None})
        ips = sorted({ip for t in triggers for ip in t.ips}, key=_ip_order)
        times = [t.time for t in triggers]
        many = len(triggers) > 1
        ev = last.evidence
        return Event(
            timestamp=last.timestamp,
            event=EventInfo(
                kind="alert",
                dataset=ALERT_DATASET,
                action=last.event.action,
                severity=rule.severity,
                id=alert_id(rule.id, ids),
                start=min(times) if many else None,
                end=max(times) if many else None,
                reason=reason,
            ),
            message=cr.render(last, count if count is not None else len(triggers)),
            source=last.source,
            destination=last.destination,
            network=last.network,
            observer=last.observer,
            organization=last.organization or self.organization,
            evidence=Evidence(
                file_sha256=ev.file_sha256 if ev else None,
                file=ev.file if ev else None,
                sensor=ev.sensor if ev else None,
                frames=frames or None,
                event_ids=ids,
            ),
            related=Related(ip=ips) if ips else None,
            rule=cr.info,
            threat=cr.threat,
        )


# ---------------------------------------------------------------- detectors


class Detector(ABC):
    """One rule kind. `on_event` sees only events the rule's match accepted; state is passed in."""

    def __init__(self, rule: CompiledRule, alerts: AlertFactory) -> None:
        self.rule = rule
        self.alerts = alerts

    @abstractmethod
    def on_event(self, event: Event, state: State) -> list[Event]: ...

    def finish(self, state: State) -> list[Event]:
        """End of input: alerts still pending (none of the detectors below holds any back)."""
        return []

    def expire(self, now: dt.datetime, state: State) -> None:
        """Forget keys that can no longer contribute to an alert (bounds memory on long runs)."""


class MatchDetector(Detector):
    def on_event(self, event: Event, state: State) -> list[Event]:
        return [self.alerts.build(self.rule, [trigger_of(event)], event)]


class _Window:
    __slots__ = ("entries", "values")

    def __init__(self) -> None:
        self.entries: deque[Trigger] = deque()
        self.values: Counter[Any] = Counter()


class ThresholdDetector(Detector):
    def __init__(self, rule: CompiledRule, alerts: AlertFactory) -> None:
        super().__init__(rule, alerts)
        th = rule.rule.threshold
        assert th is not None
        self.count = th.count
        self.window = dt.timedelta(seconds=th.window)
        self.by = th.by
        self.key = key_getter(th.by)
        self.distinct = schema.getter(th.distinct) if th.distinct else None
        self.distinct_name = th.distinct

    def on_event(self, event: Event, state: State) -> list[Event]:
        value: Any = None
        if self.distinct is not None:
            value = _hashable(self.distinct(event))
            if value is None:
                return []
        key = self.key(event)
        win: _Window | None = state.keys.get(key)
        if win is None:
            win = state.keys[key] = _Window()
        cutoff = event.timestamp - self.window
        entries, values = win.entries, win.values
        while entries and entries[0].time < cutoff:
            old = entries.popleft()
            if self.distinct is not None:
                values[old.distinct] -= 1
                if values[old.distinct] <= 0:
                    del values[old.distinct]
        entries.append(trigger_of(event, value))
        if self.distinct is not None:
            values[value] += 1
            n = len(values)
        else:
            n = len(entries)
        if n <= self.count:
            return []
        what = f"distinct {self.distinct_name} values" if self.distinct_name else "matching events"
        per = f" per {', '.join(self.by)}" if self.by else ""
        reason = f"{n} {what} within {self.window.total_seconds():g}s{per} (threshold {self.count})"
        alert = self.alerts.build(self.rule, list(entries), event, count=n, reason=reason)
        del state.keys[key]
        return [alert]

    def expire(self, now: dt.datetime, state: State) -> None:
        cutoff = now - self.window
        for key in [k for k, w in state.keys.items() if not w.entries or w.entries[-1].time < cutoff]:
            del state.keys[key]


class NewTermsDetector(Detector):
    def __init__(self, rule: CompiledRule, alerts: AlertFactory) -> None:
        super().__init__(rule, alerts)
        nt = rule.rule.new_terms
        assert nt is not None
        self.fields = nt.fields
        self.learn = dt.timedelta(seconds=nt.learn)
        self.key = key_getter(nt.fields)

    def on_event(self, event: Event, state: State) -> list[Event]:
        terms = self.key(event)
        if any(v is None for v in terms) or terms in state.keys:
            return []
        state.keys[terms] = event.timestamp
        first = state.clock.first or event.timestamp
        # Learning is [first, first + learn): an event older than the first one (a capture replayed
        # after a newer one) is judged, not learned silently.
        if first <= event.timestamp < first + self.learn:
            return []
        shown = ", ".join(f"{f}={_fmt(v)}" for f, v in zip(self.fields, terms))
        return [self.alerts.build(self.rule, [trigger_of(event)], event, reason=f"first seen after the learning period: {shown}")]


# Registration is explicit: a rule's kind names its detector class.
DETECTORS: dict[str, type[Detector]] = {
    "match": MatchDetector,
    "threshold": ThresholdDetector,
    "new_terms": NewTermsDetector,
}


def detector_kind(rule: Rule) -> str:
    if rule.threshold is not None:
        return "threshold"
    if rule.new_terms is not None:
        return "new_terms"
    return "match"


class Suppressor:
    """At most one alert per `by` key per window (key taken from the last triggering event)."""

    def __init__(self, rule: Rule) -> None:
        sp = rule.suppress
        assert sp is not None
        self.window = dt.timedelta(seconds=sp.window)
        self.key = key_getter(sp.by)

    def allow(self, event: Event, alert: Event, state: State) -> bool:
        return self.allow_at(event, alert.timestamp, state)

    def allow_at(self, event: Event, t: dt.datetime, state: State) -> bool:
        """`allow` for an alert stamped `t`, decided before the alert is built."""
        key = self.key(event)
        last: dt.datetime | None = state.keys.get(key)
        if last is not None and t - last < self.window:
            return False
        state.keys[key] = t
        return True

    def expire(self, now: dt.datetime, state: State) -> None:
        cutoff = now - self.window
        for key in [k for k, t in state.keys.items() if t < cutoff]:
            del state.keys[key]


# ---------------------------------------------------------------- engine


class _Slot:
    __slots__ = ("compiled", "detector", "state", "suppressor", "suppress_state", "suppress_first")

    def __init__(self, compiled: CompiledRule, detector: Detector, state: State, suppressor: Suppressor | None) -> None:
        self.compiled = compiled
        self.detector = detector
        self.state = state
        self.suppressor = suppressor
        self.suppress_state = State(state.clock)
        # A match rule's alert is stamped with its one event's time and the detector keeps no state,
        # so suppression can be decided before the alert is built (most of them would be dropped).
        self.suppress_first = suppressor is not None and type(detector) is MatchDetector


class DetectionEngine:
    """Runs rules over events in event-time order and returns alerts (`event.kind = "alert"`)."""

    EXPIRE_EVERY = 4096  # events between sweeps of idle threshold/suppression keys

    def __init__(
        self,
        rules: RuleSet | Iterable[Rule],
        lists: Mapping[str, Sequence[Any] | NamedList] | None = None,
        organization_id: str | None = None,
    ) -> None:
        if lists is None:
            lists = rules.lists if isinstance(rules, RuleSet) else {}
        self.organization_id = organization_id
        self.clock = Clock()
        factory = AlertFactory(organization_id)
        self._slots: list[_Slot] = []
        for rule in rules:
            cr = CompiledRule(rule, lists)
            detector = DETECTORS[detector_kind(rule)](cr, factory)
            sup = Suppressor(rule) if rule.suppress is not None else None
            self._slots.append(_Slot(cr, detector, State(self.clock), sup))
        self._by_dataset: dict[str, tuple[_Slot, ...]] = {}
        self._any = tuple(s for s in self._slots if s.compiled.datasets is None)
        self.alerts: Counter[str] = Counter()  # per rule id
        self.suppressed: Counter[str] = Counter()
        self.events = 0

    @property
    def rules(self) -> list[Rule]:
        return [s.compiled.rule for s in self._slots]

    def _slots_for(self, dataset: str) -> tuple[_Slot, ...]:
        slots = self._by_dataset.get(dataset)
        if slots is None:
            slots = tuple(s for s in self._slots if s.compiled.datasets is None or dataset in s.compiled.datasets)
            self._by_dataset[dataset] = slots
        return slots

    def process(self, event: Event) -> list[Event]:
        """Alerts this event raises (often none). Alerts themselves are never matched."""
        self.clock.advance(event.timestamp)
        self.events += 1
        if self.events % self.EXPIRE_EVERY == 0:
            self._expire()
        if event.event.kind == "alert":
            return []
        out: list[Event] = []
        slots = self._by_dataset.get(event.event.dataset)
        if slots is None:
            slots = self._slots_for(event.event.dataset)
        for slot in slots:
            if not slot.compiled.dispatched(event):
                continue
            if slot.suppress_first:
                rid = slot.compiled.rule.id
                if slot.suppressor.allow_at(event, event.timestamp, slot.suppress_state):  # type: ignore[union-attr]
                    self.alerts[rid] += 1
                    out.extend(slot.detector.on_event(event, slot.state))
                else:
                    self.suppressed[rid] += 1
                continue
            for alert in slot.detector.on_event(event, slot.state):
                if self._admit(slot, event, alert):
                    out.append(alert)
        return out

    def process_many(self, events: Iterable[Event]) -> list[Event]:
        """Every alert of a whole input, `finish()` included."""
        out: list[Event] = []
        for e in events:
            out.extend(self.process(e))
        out.extend(self.finish())
        return out

    def _admit(self, slot: _Slot, event: Event, alert: Event) -> bool:
        rid = slot.compiled.rule.id
        if slot.suppressor is not None and not slot.suppressor.allow(event, alert, slot.suppress_state):
            self.suppressed[rid] += 1
            return False
        self.alerts[rid] += 1
        return True

    def finish(self) -> list[Event]:
        """End of input: any alerts detectors still hold."""
        out: list[Event] = []
        for slot in self._slots:
            out.extend(slot.detector.finish(slot.state))
        return out

    def _expire(self) -> None:
        now = self.clock.last
        if now is None:
            return
        for slot in self._slots:
            slot.detector.expire(now, slot.state)
            if slot.suppressor is not None:
                slot.suppressor.expire(now, slot.suppress_state)
