"""Fuzz targets shared by the hypothesis tests (tests/fuzz/test_*.py) and the atheris runner (tests/fuzz/run_atheris.py).

Each target takes the input, runs the component and raises AssertionError (or lets the component's own
exception through) when the contract is broken; `COUNTS` counts the inputs each target was given.
Seeds come from real traffic: the application payloads of the bundled captures (pcaps/), cut to
their first records so a mutated capture decodes in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import struct
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.schema import encode
from sensors.decoders import REGISTRY
from sensors.decoders.base import Conn, DecoderSpec, Direction, FrameMeta

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / "pcaps"
RULES = REPO / "rules"
CORPUS = (REPO / ".." / "shared" / "corpus").resolve()
# Corpus traces that seed decoders the bundled captures do not carry (used only when the corpus is there).
CORPUS_SEEDS = ("icsnpp-dnp3", "suricata-verify/tests/dnp3-udp", "zeek/traces/dnp3", "icsnpp-iec61850-goose",
                "iti-ics-security-tools/profinet", "icsnpp-profinet-io-cm", "icsnpp-mms", "icsnpp-omron-fins")

COUNTS: Counter[str] = Counter()  # target -> inputs tried this process
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
SEED_RECORDS = 60  # records kept of each bundled capture for the capture seeds


def count(target: str) -> None:
    COUNTS[target] += 1


# ---------------------------------------------------------------- seeds from real captures


def _records(path: Path, limit: int | None = None) -> list[tuple[int, float, int, bytes]]:
    from sensors.pcapfile import read_capture

    out = []
    for rec in read_capture(path):
        out.append(rec)
        if limit is not None and len(out) >= limit:
            break
    return out


def _capture_paths() -> list[Path]:
    paths = sorted(PCAPS.rglob("*.pcap"))
    if CORPUS.is_dir():
        for sub in CORPUS_SEEDS:
            folder = CORPUS / sub
            if folder.is_dir():
                paths += sorted(folder.rglob("*.pcap"))[:4]
    return paths


@functools.cache
def payload_seeds() -> dict[str, tuple[bytes, ...]]:
    """Registry key -> up to 40 distinct application payloads seen on its transport and ports in real captures."""
    from sensors.packet import parse

    by_port: dict[tuple[int, int], list[DecoderSpec]] = {}
    for key, spec in REGISTRY.items():
        proto = {"tcp": 6, "udp": 17}.get(spec.transport)
        if proto is not None:
            for port in spec.default_ports:
                by_port.setdefault((proto, port), []).append(spec)
    by_ethertype: dict[int, list[DecoderSpec]] = {}
    for spec in REGISTRY.values():
        if spec.transport == "ethernet":
            for ethertype in spec.default_ports:
                by_ethertype.setdefault(ethertype, []).append(spec)
    keys = {id(spec): key for key, spec in REGISTRY.items()}
    found: dict[str, list[bytes]] = {key: [] for key in REGISTRY}

    def add(spec: DecoderSpec, payload: bytes) -> None:
        seeds = found[keys[id(spec)]]
        if len(seeds) < 40 and payload not in seeds:
            seeds.append(payload)

    for path in _capture_paths():
        try:
            records = _records(path, 4000)
        except Exception:  # a corpus file we cannot read is not a seed
            continue
        for _frame, _ts, linktype, data in records:
            if linktype == 1 and len(data) >= 14:  # layer 2: the payload after the (VLAN-stepped) ethertype
                at = 12
                while data[at : at + 2] in (b"\x81\x00", b"\x88\xa8") and len(data) >= at + 6:
                    at += 4
                for spec in by_ethertype.get(int.from_bytes(data[at : at + 2], "big"), ()):
                    add(spec, bytes(data[at + 2 :]))
            p = parse(linktype, data)
            if p is None or not len(p.payload):
                continue
            for port in (p.dport, p.sport):
                for spec in by_port.get((p.proto, port), ()):
                    add(spec, bytes(p.payload))
    return {k: tuple(v) for k, v in found.items()}


@functools.cache
def capture_seeds() -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of small real captures: the first records of every bundled capture, as pcap and as pcapng."""
    out = []
    for path in sorted(PCAPS.rglob("*.pcap")):
        records = _records(path, SEED_RECORDS)
        if records:
            out.append((f"{path.stem}.pcap", pcap_bytes(records)))
            out.append((f"{path.stem}.pcapng", pcapng_bytes(records)))
    return tuple(out)


