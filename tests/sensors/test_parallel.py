"""sensors.parallel: N worker processes give the single-process events, in the same order, on real captures."""

from __future__ import annotations

import gzip
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline import schema
from sensors.engine import DecodeReport, decode_file
from sensors.exceptions import CaptureFileError
from sensors.parallel import ParallelDecodeError, decode_parallel, resolve_workers

from tests.sensors.sensor_helpers import CORPUS

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / "pcaps"
LONG = PCAPS / "modbus" / "anomaly_long_normal.pcap.gz"  # 51,660 frames over 55 minutes: idle sweeps, many flows

OURS = [
    "modbus/modbus_plant_attack.pcap", "dnp3/dnp3_plant_attack.pcap", "s7comm/anomaly_s7comm.pcap", "iec104/anomaly_iec104.pcap",
    "enip/enip_plant_attack.pcap", "mms/mms_plant_attack.pcap", "bacnet/bacnet_plant_attack.pcap", "opcua/anomaly_opcua.pcap.gz",
    "mqtt/anomaly_mqtt.pcap.gz", "goose/goose_plant_attack.pcap", "profinet/profinet_plant_attack.pcap",
]  # fmt: skip
THEIRS = [
    "icsnpp-iec61850-goose/traces/GOOSE.pcap", "icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_2.pcapng",
    "icsnpp-enip/traces/multiple_service_packet_cip.pcapng", "icsnpp-dnp3/traces/dnp3_example.pcap",
    "icsnpp-s7comm/traces/s7comm_plus.pcap", "icsnpp-bacnet/traces/bacnet_services.pcap",
    "icsnpp-opcua-binary/traces/open62541_browse_next.pcap", "icsnpp-modbus/traces/modbus_example.pcap",
]  # fmt: skip


def _decode(fn: Any, path: Path, **kw: Any) -> tuple[list[bytes], dict[str, Any]]:
    rep = DecodeReport()
    events = [schema.encode(e) for e in fn(path, report=rep, **kw)]
    d = rep.to_dict()
    d.pop("elapsed")  # wall time: the only field that may differ
    return events, d


def _same(path: Path, workers: int = 2, **kw: Any) -> tuple[list[bytes], dict[str, Any]]:
    one = _decode(decode_file, path, **kw)
    many = _decode(decode_parallel, path, workers=workers, **kw)
    assert many[1] == one[1]
    assert len(many[0]) == len(one[0])
    for i, (a, b) in enumerate(zip(one[0], many[0])):
        assert b == a, f"{path.name}: event {i} differs"
    return one


@pytest.mark.parametrize("name", OURS)
def test_two_workers_give_the_single_process_events_on_our_captures(name: str) -> None:
    events, rep = _same(PCAPS / name)
    assert events and rep["packets"] > 0


@pytest.mark.parametrize("name", THEIRS)
def test_two_workers_give_the_single_process_events_on_corpus_captures(name: str) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"shared corpus capture {path} not found")
    events, rep = _same(path)
    assert events and rep["packets"] > 0


def test_layer2_and_ip_protocols_both_decoded_in_parallel() -> None:
    goose, _ = _same(PCAPS / "goose" / "goose_plant_attack.pcap")
    pn, _ = _same(PCAPS / "profinet" / "profinet_plant_attack.pcap")
    datasets = {schema.decode_event(e).event.dataset for e in goose + pn}
    assert {"goose", "profinet"} <= datasets


def test_idle_and_close_sweeps_merge_in_single_process_order() -> None:
    """A long capture with short timeouts: flows end mid-capture in every worker, at the same frames."""
    opts = {"tcp_timeout": 2.0, "udp_timeout": 1.0, "other_timeout": 1.0, "close_delay": 0.5}
    events, rep = _same(LONG, workers=3, **opts)
    flows = [i for i, e in enumerate(events) if b'"dataset":"flow"' in e]
    assert rep["flows"] > 100 and len(flows) == rep["flows"]
    assert flows[len(flows) // 2] < len(events) * 0.9  # most flow records come from sweeps, not the final flush


def test_remap_and_default_timeouts_on_the_long_capture() -> None:
    events, rep = _same(LONG, remap={"10.10": "10.11"})
    assert rep["packets"] == 51_660 and len(events) > 10_000


def _cut(src: Path, dst: Path, keep: int) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[:keep])
    return dst


