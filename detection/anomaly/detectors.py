"""Protecting phase: one detector class per departure from the baseline, each its own alert type.

Detectors see (event, message, state) in event-time order and `tick(now, state)` between events
(the cycle-stopped check needs a clock: it runs on every event's timestamp and at `finish()`).
State is passed in, keyed by link/exchange/point, never kept on the detector.
"""

from __future__ import annotations

import datetime as dt
import statistics
from abc import ABC
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.schema import Event

from ..engine import AlertFactory, CompiledRule, Trigger, trigger_of
from . import rules as R
from .baseline import Baseline, Exchange, distance_outside, median_mad
from .features import BURSTY_CYCLES, Message, point_values

ADDRESS_SLACK = 4  # addresses this close to a learned range are still in it
STOP_PERIODS = 5.0  # "stopped": no request for this many learned periods ...
STOP_MIN_SECONDS = 3.0  # ... and at least this long
RATE_WINDOW = 8  # recent gaps judged for speed-up
RATE_FACTOR = 0.4  # speed-up: recent median gap below this fraction of the period
JITTER_WINDOW = 12
JITTER_FACTOR = 4.0  # irregular: recent MAD above this many learned MADs ...
JITTER_FLOOR = 0.25  # ... and above this fraction of the period
SUPPRESS = dt.timedelta(seconds=300)  # one alert per key per this window (new-* alerts: once per key)
BINARY_WINDOW = 60.0
VALUE_STEP_FACTOR = 2.0


@dataclass
class State:
    keys: dict[Any, Any] = field(default_factory=dict)
    alerted: dict[Any, dt.datetime] = field(default_factory=dict)

    def allow(self, key: Any, now: dt.datetime, window: dt.timedelta | None = SUPPRESS) -> bool:
        last = self.alerted.get(key)
        if last is not None and (window is None or now - last < window):
            return False
        self.alerted[key] = now
        return True


def _unit(unit: Any) -> str:
    return f" unit {unit}" if unit is not None else ""


def _link(m: Message) -> str:
    return f"{m.link[0]} → {m.link[1]} ({m.link[2]})"


class AnomalyDetector(ABC):
    """One alert type. `baseline` is swapped by the engine when the model is retrained or relearned."""

    rule = R.NEW_NODE

    def __init__(self, baseline: Baseline, alerts: AlertFactory) -> None:
        self.baseline = baseline
        self.factory = alerts
        self.compiled: CompiledRule = R.compiled(self.rule)

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        return []

    def tick(self, now: dt.datetime, state: State) -> list[Event]:
        return []

    def finish(self, now: dt.datetime | None, state: State) -> list[Event]:
        return self.tick(now, state) if now is not None else []

    def alert(self, triggers: Sequence[Trigger], last: Event, *, feature: str, observed: str, baseline: str,
              message: str, at: dt.datetime | None = None) -> Event:
        a = self.factory.build(self.compiled, triggers, last, reason=f"{feature}: observed {observed}; learned {baseline}")
        labels = {"feature": feature, "observed": observed, "baseline": baseline, "site": self.baseline.site}
        return msgspec.structs.replace(a, message=message, labels=labels,
                                       timestamp=at if at is not None and at > a.timestamp else a.timestamp)


class NewNodeDetector(AnomalyDetector):
    rule = R.NEW_NODE

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        out = []
        for ip in msg.link[:2]:
            if ip not in self.baseline.nodes and state.allow(ip, event.timestamp, None):
                out.append(self.alert([trigger_of(event)], event, feature="node", observed=ip,
                                      baseline=f"{len(self.baseline.nodes)} known nodes",
                                      message=f"New node {ip} ({msg.link[2]} {_link(msg)})"))
        return out


class NewLinkDetector(AnomalyDetector):
    rule = R.NEW_LINK

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        if not msg.request or msg.link in self.baseline.links or not state.allow(msg.link, event.timestamp, None):
            return []
        peers = sorted({f"{s}" for c, s, p in self.baseline.links if c == msg.link[0]})
        return [self.alert([trigger_of(event)], event, feature="link", observed=_link(msg),
                           baseline=f"{msg.link[0]} talks to {', '.join(peers) or 'nobody'}",
                           message=f"New link {_link(msg)}, function {msg.function}")]


class NewFunctionDetector(AnomalyDetector):
    rule = R.NEW_FUNCTION

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        funcs = self.baseline.links.get(msg.link)
        if not msg.request or funcs is None or msg.function in funcs:
            return []
        if not state.allow((msg.link, msg.function), event.timestamp, None):
            return []
        known = ", ".join(sorted(funcs))
        return [self.alert([trigger_of(event)], event, feature="function", observed=msg.function, baseline=known,
                           message=f"New function {msg.function} on {_link(msg)} (learned: {known})")]


