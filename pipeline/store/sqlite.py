"""The embedded store: events, alerts and assets as JSON documents in one SQLite file (WAL mode).

Each table keeps the serialized document (`doc`, the exact ECS JSON) beside the few columns every
query needs: `id` (primary key, so writes are idempotent), `ts` (epoch seconds of @timestamp, or of
`last_seen` for assets) and `org` (organization.id, for tenancy). The most-filtered alert fields are
virtual generated columns over `json_extract(doc, ...)` with their own indexes; any other dotted
field is queried through `json_extract`, and array fields (`related.ip`, `threat.technique.id`,
`roles`, ...) through `json_each`, so a list value means "any element equals any of these".

Every value reaches SQLite as a bound parameter. The only identifiers ever put into SQL text are
column names from the fixed tables below, chosen by field names validated against the schema.

One connection, shared by every thread under a lock: reads and writes are short, and the same code
then serves `:memory:` (which a connection per thread could not share). WAL still lets other
processes (a replay writing while the console reads) proceed concurrently.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from .. import schema
from ..exceptions import QueryError, StoreError
from ..schema import Asset, Event
from .base import Facet, Index, Page, Query, Store, ip_network, is_ip_field, is_network

SCHEMA_VERSION = 1
MAX_PAGE_SIZE = 10_000
MAX_ANY_OF = 5_000  # values in one any-of filter; SQLite allows 32766 parameters in all
UTC = dt.timezone.utc

# Virtual generated columns per table: serialized field -> column. Filters, sorts and counts on these
# fields use the column (and so its index) instead of json_extract.
_GENERATED: dict[str, dict[str, tuple[str, str]]] = {
    "events": {
        "network.protocol": ("protocol", "TEXT"),
        "event.action": ("action", "TEXT"),
    },
    "alerts": {
        "event.severity": ("severity", "INTEGER"),
        "rule.id": ("rule_id", "TEXT"),
        "network.protocol": ("protocol", "TEXT"),
    },
    "assets": {
        "ip": ("ip", "TEXT"),
    },
}

_INDEXES: dict[str, list[tuple[str, str]]] = {
    "events": [("ts", "ts"), ("org_ts", "org, ts"), ("protocol_ts", "protocol, ts")],
    "alerts": [
        ("ts", "ts"),
        ("org_ts", "org, ts"),
        ("severity_ts", "severity, ts"),
        ("rule_ts", "rule_id, ts"),
        ("protocol_ts", "protocol, ts"),
    ],
    "assets": [("last_seen", "ts"), ("org_last_seen", "org, ts"), ("ip", "ip")],
}

# Fields the free-text search looks into (case-insensitive substring).
_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "events": ("message", "rule.name", "rule.id", "source.ip", "destination.ip", "related.ip"),
    "alerts": ("message", "rule.name", "rule.id", "source.ip", "destination.ip", "related.ip"),
    "assets": ("id", "ip", "mac", "vendor", "product", "revision"),
}

_DICT_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")

# "element": a single-valued field inside the structs of an array (`modbus.file_records.file_number`);
# it matches when any element's field does. "nested": an array inside such elements (not queryable).
Kind = Literal["scalar", "bool", "datetime", "array", "dict", "struct", "element", "nested"]


# ---------------------------------------------------------------- fields of the schema


def _classify(t: mi.Type) -> tuple[Kind, mi.Type]:
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(rest) == 1:
            t = rest[0]
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType, mi.TupleType)):
        return "array", t
    if isinstance(t, mi.DictType):
        return "dict", t
    if isinstance(t, mi.StructType):
        return "struct", t
    if isinstance(t, mi.DateTimeType):
        return "datetime", t
    if isinstance(t, mi.BoolType):
        return "bool", t
    return "scalar", t


def _field_kinds(root: type) -> dict[str, Kind]:
    out: dict[str, Kind] = {}

    def walk(t: mi.StructType, prefix: str, in_array: bool) -> None:
        for f in t.fields:
            path = prefix + f.encode_name
            kind, inner = _classify(f.type)
            if in_array:
                out[path] = "nested" if kind in ("array", "dict") else ("struct" if kind == "struct" else "element")
            else:
                out[path] = kind
            if isinstance(inner, mi.StructType):
                walk(inner, path + ".", in_array)
            elif kind == "array" and isinstance(inner, mi.ListType):
                item = _classify(inner.item_type)[1]
                if isinstance(item, mi.StructType):
                    walk(item, path + ".", True)

    info = mi.type_info(root)
    assert isinstance(info, mi.StructType)
    walk(info, "", False)
    return out


def _array_parent(table: str, name: str) -> str:
    """The array a field of kind "element" lives in: `modbus.file_records.file_number` -> `modbus.file_records`."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if _KINDS[table].get(head) == "array":
            return head
    raise AssertionError(name)


