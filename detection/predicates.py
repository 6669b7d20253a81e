"""Rule conditions compiled into fast predicates over `Event`s (field access via `schema.getter`)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline import schema
from pipeline.schema import Event

from .exceptions import EngineError
from .rules.model import Condition, ListRef, NamedList

Predicate = Callable[[Event], bool]
ValueTest = Callable[[Any], bool]
Lists = Mapping[str, "Sequence[Any] | NamedList"]


@functools.lru_cache(maxsize=65536)
def _ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def resolve(value: Any, lists: Lists, where: str = "") -> Any:
    """A `ListRef` -> the list's values (tuple); anything else unchanged."""
    if not isinstance(value, ListRef):
        return value
    try:
        found = lists[value.name]
    except KeyError:
        raise EngineError(f"{where}: list ${value.name} is not defined; load it from rules/lists.yml or a site lists file") from None
    return found.values if isinstance(found, NamedList) else tuple(found)


def _as_tuple(v: Any) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _value_test(modifier: str, value: Any) -> ValueTest:
    """Test of one non-None scalar field value."""
    if modifier in ("eq", "in", "not_in"):
        members = frozenset(_as_tuple(value))
        return lambda x: x in members
    if modifier in ("gt", "gte", "lt", "lte"):
        bound = value
        if modifier == "gt":
            return lambda x: _is_number(x) and x > bound
        if modifier == "gte":
            return lambda x: _is_number(x) and x >= bound
        if modifier == "lt":
            return lambda x: _is_number(x) and x < bound
        return lambda x: _is_number(x) and x <= bound
    if modifier == "range":
        lo, hi = value
        return lambda x: _is_number(x) and lo <= x <= hi
    if modifier == "re":
        pats = [re.compile(p) for p in _as_tuple(value)]
        return lambda x: any(p.search(x if isinstance(x, str) else str(x)) for p in pats)
    if modifier in ("cidr", "not_cidr"):
        nets = tuple(ipaddress.ip_network(v, strict=False) for v in _as_tuple(value))

        def in_nets(x: Any) -> bool:
            ip = _ip(x) if isinstance(x, str) else None
            return ip is not None and any(ip in n for n in nets)

        return in_nets
    if modifier == "contains":
        members = frozenset(_as_tuple(value))
        needles = tuple(str(v) for v in members)

        def contains(x: Any) -> bool:
            if isinstance(x, (list, tuple)):
                return any(item in members for item in x)
            if isinstance(x, str):
                return any(n in x for n in needles)
            return x in members

        return contains
    raise EngineError(f"unknown modifier {modifier!r}")


def compile_condition(cond: Condition, lists: Lists, where: str = "") -> Predicate:
    """One `field|modifier: value`.

    A missing field (None) satisfies only `exists: false`: the negations `not_in`/`not_cidr` need the
    field present, so an event without `source.ip` is never "not an engineering station".
    On a list-valued field (other than with `contains`) a condition holds when any element satisfies
    it; for `not_in`/`not_cidr` when no element does.
    """
    get = schema.getter(cond.field)
    if cond.modifier == "exists":
        want = bool(cond.value)
        return lambda e: (get(e) is not None) is want
    value = resolve(cond.value, lists, where)
    if cond.modifier in ("eq", "in", "not_in"):
        return _membership(get, frozenset(_as_tuple(value)), cond.modifier == "not_in")
    test = _value_test(cond.modifier, value)
    negate = cond.modifier in ("not_in", "not_cidr")
    elementwise = cond.modifier != "contains"

    def pred(e: Event) -> bool:
        v = get(e)
        if v is None:
            return False
        hit = any(test(x) for x in v) if elementwise and isinstance(v, list) else test(v)
        return bool(hit) != negate

    return pred


def _membership(get: Callable[[Any], Any], members: frozenset[Any], negate: bool) -> Predicate:
    """`eq`/`in`/`not_in` (most conditions of the rule packs), inlined: the same answers as the general
    predicate below with the set test written out (one call per condition and event, not three)."""
    if negate:

        def not_in(e: Event) -> bool:
            v = get(e)
            if v is None:
                return False
            if isinstance(v, list):
                return not any(x in members for x in v)
            return v not in members

        return not_in

    def is_in(e: Event) -> bool:
        v = get(e)
        if v is None:
            return False
        if isinstance(v, list):
            return any(x in members for x in v)
        return v in members

    return is_in


def compile_match(branches: Sequence[Sequence[Condition]], lists: Lists, where: str = "") -> Predicate:
    """OR of ANDs: the event matches when every condition of any one branch holds."""
    compiled = [tuple(compile_condition(c, lists, where) for c in branch) for branch in branches]
    if len(compiled) == 1:
        only = compiled[0]
        if len(only) == 1:
            return only[0]

        def all_of(e: Event) -> bool:
            for p in only:
                if not p(e):
                    return False
            return True

        return all_of

    def any_branch(e: Event) -> bool:
        for branch in compiled:
            for p in branch:
                if not p(e):
                    break
            else:
                return True
        return False

    return any_branch


def implied_by_dataset(branches: Sequence[Sequence[Condition]]) -> list[list[Condition]]:
    """The conditions left to test once the event's dataset is known to be one `required_datasets`
    allows: for a single branch, its `event.dataset` equalities hold already (their intersection is
    what the dataset was dispatched on). Several branches are kept whole."""
    if len(branches) != 1:
        return [list(b) for b in branches]
    return [[c for c in branches[0] if not (c.field == "event.dataset" and c.modifier in ("eq", "in"))]]


def required_datasets(branches: Sequence[Sequence[Condition]], lists: Lists) -> frozenset[str] | None:
    """Datasets a rule can match at all (from `event.dataset` equality in every branch), or None for any."""
    out: set[str] = set()
    for branch in branches:
        ds = [c for c in branch if c.field == "event.dataset" and c.modifier in ("eq", "in")]
        if not ds:
            return None
        allowed: set[str] | None = None
        for c in ds:
            vals = {str(v) for v in _as_tuple(resolve(c.value, lists))}
            allowed = vals if allowed is None else allowed & vals
        out |= allowed or set()
    return frozenset(out)