class NewAddressDetector(AnomalyDetector):
    """A known function of a known link touching addresses outside what it touched while learning.

    Per address space (features.py): a range farther than ADDRESS_SLACK from the learned intervals,
    or a space the function never touched (a new DNP3 group, S7 data block, CIP tag, OPC UA node).
    """

    rule = R.NEW_ADDRESS

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        funcs = self.baseline.links.get(msg.link)
        if not msg.request or funcs is None or not msg.targets or msg.function not in funcs:
            return []
        spaces = funcs[msg.function]
        out = []
        for space, lo, hi in msg.targets:
            learned = spaces.get(space)
            if learned and distance_outside(learned, lo, hi) <= ADDRESS_SLACK:
                continue
            if not state.allow((msg.link, msg.function, space), event.timestamp):
                continue
            where = f"{space} " if space else ""
            seen = f"{lo}-{hi}" if lo != hi else str(lo)
            if learned:
                shown = where + ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in learned)
            else:
                shown = "address spaces " + (", ".join(sorted(s or "(none)" for s in spaces)) or "none")
            out.append(self.alert([trigger_of(event)], event, feature="address range", observed=f"{where}{seen}",
                                  baseline=shown, message=f"{msg.function} on {_link(msg)} touches {where}{seen}, "
                                  f"outside the learned {shown}"))
        return out


class _Exchange:
    __slots__ = ("last", "last_event", "gaps", "recent", "stopped")

    def __init__(self) -> None:
        self.last: float | None = None
        self.last_event: Trigger | None = None
        self.gaps: deque[float] = deque(maxlen=max(RATE_WINDOW, JITTER_WINDOW))
        # the requests those gaps lie between: a speed-up or jitter alert cites them all as its evidence
        self.recent: deque[Trigger] = deque(maxlen=max(RATE_WINDOW, JITTER_WINDOW) + 1)
        self.stopped = False

    def evidence(self, gaps: int) -> list[Trigger]:
        """The requests that bound the last `gaps` gaps."""
        return list(self.recent)[-(gaps + 1):]


class _Timing(AnomalyDetector):
    """Shared bookkeeping of the three timing detectors: last request and recent gaps per cyclic exchange."""

    def key(self, msg: Message) -> Exchange:
        return (*msg.link, msg.function, msg.unit, msg.address)

    def track(self, event: Event, msg: Message, state: State) -> tuple[Exchange, _Exchange] | None:
        if not msg.request:
            return None
        key = self.key(msg)
        if key not in self.baseline.cycles:
            return None
        ex: _Exchange | None = state.keys.get(key)
        if ex is None:
            ex = state.keys[key] = _Exchange()
        t = event.timestamp.timestamp()
        if ex.last is not None and t >= ex.last:
            ex.gaps.append(t - ex.last)
        ex.last, ex.last_event, ex.stopped = t, trigger_of(event), False
        ex.recent.append(ex.last_event)
        return key, ex


def _xname(key: Exchange) -> str:
    c, s, p, f, u, a = key
    return f"{c} → {s} {p} {f} unit {u} address {a}"


class PollStoppedDetector(_Timing):
    rule = R.POLL_STOPPED

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        got = self.track(event, msg, state)
        if got is not None:
            state.keys.setdefault("_events", {})[got[0]] = event
        return []

    def tick(self, now: dt.datetime, state: State) -> list[Event]:
        out = []
        t = now.timestamp()
        events = state.keys.get("_events", {})
        for key, cyc in self.baseline.cycles.items():
            ex: _Exchange | None = state.keys.get(key)
            if ex is None or ex.last is None or ex.stopped or ex.last_event is None:
                continue
            silent = t - ex.last
            if silent <= max(STOP_PERIODS * cyc.period, cyc.period + STOP_MIN_SECONDS):
                continue
            ex.stopped = True
            if not state.allow(key[:3], now):  # one alert per link when several of its exchanges stop
                continue
            last = events[key]
            out.append(self.alert([ex.last_event], last, at=now, feature="polling cycle",
                                  observed=f"no request for {silent:.1f}s", baseline=cyc.describe(),
                                  message=f"Polling stopped: {_xname(key)} silent for {silent:.1f}s "
                                          f"(period {cyc.period:.2f}s)"))
        return out


class PollRateDetector(_Timing):
    rule = R.POLL_RATE

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        got = self.track(event, msg, state)
        if got is None or msg.link[2] in BURSTY_CYCLES:
            return []
        key, ex = got
        cyc = self.baseline.cycles[key]
        recent = list(ex.gaps)[-RATE_WINDOW:]
        if len(recent) < RATE_WINDOW:
            return []
        med = statistics.median(recent)
        if med >= RATE_FACTOR * cyc.period or not state.allow(key, event.timestamp):
            return []
        return [self.alert(ex.evidence(len(recent)), event, feature="polling period", observed=f"median gap {med:.3f}s "
                           f"over the last {len(recent)} requests", baseline=cyc.describe(),
                           message=f"Polling sped up: {_xname(key)} every {med:.3f}s instead of {cyc.period:.3f}s")]