_KINDS: dict[str, dict[str, Kind]] = {"events": _field_kinds(Event), "assets": _field_kinds(Asset)}
_KINDS["alerts"] = _KINDS["events"]


def _json_path(field: str) -> str:
    """`a.b` -> `$."a"."b"`: every key quoted, so `@timestamp` and friends are plain keys."""
    return "$" + "".join(f'."{part}"' for part in field.split("."))


@dataclass(frozen=True)
class _Field:
    name: str
    kind: Kind
    column: str | None  # a real column to use instead of json_extract
    path: str  # JSON path, bound as a parameter (for "element": the array's path)
    sub: str = ""  # for "element": the path inside each array element


def _field(table: str, name: str, *, purpose: str) -> _Field:
    if not isinstance(name, str):
        raise QueryError(f"{purpose}: field names are strings, got {name!r}")
    kinds = _KINDS[table]
    time_field = "last_seen" if table == "assets" else "@timestamp"
    if name == "@timestamp" and table == "assets":
        name = "last_seen"  # Query's default sort, meaning "time" for every index
    if name == time_field:
        return _Field(name, "datetime", "ts", _json_path(name))
    if name in ("event.id" if table != "assets" else "id",):
        return _Field(name, "scalar", "id", _json_path(name))
    if kinds.get(name) == "nested":
        raise QueryError(f"{purpose}: {name!r} is a list inside a list; query one of its parents instead")
    if kinds.get(name) == "element":
        parent = _array_parent(table, name)
        return _Field(name, "element", None, _json_path(parent), _json_path(name[len(parent) + 1 :]))
    if name in kinds:
        gen = _GENERATED[table].get(name)
        return _Field(name, kinds[name], gen[0] if gen else None, _json_path(name))
    # a key inside a free-form map such as `labels.site` or `modbus.device_id.objects.0x80`
    head, _, key = name.rpartition(".")
    if head and kinds.get(head) == "dict" and _DICT_KEY.match(key):
        return _Field(name, "scalar", None, _json_path(head) + f'."{key}"')
    close = sorted(k for k in kinds if k.split(".")[-1] == name.split(".")[-1])
    hint = f"; did you mean {', '.join(close[:5])}?" if close else ""
    raise QueryError(f"{purpose}: unknown field {name!r} in the {table} index{hint}")


# ---------------------------------------------------------------- values


