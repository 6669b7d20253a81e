"""Anomaly detection in the Kafka detect worker (`qinling detect --model DIR`), against the real broker.

The events of a testbed capture go to a topic of their own; one DetectWorker (rules + the site's
anomaly model) consumes them. Half-way, the model is retrained (a new version made current in the
model directory) while the worker keeps running: the worker swaps it in between two batches, and
the alerts topic then holds exactly what an engine that switched models at that point raises —
every alert of the first half (in flight when the retrain happened) once, the second half judged
by the new model.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from console.jobs import detect_worker, open_bus
from detection.anomaly import rules as R
from detection.anomaly.engine import AnomalyEngine
from detection.anomaly.model import current_version, save_model, train
from pipeline import schema
from pipeline.keys import asset_key
from pipeline.settings import Settings
from tests.integration.conftest import kafka_bootstrap, unique  # noqa: F401 - fixtures

from .conftest import REPO, SITE, events_of, split

HMI, PLC2 = "10.10.1.10", "10.10.1.102"


@pytest.fixture
def settings(kafka_bootstrap: str, unique: str) -> Settings:  # noqa: F811
    return Settings(bus=f"kafka://{kafka_bootstrap}", organization_id=SITE, kafka_partitions=1,
                    kafka_topic_prefix=f"{unique}-", detect_group=f"{unique}-detect", index_group=f"{unique}-index",
                    kafka_session_timeout_ms=10000, kafka_heartbeat_interval_ms=1000)


def _publish(bus, settings: Settings, events) -> None:  # type: ignore[no-untyped-def]
    p = bus.producer()
    for ev in events:
        p.send(settings.topic("events"), schema.encode(ev), key=asset_key(ev))
    p.flush()


def _read_alerts(bus, settings: Settings, want: int, timeout: float = 60.0) -> list[schema.Event]:  # type: ignore[no-untyped-def]
    c = bus.consumer([settings.topic("alerts")], group=f"{settings.detect_group}-reader")
    out: list[schema.Event] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            out.extend(schema.decode_event(r.value) for r in c.poll(max_records=1000, timeout=1.0))
            if len(out) >= want:
                time.sleep(1.0)
                out.extend(schema.decode_event(r.value) for r in c.poll(max_records=1000, timeout=1.0))
                break
    finally:
        c.close()
    return out


def test_detect_worker_swaps_a_retrained_model_without_losing_alerts(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    learn, rest = split(events_of("anomaly_setpoint"))
    first, second = rest[:300], rest[300:]  # the setpoint and new-function steps come before, slow_recon after
    model_a = train(SITE, learn)
    # The retrain accepts the HMI's new PLC2 address blocks (slow_recon) as a configuration change.
    model_b = model_a.relearn_link(HMI, PLC2, learn + rest)
    save_model(model_a, tmp_path)
    v_a = current_version(tmp_path)

    # What one engine raises when it switches from A to B between the two halves.
    ref = AnomalyEngine(SITE, model_a)
    expected = [a.event.id for e in first for a in ref.process(e)]
    in_flight = list(expected)
    ref.swap(model_b)
    expected += [a.event.id for e in second for a in ref.process(e)] + [a.event.id for a in ref.finish()]
    only_a = AnomalyEngine(SITE, model_a)
    with_a = [a.event.id for a in only_a.process_many(rest)]
    assert in_flight and set(expected) != set(with_a), "the retrain must change what the second half raises"

    bus = open_bus(settings, client_id="qinling-test-anomaly")
    try:
        worker = detect_worker(settings, bus, anomaly=AnomalyEngine(SITE, model_dir=tmp_path), rewind=0)
        worker.reload_every = 0.0
        stop = threading.Event()
        try:
            _publish(bus, settings, first)
            worker.run(stop, until=lambda w: w.stats.records >= len(first))
            assert worker.anomaly.version == v_a and worker.stats.model_reloads == 0
            save_model(model_b, tmp_path)  # retrained while the worker is up, between its batches
            _publish(bus, settings, second)
            worker.run(stop, until=lambda w: w.stats.records >= len(rest))
            worker.finish()
        finally:
            worker.consumer.close()
        assert worker.stats.model_reloads == 1 and worker.anomaly.version == current_version(tmp_path) != v_a
        got = [a for a in _read_alerts(bus, settings, worker.stats.alerts) if a.rule.id.startswith("qn-anomaly-")]
    finally:
        bus.close()
    ids = Counter(a.event.id for a in got)
    assert not [i for i, n in ids.items() if n > 1], "an alert was published twice"
    assert set(in_flight) <= set(ids), "alerts raised before the retrain were lost"
    assert sorted(ids) == sorted(expected)
    assert all(a.labels and a.labels["site"] == SITE for a in got)


def test_detect_refuses_another_sites_model(tmp_path, kafka_bootstrap: str, unique: str) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    learn, _ = split(events_of("anomaly_setpoint"))
    save_model(train(SITE, learn), tmp_path)
    proc = subprocess.run([sys.executable, "-m", "console", "detect", "--bus", f"kafka://{kafka_bootstrap}",
                           "--org", "another-site", "--no-store", "--model", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"learned for site {SITE!r}" in proc.stderr and "another-site" in proc.stderr


def test_engine_ignores_other_enterprises_events() -> None:
    """On a topic shared by enterprises, the site's engine judges only its own site's events."""
    learn, rest = split(events_of("anomaly_setpoint"))
    foreign = events_of("anomaly_setpoint", site="elsewhere")
    eng = AnomalyEngine(SITE, train(SITE, learn))
    assert not [a for e in foreign for a in eng.process(e)]
    assert [a for a in AnomalyEngine(SITE, train(SITE, learn)).process_many(rest) if a.rule.id == R.VALUE.id]


def test_a_retrained_model_that_fails_to_load_keeps_the_old_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Another site's model (or a corrupt one) made current under the worker: logged, counted, old model kept."""
    from pipeline.bus import EmbeddedBus

    learn, rest = split(events_of("anomaly_setpoint"))
    save_model(train(SITE, learn), tmp_path)
    v_a = current_version(tmp_path)
    settings = Settings(organization_id=SITE)
    bus = EmbeddedBus()
    worker = detect_worker(settings, bus, anomaly=AnomalyEngine(SITE, model_dir=tmp_path))
    worker.reload_every = 0.0
    save_model(train("another-site", events_of("anomaly_setpoint", site="another-site")[:2000]), tmp_path)
    _publish(bus, settings, rest)
    worker.run(threading.Event(), until=lambda w: w.stats.records >= len(rest))
    worker.finish()
    assert worker.stats.model_errors >= 1 and worker.stats.model_reloads == 0 and worker.anomaly.version == v_a
    raised = [schema.decode_event(r.value) for r in bus.consumer([settings.topic("alerts")], group="t").poll(10_000)]
    assert [a for a in raised if a.rule.id == R.VALUE.id]  # still protecting with the old model
