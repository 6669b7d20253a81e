"""The parsed form of a rule file: frozen dataclasses the engine compiles into predicates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

# Modifier written after `|` in a match key; "eq" is the bare key (a YAML list means any-of).
MODIFIERS = frozenset(
    {"eq", "in", "not_in", "gt", "gte", "lt", "lte", "range", "re", "cidr", "not_cidr", "exists", "contains"}
)
# Modifiers whose value may name a list (`$engineering_stations`) instead of spelling it out.
LIST_MODIFIERS = frozenset({"eq", "in", "not_in", "cidr", "not_cidr", "contains", "re"})

LEVELS = ("low", "medium", "high", "critical")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# `{destination.ip}` in a message template; `{count}` is the threshold count at firing.
TEMPLATE_FIELD = re.compile(r"\{([@A-Za-z0-9_.]+)\}")
TEMPLATE_SPECIALS = frozenset({"count"})


def parse_duration(text: str) -> float | None:
    """`10s`, `5m`, `1h`, `250ms`, `1d` -> seconds; None when the text is not a duration."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        return None
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


@dataclass(frozen=True, slots=True)
class ListRef:
    """A reference to a named list (`$name`), resolved when the engine compiles the rule."""

    name: str

    def __str__(self) -> str:
        return f"${self.name}"


Value = Union[ListRef, Any]


@dataclass(frozen=True, slots=True)
class Condition:
    """One `field|modifier: value` entry of a match map."""

    field: str
    modifier: str  # one of MODIFIERS
    value: Value
    line: int = 0


@dataclass(frozen=True, slots=True)
class Threshold:
    """More than `count` matching events (or distinct `distinct` values) within `window` seconds per `by`."""

    count: int
    window: float
    by: tuple[str, ...] = ()
    distinct: str | None = None


@dataclass(frozen=True, slots=True)
class NewTerms:
    """Alert when the combination of `fields` is first seen after `learn` seconds of event time."""

    fields: tuple[str, ...]
    learn: float


@dataclass(frozen=True, slots=True)
class Suppress:
    """At most one alert per `by` key per `window` seconds."""

    window: float
    by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    level: str
    severity: int
    # OR of ANDs: each inner tuple is one match map, every condition of which must hold.
    match: tuple[tuple[Condition, ...], ...]
    attack: tuple[str, ...] = ()
    attack_names: tuple[str, ...] = ()
    description: str | None = None
    ruleset: str = "qinling"
    threshold: Threshold | None = None
    new_terms: NewTerms | None = None
    suppress: Suppress | None = None
    message: str | None = None
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    path: str = ""
    line: int = 0
    fields_used: frozenset[str] = field(default_factory=frozenset)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class NamedList:
    """One entry of a lists file: its values and where it was defined (for error messages)."""

    name: str
    values: tuple[Any, ...]
    path: str = ""
    line: int = 0
    item_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class RuleSet:
    """What `load_rules` returns: the rules and the named lists they refer to."""

    rules: tuple[Rule, ...]
    lists: dict[str, NamedList]

    def list_values(self) -> dict[str, tuple[Any, ...]]:
        return {name: nl.values for name, nl in self.lists.items()}

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def by_id(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)
