"""Load rule files and named lists: strict YAML, JSON Schema, semantic checks, every error with file:line."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from pipeline import schema

from ..exceptions import RuleError, RuleLoadError
from . import attack
from .checks import CHECKS, CheckContext, is_scalar, list_name
from .model import (
    Condition,
    LIST_MODIFIERS,
    ListRef,
    NamedList,
    NewTerms,
    Rule,
    RuleSet,
    Suppress,
    Threshold,
    TEMPLATE_FIELD,
    parse_duration,
)
from .schema import RULE_SCHEMA
from .yamlsrc import YamlDoc, read_yaml

PathArg = Union[str, "os.PathLike[str]"]

# rules/ beside the installed packages (settings.rules_dir / lists_file override these).
RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
DEFAULT_LISTS = RULES_DIR / "lists.yml"
LISTS_NAMES = frozenset({"lists.yml", "lists.yaml"})
_LIST_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_validator = jsonschema.Draft202012Validator(RULE_SCHEMA)

# Parsed-rule cache: a rule set that loaded without a single problem is pickled under CACHE_DIR,
# keyed by everything its parse read (see _cache_key). Anything unexpected falls back to parsing.
CACHE_VERSION = 1
CACHE_ENV = "QINLING_RULES_CACHE"  # a folder, or "0"/"off" to parse every time
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "rules"
CACHE_KEEP = 16  # entries kept (tests load many small rule sets); the oldest go first
# Code whose behaviour a cached result depends on: the loader and its checks, the field names and
# severities of the event schema, the built-in technique table.
_CODE = tuple(Path(__file__).with_name(n) for n in ("loader.py", "checks.py", "model.py", "schema.py", "yamlsrc.py",
                                                        "attack.py")) + (Path(schema.__file__),)


def rule_files(paths: PathArg | Iterable[PathArg] | None = None) -> list[str]:
    """Rule files named by `paths` (files, or folders searched recursively for *.yml/*.yaml).

    Lists files (`lists.yml`) inside folders are skipped: they are passed to the loader separately.
    """
    if paths is None:
        items: list[PathArg] = [RULES_DIR]
    elif isinstance(paths, (str, os.PathLike)):
        items = [paths]
    else:
        items = list(paths)
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml") and f.is_file())
            out.extend(os.fspath(f) for f in found if f.name not in LISTS_NAMES)
        else:
            out.append(os.fspath(item))
    return out


# ---------------------------------------------------------------- named lists


def load_lists(paths: Sequence[PathArg]) -> tuple[dict[str, NamedList], list[RuleError]]:
    """Named lists from each file in turn; a later file (the site's) replaces a name an earlier one set."""
    lists: dict[str, NamedList] = {}
    errors: list[RuleError] = []
    for path in paths:
        doc = read_yaml(path, errors, what="lists")
        if doc is None:
            continue
        if not isinstance(doc.data, dict):
            errors.append(doc.error((), "a lists file is a mapping of name -> list of values"))
            continue
        for name, values in doc.data.items():
            where = (str(name),)
            if not isinstance(name, str) or not _LIST_NAME.match(name):
                errors.append(doc.error(where, f"bad list name {name!r}; use letters, digits and _"))
                continue
            if not isinstance(values, list):
                errors.append(doc.error(where, f"list {name!r} must be a YAML list, not {type(values).__name__}"))
                continue
            bad = [i for i, v in enumerate(values) if not is_scalar(v) or v is None]
            for i in bad:
                errors.append(doc.error((name, i), f"list {name!r}: item {values[i]!r} is not a string or number"))
            if bad:
                continue
            item_lines = tuple(doc.line((name, i)) for i in range(len(values)))
            lists[name] = NamedList(name, tuple(values), doc.path, doc.line(where), item_lines)
    return lists, errors


def _lists_paths(default_lists: PathArg | None, site_lists: PathArg | None) -> list[PathArg]:
    out: list[PathArg] = []
    if default_lists is not None:
        out.append(default_lists)
    if site_lists is not None and (default_lists is None or not _same_file(site_lists, default_lists)):
        out.append(site_lists)
    return out


def _same_file(a: PathArg, b: PathArg) -> bool:
    return Path(a).resolve() == Path(b).resolve()


# ---------------------------------------------------------------- schema


def _schema_errors(doc: YamlDoc) -> list[RuleError]:
    out: list[RuleError] = []
    for err in sorted(_validator.iter_errors(doc.data), key=lambda e: [str(p) for p in e.absolute_path]):
        out.append(_located(doc, err))
    return out


def _located(doc: YamlDoc, err: ValidationError) -> RuleError:
    if err.validator in ("anyOf", "oneOf") and err.context:
        deepest = best_match(err.context)
        if deepest is not None:
            err = deepest
    path = tuple(err.absolute_path)
    name = ".".join(str(p) for p in path) or "rule"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        if extra:
            key = extra[0]
            where = f" in {name}" if path else ""
            return doc.error(
                path + (str(key),), f"unknown key {key!r}{where}; allowed: {', '.join(sorted(allowed))}"
            )
    if err.validator == "required":
        return doc.error(path, f"{name}: {err.message}")
    return doc.error(path, f"{name}: {err.message}")


# ---------------------------------------------------------------- building


def _ruleset_name(rule_id: str) -> str:
    """`qn-modbus-0003` -> `qinling-modbus`."""
    parts = rule_id.split("-")
    if len(parts) >= 3 and parts[0] == "qn":
        return "qinling-" + "-".join(parts[1:-1])
    return "qinling"


def _as_tuple(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def _value(modifier: str, v: Any) -> Any:
    name = list_name(v)
    if name is not None and modifier in LIST_MODIFIERS:
        return ListRef(name)
    if isinstance(v, list):
        return tuple(v)
    return v


def _build(doc: YamlDoc, techniques: Mapping[str, str]) -> Rule:
    d: dict[str, Any] = doc.data
    raw = d["match"]
    maps: list[tuple[dict[str, Any], tuple[str | int, ...]]] = (
        [(raw, ("match",))] if isinstance(raw, dict) else [(m, ("match", i)) for i, m in enumerate(raw)]
    )
    branches: list[tuple[Condition, ...]] = []
    used: set[str] = set()
    for mp, base in maps:
        conds = []
        for key, v in mp.items():
            field, sep, mod = key.partition("|")
            mod = mod if sep else "eq"
            conds.append(Condition(field, mod, _value(mod, v), doc.line(base + (key,))))
            used.add(field)
        branches.append(tuple(conds))
    th = d.get("threshold")
    nt = d.get("new_terms")
    sp = d.get("suppress")
    threshold = (
        Threshold(int(th["count"]), _dur(th["window"]), _as_tuple(th.get("by")), th.get("distinct")) if th else None
    )
    new_terms = NewTerms(_as_tuple(nt["fields"]), _dur(nt["learn"])) if nt else None
    suppress = Suppress(_dur(sp["window"]), _as_tuple(sp.get("by"))) if sp else None
    for extra in (threshold.by if threshold else ()) + ((threshold.distinct,) if threshold and threshold.distinct else ()):
        used.add(extra)
    used.update(new_terms.fields if new_terms else ())
    used.update(suppress.by if suppress else ())
    message = d.get("message")
    if message:
        used.update(f for f in TEMPLATE_FIELD.findall(message) if "." in f or f == "@timestamp")
    ids = tuple(d.get("attack") or ())
    return Rule(
        id=d["id"],
        title=d["title"],
        level=d["level"],
        severity=schema.SEVERITY[d["level"]],
        match=tuple(branches),
        attack=ids,
        attack_names=tuple(techniques.get(t, t) for t in ids),
        description=d.get("description"),
        ruleset=_ruleset_name(d["id"]),
        threshold=threshold,
        new_terms=new_terms,
        suppress=suppress,
        message=message,
        references=tuple(d.get("references") or ()),
        falsepositives=tuple(d.get("falsepositives") or ()),
        path=doc.path,
        line=doc.line(("id",)),
        fields_used=frozenset(used),
    )


def _dur(text: str) -> float:
    seconds = parse_duration(text)
    assert seconds is not None  # the Durations check ran first
    return seconds


# ---------------------------------------------------------------- cache


def _cache_dir() -> Path | None:
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    return Path(env) if env else CACHE_DIR


def _cache_key(files: Sequence[str], lists_paths: Sequence[PathArg], table: Path | None) -> str | None:
    """Digest of what a parse reads: the content of every rule, lists and technique file (by path),
    and the size and mtime of the code that interprets them. None when a file cannot be read (the
    parse then reports it)."""
    h = hashlib.sha256(f"qinling-rules {CACHE_VERSION} {sys.version_info[:2]} {pickle.HIGHEST_PROTOCOL}".encode())
    try:
        for code in _CODE:
            st = code.stat()
            h.update(f"\0code {code} {st.st_size} {st.st_mtime_ns}".encode())
        for kind, paths in (("rule", files), ("lists", lists_paths), ("techniques", [table] if table else [])):
            for path in paths:
                with open(path, "rb") as f:
                    h.update(f"\0{kind} {os.fspath(path)}\0".encode() + hashlib.sha256(f.read()).digest())
    except OSError:
        return None
    return h.hexdigest()


def _cache_read(key: str) -> RuleSet | None:
    cache = _cache_dir()
    if cache is None:
        return None
    try:
        with open(cache / f"{key}.pickle", "rb") as f:
            stored_key, ruleset = pickle.load(f)
    except Exception:  # noqa: BLE001 - absent, truncated, from another version: parse instead
        return None
    return ruleset if stored_key == key and isinstance(ruleset, RuleSet) else None


def _cache_write(key: str, ruleset: RuleSet) -> None:
    cache = _cache_dir()
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump((key, ruleset), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cache / f"{key}.pickle")  # readers see a whole entry or none
        except BaseException:
            os.unlink(tmp)
            raise
        entries = sorted(cache.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a read-only or full disk only costs the next start-up a parse
        pass


# ---------------------------------------------------------------- entry points


def check_rules(
    paths: PathArg | Iterable[PathArg] | None = None,
    site_lists: PathArg | None = None,
    *,
    default_lists: PathArg | None = DEFAULT_LISTS,
    techniques: Mapping[str, str] | None = None,
) -> tuple[RuleSet | None, list[RuleError]]:
    """Every problem of the rule files and lists, sorted by file and line; the rule set when there are none."""
    errors: list[RuleError] = []
    lists_paths = _lists_paths(default_lists, site_lists)
    files = rule_files(paths)
    # Only a rule set that loaded cleanly is cached, so every problem is still found by a parse.
    key = _cache_key(files, lists_paths, attack.table_path()) if techniques is None else None
    cached = _cache_read(key) if key is not None else None
    if cached is not None:
        return cached, []
    lists, list_errors = load_lists(lists_paths)
    errors.extend(list_errors)
    if techniques is None:
        table = attack.table_path()
        techniques = attack.techniques(table)
        source = os.fspath(table) if table is not None else "the built-in technique table"
    else:
        source = "the given technique table"
    docs: list[YamlDoc] = []
    schema_ok: set[int] = set()
    for path in files:
        doc = read_yaml(path, errors)
        if doc is None:
            continue
        docs.append(doc)
        if not isinstance(doc.data, dict):
            errors.append(doc.error((), "a rule file holds one mapping (id, title, level, match, ...)"))
            continue
        problems = _schema_errors(doc)
        errors.extend(problems)
        if not problems:
            schema_ok.add(id(doc))
    ctx = CheckContext(
        known_fields=schema.known_fields(),
        techniques=techniques,
        technique_source=source,
        lists=lists,
        lists_files=tuple(os.fspath(p) for p in lists_paths),
    )
    for check in CHECKS:
        errors.extend(check.run([d for d in docs if isinstance(d.data, dict)], ctx))
    errors = sorted(set(errors), key=RuleError.sort_key)
    if errors:
        return None, errors
    rules = tuple(sorted((_build(d, techniques) for d in docs if id(d) in schema_ok), key=lambda r: r.id))
    ruleset = RuleSet(rules, lists)
    if key is not None:
        _cache_write(key, ruleset)
    return ruleset, []


def load_rules(
    paths: PathArg | Iterable[PathArg] | None = None,
    site_lists: PathArg | None = None,
    *,
    default_lists: PathArg | None = DEFAULT_LISTS,
    techniques: Mapping[str, str] | None = None,
) -> RuleSet:
    """Load and validate rules (default: the bundled rules/ folder) with their named lists.

    `default_lists` is the bundled rules/lists.yml; `site_lists` a site's file whose names replace it.
    Raises RuleLoadError carrying every problem found (each `path:line: message`).
    """
    ruleset, errors = check_rules(paths, site_lists=site_lists, default_lists=default_lists, techniques=techniques)
    if errors or ruleset is None:
        raise RuleLoadError(errors)
    return ruleset
