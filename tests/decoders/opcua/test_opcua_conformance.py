"""OPC UA decoder vs tshark and vs the ICSNPP opcua_binary.log baselines on every corpus trace.

Prints agreement tables; fails on any difference not listed in expected_differences.yml and on any
listed difference that no longer occurs. Also: every trace decodes through the engine without
decoder errors, and every emitted event validates against the JSON Schema.
"""

from __future__ import annotations

import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.schema import Event, json_schema, to_dict
from sensors.decoders.base import DecoderSpec
from sensors.engine import DecodeReport, decode_file

HERE = Path(__file__).resolve().parent
EXPECTED = yaml.safe_load((HERE / "expected_differences.yml").read_text(encoding="utf-8"))
# Baseline folder -> trace it was produced from (BASELINE_NOTES.md).
BASELINE_TRACES = {
    "analyzer.basic": "open62541_client-server_mainloop.pcap",
    "analyzer.data-gap": "opcua_with-gap.pcap",
    "analyzer.data-gap_with-handshake": "opcua_with-gap_with-handshake.pcap",
    "analyzer.no-handshake": "open62541_client-server_mainloop-no-handshake.pcap",
    "analyzer.non-standard-port": "open62541_client-server_mainloop-not-localhost-non-standard-port.pcap",
}


def _messages(events: list[Event]) -> list[Event]:
    return [e for e in events if e.event.dataset == "opcua" and e.opcua is not None and e.anomaly is None]


def _check(section: str, found: dict[tuple[str, str], int]) -> None:
    want = {(d["file"], d["kind"]): int(d["count"]) for d in EXPECTED.get(section) or []}
    found = {k: v for k, v in found.items() if v}
    problems = [f"unlisted difference {k}: {v}" for k, v in found.items() if k not in want]
    problems += [f"listed difference {k}: count {v} but found {found.get(k, 0)}" for k, v in want.items() if found.get(k) != v]
    assert not problems, "\n".join(problems)


def _table(title: str, rows: list[tuple[str, int, int]]) -> None:
    print(f"\n{title}\n{'trace':70} {'agree':>6} {'differ':>6}")
    for name, a, d in rows:
        print(f"{name:70} {a:6d} {d:6d}")
    ta, td = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'total':70} {ta:6d} {td:6d}  agreement {100.0 * ta / max(ta + td, 1):.2f}%")


