"""The bus on Apache Kafka (kafka-python). Every kafka-python call of the project lives in this module.

    bus = KafkaBus("127.0.0.1:9092", partitions=6)
    p = bus.producer(); p.send(TOPIC_EVENTS, value, key=flow_key); p.flush()
    c = bus.consumer([TOPIC_EVENTS], group="store"); batch = c.poll(500, timeout=1.0); ...; c.commit()

Semantics shared with `EmbeddedBus` (see `pipeline.bus`):

* records with the same key land on the same partition, so their order is kept; across partitions
  there is no global order (offsets are per partition: `Record.partition`, `Record.offset`);
* `commit()` commits exactly the positions following the records `poll` returned (auto-commit is
  off); a new consumer of the group starts there, so a crash before `commit` replays, never loses;
* consumers of one group split the partitions; when a rebalance takes a partition away before its
  records were committed, the new owner gets them again (at-least-once; writes are idempotent by
  event id, so a replay is harmless).

Kafka specifics: a consumer joins its group on its first `poll`, which therefore waits up to
`join_timeout` seconds for a partition assignment whatever `timeout` says. After that, `poll(timeout=0)`
returns only what has already been fetched; pass a small timeout (e.g. 0.5 s) when an empty batch
is taken to mean "idle".

Remote clusters: `security` takes kafka-python's TLS/SASL options (`security_protocol`,
`sasl_mechanism`, `sasl_plain_username`, `sasl_plain_password`, `ssl_cafile`), applied to every
client; `pipeline.settings.Settings.kafka_security()` builds them. They are never logged.

Takeover: a consumer of a dead process keeps its partitions until `session_timeout_ms` passes
without a heartbeat; lower it (the broker's `group.min.session.timeout.ms` is the floor) for faster
takeover at the cost of more spurious rebalances on a loaded machine.

Compression: lz4 when the `lz4` package is importable (fast, cheap on CPU), otherwise none;
pass `compression="gzip"` (pure zlib, built in) to trade CPU for bytes.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .bus import TOPIC_ALERTS, TOPIC_EVENTS, Bus, Consumer, Producer, Record
from .exceptions import BusError

log = logging.getLogger(__name__)

try:
    # kafka-python 3.0 loads its protocol schemas with importlib.resources.read_text/open_text, deprecated
    # since Python 3.11; silence that one warning for the import only (the suite turns warnings
    # into errors).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"(read_text|open_text) is deprecated")
        import kafka
        from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
        from kafka.structs import OffsetAndMetadata
except ImportError as e:  # pragma: no cover - kafka-python is an install requirement
    raise BusError("the Kafka bus needs kafka-python: pip install 'kafka-python>=3,<4'") from e

try:
    # librdkafka's producer (C): ~6x the send rate of kafka-python's pure-Python one, which capped a
    # sensor or detector at ~20k records/s of one core. Used when installed (see KafkaBus.producer).
    import confluent_kafka as _rdk
except ImportError:  # pragma: no cover - an install requirement; kafka-python's producer is the fallback
    _rdk = None

_START_HINT = "start one with `python -m pipeline.services up kafka`, or point QINLING_KAFKA_BOOTSTRAP at a reachable broker"


def _unreachable(bootstrap: str, err: BaseException, security: Mapping[str, Any] | None = None) -> BusError:
    if security and str(security.get("security_protocol", "")).startswith("SASL"):
        # the TCP probe succeeded: a SASL client that cannot bootstrap was almost always refused at login
        user = security.get("sasl_plain_username", "")
        return BusError(f"the Kafka broker at {bootstrap} did not accept {security.get('sasl_mechanism')} login as {user!r} "
                        f"({err}): check kafka_sasl_username / kafka_sasl_password and that the account exists")
    return BusError(f"no Kafka broker answered at {bootstrap} ({err}); {_START_HINT}")


def _subscription(topics: Sequence[str]) -> dict[str, Any]:
    """kafka-python `subscribe` arguments: names starting with `^` are regular expressions (e.g. every
    enterprise's events topic, `^ent\\..+\\.events$`), the others literal topic names."""
    patterns = [t for t in topics if t.startswith("^")]
    if not patterns:
        return {"topics": list(topics)}
    literal = [f"^{re.escape(t)}$" for t in topics if not t.startswith("^")]
    return {"pattern": "|".join(f"(?:{p})" for p in [*patterns, *literal])}


def default_compression() -> str | None:
    return "lz4" if importlib.util.find_spec("lz4") else None


class KafkaBus(Bus):
    """Topics `events` and `alerts` on a Kafka cluster, created with `partitions` partitions when missing."""

    # How long a producer keeps retrying a record (the broker away) before failing it; a live
    # sensor's spooled producer raises it so a batch in flight during an outage is retried,
    # idempotently, rather than failed and sent again (pipeline.spool).
    delivery_timeout_ms = 60000

    def __init__(
        self,
        bootstrap: str,
        partitions: int = 6,
        client_id: str = "qinling",
        *,
        topics: Iterable[str] = (TOPIC_EVENTS, TOPIC_ALERTS),
        replication_factor: int = 1,
        compression: str | None = "auto",
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        connect_timeout: float = 10.0,
        join_timeout: float = 30.0,
        security: Mapping[str, Any] | None = None,
        session_timeout_ms: int = 10000,
        heartbeat_interval_ms: int = 1000,
    ) -> None:
        if partitions < 1:
            raise BusError(f"partitions must be >= 1, got {partitions}")
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.client_id = client_id
        self.compression = default_compression() if compression == "auto" else compression
        self.linger_ms = linger_ms
        self.batch_size = batch_size
        self.connect_timeout_ms = int(connect_timeout * 1000)
        self.join_timeout = join_timeout
        self.security: dict[str, Any] = dict(security or {})
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = min(heartbeat_interval_ms, max(1, session_timeout_ms // 3))
        self._closing: list[Producer | Consumer] = []
        self.ensure_topics(list(topics), partitions, replication_factor)

    # ------------------------------------------------------------ admin
    def _probe(self) -> None:
        """Fail fast, before kafka-python starts its network thread (which keeps retrying, and leaks
        the sockets of refused attempts, when no broker answers)."""
        errors = []
        for server in self.bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=self.connect_timeout_ms / 1000):
                    return
            except (OSError, ValueError) as e:
                errors.append(f"{server.strip()}: {e}")
        raise _unreachable(self.bootstrap, OSError("; ".join(errors)))

    def _admin(self) -> KafkaAdminClient:
        self._probe()
        try:
            return KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-admin",
                bootstrap_timeout_ms=self.connect_timeout_ms,
                request_timeout_ms=max(self.connect_timeout_ms, 15000),
                **self.security,
            )
        except KafkaError as e:
            raise _unreachable(self.bootstrap, e, self.security) from e

    def ensure_topics(self, topics: Sequence[str], partitions: int, replication_factor: int = 1) -> None:
        """Create the topics that do not exist yet (existing ones keep their partition count)."""
        admin = self._admin()
        try:
            existing = set(admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                try:
                    admin.create_topics(
                        [NewTopic(name=t, num_partitions=partitions, replication_factor=replication_factor) for t in missing],
                        timeout_ms=30000,
                    )
                except TopicAlreadyExistsError:
                    pass  # created concurrently by another process
            self._wait_for_topics(admin, topics)
        except KafkaError as e:
            raise BusError(f"could not create topics {list(topics)} on {self.bootstrap}: {e}") from e
        finally:
            admin.close()

    def _wait_for_topics(self, admin: KafkaAdminClient, topics: Sequence[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            desc = admin.describe_topics(list(topics))
            ready = {d.get("name", d.get("topic")) for d in desc if not d.get("error_code") and d.get("partitions")}
            if ready >= set(topics):
                return
            if time.monotonic() > deadline:
                raise BusError(f"topics {sorted(set(topics) - ready)} did not become available on {self.bootstrap} within {timeout:.0f}s")
            time.sleep(0.1)

    def partition_count(self, topic: str) -> int:
        admin = self._admin()
        try:
            (d,) = admin.describe_topics([topic])
            return len(d.get("partitions") or ())
        except KafkaError as e:
            raise BusError(f"could not describe topic {topic!r} on {self.bootstrap}: {e}") from e
        finally:
            admin.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> offset the next record will get (what a fully caught-up group has committed)."""
        self._probe()
        try:
            c = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-offsets",
                              bootstrap_timeout_ms=self.connect_timeout_ms, **self.security)
        except KafkaError as e:
            raise _unreachable(self.bootstrap, e) from e
        try:
            parts = c.partitions_for_topic(topic) or set()
            ends = c.end_offsets([TopicPartition(topic, p) for p in parts])
            return {tp.partition: off for tp, off in ends.items()}
        except KafkaError as e:
            raise BusError(f"could not read the end offsets of {topic!r} on {self.bootstrap}: {e}") from e
        finally:
            c.close()

    # ------------------------------------------------------------ Bus
    # "auto": librdkafka (confluent-kafka) when importable and no TLS/SASL options are set, else
    # kafka-python; "kafka-python" forces the pure-Python client (the benchmark compares both).
    producer_client = "auto"

    def producer(self) -> Producer:
        conf = _rdkafka_conf(self) if self.producer_client == "auto" else None
        p: Producer = _RdkafkaProducer(self, conf) if conf is not None else _KafkaProducer(self)
        self._closing.append(p)
        return p

    def consumer(self, topics: Sequence[str], group: str, *, rewind: int = 0) -> Consumer:
        """`rewind` > 0: on every partition assignment, start up to that many records *before* the
        group's committed offset; those records are listed in the consumer's `warmup_positions`
        (a stateful stage re-reads them to rebuild its state, and publishes nothing for them)."""
        c = _KafkaConsumer(self, list(topics), group, rewind=rewind)
        self._closing.append(c)
        return c

    def close(self) -> None:
        for x in reversed(self._closing):
            try:
                x.close()
            except BusError:
                pass
        self._closing.clear()


class _KafkaProducer(Producer):
    def __init__(self, bus: KafkaBus) -> None:
        self._bus = bus
        try:
            self._p = KafkaProducer(
                bootstrap_servers=bus.bootstrap,
                client_id=f"{bus.client_id}-producer",
                acks="all",
                enable_idempotence=True,
                linger_ms=bus.linger_ms,
                batch_size=bus.batch_size,
                compression_type=bus.compression,
                bootstrap_timeout_ms=bus.connect_timeout_ms,
                max_block_ms=bus.connect_timeout_ms,  # how long send() may wait for metadata / buffer space
                delivery_timeout_ms=bus.delivery_timeout_ms,
                **bus.security,
            )
        except KafkaError as e:
            raise _unreachable(bus.bootstrap, e) from e
        self._lock = threading.Lock()
        self._failed = 0
        self._first_error: BaseException | None = None
        self._closed = False

    def _errback(self, exc: BaseException) -> None:
        with self._lock:
            self._failed += 1
            if self._first_error is None:
                self._first_error = exc

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        try:
            self._p.send(topic, value=value, key=key).add_errback(self._errback)
        except KafkaTimeoutError as e:
            raise BusError(f"could not send to topic {topic!r} on {self._bus.bootstrap} (no metadata or buffer full): {e}; {_START_HINT}") from e
        except KafkaError as e:
            raise BusError(f"could not send to topic {topic!r} on {self._bus.bootstrap}: {e}") from e

    def flush(self) -> None:
        try:
            self._p.flush(timeout=max(90, self._bus.delivery_timeout_ms / 1000 + 30))
        except KafkaError as e:
            raise BusError(f"flush to {self._bus.bootstrap} did not complete: {e}") from e
        with self._lock:
            failed, err = self._failed, self._first_error
            self._failed, self._first_error = 0, None
        if failed:
            if "AuthorizationFailed" in type(err).__name__:
                user = self._bus.security.get("sasl_plain_username", "this client")
                raise BusError(f"{failed} record(s) refused by {self._bus.bootstrap}: {user!r} may not write there ({err}); "
                               "a sensor account may write only its own enterprise's topic")
            raise BusError(f"{failed} record(s) were not acknowledged by {self._bus.bootstrap} (first error: {err}); send them again")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._p.close(timeout=10)


def _rdkafka_conf(bus: KafkaBus) -> dict[str, Any] | None:
    """librdkafka settings equivalent to `_KafkaProducer`'s, or None: not installed, or TLS/SASL
    options are set. A secured cluster keeps kafka-python's producer, which refuses a bad login
    when it is created (librdkafka would queue and fail only at the delivery timeout)."""
    if _rdk is None or bus.security:
        return None
    conf: dict[str, Any] = {
        "bootstrap.servers": bus.bootstrap,
        "client.id": f"{bus.client_id}-producer",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": bus.linger_ms,
        "batch.size": bus.batch_size,
        "compression.type": bus.compression or "none",
        # the Java client's (and kafka-python's) murmur2 of the key: a key lands on the same
        # partition whichever client sent it
        "partitioner": "murmur2_random",
        "message.timeout.ms": bus.delivery_timeout_ms,
        "socket.connection.setup.timeout.ms": max(1000, bus.connect_timeout_ms),
        "logger": log,
    }
    return conf


class _RdkafkaProducer(Producer):
    """`_KafkaProducer`'s contract on librdkafka: idempotent, acks=all, the same partitioning; `send`
    queues (waiting up to the connect timeout for room when the local queue is full), `flush` waits
    for every acknowledgement and raises BusError naming how many records were refused."""

    def __init__(self, bus: KafkaBus, conf: dict[str, Any]) -> None:
        self._bus = bus
        try:
            self._p = _rdk.Producer(conf)
        except _rdk.KafkaException as e:
            raise BusError(f"could not create a Kafka producer for {bus.bootstrap}: {e}") from e
        self._lock = threading.Lock()
        self._failed = 0
        self._first_error: Any = None
        self._closed = False
        self._sent = 0

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            with self._lock:
                self._failed += 1
                if self._first_error is None:
                    self._first_error = err

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        deadline = 0.0
        while True:
            try:
                self._p.produce(topic, value, key, on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: serve acknowledgements until there is room
                now = time.monotonic()
                deadline = deadline or now + self._bus.connect_timeout_ms / 1000
                if now > deadline:
                    raise BusError(f"could not send to topic {topic!r} on {self._bus.bootstrap}: the producer's queue stayed "
                                   f"full for {self._bus.connect_timeout_ms / 1000:.0f}s (broker unreachable or too slow); {_START_HINT}") from None
                self._p.poll(0.05)
            except _rdk.KafkaException as e:
                raise BusError(f"could not send to topic {topic!r} on {self._bus.bootstrap}: {e}") from e
        self._sent += 1
        if not self._sent & 1023:
            self._p.poll(0)  # run the delivery callbacks so far

    def flush(self) -> None:
        timeout = max(90.0, self._bus.delivery_timeout_ms / 1000 + 30)
        left = self._p.flush(timeout)
        with self._lock:
            failed, err = self._failed, self._first_error
            self._failed, self._first_error = 0, None
        if left:
            raise BusError(f"flush to {self._bus.bootstrap} did not complete: {left} record(s) unacknowledged after {timeout:.0f}s")
        if failed:
            name = err.name() if hasattr(err, "name") else type(err).__name__
            if "AUTHORIZATION_FAILED" in name:
                user = self._bus.security.get("sasl_plain_username", "this client")
                raise BusError(f"{failed} record(s) refused by {self._bus.bootstrap}: {user!r} may not write there ({err}); "
                               "a sensor account may write only its own enterprise's topic")
            raise BusError(f"{failed} record(s) were not acknowledged by {self._bus.bootstrap} (first error: {err}); send them again")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: _KafkaConsumer) -> None:
        self._owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Not committed yet: the partition's next owner replays those records (at-least-once).
        gone = {(tp.topic, tp.partition) for tp in revoked}
        for tp in revoked:
            self._owner._returned.pop(tp, None)
        self._owner._buffer = [r for r in self._owner._buffer if (r.topic, r.partition) not in gone]

    def on_partitions_assigned(self, assigned: Any) -> None:
        # Seeking needs offset requests, which are done after the poll that ran this callback.
        if self._owner._rewind > 0:
            self._owner._to_rewind.update(assigned)


class _KafkaConsumer(Consumer):
    def __init__(self, bus: KafkaBus, topics: list[str], group: str, rewind: int = 0) -> None:
        self._bus, self._topics, self._group = bus, topics, group
        self._rewind = rewind
        self._to_rewind: set[TopicPartition] = set()
        # (topic, partition) -> committed offset at assignment: records below it are a warm-up re-read
        self.warmup_positions: dict[tuple[str, int], int] = {}
        self._returned: dict[TopicPartition, int] = {}  # next offset after the last record poll returned
        self._buffer: list[Record] = []  # fetched, not yet returned by poll
        self._c = self._open()
        self._joined = False
        self._closed = False

    def assignment(self) -> set[tuple[str, int]]:
        """(topic, partition) pairs this consumer currently owns."""
        return {(tp.topic, tp.partition) for tp in self._c.assignment()}

    def _open(self) -> Any:
        """A kafka-python consumer subscribed to this consumer's topics in its group."""
        bus = self._bus
        try:
            c = KafkaConsumer(
                bootstrap_servers=bus.bootstrap,
                client_id=f"{bus.client_id}-{self._group}",
                group_id=self._group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                bootstrap_timeout_ms=bus.connect_timeout_ms,
                session_timeout_ms=bus.session_timeout_ms,
                heartbeat_interval_ms=bus.heartbeat_interval_ms,
                max_poll_interval_ms=300000,
                # A group formed while a just-created topic was missing from the metadata leaves that
                # topic unassigned until the next refresh: refresh often, so it is seconds, not minutes.
                metadata_max_age_ms=5000,
                **bus.security,
            )
            c.subscribe(**_subscription(self._topics), listener=_Listener(self))
        except KafkaError as e:
            raise _unreachable(bus.bootstrap, e, bus.security) from e
        return c

    def _close_quietly(self) -> None:
        try:
            self._c.close(autocommit=False)
        except Exception as e:  # noqa: BLE001 - the client is being replaced; its failure changes nothing
            log.debug("closing a stalled consumer of group %r: %s", self._group, e)

    def wait_for_assignment(self, timeout: float | None = None) -> set[tuple[str, int]]:
        """Poll until the group gave this consumer partitions; records fetched meanwhile wait for `poll`."""
        limit = self._bus.join_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        refresh = time.monotonic() + 2.0
        reopen = time.monotonic() + limit / 3
        while not self._c.assignment():
            if time.monotonic() > reopen and not self._buffer and not self._returned:
                # Seen on a loaded machine: a kafka-python consumer whose first generation expired stays
                # silent (no JoinGroup reaches the broker). Nothing was returned yet, so a fresh client
                # in the same group loses nothing.
                log.warning("consumer of group %r: no partition after %.0fs; reconnecting", self._group, limit / 3)
                self._close_quietly()
                self._c = self._open()
                reopen = time.monotonic() + limit / 3
            if time.monotonic() > refresh:
                # A group joined before the broker's metadata listed a just-created topic gets an empty
                # assignment and would wait for the next metadata refresh (minutes): ask for one now.
                self._c._client.cluster.request_update()
                refresh = time.monotonic() + 2.0
            if time.monotonic() > deadline:
                raise BusError(
                    f"consumer of group {self._group!r} got no partition of {self._topics} from {self._bus.bootstrap} "
                    f"within {limit:.0f}s (more consumers than partitions, or the broker is unreachable)"
                )
            self._fetch(100, 500)
        self._joined = True
        return self.assignment()

    def _fetch(self, timeout_ms: int, max_records: int) -> None:
        try:
            got = self._c.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as e:
            raise BusError(f"poll of {self._topics} (group {self._group!r}) on {self._bus.bootstrap} failed: {e}") from e
        rewound = self._apply_rewind() if self._to_rewind else set()
        for tp, recs in got.items():
            if tp in rewound:
                continue  # fetched from the committed offset; the rewound position is fetched next
            self._buffer.extend(Record(r.topic, r.key, r.value, r.offset, r.partition) for r in recs)

    def _apply_rewind(self) -> set[TopicPartition]:
        tps = {tp for tp in self._to_rewind if tp in self._c.assignment()}
        self._to_rewind.clear()
        if not tps:
            return set()
        try:
            begin = self._c.beginning_offsets(list(tps))
            for tp in tps:
                meta = self._c.committed(tp)
                committed = meta if isinstance(meta, int) or meta is None else getattr(meta, "offset", None)
                if committed is None or committed <= begin[tp]:
                    self.warmup_positions.pop((tp.topic, tp.partition), None)
                    self._c.seek(tp, begin[tp]) if committed is None else self._c.seek(tp, committed)
                    continue
                self.warmup_positions[(tp.topic, tp.partition)] = committed
                self._c.seek(tp, max(begin[tp], committed - self._rewind))
        except KafkaError as e:
            raise BusError(f"could not rewind {sorted(str(t) for t in tps)} (group {self._group!r}) on {self._bus.bootstrap}: {e}") from e
        self._buffer = [r for r in self._buffer if TopicPartition(r.topic, r.partition) not in tps]
        return tps

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        if max_records < 1:
            return []
        deadline = time.monotonic() + timeout
        if not self._joined and not self._buffer:
            self.wait_for_assignment()
            deadline = time.monotonic() + timeout  # the caller's timeout starts once the consumer joined
        while not self._buffer:
            remaining = deadline - time.monotonic()
            self._fetch(int(max(0.0, min(remaining, 1.0)) * 1000), max_records)
            if remaining <= 0:
                break
        out, self._buffer = self._buffer[:max_records], self._buffer[max_records:]
        for r in out:
            self._returned[TopicPartition(r.topic, r.partition)] = r.offset + 1
        return out

    def commit(self) -> None:
        if not self._returned:
            return
        offsets = {tp: OffsetAndMetadata(off, "", -1) for tp, off in self._returned.items()}
        try:
            self._c.commit(offsets=offsets)
        except KafkaError as e:
            raise BusError(
                f"commit of group {self._group!r} on {self._bus.bootstrap} failed: {e}; "
                "the uncommitted records will be delivered again"
            ) from e
        self._returned.clear()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._c.close(autocommit=False)
        except KafkaError as e:  # pragma: no cover - best effort
            raise BusError(f"closing consumer of group {self._group!r}: {e}") from e


__all__ = ["KafkaBus", "default_compression", "kafka"]