def test_truncated_captures_give_the_same_events_and_warnings(tmp_path: Path) -> None:
    pcap = PCAPS / "iec104" / "anomaly_iec104.pcap"
    ng = CORPUS / "icsnpp-profinet-io-cm" / "traces" / "profinet_io_cm_mixed_2.pcapng"
    gz = tmp_path / "cut.pcap.gz"
    gz.write_bytes(gzip.compress(pcap.read_bytes())[:-4000])  # the gzip stream ends early
    cuts = [_cut(pcap, tmp_path / "cut.pcap", pcap.stat().st_size - 37), gz]
    if ng.is_file():
        cuts.append(_cut(ng, tmp_path / "cut.pcapng", ng.stat().st_size - 50))
    for path in cuts:
        events, rep = _same(path)
        assert events
        assert rep["truncated"] and rep["warnings"], path  # a cut gzip stream too (its end-of-stream marker is missing)


def test_not_a_capture_raises_at_the_call_like_decode_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture\n")
    with pytest.raises(CaptureFileError, match="not a pcap"):
        decode_parallel(bad, workers=2)
    with pytest.raises(CaptureFileError, match="no such file"):
        decode_parallel(tmp_path / "missing.pcap", workers=2)


def test_a_killed_worker_is_reported_not_a_hang() -> None:
    events = decode_parallel(LONG, workers=2)
    next(events)  # the processes run; bounded queues keep them well short of the end of 51,660 frames
    workers = {p.name: p for p in multiprocessing.active_children() if p.name.startswith("qinling-sensor-")}
    assert sorted(workers) == ["qinling-sensor-1", "qinling-sensor-2"]
    os.kill(workers["qinling-sensor-2"].pid, signal.SIGKILL)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ParallelDecodeError, match=r"sensor worker 2 \(pid \d+\) died with exit code -9"):
        for _ in events:
            pass
    assert time.monotonic() - started < 30
    time.sleep(0.5)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("qinling-")]  # nothing left running


def test_a_killed_reader_is_reported_not_a_hang() -> None:
    events = decode_parallel(LONG, workers=2)
    next(events)
    (reader,) = [p for p in multiprocessing.active_children() if p.name == "qinling-reader"]
    os.kill(reader.pid, signal.SIGKILL)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ParallelDecodeError, match="reader process .*died"):
        for _ in events:
            pass
    assert time.monotonic() - started < 30


def test_an_abandoned_run_stops_its_processes() -> None:
    events = decode_parallel(LONG, workers=2)
    next(events)
    assert len([p for p in multiprocessing.active_children() if p.name.startswith("qinling-")]) == 3
    events.close()  # type: ignore[attr-defined]
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("qinling-")]


def test_resolve_workers() -> None:
    cpus = os.cpu_count() or 1
    assert [resolve_workers(v) for v in (None, 1, "3", 0, "auto", "AUTO")] == [1, 1, 3, cpus, cpus, cpus]
    with pytest.raises(ValueError):
        resolve_workers(-1)


def _qinling(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_cli_workers_flag_end_to_end(tmp_path: Path) -> None:
    captures = [str(PCAPS / "modbus" / "modbus_plant_attack.pcap"), str(PCAPS / "goose" / "goose_plant_attack.pcap"),
                str(PCAPS / "opcua" / "anomaly_opcua.pcap.gz")]
    one = _qinling("decode", *captures, "--out", str(tmp_path / "one.jsonl"))
    two = _qinling("decode", *captures, "--workers", "2", "--out", str(tmp_path / "two.jsonl"))
    assert one.returncode == two.returncode == 0, two.stderr
    out = (tmp_path / "two.jsonl").read_bytes()
    assert out == (tmp_path / "one.jsonl").read_bytes() and out.count(b"\n") > 1000
    cut = _cut(PCAPS / "iec104" / "anomaly_iec104.pcap", tmp_path / "cut.pcap", 100_000)
    one = _qinling("decode", str(cut), "--out", str(tmp_path / "cut1.jsonl"))
    auto = _qinling("decode", str(cut), "--workers", "auto", "--out", str(tmp_path / "cut2.jsonl"))
    assert one.returncode == auto.returncode == 3  # finished with a warning: the capture is cut short
    assert "truncated after frame" in auto.stderr
    assert (tmp_path / "cut2.jsonl").read_bytes() == (tmp_path / "cut1.jsonl").read_bytes()
    bad = _qinling("decode", captures[0], "--workers", "many")
    assert bad.returncode != 0 and "--workers 'many'" in bad.stderr