def rule_seeds() -> tuple[tuple[str, str], ...]:
    return tuple((str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in sorted(RULES.rglob("*.yml"))
                 if p.name != "lists.yml")


# ---------------------------------------------------------------- decoders


def conn_for(spec: DecoderSpec) -> Conn:
    port = spec.default_ports[0] if spec.default_ports else 0
    return Conn("10.0.0.1", 40000, "10.0.0.2", port, spec.transport, "1:fuzz")


def decoder(key: str, chunks: Iterable[tuple[bytes, Direction]]) -> int:
    """Feeds `chunks` to a fresh flow of registry entry `key`, then closes it: nothing raises, every event encodes."""
    count(f"decoder:{key}")
    spec = REGISTRY[key]
    if spec.transport == "ethernet":
        return _ether_decoder(spec, chunks)
    conn = conn_for(spec)
    flow = spec.flow()
    frame = 0
    events = 0

    def meta(n: int) -> FrameMeta:
        return FrameMeta(frame=n, time=T0 + dt.timedelta(milliseconds=n), conn=conn, file_sha256="0" * 64, file="fuzz.pcap")

    for data, direction in chunks:
        frame += 1
        for e in flow.feed(memoryview(data), direction, meta(frame)):
            encode(e)
            # a decoder that catches its own exception and reports it is still a decoder that raised
            assert e.anomaly is None or e.anomaly.code != "decoder_error", e.anomaly
            events += 1
    for e in flow.close(meta(frame + 1)):
        encode(e)
        events += 1
    return events


def _ether_decoder(spec: DecoderSpec, chunks: Iterable[tuple[bytes, Direction]]) -> int:
    """Layer-2 decoders (sensors/decoders/ether.py): one instance per capture, fed whole frames' payloads."""
    from sensors.decoders.ether import EtherFrame

    decoder = spec.flow()
    macs = ("02:00:00:00:00:0a", "01:0c:cd:01:00:01")
    events = 0
    for n, (data, direction) in enumerate(chunks, start=1):
        src, dst = macs if direction is Direction.TO_SERVER else macs[::-1]
        frame = EtherFrame(frame=n, time=T0 + dt.timedelta(milliseconds=n), src_mac=src, dst_mac=dst, vlan=(),
                           ethertype=spec.default_ports[0], file_sha256="0" * 64, file="fuzz.pcap")
        for e in decoder.feed(memoryview(data), frame):
            encode(e)
            assert e.anomaly is None or e.anomaly.code != "decoder_error", e.anomaly
            events += 1
    for e in decoder.close():
        encode(e)
        events += 1
    return events


def decoder_bytes(key: str, data: bytes) -> None:
    """atheris form: byte 0 is the segment size (1..256), byte 1 the direction pattern, the rest the stream."""
    if len(data) < 2:
        return
    step, pattern, body = data[0] + 1, data[1], data[2:]
    chunks = [(body[i : i + step], Direction((pattern >> ((i // step) % 8)) & 1)) for i in range(0, len(body), step)]
    decoder(key, chunks)


# ---------------------------------------------------------------- capture files


def capture(data: bytes, workdir: str | None = None) -> str:
    """Writes `data` as a capture file and decodes it fully.

    A file that cannot be read must give CaptureFileError naming the file (a clear error); one that can
    must decode without any decoder raising. Returns "rejected" or "decoded".
    """
    from sensors.engine import DecodeReport, decode_file
    from sensors.exceptions import CaptureFileError

    count("capture")
    fd, name = tempfile.mkstemp(suffix=".pcap", dir=workdir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        report = DecodeReport()
        try:
            events = decode_file(name, report=report, organization_id="fuzz")
            for e in events:
                encode(e)
        except CaptureFileError as e:
            assert str(e).startswith(name + ":"), f"capture error does not name the file: {e}"
            return "rejected"
        assert report.decoder_errors == 0, f"a decoder raised on a mutated capture: {report.summary()}"
        return "decoded"
    finally:
        os.unlink(name)


# ---------------------------------------------------------------- rule files


def rule_file(text: str | bytes, workdir: str) -> list[Any]:
    """Loads one rule file: either a rule set or errors that each say file:line; never another exception."""
    from detection.rules.loader import check_rules

    count("rules")
    path = os.path.join(workdir, "fuzzed_rule.yml")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    ruleset, errors = check_rules(path, techniques=_techniques())
    assert (ruleset is None) == bool(errors)
    for e in errors:
        assert isinstance(e.line, int) and e.line >= 0, e
        assert str(e).startswith(f"{e.path}:{e.line}: "), e
        assert e.message.strip(), e
        assert "Traceback" not in e.message, e
    return errors


@functools.cache
def _techniques() -> dict[str, str]:
    from detection.rules import attack

    return attack.techniques(attack.table_path())


# ---------------------------------------------------------------- pcap bytes helpers


Record = tuple[int, float, int, bytes]


def pcap_bytes(records: list[Record]) -> bytes:
    """A classic little-endian microsecond pcap of `records` (linktype of the first)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, records[0][2])]
    for _frame, ts, _lt, data in records:
        usec = int(round(ts * 1e6))
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(data), len(data)) + data)
    return b"".join(out)


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng_bytes(records: list[Record]) -> bytes:
    """The same records as pcapng: section header, one interface, enhanced packet blocks (microseconds)."""
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)), _block(1, struct.pack("<HHI", records[0][2], 0, 65535))]
    for _frame, ts, _lt, data in records:
        usec = int(round(ts * 1e6))
        out.append(_block(6, struct.pack("<IIIII", 0, usec >> 32, usec & 0xFFFFFFFF, len(data), len(data)) + data))
    return b"".join(out)
