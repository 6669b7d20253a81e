"""Capture files: pcap and pcapng through scapy's raw readers, truncation, and files that are not captures."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, wrpcap

from sensors.engine import DecodeReport, decode_file
from sensors.exceptions import CaptureFileError, SensorError
from sensors.packet import parse
from sensors.pcapfile import CaptureReader

REPO = Path(__file__).resolve().parents[2]


def frames(n: int = 5) -> list:
    out = []
    for i in range(n):
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=47808) / Raw(bytes([i]) * 20)
        p.time = 1_700_000_000 + i + 0.25
        out.append(p)
    return out


def test_pcap_records_timestamps_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "five.pcap"
    pkts = frames()
    wrpcap(str(path), pkts)
    with CaptureReader(path) as r:
        recs = list(r)
    assert [(n, lt) for n, _, lt, _ in recs] == [(i, 1) for i in range(1, 6)]
    assert [d for *_, d in recs] == [bytes(p) for p in pkts]
    assert recs[2][1] == pytest.approx(1_700_000_002.25)
    assert r.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r.format == "pcap" and r.warnings == [] and not r.truncated


def test_nanosecond_pcap(tmp_path: Path) -> None:
    path = tmp_path / "nano.pcap"
    p = frames(1)[0]
    p.time = 1_700_000_000.123456789
    wrpcap(str(path), [p], nano=True)
    with CaptureReader(path) as r:
        ((_, stamp, _, _),) = list(r)
    assert stamp == pytest.approx(1_700_000_000.123456789, abs=1e-6)


def test_truncated_pcap_yields_complete_frames_then_warns(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), frames())
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the last record loses its tail
    with CaptureReader(path) as r:
        recs = list(r)
    assert [n for n, *_ in recs] == [1, 2, 3, 4]
    assert r.truncated
    assert len(r.warnings) == 1 and "truncated after frame 4" in r.warnings[0] and str(path) in r.warnings[0]
    # Cut inside a record header: also reported, earlier frames kept.
    rec_len = (len(data) - 24) // 5
    path.write_bytes(data[: 24 + 3 * rec_len + 9])
    with CaptureReader(path) as r:
        assert [n for n, *_ in r] == [1, 2, 3]
    assert r.truncated and "partial record header" in r.warnings[0]


def test_truncated_capture_through_decode_file_reports_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), frames())
    path.write_bytes(path.read_bytes()[:-7])
    report = DecodeReport()
    events = list(decode_file(path, registry={}, report=report))
    assert report.packets == 4 and report.truncated
    assert len(events) == 4  # four UDP flows, one per source port
    assert "truncated" in report.summary()
    as_dict: dict = {}
    list(decode_file(path, registry={}, report=as_dict))
    assert as_dict["packets"] == 4 and as_dict["truncated"] and as_dict["warnings"]


def _pcapng(path: Path, pkts: list) -> None:
    with PcapNgWriter(str(path)) as w:
        for p in pkts:
            w.write(p)


def test_pcapng_read(tmp_path: Path) -> None:
    path = tmp_path / "five.pcapng"
    pkts = frames()
    _pcapng(path, pkts)
    with CaptureReader(path) as r:
        recs = list(r)
    assert r.format == "pcapng" and not r.truncated and r.warnings == []
    assert [d for *_, d in recs] == [bytes(p) for p in pkts]
    assert [n for n, *_ in recs] == [1, 2, 3, 4, 5]
    assert recs[4][1] == pytest.approx(1_700_000_004.25)
    assert all(lt == 1 for _, _, lt, _ in recs)


def test_pcapng_trailing_non_packet_block_is_not_truncation(tmp_path: Path) -> None:
    path = tmp_path / "isb.pcapng"
    _pcapng(path, frames(2))
    # An Interface Statistics Block (type 5): interface 0, timestamp 0, no options.
    isb = struct.pack("<IIIII", 5, 24, 0, 0, 0) + struct.pack("<I", 24)
    path.write_bytes(path.read_bytes() + isb)
    with CaptureReader(path) as r:
        assert len(list(r)) == 2
    assert not r.truncated and r.warnings == []


def test_truncated_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcapng"
    _pcapng(path, frames())
    path.write_bytes(path.read_bytes()[:-10])
    with CaptureReader(path) as r:
        assert [n for n, *_ in r] == [1, 2, 3, 4]
    assert r.truncated and "truncated after frame 4" in r.warnings[0]


def test_gzipped_pcap(tmp_path: Path) -> None:
    path = tmp_path / "five.pcap.gz"
    plain = tmp_path / "five.pcap"
    wrpcap(str(plain), frames())
    path.write_bytes(gzip.compress(plain.read_bytes()))
    with CaptureReader(path) as r:
        assert len(list(r)) == 5
    assert not r.truncated and not r.warnings


def test_gzipped_capture_cut_short_warns_and_keeps_its_complete_frames(tmp_path: Path) -> None:
    """The compressed stream ends before its end-of-stream marker: the frames inflated so far are
    kept and the cut is reported, as for an uncompressed capture (it used to end silently)."""
    plain = REPO / "pcaps" / "modbus" / "anomaly_timing.pcap"
    whole = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(whole[: len(whole) // 3])
    with CaptureReader(cut) as r:
        n = len(list(r))
    assert 0 < n and r.truncated
    assert f"truncated after frame {n}: gzip stream cut short" in r.warnings[0]


def test_not_a_capture_raises_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.pcap"
    path.write_text("these are meeting notes, not packets\n")
    with pytest.raises(CaptureFileError) as ei:
        CaptureReader(path)
    msg = str(ei.value)
    assert str(path) in msg and "not a pcap or pcapng capture" in msg and "editcap" in msg
    assert isinstance(ei.value, SensorError)
    with pytest.raises(CaptureFileError):
        decode_file(path)  # raised when called, not at the first next()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
)
def test_unreadable_paths(tmp_path: Path, make, fragment: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.pcap"
    make(path)
    with pytest.raises(CaptureFileError, match=fragment):
        CaptureReader(path)


def test_progress_hook_reaches_file_size(tmp_path: Path) -> None:
    path = tmp_path / "many.pcap"
    wrpcap(str(path), frames(3) * 1000)
    calls: list[tuple[int, int]] = []
    list(decode_file(path, registry={}, on_progress=lambda done, total: calls.append((done, total))))
    size = path.stat().st_size
    assert len(calls) >= 3
    assert calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_null_linktype_corpus_trace(corpus: Path) -> None:
    """OPC UA traces from macOS loopback use linktype NULL (0); every frame is IPv4/IPv6."""
    path = corpus / "icsnpp-opcua-binary/traces/open62541_client-server-getEndpoints.pcap"
    with CaptureReader(path) as r:
        recs = list(r)
    assert len(recs) == 22 and {lt for _, _, lt, _ in recs} == {0}
    parsed = [parse(lt, d) for _, _, lt, d in recs]
    assert all(p is not None for p in parsed)
    assert {p.dport for p in parsed if p is not None} >= {4840}


def test_pcapng_corpus_trace(corpus: Path) -> None:
    path = corpus / "icsnpp-enip/traces/multiple_service_packet_cip.pcapng"
    report = DecodeReport()
    events = list(decode_file(path, registry={}, report=report))
    assert report.format == "pcapng" and report.packets == 1 and not report.warnings
    assert [e.network.transport for e in events] == ["tcp"]
