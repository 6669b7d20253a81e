"""Semantic checks of rule files, one small class each; every check reports all it finds."""

from __future__ import annotations

import difflib
import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import RuleError
from .model import LIST_MODIFIERS, MODIFIERS, TEMPLATE_FIELD, TEMPLATE_SPECIALS, NamedList, parse_duration
from .yamlsrc import PathKey, YamlDoc


@dataclass(frozen=True)
class CheckContext:
    known_fields: frozenset[str]
    techniques: Mapping[str, str]
    technique_source: str  # where the technique table came from, for messages
    lists: Mapping[str, NamedList]
    lists_files: tuple[str, ...]


@dataclass(frozen=True)
class MatchEntry:
    field: str
    modifier: str  # "eq" for a bare key
    raw_key: str
    value: Any
    where: PathKey


def list_name(value: Any) -> str | None:
    """`$name` -> name; anything else -> None."""
    if isinstance(value, str) and value.startswith("$") and len(value) > 1:
        return value[1:]
    return None


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def match_entries(doc: YamlDoc) -> Iterator[MatchEntry]:
    data = doc.data if isinstance(doc.data, dict) else {}
    m = data.get("match")
    maps: list[tuple[Any, PathKey]]
    if isinstance(m, dict):
        maps = [(m, ("match",))]
    elif isinstance(m, list):
        maps = [(x, ("match", i)) for i, x in enumerate(m)]
    else:
        maps = []
    for mp, base in maps:
        if not isinstance(mp, dict):
            continue
        for key, value in mp.items():
            if not isinstance(key, str):
                continue
            field, sep, modifier = key.partition("|")
            yield MatchEntry(field, modifier if sep else "eq", key, value, base + (key,))


def field_lists(doc: YamlDoc) -> Iterator[tuple[str, PathKey]]:
    """Field names named outside `match`: threshold.by/distinct, new_terms.fields, suppress.by."""
    data = doc.data if isinstance(doc.data, dict) else {}
    for section, key in (("threshold", "by"), ("threshold", "distinct"), ("new_terms", "fields"), ("suppress", "by")):
        sec = data.get(section)
        if not isinstance(sec, dict) or key not in sec:
            continue
        v = sec[key]
        if isinstance(v, str):
            yield v, (section, key)
        elif isinstance(v, list):
            for i, f in enumerate(v):
                if isinstance(f, str):
                    yield f, (section, key, i)


class Check(ABC):
    """One semantic check over every parsed rule file (some checks, like unique ids, span files)."""

    @abstractmethod
    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]: ...


class UniqueIds(Check):
    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        first: dict[str, str] = {}
        for doc in docs:
            rid = doc.data.get("id") if isinstance(doc.data, dict) else None
            if not isinstance(rid, str):
                continue
            where = f"{doc.path}:{doc.line(('id',))}"
            if rid in first:
                yield doc.error(("id",), f"duplicate rule id {rid!r}, first defined at {first[rid]}; give this rule a new id")
            else:
                first[rid] = where


