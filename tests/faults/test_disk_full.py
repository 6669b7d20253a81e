"""FAULT: the disk under the embedded (SQLite) store fills up mid-replay (a 4 MiB tmpfs).

`qinling replay` must say what happened and how much was and was not stored, exit non-zero, leave
what it stored intact and readable, and mark nothing past it consumed: the same command, once there
is space, ends with every event and alert stored exactly once (the same ids as an unconstrained run)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import kafka_bootstrap, unique  # noqa: F401 - fixtures

pytestmark = [pytest.mark.faults, pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")]
REPO = Path(__file__).resolve().parents[2]
CAPTURES = sorted(str(p) for p in (REPO / "pcaps" / "modbus").glob("*.pcap"))  # ~6,000 events: several batches


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _replay(store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", "replay", *CAPTURES, "--store", f"sqlite:///{store}", "--no-progress"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "QINLING_BUS": "embedded"})


def _ids(db: Path) -> tuple[list[str], list[str], str]:
    with sqlite3.connect(db) as c:
        events = [r[0] for r in c.execute("SELECT id FROM events")]
        alerts = [r[0] for r in c.execute("SELECT id FROM alerts")]
        (check,) = c.execute("PRAGMA integrity_check").fetchone()
    return events, alerts, check


def test_disk_full_under_the_store_says_so_keeps_what_it_stored_and_a_rerun_completes(small_disk: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference.sqlite"
    r = _replay(reference)
    assert r.returncode in (0, 3), r.stderr
    want_events, want_alerts, _ = _ids(reference)

    store = small_disk / "qinling.sqlite"
    r = _replay(store)
    assert r.returncode == 2, r.stderr
    m = re.search(r"the disk under the store is full .*Stored by this run, intact: (\d+) of (\d+) event\(s\) and (\d+) alert\(s\)\. "
                  r"NOT stored: (\d+) event\(s\)", r.stderr)
    assert m, r.stderr
    stored, total, stored_alerts, not_stored = map(int, m.groups())
    print(f"\n{r.stderr.strip()}")
    assert total == len(want_events) and stored + not_stored == total and 0 < stored < total

    events, alerts, check = _ids(store)  # what it said it stored is there, readable, intact
    assert check == "ok"
    assert (len(events), len(alerts)) == (stored, stored_alerts)

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    r = _replay(store)  # the same command, now with space
    assert r.returncode in (0, 3), r.stderr
    events, alerts, check = _ids(store)
    assert check == "ok"
    assert sorted(events) == sorted(want_events) and sorted(alerts) == sorted(want_alerts)  # each once (primary keys)


# ---------------------------------------------------------------- the index worker on Kafka


@pytest.mark.kafka
def test_disk_full_under_the_index_workers_store_commits_nothing_past_it(small_disk: Path, tmp_path: Path, kafka_bootstrap: str,
                                                                       unique: str) -> None:
    """`qinling index` into SQLite on the small disk: when it fills, the worker keeps the batch and
    commits nothing past what it stored; stopped there (SIGTERM: its exit path must not commit
    either), it says the batch is neither stored nor committed and exits 3; started again with
    space, the next worker stores every event exactly once — none were skipped by a premature commit."""
    import signal
    import threading
    import time

    from console.jobs import Summary, decode_files, open_bus
    from pipeline import schema
    from pipeline.bus import TOPIC_EVENTS
    from pipeline.keys import asset_key
    from pipeline.settings import Settings

    settings = Settings(bus=f"kafka://{kafka_bootstrap}", kafka_topic_prefix=f"{unique}-", kafka_partitions=2, organization_id="faults")
    events = list(decode_files(CAPTURES, settings, Summary()))
    bus = open_bus(settings, client_id="faults-publisher")
    try:
        p = bus.producer()
        for ev in events:
            p.send(settings.topic(TOPIC_EVENTS), schema.encode(ev), key=asset_key(ev))
        p.flush()
    finally:
        bus.close()
    store = small_disk / "index.sqlite"
    env = {**os.environ, "QINLING_BUS": settings.bus, "QINLING_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
           "QINLING_KAFKA_PARTITIONS": "2", "QINLING_INDEX_GROUP": f"{unique}-index", "QINLING_KAFKA_SESSION_TIMEOUT_MS": "6000"}

    def worker() -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
        proc = subprocess.Popen([sys.executable, "-m", "console", "index", "--store", f"sqlite:///{store}", "--max-records", "1000"],
                                cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        lines: list[str] = []
        t = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
        t.start()
        return proc, lines, t

    a, a_lines, a_reader = worker()
    try:
        deadline = time.monotonic() + 120
        while not any("not stored yet" in x and "full" in x for x in a_lines):
            assert time.monotonic() < deadline and a.poll() is None, "".join(a_lines[-20:])
            time.sleep(0.2)
        stored, _alerts, check = _ids(store)
        assert check == "ok" and 0 < len(stored) < len(events), len(stored)
        a.send_signal(signal.SIGTERM)  # a graceful stop during the outage: commits nothing on the way out
        assert a.wait(60) == 3, "".join(a_lines[-20:])
        a_reader.join(10)
        assert any("neither stored nor committed" in x for x in a_lines), "".join(a_lines[-20:])
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        a_reader.join(10)
        a.stderr.close()  # type: ignore[union-attr]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    b, b_lines, b_reader = worker()
    try:
        deadline = time.monotonic() + 180
        while len(_ids(store)[0]) < len(events) and time.monotonic() < deadline:
            assert b.poll() is None, "".join(b_lines[-20:])
            time.sleep(0.5)
        b.send_signal(signal.SIGTERM)
        assert b.wait(60) == 0, "".join(b_lines[-20:])
    finally:
        if b.poll() is None:
            b.kill()
            b.wait(10)
        b_reader.join(10)
        b.stderr.close()  # type: ignore[union-attr]
    got, _alerts, check = _ids(store)
    print(f"\nindex worker: {len(stored)} of {len(events)} events stored when the disk filled; after the restart with space: {len(got)}")
    assert check == "ok"
    assert sorted(got) == sorted(ev.event.id for ev in events)  # every event, each once
