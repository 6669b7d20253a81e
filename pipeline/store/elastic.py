"""The Elasticsearch store: daily event and alert indices, one asset index, ECS-typed mappings.

    store = ElasticStore("http://127.0.0.1:9200")         # prefix "qinling"
    store.write(events); store.flush(); store.search("alerts", Query(...))

Indices: `<prefix>-events-YYYY.MM.DD`, `<prefix>-alerts-YYYY.MM.DD` (by the UTC day of @timestamp)
and `<prefix>-assets`. Composable index templates give them explicit mappings generated from the
msgspec schema (`pipeline.schema`): `ip` for every `*.ip` (with a `keyword` sub-field), `keyword`
for ids, names and codes, `date_nanos` for @timestamp / `last_seen` (the range fields, so microsecond
times compare exactly as in SQLite), `date` for other times, `long`/`double`/`boolean` for the rest,
`text` + `keyword` for `message`. The root mapping is `strict`: a field the schema does not know is
a write error, not a silent new mapping; only the free-form maps (`labels`,
`modbus.device_id.objects`) take new keys, as keywords.

Behaviour mirrors `SQLiteStore` (the contract tests in tests/integration/test_store_contract.py
compare both answer for answer):

* writes are idempotent by `event.id` (or the SHA-256 of the document when it has none): the id is
  the Elasticsearch `_id`, and an event always lands in the index of its own day;
* ips are filtered, sorted, counted and text-searched through their keyword sub-field, so a bad IP
  literal matches nothing (as in SQLite) instead of failing, and ordering is the string order;
* ties in sort order are broken by document id; documents missing the sort field come last;
* `count_by` orders by count descending then value ascending; a single shard per index keeps the
  terms aggregation exact per index (`shard_size` is raised for daily indices spanning many days);
* pages beyond `index.max_result_window` (10 000 hits) are reached with `search_after`;
* far pages in @timestamp order (from `route_from` on) are read from the daily indices holding them
  only, their offset among them known from per-index counts (`_routed_page`): a million alerts,
  page 100 ~250 -> ~30 ms, page 2000 ~8 s -> ~0.5 s;
* `Query.total_limit` counts matches only up to a limit (`track_total_hits=N`).

Writes are not visible to searches until `flush()` (an index refresh) or the 1 s refresh interval;
pass `refresh_on_write=True` for read-your-writes at a throughput cost.

The integ-test distribution has no ingest pipelines, painless, ILM or data streams; this module uses
none: enrichment happens in Python, retention deletes whole daily indices
(`delete_indices_older_than`). Aggregations used: `terms`, `missing`, `date_histogram` (all in the
server). A network filter (`ipaddress.ip_network`) is a `term` on the `ip` field itself, which takes CIDR.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from .. import schema
from ..exceptions import QueryError, RejectedError, StoreError
from ..schema import Asset, Event
from .base import Facet, Index, Page, Query, Store, ip_network, is_ip_field, is_network

try:
    from elasticsearch import ApiError, Elasticsearch, TransportError
    from elasticsearch import ConnectionError as ESConnectionError
except ImportError as e:  # pragma: no cover - an install requirement
    raise StoreError("the Elasticsearch store needs the client: pip install 'elasticsearch>=8.19,<9'") from e

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
MAX_PAGE_SIZE = 10_000
MAX_ANY_OF = 5_000
MAX_RESULT_WINDOW = 10_000  # the index default; deeper pages use search_after
ID_FIELD = "qinling_doc_id"  # the document id as a keyword (sorting on _id is disabled in 8.x)
_DICT_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
_START_HINT = "start it with `python -m pipeline.services up elasticsearch`, or point the store URL at a reachable node"

_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "events": ("message", "rule.name", "rule.id", "source.ip", "destination.ip", "related.ip"),
    "alerts": ("message", "rule.name", "rule.id", "source.ip", "destination.ip", "related.ip"),
    "assets": ("id", "ip", "mac", "vendor", "product", "revision"),
}
_NANOS_FIELDS = {"@timestamp", "last_seen"}

Kind = Literal["keyword", "text", "ip", "long", "double", "boolean", "date", "array", "dict", "struct"]


# ---------------------------------------------------------------- mappings from the schema


def _unwrap(t: mi.Type) -> tuple[mi.Type, bool]:
    """(inner type, is_array) with Optional removed."""
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(rest) == 1:
            t = rest[0]
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        inner, _ = _unwrap(t.item_type)
        return inner, True
    return t, False


def _leaf_type(t: mi.Type, path: str) -> str:
    name = path.rsplit(".", 1)[-1]
    if isinstance(t, mi.StrType) or isinstance(t, mi.LiteralType):
        if name == "ip":
            return "ip"
        if path == "message":
            return "text"
        return "keyword"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.IntType):
        return "long"
    if isinstance(t, mi.FloatType):
        return "double"
    if isinstance(t, mi.DateTimeType):
        return "date_nanos" if path in _NANOS_FIELDS else "date"
    return "keyword"


def _mapping(root: type) -> tuple[dict[str, Any], dict[str, str]]:
    """(properties, kinds): the ES properties of `root` and the kind of every dotted field."""
    kinds: dict[str, str] = {}

    def walk(st: mi.StructType, prefix: str) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for f in st.fields:
            path = prefix + f.encode_name
            inner, is_array = _unwrap(f.type)
            if isinstance(inner, mi.StructType):
                kinds[path] = "array" if is_array else "struct"
                props[f.encode_name] = {"type": "object", "properties": walk(inner, path + ".")}
                continue
            if isinstance(inner, mi.DictType):
                kinds[path] = "dict"
                props[f.encode_name] = {"type": "object", "dynamic": True}
                continue
            es_type = _leaf_type(inner, path)
            kinds[path] = "array" if is_array else es_type
            if es_type == "ip":
                props[f.encode_name] = {"type": "ip", "fields": {"keyword": {"type": "keyword"}}}
            elif es_type == "text":
                props[f.encode_name] = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 8191}}}
            elif es_type == "keyword":
                props[f.encode_name] = {"type": "keyword", "ignore_above": 8191}
            else:
                props[f.encode_name] = {"type": es_type}
            if is_array:
                kinds[path + "[]"] = es_type
        return props

    info = mi.type_info(root)
    assert isinstance(info, mi.StructType)
    props = walk(info, "")
    props[ID_FIELD] = {"type": "keyword"}
    return props, kinds


_EVENT_PROPS, _EVENT_KINDS = _mapping(Event)
_ASSET_PROPS, _ASSET_KINDS = _mapping(Asset)
_KINDS = {"events": _EVENT_KINDS, "alerts": _EVENT_KINDS, "assets": _ASSET_KINDS}


def mappings(index: str) -> dict[str, Any]:
    return {
        "dynamic": "strict",
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": [
            # only the free-form maps (dynamic: true) ever add fields: their values are keywords
            {"map_strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 8191}}},
        ],
        "properties": _ASSET_PROPS if index == "assets" else _EVENT_PROPS,
    }


# ---------------------------------------------------------------- field resolution


class _Field:
    __slots__ = ("name", "kind", "es", "elem")

    def __init__(self, name: str, kind: str, es: str, elem: str | None = None) -> None:
        self.name, self.kind, self.es, self.elem = name, kind, es, elem


def _field(index: str, name: str, *, purpose: str) -> _Field:
    if not isinstance(name, str):
        raise QueryError(f"{purpose}: field names are strings, got {name!r}")
    kinds = _KINDS[index]
    if name == "@timestamp" and index == "assets":
        name = "last_seen"
    if name in kinds:
        kind = kinds[name]
        elem = kinds.get(name + "[]")
        es_kind = elem or kind
        es = name + ".keyword" if es_kind in ("ip", "text") else name
        return _Field(name, kind, es, elem)
    head, _, key = name.rpartition(".")
    if head and kinds.get(head) == "dict" and _DICT_KEY.match(key):
        return _Field(name, "keyword", name)
    close = sorted(k for k in kinds if not k.endswith("[]") and k.split(".")[-1] == name.split(".")[-1])
    hint = f"; did you mean {', '.join(close[:5])}?" if close else ""
    raise QueryError(f"{purpose}: unknown field {name!r} in the {index} index{hint}")


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


def _iso(d: dt.datetime) -> str:
    return _utc(d).isoformat().replace("+00:00", "Z")


def _time_value(field: str, v: Any) -> str:
    if isinstance(v, dt.datetime):
        return _iso(v)
    if isinstance(v, str):
        try:
            return _iso(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
        except ValueError:
            pass
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _iso(dt.datetime.fromtimestamp(v, UTC))
    raise QueryError(f"filter {field}: {v!r} is not a time (give a datetime or an ISO 8601 string)")


def _es_value(f: _Field, v: Any) -> Any:
    kind = f.elem or f.kind
    if kind in ("date", "date_nanos"):
        return _time_value(f.name, v)
    if isinstance(v, dt.datetime):
        return _iso(v)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    if isinstance(v, (str, int, float, bool)):
        return v
    raise QueryError(f"filter {f.name}: unsupported value {v!r} ({type(v).__name__}); use str, int, float, bool or datetime")


def _wildcard_escape(s: str) -> str:
    return re.sub(r"([\\*?])", r"\\\1", s)


def _day(d: dt.datetime) -> str:
    return _utc(d).strftime("%Y.%m.%d")


class _HeadInfo(msgspec.Struct):
    kind: str
    id: str | None = None


class _Head(msgspec.Struct):
    """What the write path needs of an encoded event; msgspec skips every other field unparsed."""

    timestamp: dt.datetime = msgspec.field(name="@timestamp")
    event: _HeadInfo


_head_decoder = msgspec.json.Decoder(_Head)
_json = msgspec.json.Encoder()
_ID_KEY = b',"' + ID_FIELD.encode() + b'":'


def _with_id(raw: bytes, doc_id: str) -> bytes:
    """The encoded document (a JSON object) with the id field added, spliced in as bytes."""
    return raw.rstrip()[:-1] + _ID_KEY + _json.encode(doc_id) + b"}"


def _bulk_line(index: str, doc_id: str, src: bytes) -> bytes:
    return _json.encode({"index": {"_index": index, "_id": doc_id}}) + b"\n" + src + b"\n"


# ---------------------------------------------------------------- the store


class ElasticStore(Store):
    """`ElasticStore("http://127.0.0.1:9200", prefix="qinling")`."""

    # pages in @timestamp order starting this far in are read from the daily indices holding them (_routed_page)
    route_from = 1000

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "qinling",
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        refresh_on_write: bool = False,
        client: Elasticsearch | None = None,
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_certs: str | None = None,
    ) -> None:
        """`api_key` (base64 "id:key"), `basic_auth` (user, password) and `ca_certs` (PEM file) are for
        remote clusters; they go to the client only and never into messages or logs."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", prefix):
            raise StoreError(f"index prefix {prefix!r}: use lowercase letters, digits, - and _")
        self.url = re.sub(r"(?<=://)[^/@]*@", "***@", url)  # shown in messages: no credentials
        self.prefix = prefix
        self.retries = retries
        self.backoff = backoff
        self.refresh_on_write = refresh_on_write
        auth: dict[str, Any] = {}
        if api_key:
            auth["api_key"] = api_key
        if basic_auth:
            auth["basic_auth"] = basic_auth
        if ca_certs:
            auth["ca_certs"] = ca_certs
        self.es = client or Elasticsearch(url, request_timeout=timeout, max_retries=0, retry_on_timeout=False, **auth)
        # GET / (info) is in modules/rest-root, which the integ-test zip lacks: probe with cluster health
        self._retry(lambda: self.es.cluster.health(), "connect")
        self.install_templates()

    def __repr__(self) -> str:
        return f"ElasticStore({self.url!r}, prefix={self.prefix!r})"

    def __enter__(self) -> ElasticStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------- plumbing

    def pattern(self, index: str) -> str:
        return f"{self.prefix}-assets" if index == "assets" else f"{self.prefix}-{index}-*"

    def index_name(self, index: str, when: dt.datetime | None = None) -> str:
        if index == "assets":
            return f"{self.prefix}-assets"
        assert when is not None
        return f"{self.prefix}-{index}-{_day(when)}"

    def _retry(self, call: Any, what: str) -> Any:
        """Run `call`, retrying connection errors and 429/503 with exponential backoff."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return call()
            except ESConnectionError as e:  # includes timeouts
                err: Exception = e
            except ApiError as e:
                if e.meta.status not in (429, 502, 503, 504):
                    if e.meta.status == 400:
                        raise QueryError(f"{what}: Elasticsearch at {self.url} rejected the request: {_reason(e)}") from e
                    raise StoreError(f"{what}: Elasticsearch at {self.url} answered {e.meta.status}: {_reason(e)}") from e
                err = e
            except TransportError as e:
                err = e
            if attempt < self.retries:
                log.warning("%s: %s; retrying in %.1fs", what, err, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise StoreError(f"{what}: Elasticsearch at {self.url} unreachable after {self.retries + 1} attempts ({err}); {_START_HINT}") from err

    def install_templates(self) -> None:
        for index in ("events", "alerts", "assets"):
            name = f"{self.prefix}-{index}"
            body = {
                "index_patterns": [self.pattern(index)],
                "priority": 200,
                "template": {
                    "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
                    "mappings": mappings(index),
                },
                "_meta": {"managed_by": "qinling", "schema": "pipeline.schema"},
            }
            self._retry(lambda n=name, b=body: self.es.indices.put_index_template(name=n, **b), f"install template {name}")
            self._add_new_fields(index)

    def _add_new_fields(self, index: str) -> None:
        """Give indices made under an older schema the fields added since (today's index would otherwise
        refuse, under `dynamic: strict`, every document with a new field until tomorrow's index). ES adds
        fields to an existing mapping in place; a field whose type changed cannot be, and is reported."""
        props = mappings(index)["properties"]
        pattern = self.pattern(index)
        try:
            self._retry(lambda: self.es.indices.put_mapping(index=pattern, properties=props, allow_no_indices=True,
                                                            ignore_unavailable=True, expand_wildcards="open"),
                        f"update the mapping of {pattern}")
        except QueryError as e:  # a conflict: those documents go to the dead letters with the node's reason
            log.warning("%s; documents with the conflicting field are refused by those indices until they are "
                        "reindexed or deleted", e)

    # ---------------------------------------------------------- writes

    def _bulk(self, docs: list[tuple[str, str, bytes]], what: str, refused: dict[int, str] | None = None) -> None:
        """Index (index, id, source JSON) documents in one `_bulk` request (a newline-delimited body
        joined from bytes, no per-document dicts); retry failed items; raise StoreError with the
        count left. Durable on return: the node fsyncs its translog before answering.

        Documents the node refuses for what they are (mapping errors: 4xx other than 429) raise
        StoreError, or, given a `refused` dict, are recorded there (position in `docs` -> reason)
        while the rest is written."""
        pending = docs
        delay = self.backoff
        last_error = ""
        for attempt in range(self.retries + 1):
            body = b"".join(_bulk_line(index, doc_id, src) for index, doc_id, src in pending)
            try:
                resp = self.es.bulk(operations=body, refresh=self.refresh_on_write,
                                    filter_path="errors,items.*.status,items.*.error")
            except (ESConnectionError, TransportError) as e:
                last_error = str(e)
                retry = pending
            except ApiError as e:
                if e.meta.status not in (429, 502, 503, 504):
                    raise StoreError(f"{what}: {len(pending)} document(s) not written to {self.url}: {_reason(e)}") from e
                last_error = _reason(e)
                retry = pending
            else:
                retry, fatal = [], []
                if resp.get("errors"):
                    for doc, item in zip(pending, resp["items"]):
                        res = item.get("index", {})
                        status = res.get("status", 500)
                        if status >= 300:
                            (retry if status in (429, 502, 503, 504) else fatal).append((doc, res.get("error")))
                if fatal and refused is not None:
                    where = {id(d): i for i, d in enumerate(docs)}
                    for doc, err in fatal:
                        refused[where[id(doc)]] = f"refused by {self.url}: {_short(err)}"
                elif fatal:
                    (doc, err), n = fatal[0], len(fatal)
                    raise StoreError(
                        f"{what}: {n} of {len(pending)} document(s) rejected by {self.url} "
                        f"(first: {doc[0]}/{doc[1]}: {_short(err)}); fix the document or the mapping"
                    )
                if retry:
                    last_error = _short(retry[0][1])
                    retry = [d for d, _ in retry]
            if not retry:
                return
            pending = retry
            if attempt < self.retries:
                log.warning("%s: %d document(s) not written (%s); retrying in %.1fs", what, len(pending), last_error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise StoreError(
            f"{what}: {len(pending)} of {len(docs)} document(s) not written to Elasticsearch at {self.url} after "
            f"{self.retries + 1} attempts ({last_error}); keep the batch and retry later, or {_START_HINT}"
        )

    def write(self, events: Sequence[Event]) -> None:
        docs: list[tuple[str, str, bytes]] = []
        for ev in events:
            raw = schema.encode(ev)
            doc_id = ev.event.id or "sha256:" + hashlib.sha256(raw).hexdigest()
            index = "alerts" if ev.event.kind == "alert" else "events"
            docs.append((self.index_name(index, ev.timestamp), doc_id, _with_id(raw, doc_id)))
        if docs:
            self._bulk(docs, "write")

    def write_encoded(self, values: Sequence[bytes]) -> int:
        """Index events given as their JSON encoding (`schema.encode`, what the bus carries) without
        decoding them into structs: only `@timestamp`, `event.id` and `event.kind` are read (for the
        daily index and the id); the strict mapping rejects what the schema does not know. Durable on
        return, searchable after the next refresh (`refresh_interval` 1 s, or `flush()`). Returns the
        number of alerts among them.

        Records that are not encoded events, or that the mapping refuses, are not retried: the
        others are written, then RejectedError names the refused ones by position."""
        docs: list[tuple[str, str, bytes]] = []
        positions: list[int] = []  # docs[i] is values[positions[i]]
        is_alert: list[bool] = []
        rejected: dict[int, str] = {}
        for pos, raw in enumerate(values):
            try:
                head = _head_decoder.decode(raw)
            except msgspec.DecodeError as e:
                rejected[pos] = f"not an encoded event ({e})"
                continue
            info = head.event
            doc_id = info.id or "sha256:" + hashlib.sha256(raw).hexdigest()
            index = "alerts" if info.kind == "alert" else "events"
            docs.append((self.index_name(index, head.timestamp), doc_id, _with_id(raw, doc_id)))
            positions.append(pos)
            is_alert.append(info.kind == "alert")
        refused: dict[int, str] = {}
        if docs:
            self._bulk(docs, "write", refused)
        alerts = sum(1 for i, a in enumerate(is_alert) if a and i not in refused)
        if refused or rejected:
            rejected.update({positions[i]: why for i, why in refused.items()})
            first = min(rejected)
            raise RejectedError(
                f"write: {len(rejected)} of {len(values)} record(s) will not be stored "
                f"(first, #{first}: {rejected[first]}: {bytes(values[first][:80])!r}); the others were written",
                rejected, alerts)
        return alerts

    def write_assets(self, assets: Sequence[Asset]) -> None:
        docs = [(self.index_name("assets"), a.id, _with_id(schema.encode(a), a.id)) for a in assets]
        if docs:
            self._bulk(docs, "write_assets")

    def flush(self) -> None:
        pattern = ",".join(self.pattern(i) for i in ("events", "alerts", "assets"))
        self._retry(lambda: self.es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True), "refresh")

    def close(self) -> None:
        try:
            self.flush()
        except StoreError:
            pass
        self.es.close()

    # ---------------------------------------------------------- reads

    def _search_raw(self, index: str, body: dict[str, Any], what: str, indices: Sequence[str] = ()) -> dict[str, Any]:
        """Search the kind's indices (or the named ones of it)."""
        target = ",".join(indices) if indices else self.pattern(index)
        return self._retry(  # type: ignore[no-any-return]
            lambda: self.es.search(
                index=target, ignore_unavailable=True, allow_no_indices=True, **body
            ).body,
            what,
        )

    def search(self, index: Literal["events", "alerts"], query: Query) -> Page[Event]:
        self._check_index(index, ("events", "alerts"))
        hits, total, exact, more = self._search(index, query)
        return Page([schema.from_dict(h) for h in hits], total, query.page, query.size, exact, more)

    def search_assets(self, query: Query) -> Page[Asset]:
        hits, total, exact, more = self._search("assets", query)
        return Page([msgspec.convert(h, Asset, strict=False) for h in hits], total, query.page, query.size, exact, more)

    def get(self, index: Literal["events", "alerts"], doc_id: str) -> Event | None:
        found = self.get_many(index, [doc_id])
        return found[0] if found else None

    def get_many(self, index: Literal["events", "alerts"], doc_ids: Sequence[str]) -> list[Event]:
        """The documents found, in the order of `doc_ids` (missing ids skipped, duplicates once)."""
        self._check_index(index, ("events", "alerts"))
        wanted = list(dict.fromkeys(doc_ids))
        docs: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 1000):
            chunk = wanted[i : i + 1000]
            r = self._search_raw(
                index,
                {"query": {"ids": {"values": chunk}}, "size": len(chunk), "_source": {"excludes": [ID_FIELD]}},
                "get_many",
            )
            for h in r["hits"]["hits"]:
                docs[h["_id"]] = h["_source"]
        return [schema.from_dict(docs[i]) for i in wanted if i in docs]

    def count_by(self, index: Index, field: str, query: Query, top: int = 10) -> list[tuple[Any, int]]:
        self._check_index(index, ("events", "alerts", "assets"))
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise QueryError(f"count_by: top must be a positive integer, got {top!r}")
        f = self._countable(index, field, "count_by")
        body = {"query": self._query(index, query), "size": 0, "track_total_hits": False, "aggs": {"by": self._terms(f, top)}}
        r = self._search_raw(index, body, "count_by")
        return self._keys(f, r.get("aggregations", {}).get("by", {}).get("buckets", []))

    def facets(self, index: Index, fields: Sequence[str], query: Query, top: int = 10) -> dict[str, Facet]:
        self._check_index(index, ("events", "alerts", "assets"))
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise QueryError(f"facets: top must be a positive integer, got {top!r}")
        if isinstance(fields, str):
            raise QueryError(f"facets: fields is a list of field names, got the string {fields!r}")
        wanted = [self._countable(index, name, "facets") for name in dict.fromkeys(fields)]
        if not wanted:
            return {}
        aggs: dict[str, Any] = {}
        for i, f in enumerate(wanted):  # one request: every facet counts the same documents
            aggs[f"t{i}"] = self._terms(f, top)
            aggs[f"m{i}"] = {"missing": {"field": f.es}}
        body = {"query": self._query(index, query), "size": 0, "track_total_hits": False, "aggs": aggs}
        got = self._search_raw(index, body, "facets").get("aggregations", {})
        return {f.name: Facet(f.name, self._keys(f, got.get(f"t{i}", {}).get("buckets", [])),
                              int(got.get(f"m{i}", {}).get("doc_count", 0)))
                for i, f in enumerate(wanted)}

    @staticmethod
    def _countable(index: str, field: str, purpose: str) -> _Field:
        f = _field(index, field, purpose=purpose)
        if f.kind in ("struct", "dict") or (f.kind == "array" and f.elem is None):
            raise QueryError(f"{purpose}: {field!r} is an object; count by one of its fields")
        return f

    @staticmethod
    def _terms(f: _Field, top: int) -> dict[str, Any]:
        return {"terms": {"field": f.es, "size": top, "shard_size": max(top * 20, 1000),
                          "order": [{"_count": "desc"}, {"_key": "asc"}]}}

    @staticmethod
    def _keys(f: _Field, buckets: list[dict[str, Any]]) -> list[tuple[Any, int]]:
        kind = f.elem or f.kind
        out: list[tuple[Any, int]] = []
        for b in buckets:
            key = b["key"]
            if kind == "boolean":
                key = bool(key)
            elif kind in ("date", "date_nanos"):
                key = dt.datetime.fromisoformat(b["key_as_string"].replace("Z", "+00:00")) if "key_as_string" in b else schema.ts(key / 1000)
            out.append((key, b["doc_count"]))
        return out

    def histogram(self, index: Literal["events", "alerts"], query: Query, interval: dt.timedelta) -> list[tuple[dt.datetime, int]]:
        self._check_index(index, ("events", "alerts", "assets"))
        secs = interval.total_seconds() if isinstance(interval, dt.timedelta) else 0
        if secs <= 0:
            raise QueryError(f"histogram: interval must be a positive timedelta, got {interval!r}")
        ms = round(secs * 1000)
        if ms < 1:
            raise QueryError(f"histogram: interval must be at least 1 ms, got {interval!r}")
        tfield = "last_seen" if index == "assets" else "@timestamp"
        body = {
            "query": self._query(index, query),
            "size": 0,
            "track_total_hits": False,
            "aggs": {"t": {"date_histogram": {"field": tfield, "fixed_interval": f"{ms}ms", "min_doc_count": 1}}},
        }
        r = self._search_raw(index, body, "histogram")
        return [(schema.ts(b["key"] / 1000), b["doc_count"]) for b in r.get("aggregations", {}).get("t", {}).get("buckets", [])]

    def stats(self) -> dict[str, int]:
        """Document count per index kind."""
        out = {}
        for index in ("events", "alerts", "assets"):
            r = self._retry(lambda i=index: self.es.count(index=self.pattern(i), ignore_unavailable=True, allow_no_indices=True), "stats")
            out[index] = int(r["count"])
        return out

    def delete_indices_older_than(self, days: int, now: dt.datetime | None = None) -> list[str]:
        """Retention: delete whole daily event/alert indices whose day is more than `days` days before today (UTC)."""
        if days < 0:
            raise StoreError(f"retention days must be >= 0, got {days}")
        today = _utc(now or dt.datetime.now(UTC)).date()
        cutoff = today - dt.timedelta(days=days)
        names = self._retry(
            lambda: self.es.indices.get(index=f"{self.pattern('events')},{self.pattern('alerts')}", ignore_unavailable=True, allow_no_indices=True),
            "list indices",
        )
        doomed = []
        rx = re.compile(rf"^{re.escape(self.prefix)}-(events|alerts)-(\d{{4}})\.(\d{{2}})\.(\d{{2}})$")
        for name in names:
            m = rx.match(name)
            if m and dt.date(int(m[2]), int(m[3]), int(m[4])) < cutoff:
                doomed.append(name)
        for i in range(0, len(doomed), 50):
            chunk = ",".join(sorted(doomed)[i : i + 50])
            self._retry(lambda c=chunk: self.es.indices.delete(index=c), "delete indices")
        return sorted(doomed)

    def drop(self) -> None:
        """Delete every index and template of this prefix (tests, `qinling reset`)."""
        names = self._retry(
            lambda: self.es.indices.get(index=f"{self.prefix}-*", ignore_unavailable=True, allow_no_indices=True), "list indices"
        )
        for i, name in enumerate(sorted(names)):
            self._retry(lambda n=name: self.es.indices.delete(index=n), "delete index")
        for index in ("events", "alerts", "assets"):
            try:
                self.es.indices.delete_index_template(name=f"{self.prefix}-{index}")
            except ApiError:
                pass

    # ---------------------------------------------------------- query building

    @staticmethod
    def _check_index(index: str, allowed: tuple[str, ...]) -> None:
        if index not in allowed:
            raise QueryError(f"unknown index {index!r}; expected one of {', '.join(allowed)}")

    def _query(self, index: str, q: Query) -> dict[str, Any]:
        if not isinstance(q, Query):
            raise QueryError(f"expected a Query, got {type(q).__name__}")
        flt: list[dict[str, Any]] = []
        must_not: list[dict[str, Any]] = []
        tfield = "last_seen" if index == "assets" else "@timestamp"
        if q.organization is not None:
            flt.append({"term": {"organization.id": q.organization}})
        rng: dict[str, Any] = {}
        if q.start is not None:
            rng["gte"] = _time_value("start", q.start)
        if q.end is not None:
            rng["lt"] = _time_value("end", q.end)
        if rng:
            flt.append({"range": {tfield: rng}})
        for name, value in dict(q.filters).items():
            f = _field(index, name, purpose="filter")
            flt.append(self._filter(f, value))
        if q.text is not None and not isinstance(q.text, str):
            raise QueryError(f"text: expected a string, got {q.text!r}")
        if q.text and q.text.strip():
            pat = "*" + _wildcard_escape(q.text.strip()) + "*"
            should = []
            for name in _TEXT_FIELDS[index]:
                f = _field(index, name, purpose="text")
                should.append({"wildcard": {f.es: {"value": pat, "case_insensitive": True}}})
            flt.append({"bool": {"should": should, "minimum_should_match": 1}})
        if not flt and not must_not:
            return {"match_all": {}}
        return {"bool": {"filter": flt, "must_not": must_not}}

    def _filter(self, f: _Field, value: Any) -> dict[str, Any]:
        if f.kind in ("struct", "dict") or (f.kind == "array" and f.elem is None):
            raise QueryError(f"filter {f.name}: the field is an object; filter on one of its fields")
        many = isinstance(value, (list, tuple, set, frozenset))
        values = list(value) if many else [value]
        if len(values) > MAX_ANY_OF:
            raise QueryError(f"filter {f.name}: {len(values)} values; at most {MAX_ANY_OF}")
        if not values:
            return {"bool": {"must_not": {"match_all": {}}}}  # any of nothing
        missing = {"bool": {"must_not": {"exists": {"field": f.es}}}}
        present = [v for v in values if v is not None]
        if f.kind == "array" and None in values and present:
            raise QueryError(f"filter {f.name}: None cannot be mixed with values")
        nets = [ip_network(v) for v in present if is_network(v)]
        if nets and not (is_ip_field(f.name) and (f.elem or f.kind) == "ip"):
            raise QueryError(f"filter {f.name}: a network (CIDR) filters IP fields only, such as source.ip")
        present = [v for v in present if not is_network(v)]
        parts: list[dict[str, Any]] = []
        if present:
            es_values = [_es_value(f, v) for v in present]
            parts.append({"term": {f.es: es_values[0]}} if len(es_values) == 1 else {"terms": {f.es: es_values}})
        parts.extend({"term": {f.name: net}} for net in nets)  # the ip field itself takes CIDR
        if len(present) + len(nets) < len(values):
            parts.append(missing)
        return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}

    def _sort(self, index: str, q: Query) -> list[dict[str, Any]]:
        f = _field(index, q.sort, purpose="sort")
        if f.kind in ("struct", "dict", "array"):
            raise QueryError(f"sort: cannot sort on {q.sort!r} (an object or a list); sort on a single-valued field")
        order = "desc" if q.descending else "asc"
        spec: dict[str, Any] = {"order": order, "missing": "_last"}
        if f.kind in ("date", "date_nanos"):
            spec["numeric_type"] = "date_nanos"
        return [{f.es: spec}, {ID_FIELD: {"order": order}}]

    def _search(self, index: str, q: Query) -> tuple[list[dict[str, Any]], int, bool, bool]:
        """(documents of the page, total, whether the total is exact, whether more follow: see Query.total_limit)."""
        if not isinstance(q.page, int) or isinstance(q.page, bool) or q.page < 1:
            raise QueryError(f"page must be an integer >= 1, got {q.page!r}")
        if not isinstance(q.size, int) or isinstance(q.size, bool) or not 0 <= q.size <= MAX_PAGE_SIZE:
            raise QueryError(f"size must be an integer from 0 to {MAX_PAGE_SIZE}, got {q.size!r}")
        limit = _total_limit(q)
        query = self._query(index, q)
        sort = self._sort(index, q)
        offset = (q.page - 1) * q.size
        want = q.size + 1 if limit is not None and q.size else q.size  # one more: does a next page exist?
        base = {"query": query, "sort": sort, "_source": {"excludes": [ID_FIELD]}}
        if limit is None and offset >= self.route_from and q.size and index != "assets" and q.sort == "@timestamp":
            routed = self._routed_page(index, q, base, offset)
            if routed is not None:
                return routed
        if offset + want <= MAX_RESULT_WINDOW:
            # a limited total lets every shard stop counting at the limit (and skip by the sort field)
            tth: bool | int = True if limit is None else limit
            r = self._search_raw(index, {**base, "from": offset, "size": want, "track_total_hits": tth}, "search")
            got = r["hits"]["total"]
            total, exact = int(got["value"]), got.get("relation", "eq") == "eq"
            if limit is not None and total > limit:  # not expected from the server; keep the contract
                total, exact = limit, False
            hits = r["hits"]["hits"]
            return [h["_source"] for h in hits[: q.size]], total, exact, not exact and len(hits) > q.size
        # deep page: walk with search_after (sort values end with the unique id, so the walk is stable)
        r = self._search_raw(index, {"query": query, "size": 0, "track_total_hits": True}, "search")
        total = int(r["hits"]["total"]["value"])
        shown, exact = (total, True) if limit is None or total <= limit else (limit, False)
        if q.size == 0 or offset >= total:
            return [], shown, exact, False
        hits = self._walk(index, base, offset, q.size)
        return [h["_source"] for h in hits], shown, exact, not exact and offset + len(hits) < total

    def _walk(self, index: str, base: dict[str, Any], skip: int, size: int, indices: Sequence[str] = ()) -> list[dict[str, Any]]:
        """`size` hits after the first `skip` in sort order, walked with search_after past the result window
        (sort values end with the unique id, so the walk is stable)."""
        after: list[Any] | None = None
        skipped = 0
        while skipped < skip:
            step = min(MAX_RESULT_WINDOW, skip - skipped)
            body = {"query": base["query"], "sort": base["sort"], "size": step, "_source": False, "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = self._search_raw(index, body, "search", indices)["hits"]["hits"]
            if not hits:
                return []
            skipped += len(hits)
            after = hits[-1]["sort"]
        body = {**base, "size": size, "track_total_hits": False}
        if after is not None:
            body["search_after"] = after
        return self._search_raw(index, body, "search", indices)["hits"]["hits"]  # type: ignore[no-any-return]


    def _routed_page(self, index: str, q: Query, base: dict[str, Any], offset: int) -> tuple[list[dict[str, Any]], int, bool, bool] | None:
        """A far page in @timestamp order, read from the few daily indices that hold it.

        An event lands in the index of its own UTC day and every event has a @timestamp, so in @timestamp
        order the daily indices' documents follow one another, index after index. One request counts the
        matches per index (a terms aggregation on `_index`, which also gives the exact total); the page is
        then a shallow `from` on the indices holding it instead of a deep one on every index (each shard
        would sort offset + size hits), walked with search_after on those indices when the offset inside
        them passes the result window. None when the indices are not all daily ones of this store (then
        the caller pages as usual)."""
        r = self._search_raw(index, {"query": base["query"], "size": 0, "track_total_hits": True,
                                     "aggs": {"i": {"terms": {"field": "_index", "size": 100_000}}}}, "search")
        total = int(r["hits"]["total"]["value"])
        agg = r.get("aggregations", {}).get("i", {})
        counts = {str(b["key"]): int(b["doc_count"]) for b in agg.get("buckets", [])}
        daily = re.compile(rf"^{re.escape(self.prefix)}-{index}-\d{{4}}\.\d{{2}}\.\d{{2}}$")
        if agg.get("sum_other_doc_count") or sum(counts.values()) != total or not all(daily.match(n) for n in counts):
            return None
        if offset >= total:
            return [], total, True, False
        chosen: list[str] = []
        before = 0  # matches in the indices ahead of the chosen ones
        seen = 0
        for name in sorted(counts, reverse=q.descending):  # index names sort by day
            if seen + counts[name] <= offset:
                seen += counts[name]
                before = seen
                continue
            chosen.append(name)
            seen += counts[name]
            if seen >= offset + q.size:
                break
        local = offset - before
        if local + q.size <= MAX_RESULT_WINDOW:
            hits = self._search_raw(index, {**base, "from": local, "size": q.size, "track_total_hits": False},
                                    "search", indices=chosen)["hits"]["hits"]
        else:  # deep inside a big day: walk that day's index only
            hits = self._walk(index, base, local, q.size, chosen)
        return [h["_source"] for h in hits], total, True, False


def _total_limit(q: Query) -> int | None:
    limit = q.total_limit
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise QueryError(f"total_limit must be a positive integer or None, got {limit!r}")
    return limit


def _reason(e: ApiError) -> str:
    try:
        err = e.body.get("error") if isinstance(e.body, dict) else None
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            return f"{root.get('type')}: {root.get('reason')}"
    except Exception:  # pragma: no cover - defensive
        pass
    return str(e)


def _short(err: Any) -> str:
    if isinstance(err, dict):
        cause = err.get("caused_by", {})
        extra = f" ({cause.get('reason')})" if cause else ""
        return f"{err.get('type')}: {err.get('reason')}{extra}"
    return str(err)