class KnownFields(Check):
    def _unknown(self, doc: YamlDoc, name: str, where: PathKey, ctx: CheckContext) -> RuleError:
        close = difflib.get_close_matches(name, ctx.known_fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see pipeline/schema.py for the event fields"
        return doc.error(where, f"unknown field {name!r}{hint}")

    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        for doc in docs:
            for e in match_entries(doc):
                if e.field not in ctx.known_fields:
                    yield self._unknown(doc, e.field, e.where, ctx)
            for name, where in field_lists(doc):
                if name not in ctx.known_fields:
                    yield self._unknown(doc, name, where, ctx)
            msg = doc.data.get("message") if isinstance(doc.data, dict) else None
            if isinstance(msg, str):
                for name in TEMPLATE_FIELD.findall(msg):
                    if name not in ctx.known_fields and name not in TEMPLATE_SPECIALS:
                        yield self._unknown(doc, name, ("message",), ctx)


class Modifiers(Check):
    """Known modifier, and a value of the shape that modifier takes."""

    def _shape(self, e: MatchEntry) -> str | None:
        v, mod = e.value, e.modifier
        if mod in LIST_MODIFIERS and list_name(v) is not None:
            return None
        if mod in ("eq", "contains"):
            if is_scalar(v) or (isinstance(v, list) and v and all(is_scalar(x) for x in v)):
                return None
            return "takes a value or a non-empty list of values"
        if mod in ("in", "not_in"):
            if isinstance(v, list) and v and all(is_scalar(x) for x in v):
                return None
            return "takes a non-empty list or a $list name"
        if mod in ("gt", "gte", "lt", "lte"):
            return None if _is_number(v) else "takes a number"
        if mod == "range":
            if isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v):
                return None if v[0] <= v[1] else "takes [low, high] with low <= high"
            return "takes [low, high] (inclusive numbers)"
        if mod == "re":
            if isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
                return None
            return "takes a regular expression (or a list of them)"
        if mod in ("cidr", "not_cidr"):
            if isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
                return None
            return "takes a CIDR, a list of CIDRs or a $list name"
        if mod == "exists":
            return None if isinstance(v, bool) else "takes true or false"
        return None

    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        known = ", ".join(sorted(MODIFIERS - {"eq"}))
        for doc in docs:
            for e in match_entries(doc):
                if "|" in e.raw_key.partition("|")[2]:
                    yield doc.error(e.where, f"{e.raw_key!r}: one modifier per key")
                    continue
                if e.modifier not in MODIFIERS or e.modifier == "eq" and "|" in e.raw_key:
                    yield doc.error(e.where, f"unknown modifier {e.modifier!r} in {e.raw_key!r}; use one of: {known}")
                    continue
                problem = self._shape(e)
                if problem is not None:
                    yield doc.error(e.where, f"{e.raw_key!r} {problem}, not {e.value!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class KnownAttack(Check):
    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        for doc in docs:
            ids = doc.data.get("attack") if isinstance(doc.data, dict) else None
            if not isinstance(ids, list):
                continue
            for i, tid in enumerate(ids):
                if isinstance(tid, str) and tid not in ctx.techniques:
                    yield doc.error(
                        ("attack", i),
                        f"unknown ATT&CK for ICS technique {tid!r} (not in {ctx.technique_source}); "
                        "use an id like T0855 from the ICS matrix",
                    )


class ListsDefined(Check):
    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        where = " or ".join(ctx.lists_files) or "a lists file"
        for doc in docs:
            for e in match_entries(doc):
                name = list_name(e.value)
                if name is None or e.modifier not in LIST_MODIFIERS:
                    continue
                if name not in ctx.lists:
                    yield doc.error(e.where, f"list ${name} is not defined; define it in {where}")


class RegexCompile(Check):
    """Every pattern compiles, written in the rule or taken from a named list (`re: $command_topics`)."""

    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        for doc in docs:
            for e in match_entries(doc):
                if e.modifier != "re":
                    continue
                name = list_name(e.value)
                if name is not None:
                    found = ctx.lists.get(name)
                    pats = list(found.values) if isinstance(found, NamedList) else []
                    origin = f" in list ${name}"
                else:
                    pats = e.value if isinstance(e.value, list) else [e.value]
                    origin = ""
                for p in pats:
                    if not isinstance(p, str):
                        if name is not None:
                            yield doc.error(e.where, f"list ${name} holds {p!r}, which is not a regular expression")
                        continue
                    try:
                        re.compile(p)
                    except re.error as err:
                        yield doc.error(e.where, f"bad regular expression {p!r}{origin}: {err}")


def cidr_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{value!r} is not a CIDR (write it as a string like 10.10.1.0/24)"
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as err:
        return f"bad CIDR {value!r}: {err}"
    return None


class CidrValid(Check):
    """Literal CIDRs in rules, and every entry of a list a cidr modifier names (reported in the lists file)."""

    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        reported: set[str] = set()
        for doc in docs:
            for e in match_entries(doc):
                if e.modifier not in ("cidr", "not_cidr"):
                    continue
                name = list_name(e.value)
                if name is not None:
                    nl = ctx.lists.get(name)
                    if nl is None or name in reported:
                        continue
                    reported.add(name)
                    for i, v in enumerate(nl.values):
                        problem = cidr_problem(v)
                        if problem is not None:
                            line = nl.item_lines[i] if i < len(nl.item_lines) else nl.line
                            yield RuleError(nl.path, line, f"list ${name} (used with |{e.modifier}): {problem}")
                    continue
                for v in e.value if isinstance(e.value, list) else [e.value]:
                    problem = cidr_problem(v)
                    if problem is not None:
                        yield doc.error(e.where, problem)


class Durations(Check):
    SPOTS: tuple[tuple[str, str], ...] = (("threshold", "window"), ("new_terms", "learn"), ("suppress", "window"))

    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        for doc in docs:
            data = doc.data if isinstance(doc.data, dict) else {}
            for section, key in self.SPOTS:
                sec = data.get(section)
                if not isinstance(sec, dict) or not isinstance(sec.get(key), str):
                    continue
                if parse_duration(sec[key]) is None:
                    yield doc.error(
                        (section, key), f"{section}.{key}: bad duration {sec[key]!r}; write e.g. 500ms, 10s, 5m, 1h, 1d"
                    )


class OneAggregation(Check):
    """`threshold` and `new_terms` are alternatives: a rule has at most one of them."""

    def run(self, docs: Sequence[YamlDoc], ctx: CheckContext) -> Iterator[RuleError]:
        for doc in docs:
            if isinstance(doc.data, dict) and "threshold" in doc.data and "new_terms" in doc.data:
                yield doc.error(("new_terms",), "a rule has either threshold or new_terms, not both; split it in two rules")


CHECKS: tuple[Check, ...] = (
    UniqueIds(),
    KnownFields(),
    Modifiers(),
    KnownAttack(),
    ListsDefined(),
    RegexCompile(),
    CidrValid(),
    Durations(),
    OneAggregation(),
)