class PollJitterDetector(_Timing):
    rule = R.POLL_JITTER

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        got = self.track(event, msg, state)
        if got is None or msg.link[2] in BURSTY_CYCLES:
            return []
        key, ex = got
        cyc = self.baseline.cycles[key]
        recent = list(ex.gaps)[-JITTER_WINDOW:]
        if len(recent) < JITTER_WINDOW:
            return []
        med, mad = median_mad(recent)
        if med < RATE_FACTOR * cyc.period:  # that is a speed-up, PollRateDetector's alert
            return []
        if mad <= max(JITTER_FACTOR * cyc.mad, JITTER_FLOOR * cyc.period) or not state.allow(key, event.timestamp):
            return []
        return [self.alert(ex.evidence(len(recent)), event, feature="polling jitter",
                           observed=f"gaps {med:.3f}s ± {mad:.3f}s over the last {len(recent)} requests",
                           baseline=cyc.describe(),
                           message=f"Polling irregular: {_xname(key)} jitter {mad:.3f}s (learned {cyc.mad:.3f}s)")]


class _Points(AnomalyDetector):
    def values(self, event: Event, msg: Message, state: State) -> list[tuple[Any, float]]:
        # Each detector pairs responses with requests itself: its state is its own.
        pending = state.keys.setdefault("_pending", {})
        if len(pending) > 10000:
            pending.clear()
        return point_values(event, msg, pending)


class ValueDetector(_Points):
    rule = R.VALUE

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        out = []
        last_seen = state.keys.setdefault("_last", {})
        t = event.timestamp.timestamp()
        for point, value in self.values(event, msg, state):
            env = self.baseline.values.get(point)
            prev = last_seen.get(point)
            last_seen[point] = (t, value)
            if env is None:
                continue
            why = []
            if env.beyond(value):
                why.append(f"value {value:g}")
            if prev is not None:
                step = abs(value - prev[1])
                if step > VALUE_STEP_FACTOR * env.max_step + env.margin:
                    why.append(f"step {step:g} since the previous {prev[1]:g}")
                elif env.counter and value < prev[1]:
                    why.append(f"counted back from {prev[1]:g}")
            if not why or not state.allow(point, event.timestamp):
                continue
            server, proto, unit, table, addr = point
            out.append(self.alert([trigger_of(event)], event, feature=f"{table} {addr}", observed=", ".join(why),
                                  baseline=env.describe(),
                                  message=f"Value out of envelope: {server}{_unit(unit)} {table} {addr} = {value:g} "
                                          f"(learned [{env.lo:g}, {env.hi:g}])"))
        return out


class BinaryDetector(_Points):
    rule = R.BINARY

    def on_event(self, event: Event, msg: Message, state: State) -> list[Event]:
        out = []
        t = event.timestamp.timestamp()
        for point, value in self.values(event, msg, state):
            prof = self.baseline.binaries.get(point)
            if prof is None:
                continue
            hist = state.keys.setdefault(point, {"last": None, "flips": deque()})
            if hist["last"] is not None and hist["last"] != value:
                hist["flips"].append(t)
            hist["last"] = value
            flips = hist["flips"]
            while flips and flips[0] < t - BINARY_WINDOW:
                flips.popleft()
            why = None
            if value not in prof.states:
                why = f"state {value:g}"
            elif len(flips) > max(3, 3 * prof.per_minute * BINARY_WINDOW / 60.0):
                why = f"{len(flips)} transitions in {BINARY_WINDOW:.0f}s"
            if why is None or not state.allow(point, event.timestamp):
                continue
            server, proto, unit, table, addr = point
            out.append(self.alert([trigger_of(event)], event, feature=f"{table} {addr}", observed=why,
                                  baseline=prof.describe(),
                                  message=f"Binary point {server}{_unit(unit)} {table} {addr}: {why} "
                                          f"(learned {prof.describe()})"))
        return out


# Registration is explicit: alert type (rule id) -> detector class.
DETECTORS: dict[str, type[AnomalyDetector]] = {
    R.NEW_NODE.id: NewNodeDetector,
    R.NEW_LINK.id: NewLinkDetector,
    R.NEW_FUNCTION.id: NewFunctionDetector,
    R.NEW_ADDRESS.id: NewAddressDetector,
    R.POLL_STOPPED.id: PollStoppedDetector,
    R.POLL_RATE.id: PollRateDetector,
    R.POLL_JITTER.id: PollJitterDetector,
    R.VALUE.id: ValueDetector,
    R.BINARY.id: BinaryDetector,
}
