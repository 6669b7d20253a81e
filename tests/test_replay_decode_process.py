"""Replay with its decoding in a process of its own (console/decode_process.py) against replay in one process.

The same captures replayed both ways must store the same events and alerts, write the same alert and
event files byte for byte, and report the same summary (file rows, per-rule counts, warnings), a
damaged capture and a non-capture included. A decode process that dies ends the run with an error
naming it, not a hang.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from console import decode_process
from console.jobs import Summary, replay
from pipeline.settings import Settings
from pipeline.store import open_store

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = [ROOT / "pcaps/modbus/modbus_plant_attack.pcap", ROOT / "pcaps/s7comm/s7comm_plant_attack.pcap",
            ROOT / "pcaps/mms/anomaly_mms_long.pcap.gz", ROOT / "pcaps/dnp3/dnp3_plant_attack.pcap"]


def _run(paths: list[Path], mode: str, tmp: Path) -> tuple[Summary, bytes, bytes, list[tuple[str, ...]]]:
    db = tmp / f"{mode}.sqlite"
    store = open_store(f"sqlite:///{db}")
    out, events_out = io.BytesIO(), io.BytesIO()
    try:
        summary = replay(paths, Settings(organization_id="dp", replay_decode_process=mode), out=out, events_out=events_out,
                         store=store)
    finally:
        store.close()
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table' order by name")]
        rows = [(t, *map(str, r)) for t in tables for r in con.execute(f'select * from "{t}" order by 1')]  # noqa: S608
    finally:
        con.close()
    return summary, out.getvalue(), events_out.getvalue(), rows


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A capture cut mid-frame and a file that is no capture at all, beside the good ones."""
    tmp = tmp_path_factory.mktemp("damaged")
    cut = tmp / "cut.pcap"
    data = CAPTURES[0].read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])
    junk = tmp / "junk.pcap"
    junk.write_bytes(b"this is not a capture\n" * 10)
    return [cut, junk]


def test_same_results_both_ways(tmp_path: Path, damaged: list[Path]) -> None:
    for p in CAPTURES:
        assert p.exists(), p
    paths = [*CAPTURES[:2], *damaged, *CAPTURES[2:]]
    one, alerts1, events1, rows1 = _run(paths, "off", tmp_path)
    two, alerts2, events2, rows2 = _run(paths, "on", tmp_path)
    assert one.decode_process_cpu is None and two.decode_process_cpu is not None and two.decode_process_cpu > 0
    assert one.alerts > 10 and sum(one.events.values()) > 1000  # enough happens to compare
    assert [f["file"] for f in two.files] == [str(p) for p in paths]
    assert two.files == one.files  # packets, events and alerts per capture
    assert two.events == one.events and two.alerts_by_rule == one.alerts_by_rule and two.assets == one.assets
    assert two.warnings == one.warnings
    assert any("cut.pcap" in w for w in one.warnings) and any("junk.pcap" in w for w in one.warnings)
    assert two.table() == one.table()
    assert alerts2 == alerts1 and events2 == events1
    assert rows2 == rows1


def test_auto_needs_a_second_cpu_and_a_large_capture(tmp_path: Path) -> None:
    small = [CAPTURES[0]]
    assert not decode_process.wanted("auto", small, "native")
    assert decode_process.wanted("on", small, "native") and not decode_process.wanted("off", small, "native")
    big = tmp_path / "big.pcap"
    with open(big, "wb") as f:
        f.truncate(decode_process.AUTO_MIN_BYTES)
    assert decode_process.wanted("auto", [big], "native") == (len(os.sched_getaffinity(0)) >= 2)


def test_decode_process_killed_is_an_error_not_a_hang() -> None:
    summary = Summary()
    # The capture ten times over: far more batches than the queue holds, so the process is still working.
    source = decode_process.DecodedRecords([CAPTURES[2]] * 10, Settings(), summary)
    batches = iter(source)
    sha, first = next(batches)
    assert sha and first
    assert source.pid is not None
    os.kill(source.pid, signal.SIGKILL)
    with pytest.raises(decode_process.DecodeProcessError, match=r"decode process \(pid \d+\)"):
        for _ in batches:
            pass


def test_bad_setting_is_refused() -> None:
    from pipeline.exceptions import SettingsError

    with pytest.raises(SettingsError, match="replay_decode_process"):
        Settings(replay_decode_process="sometimes")


@pytest.mark.parametrize("mode", ["off", "on"])
def test_progress_reaches_the_end_of_each_capture(mode: str) -> None:
    paths = [CAPTURES[0], CAPTURES[3]]
    calls: list[tuple[int, int]] = []
    replay(paths, Settings(organization_id="dp", replay_decode_process=mode), on_progress=lambda d, t: calls.append((d, t)))
    sizes = [p.stat().st_size for p in paths]
    assert calls and calls[-1] == (sizes[1], sizes[1])
    assert (sizes[0], sizes[0]) in calls  # the first capture finished too
    assert all(0 <= d <= t for d, t in calls)


def test_the_web_consoles_replay_is_the_same_through_the_decode_process(tmp_path: Path, damaged: list[Path],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """console.web.captures.replay_capture (an auditor's upload) decodes large captures in the decode
    process ("auto"); here every capture counts as large, and the results must not change."""
    from console.web.captures import replay_capture

    def run(path: Path, tag: str) -> tuple[object, list[tuple[int, int]]]:
        calls: list[tuple[int, int]] = []
        store = open_store(f"sqlite:///{tmp_path / (tag + path.name)}.sqlite")
        try:
            return replay_capture(path, "ent-a", store, lambda d, t: calls.append((d, t))), calls
        finally:
            store.close()

    for path in (CAPTURES[1], *damaged):
        one, one_calls = run(path, "one")
        with monkeypatch.context() as m:
            m.setattr(decode_process, "AUTO_MIN_BYTES", 0)
            two, two_calls = run(path, "two")
        assert two == one, path
        if path.name == "junk.pcap":
            assert one.error.startswith("capture: not a pcap") and str(path.parent) not in one.error  # type: ignore[attr-defined]
        else:
            assert one.events > 0 and not one.error and one_calls[-1] == two_calls[-1]  # type: ignore[attr-defined]
    cut = run(damaged[0], "cut")[0]
    assert cut.warnings and all(str(damaged[0].parent) not in w for w in cut.warnings)  # type: ignore[attr-defined]