def _epoch(d: dt.datetime) -> float:
    if d.tzinfo is None:  # naive times are UTC throughout Qinling
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def _time_value(field: str, v: Any) -> float:
    if isinstance(v, dt.datetime):
        return _epoch(v)
    if isinstance(v, str):
        try:
            return _epoch(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
        except ValueError:
            pass
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise QueryError(f"filter {field}: {v!r} is not a time (give a datetime or an ISO 8601 string)")


@functools.lru_cache(maxsize=1024)
def _parsed_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def _ip_in(value: Any, network: str) -> int:
    """SQL function qn_ip_in(value, network): 1 when the text `value` is an address inside `network`.
    Not an address (or not text): 0, as Elasticsearch's ip field never matches it either."""
    if not isinstance(value, str):
        return 0
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return 0
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return int(addr in _parsed_network(network))


def _split_networks(field: _Field, values: list[Any]) -> tuple[list[Any], list[str]]:
    """(plain values, networks as text): networks only on IP fields."""
    nets = [ip_network(v) for v in values if is_network(v)]
    if nets and not (is_ip_field(field.name) and any(field.name in kinds for kinds in _KINDS.values())):
        raise QueryError(f"filter {field.name}: a network (CIDR) filters IP fields only, such as source.ip")
    return [v for v in values if not is_network(v)], nets


def _sql_value(field: _Field, v: Any) -> Any:
    """A filter value as SQLite sees the JSON value of that field."""
    if field.column == "ts":
        return _time_value(field.name, v)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    if isinstance(v, dt.datetime):
        return msgspec.to_builtins(v)  # the same RFC 3339 text the encoder wrote
    if isinstance(v, bool):
        return int(v)  # json_extract gives 1/0 for true/false
    if isinstance(v, (str, int, float)):
        return v
    raise QueryError(f"filter {field.name}: unsupported value {v!r} ({type(v).__name__}); use str, int, float, bool or datetime")


# ---------------------------------------------------------------- the store


class SQLiteStore(Store):
    """`SQLiteStore("var/qinling.sqlite")` or `SQLiteStore(":memory:")`."""

    def __init__(self, path: str | Path = ":memory:", *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            # Pages of 16 KiB for a new file (an existing one keeps its own): an event document is
            # ~1.1 KB of JSON, and on the 200k-frame mix 4 KiB pages cost 27 % more insert CPU and a
            # 14 % larger file (327 vs 286 MiB for 227k events; benchmarks/, docs/performance.md).
            self._db.execute("PRAGMA page_size=16384")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._db.create_function("qn_ip_in", 2, _ip_in, deterministic=True)
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path}: cannot open the SQLite store: {e}; check the path and its permissions") from e

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------- plumbing

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction: a write, or a consistent snapshot for a count plus its page."""
        with self._lock:
            db = self._db
            if db is None:
                raise StoreError(f"{self.path}: the store is closed")
            try:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: {e}") from e

    def _migrate(self) -> None:
        assert self._db is not None
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer Qinling (schema {version}, this one knows {SCHEMA_VERSION}); upgrade")
        with self._tx(write=True) as db:
            for table in ("events", "alerts", "assets"):
                generated = "".join(
                    f",\n  {col} {typ} GENERATED ALWAYS AS (json_extract(doc, '{_json_path(f)}')) VIRTUAL"
                    for f, (col, typ) in _GENERATED[table].items()
                )
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (\n  id TEXT PRIMARY KEY,\n  ts REAL NOT NULL,\n"
                    f"  org TEXT,\n  doc TEXT NOT NULL{generated}\n)"
                )
                for name, cols in _INDEXES[table]:
                    db.execute(f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table} ({cols})")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # ---------------------------------------------------------- writes

    def write(self, events: Sequence[Event]) -> None:
        rows: dict[str, list[tuple[str, float, str | None, str]]] = {"events": [], "alerts": []}
        for ev in events:
            doc = schema.encode(ev)
            # Every emitted event should carry its deterministic id; the content hash keeps writes
            # idempotent for any that do not.
            doc_id = ev.event.id or "sha256:" + hashlib.sha256(doc).hexdigest()
            org = ev.organization.id if ev.organization else None
            table = "alerts" if ev.event.kind == "alert" else "events"
            rows[table].append((doc_id, _epoch(ev.timestamp), org, doc.decode()))
        with self._tx(write=True) as db:
            for table, batch in rows.items():
                if batch:
                    db.executemany(f"INSERT OR REPLACE INTO {table} (id, ts, org, doc) VALUES (?, ?, ?, ?)", batch)

    def write_assets(self, assets: Sequence[Asset]) -> None:
        batch = [
            (a.id, _epoch(a.last_seen), a.organization.id if a.organization else None, schema.encode(a).decode())
            for a in assets
        ]
        with self._tx(write=True) as db:
            db.executemany("INSERT OR REPLACE INTO assets (id, ts, org, doc) VALUES (?, ?, ?, ?)", batch)

    # ---------------------------------------------------------- reads

    def search(self, index: Literal["events", "alerts"], query: Query) -> Page[Event]:
        table = self._table(index, ("events", "alerts"))
        rows, total, exact, more = self._search(table, query)
        return Page([schema.decode_event(doc) for doc in rows], total, query.page, query.size, exact, more)

    def search_assets(self, query: Query) -> Page[Asset]:
        rows, total, exact, more = self._search("assets", query)
        return Page([schema.decode_asset(doc) for doc in rows], total, query.page, query.size, exact, more)

    def get(self, index: Literal["events", "alerts"], doc_id: str) -> Event | None:
        found = self.get_many(index, [doc_id])
        return found[0] if found else None

    def get_many(self, index: Literal["events", "alerts"], doc_ids: Sequence[str]) -> list[Event]:
        """The documents found, in the order of `doc_ids` (missing ids skipped, duplicates once)."""
        table = self._table(index, ("events", "alerts"))
        wanted = list(dict.fromkeys(doc_ids))
        docs: dict[str, str] = {}
        with self._tx() as db:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                docs.update(db.execute(f"SELECT id, doc FROM {table} WHERE id IN ({marks})", chunk).fetchall())
        return [schema.decode_event(docs[i]) for i in wanted if i in docs]

    def count_by(self, index: Index, field: str, query: Query, top: int = 10) -> list[tuple[Any, int]]:
        table = self._table(index, ("events", "alerts", "assets"))
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise QueryError(f"count_by: top must be a positive integer, got {top!r}")
        f = _field(table, field, purpose="count_by")
        where, params = self._where(table, query)
        sql, sql_params = self._count_sql(table, f, where, params, top, "count_by")
        with self._tx() as db:
            rows = db.execute(sql, sql_params).fetchall()
        return self._keys(f, rows)

    def facets(self, index: Index, fields: Sequence[str], query: Query, top: int = 10) -> dict[str, Facet]:
        table = self._table(index, ("events", "alerts", "assets"))
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise QueryError(f"facets: top must be a positive integer, got {top!r}")
        if isinstance(fields, str):
            raise QueryError(f"facets: fields is a list of field names, got the string {fields!r}")
        wanted = [_field(table, name, purpose="facets") for name in dict.fromkeys(fields)]
        for f in wanted:
            if f.kind in ("struct", "dict"):
                raise QueryError(f"facets: {f.name!r} is an object; count by one of its fields")
        where, params = self._where(table, query)
        single = [f for f in wanted if f.kind not in ("array", "element")]
        plans = []
        for f in wanted:
            if f.kind in ("array", "element"):  # one json_each scan each
                sql, sql_params = self._count_sql(table, f, where, params, top, "facets")
                absent, absent_params = self._absent(f)
                plans.append((f, sql, sql_params, f"SELECT COUNT(*) FROM {table} AS t WHERE {where} AND {absent}",
                              [*params, *absent_params]))
        out: dict[str, Facet] = {}
        with self._tx() as db:  # one snapshot: every facet counts the same documents
            if single:
                sql, sql_params = self._single_pass(table, single, where, params, top)
                found: dict[int, list[tuple[Any, int]]] = {k: [] for k in range(len(single))}
                missing: dict[int, int] = {}
                for k, is_missing, v, n in db.execute(sql, sql_params).fetchall():
                    if is_missing:
                        missing[k] = int(n or 0)
                    else:
                        found[k].append((v, n))
                for k, f in enumerate(single):
                    out[f.name] = Facet(f.name, self._keys(f, found[k]), missing.get(k, 0))
            for f, sql, sql_params, missing_sql, missing_params in plans:
                rows = db.execute(sql, sql_params).fetchall()
                (absent_n,) = db.execute(missing_sql, missing_params).fetchone()
                out[f.name] = Facet(f.name, self._keys(f, rows), absent_n)
        return {f.name: out[f.name] for f in wanted}

    def _single_pass(self, table: str, fields: list[_Field], where: str, params: list[Any], top: int) -> tuple[str, list[Any]]:
        """Every single-valued facet from one scan: the selected documents' values are extracted once into a
        materialized CTE (one JSON parse per document), then grouped per column. Rows: (facet, missing?, value, n)."""
        exprs, expr_params = [], []
        for k, f in enumerate(fields):
            expr, ps = self._expr(f)
            exprs.append(f"{expr} AS c{k}")
            expr_params.extend(ps)
        parts = []
        for k in range(len(fields)):
            parts.append(f"SELECT * FROM (SELECT {k} AS k, 0 AS m, c{k} AS v, COUNT(*) AS n FROM sel"
                         f" WHERE c{k} IS NOT NULL GROUP BY c{k} ORDER BY n DESC, v LIMIT ?)")
            parts.append(f"SELECT {k}, 1, NULL, SUM(c{k} IS NULL) FROM sel")
        sql = (f"WITH sel AS MATERIALIZED (SELECT {', '.join(exprs)} FROM {table} AS t WHERE {where}) "
               + " UNION ALL ".join(parts))
        return sql, [*expr_params, *params, *([top] * len(fields))]

    def _count_sql(self, table: str, f: _Field, where: str, params: list[Any], top: int, purpose: str) -> tuple[str, list[Any]]:
        """SELECT value, count over the documents `where` selects, most frequent first, then by value."""
        if f.kind == "element":
            sql = (
                f"SELECT json_extract(j.value, ?) AS v, COUNT(*) AS n FROM {table} AS t, json_each(t.doc, ?) AS j"
                f" WHERE {where} AND v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT ?"
            )
            return sql, [f.sub, f.path, *params, top]
        if f.kind == "array":
            sql = (
                f"SELECT j.value AS v, COUNT(*) AS n FROM {table} AS t, json_each(t.doc, ?) AS j"
                f" WHERE {where} GROUP BY v ORDER BY n DESC, v LIMIT ?"
            )
            return sql, [f.path, *params, top]
        if f.kind in ("struct", "dict"):
            raise QueryError(f"{purpose}: {f.name!r} is an object; count by one of its fields")
        expr, expr_params = self._expr(f)
        sql = (
            f"SELECT {expr} AS v, COUNT(*) AS n FROM {table} AS t"
            f" WHERE {where} AND v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT ?"
        )
        return sql, [*expr_params, *params, top]

    def _absent(self, f: _Field) -> tuple[str, list[Any]]:
        """The condition "this document has no value for f" (a list: empty; inside a list: no element has one)."""
        if f.kind == "element":
            return "NOT EXISTS (SELECT 1 FROM json_each(t.doc, ?) AS e WHERE json_extract(e.value, ?) IS NOT NULL)", [f.path, f.sub]
        if f.kind == "array":
            return "coalesce(json_array_length(t.doc, ?), 0) = 0", [f.path]
        expr, expr_params = self._expr(f)
        return f"{expr} IS NULL", expr_params

    @staticmethod
    def _keys(f: _Field, rows: list[Any]) -> list[tuple[Any, int]]:
        if f.kind == "bool":
            return [(bool(v), n) for v, n in rows]
        if f.kind == "datetime" and f.column == "ts":
            return [(schema.ts(v), n) for v, n in rows]
        return [(v, n) for v, n in rows]

    def histogram(self, index: Literal["events", "alerts"], query: Query, interval: dt.timedelta) -> list[tuple[dt.datetime, int]]:
        table = self._table(index, ("events", "alerts", "assets"))
        secs = interval.total_seconds() if isinstance(interval, dt.timedelta) else 0
        if secs <= 0:
            raise QueryError(f"histogram: interval must be a positive timedelta, got {interval!r}")
        where, params = self._where(table, query)
        # floor(ts / secs) without the math extension: truncate, then step down for negative times.
        bucket = "(CAST(t.ts / ? AS INTEGER) - (t.ts < 0 AND t.ts <> CAST(t.ts / ? AS INTEGER) * ?))"
        sql = f"SELECT {bucket} AS b, COUNT(*) FROM {table} AS t WHERE {where} GROUP BY b ORDER BY b"
        with self._tx() as db:
            rows = db.execute(sql, [secs, secs, secs, *params]).fetchall()
        return [(schema.ts(b * secs), n) for b, n in rows]

    def stats(self) -> dict[str, int]:
        """Document count per table (for `qinling status` and the console footer)."""
        with self._tx() as db:
            return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("events", "alerts", "assets")}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ---------------------------------------------------------- query building

    @staticmethod
    def _table(index: str, allowed: tuple[str, ...]) -> str:
        if index not in allowed:
            raise QueryError(f"unknown index {index!r}; expected one of {', '.join(allowed)}")
        return index

    @staticmethod
    def _expr(f: _Field) -> tuple[str, list[Any]]:
        if f.column:
            return f"t.{f.column}", []
        return "json_extract(t.doc, ?)", [f.path]

    def _where(self, table: str, q: Query) -> tuple[str, list[Any]]:
        if not isinstance(q, Query):
            raise QueryError(f"expected a Query, got {type(q).__name__}")
        clauses: list[str] = []
        params: list[Any] = []
        if q.organization is not None:
            clauses.append("t.org = ?")
            params.append(q.organization)
        if q.start is not None:
            clauses.append("t.ts >= ?")
            params.append(_time_value("start", q.start))
        if q.end is not None:
            clauses.append("t.ts < ?")
            params.append(_time_value("end", q.end))
        for name, value in dict(q.filters).items():
            f = _field(table, name, purpose="filter")
            sql, ps = self._filter(f, value)
            clauses.append(sql)
            params.extend(ps)
        if q.text is not None and not isinstance(q.text, str):
            raise QueryError(f"text: expected a string, got {q.text!r}")
        if q.text and q.text.strip():
            haystack = " || char(10) || ".join(
                "coalesce(json_extract(t.doc, ?), '')" for _ in _TEXT_FIELDS[table]
            )
            clauses.append(f"instr(lower({haystack}), ?) > 0")
            params.extend(_json_path(f) for f in _TEXT_FIELDS[table])
            params.append(q.text.strip().lower())
        return " AND ".join(clauses) or "1", params

    def _filter(self, f: _Field, value: Any) -> tuple[str, list[Any]]:
        if f.kind in ("struct", "dict"):
            raise QueryError(f"filter {f.name}: the field is an object; filter on one of its fields")
        many = isinstance(value, (list, tuple, set, frozenset))
        values = list(value) if many else [value]
        if len(values) > MAX_ANY_OF:
            raise QueryError(f"filter {f.name}: {len(values)} values; at most {MAX_ANY_OF}")
        if not values:
            return "0", []  # any of nothing
        if f.kind == "element":
            if None in values:
                raise QueryError(f"filter {f.name}: None is not supported inside lists")
            plain, nets = _split_networks(f, values)
            cond, cond_params = self._any_of(f, "json_extract(e.value, ?)", [f.sub], plain, nets)
            return f"EXISTS (SELECT 1 FROM json_each(t.doc, ?) AS e WHERE {cond})", [f.path, *cond_params]
        if f.kind == "array":
            if values == [None]:
                return "coalesce(json_array_length(t.doc, ?), 0) = 0", [f.path]
            if None in values:
                raise QueryError(f"filter {f.name}: None cannot be mixed with values")
            plain, nets = _split_networks(f, values)
            cond, cond_params = self._any_of(f, "value", [], plain, nets)
            return f"EXISTS (SELECT 1 FROM json_each(t.doc, ?) WHERE {cond})", [f.path, *cond_params]
        expr, expr_params = self._expr(f)
        present, nets = _split_networks(f, [v for v in values if v is not None])
        parts: list[str] = []
        params: list[Any] = []
        if present or nets:
            cond, cond_params = self._any_of(f, expr, expr_params, present, nets)
            parts.append(cond)
            params.extend(cond_params)
        if len(present) + len(nets) < len(values):
            parts.append(f"{expr} IS NULL")
            params.extend(expr_params)
        return ("(" + " OR ".join(parts) + ")"), params

    @staticmethod
    def _any_of(f: _Field, expr: str, expr_params: list[Any], plain: list[Any], nets: list[str]) -> tuple[str, list[Any]]:
        """`expr` equals one of `plain` or is an address inside one of `nets` (every value a parameter)."""
        parts: list[str] = []
        params: list[Any] = []
        if plain:
            sql_values = [_sql_value(f, v) for v in plain]
            parts.append(f"{expr} = ?" if len(sql_values) == 1 else f"{expr} IN ({','.join('?' * len(sql_values))})")
            params.extend(expr_params)
            params.extend(sql_values)
        for net in nets:
            parts.append(f"qn_ip_in({expr}, ?)")
            params.extend(expr_params)
            params.append(net)
        return "(" + " OR ".join(parts) + ")", params

    def _order(self, table: str, q: Query) -> tuple[str, list[Any]]:
        f = _field(table, q.sort, purpose="sort")
        if f.kind in ("struct", "dict", "array", "element"):
            raise QueryError(f"sort: cannot sort on {q.sort!r} (an object or a list); sort on a single-valued field")
        expr, params = self._expr(f)
        direction = "DESC" if q.descending else "ASC"
        if f.column in ("ts", "id"):  # never NULL: a plain order the indexes serve
            return f"{expr} {direction}, t.id {direction}", params
        # documents missing the field go last either way; the id keeps pages stable on ties
        return f"({expr} IS NULL), {expr} {direction}, t.id {direction}", params + params

    def _search(self, table: str, q: Query) -> tuple[list[str], int, bool, bool]:
        """(documents of the page, total, whether the total is exact, whether more follow: see Query.total_limit)."""
        if not isinstance(q.page, int) or isinstance(q.page, bool) or q.page < 1:
            raise QueryError(f"page must be an integer >= 1, got {q.page!r}")
        if not isinstance(q.size, int) or isinstance(q.size, bool) or not 0 <= q.size <= MAX_PAGE_SIZE:
            raise QueryError(f"size must be an integer from 0 to {MAX_PAGE_SIZE}, got {q.size!r}")
        limit = q.total_limit
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise QueryError(f"total_limit must be a positive integer or None, got {limit!r}")
        where, params = self._where(table, q)
        order, order_params = self._order(table, q)
        with self._tx() as db:
            if limit is None:
                (total,) = db.execute(f"SELECT COUNT(*) FROM {table} AS t WHERE {where}", params).fetchone()
                exact = True
            else:  # count one past the limit at most
                (total,) = db.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} AS t WHERE {where} LIMIT ?)",
                                      [*params, limit + 1]).fetchone()
                exact = total <= limit
                total = min(total, limit)
            if q.size == 0 or ((q.page - 1) * q.size >= total and exact):
                return [], total, exact, False
            want = q.size + 1 if limit is not None else q.size  # one more: does a next page exist?
            rows = db.execute(
                f"SELECT t.doc FROM {table} AS t WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, *order_params, want, (q.page - 1) * q.size],
            ).fetchall()
        return [r[0] for r in rows[: q.size]], total, exact, not exact and len(rows) > q.size

