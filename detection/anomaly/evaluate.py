"""Scoring alerts against a labelled scenario: per attack step detected or not and time to detect,
false alerts per hour of normal traffic, precision/recall.

Attribution of one alert (rule or anomaly):
1. its evidence frames overlap an attack step's frames → it belongs to that step;
2. else, its rule id is in an attack step's `expect_rules` and it fired between that step's first
   frame and `grace` seconds after its last → it belongs to that step (consequences seen later on
   normal traffic: a cycle that stops, a value read back after a malicious write);
3. else it is a false alert.
Only the protecting phase counts: alerts and normal time before `protect_from` are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Event

from ..labels import Scenario, Step

GRACE = 60.0


@dataclass
class StepResult:
    name: str
    expect: tuple[str, ...]
    start: dt.datetime | None
    detected: bool = False
    rules: set[str] = field(default_factory=set)
    time_to_detect: float | None = None
    in_learning: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "detected": self.detected, "time_to_detect_s": self.time_to_detect,
                "rules": sorted(self.rules), "expect_rules": list(self.expect), "in_learning": self.in_learning}


@dataclass
class Report:
    scenario: str
    holdout: bool
    steps: list[StepResult]
    alerts: int
    true_alerts: int
    false_alerts: list[Event]
    normal_seconds: float
    attack_frames: int
    attack_frames_alerted: int

    @property
    def false_per_hour(self) -> float:
        return len(self.false_alerts) * 3600.0 / self.normal_seconds if self.normal_seconds > 0 else 0.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        judged = [s for s in self.steps if not s.in_learning]
        return sum(s.detected for s in judged) / len(judged) if judged else 1.0

    @property
    def frame_recall(self) -> float:
        return self.attack_frames_alerted / self.attack_frames if self.attack_frames else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "holdout": self.holdout, "steps": [s.to_dict() for s in self.steps],
                "alerts": self.alerts, "true_alerts": self.true_alerts, "false_alerts": len(self.false_alerts),
                "normal_hours": round(self.normal_seconds / 3600.0, 4), "false_per_hour": round(self.false_per_hour, 2),
                "precision": round(self.precision, 3), "recall": round(self.recall, 3),
                "frame_recall": round(self.frame_recall, 3)}

    def table(self) -> str:
        lines = [f"scenario {self.scenario}{' (held out)' if self.holdout else ''}"]
        lines.append(f"  {'attack step':28} {'detected':8} {'ttd (s)':>8}  alerts by")
        for s in self.steps:
            ttd = f"{s.time_to_detect:.2f}" if s.time_to_detect is not None else "-"
            flag = "learning" if s.in_learning else ("yes" if s.detected else "NO")
            lines.append(f"  {s.name:28} {flag:8} {ttd:>8}  {', '.join(sorted(s.rules)) or '-'}")
        lines.append(f"  alerts {self.alerts}: {self.true_alerts} on attack steps, {len(self.false_alerts)} false "
                     f"({self.false_per_hour:.1f}/h over {self.normal_seconds / 60:.1f} min protected); "
                     f"precision {self.precision:.2f}, recall {self.recall:.2f} (steps), "
                     f"{self.frame_recall:.2f} (attack frames in alert evidence)")
        for a in self.false_alerts[:10]:
            lines.append(f"    false: {a.timestamp.isoformat()} {a.rule.id if a.rule else '?'} {a.message}")
        return "\n".join(lines)


def evaluate(sc: Scenario, events: Sequence[Event], alerts: Iterable[Event], *, protect_from: dt.datetime | None = None,
             grace: float = GRACE) -> Report:
    frame_time: dict[int, dt.datetime] = {}
    t_first = t_last = None
    for e in events:
        ev = e.evidence
        if ev is not None and ev.frame is not None:
            frame_time.setdefault(ev.frame, e.timestamp)
        if t_first is None or e.timestamp < t_first:
            t_first = e.timestamp
        if t_last is None or e.timestamp > t_last:
            t_last = e.timestamp
    attacks = sc.attacks
    spans: dict[str, tuple[dt.datetime, dt.datetime] | None] = {}
    for s in attacks:
        ts = [frame_time[f] for f in s.frames if f in frame_time]
        spans[s.name] = (min(ts), max(ts)) if ts else None
    results = {s.name: StepResult(s.name, s.expect_rules, sp[0] if (sp := spans[s.name]) else None) for s in attacks}
    for s in attacks:
        span = spans[s.name]
        results[s.name].in_learning = bool(protect_from and span and span[1] < protect_from)
    counted = true = 0
    false: list[Event] = []
    alerted_frames: set[int] = set()
    for a in sorted(alerts, key=lambda x: x.timestamp):
        if protect_from is not None and a.timestamp < protect_from:
            continue
        counted += 1
        frames = set(a.evidence.frames or ()) if a.evidence else set()
        rid = a.rule.id if a.rule else "?"
        hit: list[Step] = [s for s in attacks if s.frames & frames]
        if not hit:
            grace_td = dt.timedelta(seconds=grace)
            hit = [s for s in attacks if rid in s.expect_rules and spans[s.name] is not None
                   and spans[s.name][0] <= a.timestamp <= spans[s.name][1] + grace_td]  # type: ignore[index]
        if not hit:
            false.append(a)
            continue
        true += 1
        alerted_frames |= frames
        for s in hit:
            r = results[s.name]
            r.rules.add(rid)
            if not r.detected and r.start is not None:
                r.time_to_detect = max(0.0, (a.timestamp - r.start).total_seconds())
            r.detected = True
    start = max(t_first, protect_from) if (t_first and protect_from) else t_first
    normal = (t_last - start).total_seconds() if (t_last and start) else 0.0
    attack_frames = {f for s in attacks for f in s.frames}
    return Report(sc.name, sc.holdout, [results[s.name] for s in attacks], counted, true, false, max(normal, 0.0),
                  len(attack_frames), len(attack_frames & alerted_frames))
