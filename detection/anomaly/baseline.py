"""What the learning phase remembers about a site, and how it is learned (and relearned one link at a time).

A `Learner` takes events; `fit()` turns what it saw into a `Baseline`:

- nodes, links (client → server, protocol), functions per link, and per link+function the address
  ranges touched in each address space (features.py: Modbus registers, DNP3 groups, IEC 104 IOAs,
  S7 areas, CIP tags/classes, OPC UA nodes, BACnet objects), merged into intervals when less than
  `MERGE_GAP` addresses apart;
- cycles: per exchange (link, function, unit, start address) the median and MAD of the gaps
  between requests, kept when the exchange is cyclic (enough gaps, MAD small next to the median);
- process values: per point (server, protocol, unit, table, address) min/max, the largest step
  between consecutive observations and the largest rate of change; for coils/discrete inputs the
  states seen and the transitions per hour. Points are the server's data, so a value written by
  one master and read back by another shares one envelope.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Event

from .features import REPORTING, Link, Point, is_binary, message_of, point_values

Exchange = tuple[str, str, str, str, Any, Any]  # client, server, protocol, function, unit, address (int or "space:first")
Ranges = dict[str, list[tuple[int, int]]]  # address space -> merged intervals

MERGE_GAP = 16  # learned ranges closer than this are one range
MIN_GAPS = 8  # fewer gaps: no cycle is learned for an exchange
MAX_RELATIVE_MAD = 0.35  # MAD / median above this: the exchange is not cyclic
MEASURED_DISTINCT = 10  # a point never written with at least this many distinct values is a measurement ...
MEASURED_STEPS = 4.0  # ... whose envelope extends this many learned steps beyond its range
MEASURED_SPREAD = 2.0  # ... or this many times the spread it covered while learning
COUNTER_DISTINCT = 3  # a point never written that never decreased over at least this many values counts up


def merge_intervals(ranges: Iterable[tuple[int, int]], gap: int = MERGE_GAP) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def distance_outside(intervals: list[tuple[int, int]], lo: int, hi: int) -> int:
    """0 when [lo, hi] lies inside one interval; else how far its farthest address is from the intervals."""
    if not intervals:
        return hi - lo + 1
    worst = 0
    for a in (lo, hi):
        d = min(0 if s <= a <= e else (s - a if a < s else a - e) for s, e in intervals)
        worst = max(worst, d)
    if worst == 0 and not any(s <= lo and hi <= e for s, e in intervals):
        worst = 1  # spans a hole between two intervals
    return worst


def median_mad(xs: list[float]) -> tuple[float, float]:
    med = statistics.median(xs)
    return med, statistics.median(abs(x - med) for x in xs)


@dataclass
class Cycle:
    period: float  # median gap, seconds
    mad: float
    gaps: int

    def describe(self) -> str:
        return f"period {self.period:.3f}s ± {self.mad:.3f}s (median ± MAD of {self.gaps} gaps)"


@dataclass
class Envelope:
    lo: float
    hi: float
    max_step: float  # largest change between consecutive observations
    max_rate: float  # largest |change| per second
    n: int
    measured: bool = False  # only ever read or reported (never written) and many distinct values: a process measurement
    counter: bool = False  # only ever read or reported, never decreased, at least COUNTER_DISTINCT values: it counts up
    distinct: int = 0  # distinct values learned (0: a model from before this field)

    @property
    def margin(self) -> float:
        m = max(0.25 * (self.hi - self.lo), 0.02 * max(abs(self.lo), abs(self.hi)), 1.0)
        if self.distinct >= 2:
            # Few values learned underestimate the range they come from: n values drawn from a range
            # leave on average (hi - lo) / (n - 1) of it beyond each end (a setting written 3 times
            # while learning is not yet its whole routine range).
            m = max(m, (self.hi - self.lo) / (self.distinct - 1))
        # A measurement wanders: a few of its learned steps, or twice the spread it covered while learning,
        # beyond the range learned is still the process (a sudden jump is the step check's to judge).
        return max(m, MEASURED_STEPS * self.max_step, MEASURED_SPREAD * (self.hi - self.lo)) if self.measured else m

    def beyond(self, value: float) -> bool:
        """Outside the envelope: below or above the learned range by more than the margin; a counter
        has no upper bound (it keeps counting), only its steps are judged."""
        return value < self.lo - self.margin or (not self.counter and value > self.hi + self.margin)

    def describe(self) -> str:
        kind = "counter from " if self.counter else ""
        return (f"{kind}[{self.lo:g}, {self.hi:g}] ± {self.margin:g}, max step {self.max_step:g}, max rate {self.max_rate:.3g}/s "
                f"({self.n} observations)")


@dataclass
class Binary:
    states: set[float]
    transitions: int
    seconds: float

    @property
    def per_minute(self) -> float:
        return 60.0 * self.transitions / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        return f"states [{', '.join(f'{v:g}' for v in sorted(self.states))}], {self.transitions} transitions in {self.seconds:.0f}s"


@dataclass
class Baseline:
    site: str
    start: dt.datetime
    end: dt.datetime
    nodes: set[str] = field(default_factory=set)
    links: dict[Link, dict[str, Ranges]] = field(default_factory=dict)  # link -> function -> space -> ranges
    cycles: dict[Exchange, Cycle] = field(default_factory=dict)
    values: dict[Point, Envelope] = field(default_factory=dict)
    binaries: dict[Point, Binary] = field(default_factory=dict)
    point_links: dict[Point, set[tuple[str, str]]] = field(default_factory=dict)  # which (client, server) pairs saw it

    def summary(self) -> dict[str, int]:
        return {"nodes": len(self.nodes), "links": len(self.links),
                "functions": sum(len(f) for f in self.links.values()),
                "address_spaces": sum(len(r) for f in self.links.values() for r in f.values()), "cycles": len(self.cycles),
                "points": len(self.values), "binary_points": len(self.binaries)}

    def replace_pair(self, client: str, server: str, other: Baseline) -> None:
        """Relearn one pair: drop what this baseline knows about client→server, take `other`'s (learned on that pair only)."""

        def mine(link: tuple[str, ...]) -> bool:
            return link[0] == client and link[1] == server

        self.links = {k: v for k, v in self.links.items() if not mine(k)} | {k: v for k, v in other.links.items() if mine(k)}
        self.cycles = {k: v for k, v in self.cycles.items() if not mine(k)} | {k: v for k, v in other.cycles.items() if mine(k)}
        # Points seen only through this pair are relearned; points the pair touches now are taken from `other`.
        pair = (client, server)
        for table in ("values", "binaries"):
            cur: dict[Point, object] = getattr(self, table)
            new: dict[Point, object] = getattr(other, table)
            for p in [p for p in cur if self.point_links.get(p) == {pair}]:
                del cur[p]
            cur.update(new)
        for p, links in other.point_links.items():
            self.point_links.setdefault(p, set()).update(links)
        self.nodes |= {client, server}
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)


