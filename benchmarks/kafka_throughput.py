"""Kafka + Elasticsearch: sustained events/s and packet-to-stored-alert latency p50/p99.

The events of the mixed ICS capture (`benchmarks.capture`, decoded once beforehand, not timed) are
published to fresh topics by this process, as a sensor would; one detect worker and one index
worker run as their own processes (a process per core: `benchmarks._pipeline`), on the shared
broker and Elasticsearch node (addresses from QINLING_TEST_KAFKA / QINLING_TEST_ES or
.cache/services/run/env). Topics, groups and indices are unique per run and deleted afterwards.

Two runs:

* **throughput**: every event published as fast as the producer goes; events/s = events / (first
  send → the index worker has stored every event and every alert);
* **latency**: events published at a fixed rate (QINLING_BENCH_KAFKA_RATE, default half the
  throughput run's rate) for QINLING_BENCH_KAFKA_SECONDS (default 20); the latency of an alert is
  the time the event that completed it was handed to the producer → the time the index worker's
  bulk request holding the alert was acknowledged (durable; searchable after ES's 1 s refresh).

CPU seconds of each process (and of the Elasticsearch node, from its node stats) are reported per
event, which shows what bounds the rate on this machine.

    QINLING_BENCH_KAFKA_PACKETS  capture size (default 200,000 frames, ~230k events)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from . import ROOT, Row

PACKETS = int(os.environ.get("QINLING_BENCH_KAFKA_PACKETS", "200000"))
SECONDS = float(os.environ.get("QINLING_BENCH_KAFKA_SECONDS", "20"))
RATE = float(os.environ.get("QINLING_BENCH_KAFKA_RATE", "0"))


def _service(name: str) -> str | None:
    addr = os.environ.get(name)
    if addr:
        return addr
    try:
        for line in (ROOT / ".cache" / "services" / "run" / "env").read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def _events() -> list[tuple[bytes, bytes, str]]:
    """(encoded event, key, event id) of every event of the capture, in capture order."""
    from console.jobs import Summary, decode_files
    from pipeline import schema
    from pipeline.keys import asset_key
    from pipeline.settings import Settings

    from .capture import ensure

    cap = ensure(PACKETS)
    return [(schema.encode(e), asset_key(e), e.event.id or "")
            for e in decode_files([cap], Settings(organization_id="bench"), Summary())]


def _es_cpu_ms(es: Any) -> int:
    nodes = es.nodes.stats(metric="process")["nodes"]
    return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values())


def _run(events: list[tuple[bytes, bytes, str]], boot: str, es_url: str, rate: float | None) -> dict[str, Any]:
    """Publish `events` (at `rate` per second, or as fast as possible) through detect and index workers."""
    from elasticsearch import Elasticsearch

    from console.jobs import open_bus
    from pipeline.bus import TOPIC_EVENTS
    from pipeline.settings import Settings

    u = "bench-" + uuid.uuid4().hex[:8]
    conf = dict(bus=f"kafka://{boot}", organization_id="bench", kafka_topic_prefix=f"{u}-", detect_group=f"{u}-detect",
                index_group=f"{u}-index", kafka_partitions=6, es_index_prefix=u)
    settings = Settings(**conf)  # type: ignore[arg-type]
    es = Elasticsearch(es_url, request_timeout=60)
    bus = open_bus(settings, client_id="qinling-bench")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "settings.json").write_text(json.dumps(conf))
        alerts_file = tmp / "alerts.json"
        try:
            for stage, extra in (("detect", []), ("index", [str(alerts_file), es_url])):
                procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks._pipeline", stage, str(tmp / "settings.json"),
                                               str(tmp / f"{stage}.json"), str(len(events)), *extra], cwd=ROOT))
            deadline = time.monotonic() + 120
            while not all((tmp / f"{s}.ready").exists() for s in ("detect", "index")):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the bench workers did not join their groups")
                time.sleep(0.1)
            topic = settings.topic(TOPIC_EVENTS)
            p = bus.producer()
            sent: dict[str, float] = {}
            es0 = _es_cpu_ms(es)
            c0 = _cpu()
            t0 = time.time()
            if rate:
                for i, (v, k, eid) in enumerate(events):
                    due = t0 + i / rate
                    now = time.time()
                    if due > now:
                        time.sleep(due - now)
                    sent[eid] = time.time()
                    p.send(topic, v, key=k)
            else:
                for v, k, eid in events:
                    sent[eid] = time.time()
                    p.send(topic, v, key=k)
            p.flush()
            t_pub = time.time() - t0
            pub_cpu = _cpu() - c0
            if procs[0].wait(900) != 0:
                raise RuntimeError("the detect worker failed")
            det = json.loads((tmp / "detect.json").read_text())
            alerts_file.write_text(json.dumps(det["alerts"]))
            if procs[1].wait(900) != 0:
                raise RuntimeError("the index worker failed")
            idx = json.loads((tmp / "index.json").read_text())
            es_cpu = (_es_cpu_ms(es) - es0) / 1000
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
            bus.close()
            _cleanup(es_url, u, boot, settings)
    lat = [idx["stored"][a] - sent[last] for a, last in det["alerts"].items() if a in idx["stored"] and last in sent]
    n = len(events)
    took = idx["done"] - t0
    return {"events": n, "alerts": len(det["alerts"]), "took": took, "rate": n / took, "publish_rate": n / t_pub,
            "publish_cpu": pub_cpu / n * 1e6, "detect_cpu": det["cpu"] / n * 1e6, "index_cpu": idx["cpu"] / n * 1e6,
            "es_cpu": es_cpu / n * 1e6, "detect_took": det["done"] - t0, "p50": _pct(lat, 50), "p99": _pct(lat, 99), "n_lat": len(lat), "batches": idx["batches"]}


def _cleanup(es_url: str, prefix: str, boot: str, settings: Any) -> None:
    from pipeline.bus import TOPIC_ALERTS, TOPIC_EVENTS
    from pipeline.store.elastic import ElasticStore

    try:
        ElasticStore(es_url, prefix=prefix).drop()  # its indices and templates
    except Exception as e:  # noqa: BLE001 - best effort; the names are unique to this run
        print(f"[bench] could not delete the {prefix}-* indices: {e}", file=sys.stderr)
    try:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=boot)
        try:
            admin.delete_topics([settings.topic(TOPIC_EVENTS), settings.topic(TOPIC_ALERTS)])
            admin.delete_groups([settings.detect_group, settings.index_group])
        finally:
            admin.close()
    except Exception as e:  # noqa: BLE001
        print(f"[bench] could not delete the {prefix}-* topics/groups: {e}", file=sys.stderr)


def run() -> list[Row]:
    boot, es_url = _service("QINLING_TEST_KAFKA"), _service("QINLING_TEST_ES")
    if not boot or not es_url:
        return [Row("kafka", "Kafka + Elasticsearch", 0.0, "events/s", note="no services: python -m pipeline.services up")]
    events = _events()
    full = _run(events, boot, es_url, None)
    rate = RATE or round(full["rate"] / 2, -2)
    n = min(len(events), int(rate * SECONDS))
    if os.environ.get("QINLING_BENCH_DEBUG"):
        print(json.dumps(full), file=sys.stderr)
    paced = _run(events[:n], boot, es_url, rate)
    if os.environ.get("QINLING_BENCH_DEBUG"):
        print(json.dumps(paced), file=sys.stderr)
    per = "µs CPU/event"
    return [
        Row("kafka", "Kafka+ES sustained (publish → detect → index)", full["rate"], "events/s", "target 50,000",
            full["rate"] / 50000, note=f"{full['events']} events, {full['alerts']} alerts, 6 partitions, "
                                       f"1 detect + 1 index process, {full['batches']} bulk requests"),
        Row("kafka", "… producer alone (same run)", full["publish_rate"], "events/s", note="librdkafka unless noted"),
        Row("kafka", "… CPU: producer / detect / index / Elasticsearch", full["publish_cpu"], per,
            note=f"{full['publish_cpu']:.0f} / {full['detect_cpu']:.0f} / {full['index_cpu']:.0f} / {full['es_cpu']:.0f}"),
        Row("kafka", f"paced {rate:,.0f} events/s: packet→stored alert p50", paced["p50"] * 1000, "ms",
            note=f"{paced['n_lat']} alerts, {paced['events']} events, achieved {paced['rate']:,.0f}/s"),
        Row("kafka", f"paced {rate:,.0f} events/s: packet→stored alert p99", paced["p99"] * 1000, "ms", "target 2,000 ms",
            paced["p99"] / 2.0),
        Row("kafka", "throughput run: packet→stored alert p99 (backlog)", full["p99"] * 1000, "ms",
            note=f"p50 {full['p50'] * 1000:,.0f} ms: queueing while the producer outruns the workers"),
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
