"""Kafka path vs embedded path on a bundled replay: events/s and packet-to-stored-alert latency p50/p99.

Both paths replay the same events (the bundled attack capture, repeated) into an SQLite store in
this process: embedded = `Wiring` on the EmbeddedBus; Kafka = publish to fresh topics, one
in-process detect worker and one index worker (own consumer groups, commit after flush). Latency
of an alert = time its last triggering event was handed to the bus → time the store flush holding
the alert returned. Needs a broker: `python -m pipeline.services up kafka` (address from
QINLING_TEST_KAFKA or .cache/services/run/env); without one the Kafka rows say so.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import ROOT, Row

REPEAT = int(os.environ.get("QINLING_BENCH_KAFKA_REPEAT", "12"))


def _bootstrap() -> str | None:
    addr = os.environ.get("QINLING_TEST_KAFKA")
    if addr:
        return addr
    env = ROOT / ".cache" / "services" / "run" / "env"
    try:
        for line in env.read_text().splitlines():
            if line.startswith("QINLING_TEST_KAFKA="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


class _TimedStore:
    """An SQLite store that notes when each alert became durable (its flush returned)."""

    def __init__(self, path: Path) -> None:
        from pipeline.store.sqlite import SQLiteStore

        self.inner = SQLiteStore(str(path))
        self.pending: list[str] = []
        self.stored: dict[str, float] = {}

    def write(self, events: Any) -> None:
        self.inner.write(events)
        self.pending.extend(e.event.id for e in events if e.event.kind == "alert")

    def write_assets(self, assets: Any) -> None:
        self.inner.write_assets(assets)

    def flush(self) -> None:
        self.inner.flush()
        now = time.perf_counter()
        for i in self.pending:
            self.stored.setdefault(i, now)
        self.pending = []

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _events() -> list[Any]:
    import msgspec

    from console.jobs import Summary, decode_files
    from pipeline.settings import Settings

    cap = sorted((ROOT / "pcaps" / "modbus").glob("*attack*.pcap"))[0]
    base = list(decode_files([cap], Settings(organization_id="bench"), Summary()))
    out = []
    for r in range(REPEAT):  # each repeat is new traffic: new ids, later times
        shift = (base[-1].timestamp - base[0].timestamp) * (r + 1) * 1.1 if r else None
        for e in base:
            if shift is None:
                out.append(e)
                continue
            out.append(msgspec.structs.replace(e, timestamp=e.timestamp + shift,
                                               event=msgspec.structs.replace(e.event, id=f"{e.event.id}-r{r}")))
    return out


def _latencies(sent: dict[str, float], stored: dict[str, float], alerts: dict[str, str]) -> list[float]:
    return [stored[a] - sent[last] for a, last in alerts.items() if a in stored and last in sent]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def _embedded(events: list[Any], tmp: Path) -> tuple[float, list[float]]:
    from console.jobs import Summary, Wiring
    from pipeline.bus import EmbeddedBus
    from pipeline.settings import Settings

    store = _TimedStore(tmp / "embedded.sqlite")
    w = Wiring(Settings(organization_id="bench"), Summary(), store=store, bus=EmbeddedBus())  # type: ignore[arg-type]
    sent: dict[str, float] = {}
    alerts: dict[str, str] = {}
    publish = w.publish

    def note(batch: Any) -> None:
        batch = list(batch)
        for a in batch:
            alerts[a.event.id] = a.evidence.event_ids[-1]
        publish(batch)

    w.publish = note  # type: ignore[method-assign]
    t0 = time.perf_counter()
    for e in events:
        sent[e.event.id] = time.perf_counter()
        w.put(e)
    w.finish()
    took = time.perf_counter() - t0
    store.close()
    return len(events) / took, _latencies(sent, store.stored, alerts)


def _kafka(events: list[Any], tmp: Path, bootstrap: str) -> tuple[float, list[float]]:
    from console.jobs import detect_worker, open_bus, run_index
    from pipeline import schema
    from pipeline.bus import TOPIC_EVENTS
    from pipeline.keys import asset_key
    from pipeline.settings import Settings

    u = "bench-" + uuid.uuid4().hex[:8]
    settings = Settings(bus=f"kafka://{bootstrap}", organization_id="bench", kafka_topic_prefix=f"{u}-",
                        detect_group=f"{u}-detect", index_group=f"{u}-index", kafka_partitions=6)
    store = _TimedStore(tmp / "kafka.sqlite")
    sent: dict[str, float] = {}
    alerts: dict[str, str] = {}
    stop = threading.Event()
    bus = open_bus(settings, client_id="qinling-bench")
    want_events = len(events)

    def on_alerts(batch: list[Any]) -> None:
        for a in batch:
            alerts[a.event.id] = a.evidence.event_ids[-1]

    detector = detect_worker(settings, bus, rewind=0, on_alerts=on_alerts)
    done = threading.Event()

    def index() -> None:
        run_index(settings, stop, store, bus=bus,  # type: ignore[arg-type]
                  until=lambda st: st.events >= want_events and done.is_set() and st.alerts >= len(alerts))

    th_d = threading.Thread(target=lambda: detector.run(stop, until=lambda w: w.stats.records >= want_events), daemon=True)
    th_i = threading.Thread(target=index, daemon=True)
    th_d.start()
    th_i.start()
    time.sleep(2.0)  # both groups joined: measure the pipeline, not the first rebalance
    p = bus.producer()
    t0 = time.perf_counter()
    for e in events:
        sent[e.event.id] = time.perf_counter()
        p.send(settings.topic(TOPIC_EVENTS), schema.encode(e), key=asset_key(e))
    p.flush()
    th_d.join(300)
    done.set()
    th_i.join(300)
    took = time.perf_counter() - t0
    stop.set()
    detector.consumer.close()
    bus.close()
    store.close()
    return len(events) / took, _latencies(sent, store.stored, alerts)


def run() -> list[Row]:
    events = _events()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        e_rate, e_lat = _embedded(events, tmp)
        rows = [
            Row("kafka", "embedded replay → SQLite", e_rate, "events/s", note=f"{len(events)} events, {len(e_lat)} alerts"),
            Row("kafka", "embedded packet→stored alert p50", _pct(e_lat, 50) * 1000, "ms"),
            Row("kafka", "embedded packet→stored alert p99", _pct(e_lat, 99) * 1000, "ms"),
        ]
        boot = _bootstrap()
        if not boot:
            rows.append(Row("kafka", "Kafka replay", 0.0, "events/s", note="no broker: python -m pipeline.services up kafka"))
            return rows
        k_rate, k_lat = _kafka(events, tmp, boot)
    kp50, kp99 = _pct(k_lat, 50) * 1000, _pct(k_lat, 99) * 1000
    rows += [
        Row("kafka", "Kafka publish+detect+index → SQLite", k_rate, "events/s", "embedded", k_rate / e_rate,
            note=f"{len(k_lat)} alerts, 6 partitions, 1 detect + 1 index worker in-process"),
        Row("kafka", "Kafka packet→stored alert p50", kp50, "ms", "embedded", kp50 / (_pct(e_lat, 50) * 1000)),
        Row("kafka", "Kafka packet→stored alert p99", kp99, "ms", "embedded", kp99 / (_pct(e_lat, 99) * 1000)),
    ]
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
