"""Replay, workers and faults through real Kafka and Elasticsearch: the alerts are the embedded path's, each once.

Every test has its own topics (prefix), consumer groups and index prefix. The partition count is
chosen so that the two PLCs of the attack scenario land on different partitions, so the
cross-partition merge and the split between workers are really exercised.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from console.jobs import Summary, decode_files, detect_worker, open_bus, open_store_for, replay, run_index
from pipeline import schema
from pipeline.bus import TOPIC_EVENTS, EmbeddedBus
from pipeline.keys import asset_key
from pipeline.schema import Event
from pipeline.settings import Settings
from pipeline.store import Query, Store

from tests.scenarios import all_label_files, load

pytestmark = [pytest.mark.kafka, pytest.mark.elasticsearch]
REPO = Path(__file__).resolve().parents[2]
ORG = "test"
LABELS = all_label_files()
ATTACK = REPO / "pcaps" / "modbus" / "modbus_plant_attack.labels.yml"  # two PLCs: the partition split is real


@pytest.fixture(autouse=True)
def _collect_kafka_python_sockets() -> Iterator[None]:
    yield  # see test_kafka_bus.py: kafka-python drops sockets of in-flight connection attempts on close
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@cache
def events_of(capture: Path) -> list[Event]:
    return list(decode_files([capture], Settings(organization_id=ORG), Summary()))


@cache
def embedded_alerts(capture: Path) -> list[bytes]:
    buf = io.BytesIO()
    replay([capture], Settings(organization_id=ORG), out=buf, bus=EmbeddedBus())
    return sorted(buf.getvalue().splitlines())


def _ids(lines: Sequence[bytes]) -> list[str]:
    return sorted(schema.decode_event(x).event.id or "" for x in lines)


@cache
def partitions_splitting_plcs() -> int:
    """The smallest partition count (>= 2) that puts every responder of the attack scenario on its own partition."""
    import pipeline.kafka_bus  # noqa: F401 - imports kafka-python with its deprecation warning silenced
    from kafka.partitioner.default import murmur2

    keys = {k for k in (asset_key(e) for e in events_of(load(ATTACK).capture)) if k and b"/10.10.1.10" in k}
    for n in range(2, 32):
        if len({(murmur2(k) & 0x7FFFFFFF) % n for k in keys}) == len(keys):
            return n
    raise AssertionError(f"no partition count separates {keys}")


@pytest.fixture
def settings(kafka_bootstrap: str, es_url: str, unique: str) -> Settings:
    return Settings(
        bus=f"kafka://{kafka_bootstrap}",
        store=es_url,
        organization_id=ORG,
        kafka_partitions=partitions_splitting_plcs(),
        kafka_topic_prefix=f"{unique}-",
        detect_group=f"{unique}-detect",
        index_group=f"{unique}-index",
        es_index_prefix=unique,
        kafka_session_timeout_ms=10000,  # 3 s dropped members under load on 2 shared cores (seen in CI)
        kafka_heartbeat_interval_ms=1000,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    st = open_store_for(settings)
    yield st
    st.drop()  # type: ignore[attr-defined]
    st.close()


def stored_alerts(store: Store) -> list[bytes]:
    store.flush()
    page = store.search("alerts", Query(size=10_000))
    return sorted(schema.encode(a) for a in page.items)


def wait_for_alerts(store: Store, want: Sequence[bytes], timeout: float) -> list[bytes]:
    """Until the store holds at least the expected number of alerts (then a short settle for extras)."""
    deadline = time.monotonic() + timeout
    got = stored_alerts(store)
    while len(got) < len(want) and time.monotonic() < deadline:
        time.sleep(0.5)
        got = stored_alerts(store)
    time.sleep(1.0)
    return stored_alerts(store)


def wait_for_events(store: Store, want: int, timeout: float) -> int:
    """The number of events in the store once it reaches `want` (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    store.flush()
    while (n := store.search("events", Query(size=1)).total) < want and time.monotonic() < deadline:
        time.sleep(0.5)
        store.flush()
    return n


def publish(settings: Settings, events: Sequence[Event]) -> None:
    bus = open_bus(settings, client_id="qinling-test-sensor")
    try:
        p = bus.producer()
        for ev in events:
            p.send(settings.topic(TOPIC_EVENTS), schema.encode(ev), key=asset_key(ev))
        p.flush()
    finally:
        bus.close()


class Workers:
    """Detect and index stages in threads of this process, each with its own Kafka clients."""

    def __init__(self, settings: Settings, store: Store | None, detectors: int = 1) -> None:
        self.stop = threading.Event()
        self.detectors: list[Any] = []
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.settings = settings
        for i in range(detectors):
            self.threads.append(threading.Thread(target=self._detect, name=f"detect-{i}", daemon=True))
        if store is not None:
            self.threads.append(threading.Thread(target=self._index, args=(store,), name="index", daemon=True))

    def _detect(self) -> None:
        try:
            bus = open_bus(self.settings, client_id="qinling-test-detect")
            w = detect_worker(self.settings, bus)
            self.detectors.append(w)
            try:
                w.run(self.stop)
            finally:
                w.consumer.close()
                bus.close()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.errors.append(e)

    def _index(self, store: Store) -> None:
        try:
            run_index(self.settings, self.stop, store)
        except BaseException as e:  # noqa: BLE001
            self.errors.append(e)

    def __enter__(self) -> Workers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not [t.name for t in self.threads if t.is_alive()], "workers did not stop"
        assert not self.errors, self.errors


# ---------------------------------------------------------------- (a) replay equals embedded


@pytest.mark.parametrize("labels", LABELS, ids=[p.stem for p in LABELS])
def test_replay_through_kafka_and_es_equals_embedded(labels: Path, settings: Settings, store: Store) -> None:
    capture = load(labels).capture
    buf = io.BytesIO()
    summary = replay([capture], settings, out=buf, store=store)
    want = embedded_alerts(capture)
    got = sorted(buf.getvalue().splitlines())  # read back from Elasticsearch
    assert got == want, f"ids only in kafka: {set(_ids(got)) - set(_ids(want))}, only embedded: {set(_ids(want)) - set(_ids(got))}"
    assert stored_alerts(store) == want
    assert summary.alerts == len(want)
    assert store.search("events", Query(size=1)).total == len(events_of(capture))
    assert not summary.warnings, summary.warnings
    assert store.search_assets(Query()).total == summary.assets
    # layer-2-only captures (GOOSE) have no IP address, so no asset; every other capture has some
    assert summary.assets > 0 or not any(e.source is not None and e.source.ip for e in events_of(capture))


def test_replay_cli_through_kafka_writes_alerts_read_back(settings: Settings, store: Store, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    env = {**os.environ, **_env(settings)}
    r = subprocess.run([sys.executable, "-m", "console", "replay", str(load(ATTACK).capture), "--out", str(out), "--no-progress"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(out.read_bytes().splitlines()) == embedded_alerts(load(ATTACK).capture)


# ---------------------------------------------------------------- (b) two detectors split the partitions


def test_two_detectors_split_partitions_and_raise_every_alert_once(settings: Settings, store: Store) -> None:
    capture = load(ATTACK).capture
    want = embedded_alerts(capture)
    with Workers(settings, store, detectors=2) as w:
        time.sleep(1.0)  # both join before the data arrives, so the first rebalance is the only one
        publish(settings, events_of(capture))
        got = wait_for_alerts(store, want, timeout=60)
    assert got == want
    owned = [{p for (_t, p) in d.stats.committed} for d in w.detectors]
    assert len(owned) == 2 and all(owned), f"a detector consumed nothing: {owned}"
    assert not owned[0] & owned[1], f"both detectors consumed partitions {owned[0] & owned[1]}"
    assert all(d.stats.alerts for d in w.detectors), "one detector raised every alert: the PLCs shared a partition"


# ---------------------------------------------------------------- (c) faults


def _our_services(kafka_bootstrap: str, es_url: str) -> Any:
    from pipeline import services

    st = services.status()
    if st["kafka"]["address"] != kafka_bootstrap or not st["kafka"]["pid"] or st["elasticsearch"]["address"] != es_url.rstrip("/"):
        pytest.skip("fault tests need the services started by `python -m pipeline.services up` (they kill and pause them)")
    return services


@pytest.mark.faults  # docs/reliability.md
def test_kafka_broker_killed_and_restarted_mid_replay(settings: Settings, store: Store, kafka_bootstrap: str, es_url: str) -> None:
    services = _our_services(kafka_bootstrap, es_url)
    capture = load(ATTACK).capture
    events, want = events_of(capture), embedded_alerts(capture)
    half = len(events) // 2
    with Workers(settings, store) as w:
        publish(settings, events[:half])
        # Kill once both workers are connected and the index stage is storing (on a loaded machine a
        # worker still opening its first connection when the broker died failed the test, not the product).
        deadline = time.monotonic() + 60
        while (not w.detectors or store.search("events", Query(size=1)).total == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        services.kill("kafka")
        try:
            time.sleep(2.0)
        finally:
            services.restart("kafka")
        publish(settings, events[half:])
        got = wait_for_alerts(store, want, timeout=90)
        stored_events = wait_for_events(store, len(events), timeout=60)
    assert got == want  # every alert once (sorted lists: a duplicate or a loss shows)
    assert stored_events == len(events)  # every event once (stored by event id)


def _env(settings: Settings) -> dict[str, str]:
    return {f"QINLING_{k.upper()}": str(v) for k, v in settings.__dict__.items() if k not in ("rules_dir", "lists_file")}


@contextmanager
def detect_process(settings: Settings, *args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {**os.environ, **_env(settings)}
    proc = subprocess.Popen([sys.executable, "-m", "console", "detect", "--no-store", *args], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        reader.join(5)
        proc.stderr.close()  # type: ignore[union-attr]


def _wait_lines(lines: list[str], text: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sum(text in x for x in lines) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {n}x {text!r} within {timeout}s; worker said:\n" + "".join(lines[-30:]))
        time.sleep(0.05)


@pytest.mark.faults  # docs/reliability.md
def test_detector_killed_mid_batch_another_takes_over(settings: Settings, store: Store) -> None:
    capture = load(ATTACK).capture
    events, want = events_of(capture), embedded_alerts(capture)
    half = len(events) // 2
    with Workers(settings, store, detectors=0):
        with detect_process(settings, "--pause-before-commit", "2") as (a, a_lines):
            publish(settings, events[:half])
            _wait_lines(a_lines, "committing", 1, 60)  # batch 1 processed; committed after the pause
            publish(settings, events[half:])
            _wait_lines(a_lines, "committing", 2, 60)  # batch 2 processed, alerts sent, not committed
            a.send_signal(signal.SIGKILL)
            a.wait(10)
        with detect_process(settings) as (b, b_lines):
            _wait_lines(b_lines, "committing", 1, 60)  # took the partitions over and caught up
            got = wait_for_alerts(store, want, timeout=60)
            b.send_signal(signal.SIGTERM)
            assert b.wait(30) == 0, "".join(b_lines)
        stored_events = wait_for_events(store, len(events), timeout=60)
    assert got == want
    assert stored_events == len(events)
    assert any("re-read for state" in x and " 0 re-read" not in x for x in b_lines), "".join(b_lines)


@pytest.mark.faults  # docs/reliability.md
def test_elasticsearch_paused_mid_replay_nothing_lost(settings: Settings, store: Store, kafka_bootstrap: str, es_url: str) -> None:
    services = _our_services(kafka_bootstrap, es_url)
    capture = load(ATTACK).capture
    events, want = events_of(capture), embedded_alerts(capture)
    half = len(events) // 2
    with Workers(settings, store):
        publish(settings, events[:half])
        time.sleep(0.5)
        services.pause("elasticsearch")
        try:
            publish(settings, events[half:])
            time.sleep(30)
        finally:
            services.resume("elasticsearch")
        got = wait_for_alerts(store, want, timeout=120)
        deadline = time.monotonic() + 60
        while store.search("events", Query(size=1)).total < len(events) and time.monotonic() < deadline:
            time.sleep(0.5)
    assert got == want
    assert store.search("events", Query(size=1)).total == len(events)