class Learner:
    """Accumulates a site's traffic during the learning phase."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.start: dt.datetime | None = None
        self.end: dt.datetime | None = None
        self.nodes: set[str] = set()
        self.ranges: dict[Link, dict[str, dict[str, list[tuple[int, int]]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list)))
        self.last_request: dict[Exchange, float] = {}
        self.gaps: dict[Exchange, list[float]] = defaultdict(list)
        self.points: dict[Point, list[tuple[float, float]]] = defaultdict(list)
        self.point_links: dict[Point, set[tuple[str, str]]] = defaultdict(set)
        self._pending: dict[Any, Any] = {}
        self.written: set[Point] = set()
        self.events = 0

    def observe(self, e: Event) -> None:
        m = message_of(e)
        if m is None:
            return
        t = e.timestamp
        if self.start is None or t < self.start:
            self.start = t
        if self.end is None or t > self.end:
            self.end = t
        self.events += 1
        client, server, _proto = m.link
        self.nodes.update((client, server))
        funcs = self.ranges[m.link]
        if m.request:
            spaces = funcs[m.function]  # a function seen with no address is still learned
            for space, lo, hi in m.targets:
                bucket = spaces[space]
                if (lo, hi) not in bucket:
                    bucket.append((lo, hi))
            key: Exchange = (*m.link, m.function, m.unit, m.address)
            ts = t.timestamp()
            prev = self.last_request.get(key)
            if prev is not None and ts > prev:
                self.gaps[key].append(ts - prev)
            self.last_request[key] = ts
        for point, value in point_values(e, m, self._pending):
            self.points[point].append((t.timestamp(), value))
            self.point_links[point].add((client, server))
            if m.request and m.link[2] not in REPORTING:
                self.written.add(point)

    def observe_many(self, events: Iterable[Event]) -> Learner:
        for e in events:
            self.observe(e)
        return self

    def fit(self) -> Baseline:
        if self.start is None or self.end is None:
            from .exceptions import NotTrainedError

            raise NotTrainedError(f"site {self.site!r}: no protocol events to learn from; give it traffic of the site")
        b = Baseline(self.site, self.start, self.end, nodes=set(self.nodes))
        for link, funcs in self.ranges.items():
            b.links[link] = {f: {sp: merge_intervals(r) for sp, r in spaces.items()} for f, spaces in funcs.items()}
        for key, gaps in self.gaps.items():
            if len(gaps) < MIN_GAPS:
                continue
            med, mad = median_mad(gaps)
            if med > 0 and mad <= MAX_RELATIVE_MAD * med:
                b.cycles[key] = Cycle(med, mad, len(gaps))
        for point, obs in self.points.items():
            obs.sort()
            vals = [v for _, v in obs]
            step = rate = 0.0
            transitions = 0
            for (t0, v0), (t1, v1) in zip(obs, obs[1:]):
                d = abs(v1 - v0)
                step = max(step, d)
                transitions += v1 != v0
                if t1 > t0:
                    rate = max(rate, d / (t1 - t0))
            if is_binary(point[3]):
                b.binaries[point] = Binary(set(vals), transitions, (self.end - self.start).total_seconds())
            else:
                read_only = point not in self.written
                measured = read_only and len(set(vals)) >= MEASURED_DISTINCT
                counter = read_only and len(set(vals)) >= COUNTER_DISTINCT and all(b >= a for a, b in zip(vals, vals[1:]))
                b.values[point] = Envelope(min(vals), max(vals), step, rate, len(vals), measured, counter, len(set(vals)))
        b.point_links = {p: set(s) for p, s in self.point_links.items()}
        return b
