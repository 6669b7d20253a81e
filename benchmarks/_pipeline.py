"""One stage of the Kafka + Elasticsearch benchmark in its own process (a process per core).

    python -m benchmarks._pipeline detect SETTINGS.json OUT.json EVENTS
    python -m benchmarks._pipeline index  SETTINGS.json OUT.json EVENTS ALERTS_FILE ES_URL

`detect` consumes EVENTS records from the events topic and writes `{alert id: id of the event
that completed it}` to OUT.json. `index` writes events and alerts to Elasticsearch until it has
stored EVENTS events and as many alerts as ALERTS_FILE (written by the parent once `detect` is
done) lists, then writes `{alert id: wall time its bulk request was acknowledged}` to OUT.json.
Wall times (`time.time()`) compare across processes of one machine.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class TimedElastic:
    """An Elasticsearch store that notes when each alert was durably stored (its flush returned)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stored: dict[str, float] = {}
        self.pending: list[str] = []

    def write(self, events: Sequence[Any]) -> None:
        self.inner.write(events)
        self.pending.extend(e.event.id for e in events if e.event.kind == "alert")

    def flush(self) -> None:
        self.inner.flush()
        now = time.time()
        for i in self.pending:
            self.stored.setdefault(i, now)
        self.pending = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TimedElasticEncoded(TimedElastic):
    """The same for a store that indexes the records' bytes (`write_encoded`): durable on return."""

    def write_encoded(self, values: Sequence[bytes]) -> int:
        from pipeline.store.elastic import _head_decoder

        n = int(self.inner.write_encoded(values))
        if n:
            now = time.time()
            for v in values:
                h = _head_decoder.decode(v)
                if h.event.kind == "alert" and h.event.id:
                    self.stored.setdefault(h.event.id, now)
        return n


def main(argv: list[str]) -> int:
    from console.jobs import detect_worker, open_bus
    from pipeline.bus import TOPIC_ALERTS, TOPIC_EVENTS
    from pipeline.settings import Settings

    stage, settings_file, out, n_events = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    settings = Settings(**json.loads(settings_file.read_text()))
    stop = threading.Event()
    bus = open_bus(settings, client_id=f"qinling-bench-{stage}")
    ready = out.with_suffix(".ready")
    if stage == "detect":
        alerts: dict[str, str] = {}

        def on_alerts(batch: list[Any]) -> None:
            for a in batch:
                alerts[a.event.id] = a.evidence.event_ids[-1]

        w = detect_worker(settings, bus, rewind=0, on_alerts=on_alerts, max_records=5000)
        w.consumer.wait_for_assignment()
        ready.touch()
        c0 = _cpu()
        try:
            w.run(stop, until=lambda w: w.stats.records >= n_events)
        finally:
            w.consumer.close()
            bus.close()
        out.write_text(json.dumps({"alerts": alerts, "cpu": _cpu() - c0, "done": time.time()}))
        return 0
    if stage == "index":
        from pipeline.indexer import run_indexer
        from pipeline.store.elastic import ElasticStore

        alerts_file, es_url = Path(argv[4]), argv[5]
        inner = ElasticStore(es_url, prefix=settings.es_index_prefix)
        store = (TimedElasticEncoded if hasattr(inner, "write_encoded") else TimedElastic)(inner)
        want: list[int] = []

        def until(st: Any) -> bool:
            if not want and alerts_file.exists():
                want.append(len(json.loads(alerts_file.read_text())))
            return bool(want) and st.events >= n_events and st.alerts >= want[0]

        consumer = bus.consumer([settings.topic(TOPIC_EVENTS), settings.topic(TOPIC_ALERTS)], group=settings.index_group)
        consumer.wait_for_assignment()  # type: ignore[attr-defined]
        ready.touch()
        c0 = _cpu()
        try:
            stats = run_indexer(consumer, store, stop=stop, until=until, max_records=5000)  # type: ignore[arg-type]
        finally:
            consumer.close()
            bus.close()
        out.write_text(json.dumps({"stored": store.stored, "cpu": _cpu() - c0, "done": time.time(),
                                   "batches": stats.batches, "events": stats.events, "alerts": stats.alerts}))
        return 0
    print(f"unknown stage {stage!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