def test_every_trace_decodes_and_validates(ua_traces: list[Path], ua_registry: Callable[[Path], dict[str, DecoderSpec]]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    total = 0
    for path in ua_traces:
        report = DecodeReport()
        events = list(decode_file(path, registry=ua_registry(path), report=report))
        assert report.decoder_errors == 0, path.name
        assert not [e for e in events if e.anomaly is not None and e.anomaly.code == "decoder_error"], path.name
        for e in _messages(events) + [e for e in events if e.event.dataset == "opcua" and e.anomaly is not None]:
            errors = sorted(validator.iter_errors(to_dict(e)), key=str)
            assert not errors, f"{path.name} frame {e.evidence.frame if e.evidence else '?'}: {errors[0].message}"
            total += 1
    assert total > 1500


def test_default_registry_decodes_standard_port(ua_traces: list[Path]) -> None:
    """`qinling decode` path: the default REGISTRY picks the decoder on 4840."""
    path = next(p for p in ua_traces if p.name == "open62541_client-server_mainloop.pcap")
    assert len(_messages(list(decode_file(path)))) == 68


def _tshark_pdus(tshark: str, path: Path, port: int) -> dict[int, list[tuple[str, int | None]]]:
    args = [tshark, "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", "-e", "opcua.transport.type",
            "-e", "opcua.transport.chunk", "-e", "opcua.servicenodeid.numeric", "-Y", "opcua"]
    if port != 4840:
        args[3:3] = ["-d", f"tcp.port=={port},opcua"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    frames: dict[int, list[tuple[str, int | None]]] = {}
    for line in out.splitlines():
        fr, types, chunks, svcs = (line.split("\t") + ["", "", "", ""])[:4]
        # Intermediate chunks are one message with their final chunk: the decoder emits it there.
        pdus = [t for t, c in zip(types.split(","), chunks.split(",")) if c != "C"]
        ids = [int(x) for x in svcs.split(",") if x]
        lst: list[tuple[str, int | None]] = []
        for t in pdus:
            sid = ids.pop(0) if t in ("OPN", "MSG", "CLO") and ids else None
            lst.append((t, sid))
        frames[int(fr)] = lst
    return frames


def test_against_tshark(ua_traces: list[Path], ua_decode: Callable[[Path], list[Event]], ua_registry: Callable[[Path], dict[str, DecoderSpec]], tshark: str) -> None:
    rows = []
    found: dict[tuple[str, str], int] = {}
    for path in ua_traces:
        port = next(iter(ua_registry(path).values())).default_ports[0]
        theirs = _tshark_pdus(tshark, path, port)
        mine: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
        for e in _messages(ua_decode(path)):
            assert e.evidence is not None and e.opcua is not None
            mine[e.evidence.frame or 0].append((e.opcua.message_type, e.opcua.service_type_id))
        agree = differ = 0
        for fr in sorted(set(theirs) | set(mine)):
            a = theirs.get(fr, [])
            # tshark has no service id for encrypted bodies: compare types only there.
            b = [(t, s if any(x[1] is not None for x in a) else None) for t, s in mine.get(fr, [])]
            if a == b:
                agree += len(a)
            else:
                differ += max(len(a), len(b))
        rows.append((path.name, agree, differ))
        found[(path.name, "tshark_mismatch")] = differ
    _table("OPC UA vs tshark (per UA TCP message: type + service encoding id)", rows)
    _check("tshark", found)


def _baseline_rows(path: Path) -> list[tuple[Any, ...]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        c = line.split("\t")
        req = next((x for x in c if x.endswith("Request")), None)
        resp = next((x for x in c if x.endswith("Response") or x == "ServiceFault"), None)
        out.append((c[2], int(c[3]), c[6], int(c[8]), req, resp))
    return out


def _my_rows(events: list[Event]) -> list[tuple[Any, ...]]:
    """ICSNPP's shape: one row per request with its response folded in (sizes summed)."""
    msgs = _messages(events)
    responses = {(e.opcua.request_frame, e.opcua.request_id): e for e in msgs if e.opcua and e.opcua.request_frame is not None}
    rows = []
    for e in msgs:
        o = e.opcua
        assert o is not None and e.evidence is not None
        if o.request_frame is not None:
            continue  # folded into its request's row
        orig = e.source if e.network and e.network.is_orig else e.destination
        assert orig is not None
        size = o.message_size or 0
        if o.is_response:  # response to a request from before the capture: a row of its own
            rows.append((orig.ip, orig.port, o.message_type, size, None, o.service_name))
            continue
        resp_name = None
        r = responses.get((e.evidence.frame, o.request_id))
        if r is not None and r.opcua is not None:
            size += r.opcua.message_size or 0
            resp_name = r.opcua.service_name
        rows.append((orig.ip, orig.port, o.message_type, size, o.service_name, resp_name))
    return rows


def test_against_icsnpp_baselines(ua_baselines: Path, ua_traces: list[Path], ua_decode: Callable[[Path], list[Event]]) -> None:
    rows = []
    found: dict[tuple[str, str], int] = {}
    by_name = {p.name: p for p in ua_traces}
    for folder, trace in BASELINE_TRACES.items():
        theirs = Counter(_baseline_rows(ua_baselines / folder / "opcua_binary.log"))
        mine = Counter(_my_rows(ua_decode(by_name[trace])))
        agree = sum((theirs & mine).values())
        missing = sum((theirs - mine).values())
        extra = sum((mine - theirs).values())
        rows.append((f"{folder} ({trace})", agree, missing + extra))
        found[(trace, "baseline_missing")] = missing
        found[(trace, "baseline_extra")] = extra
    _table("OPC UA vs ICSNPP opcua_binary.log (request+response rows: conn, type, size, services)", rows)
    _check("icsnpp", found)
