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
