"""GOOSE decoder vs tshark (per frame) and vs the ICSNPP goose.log baselines (per row, every column but
the masked timestamp) on every corpus trace; prints agreement tables, asserts >= 99% and that every
difference is the one listed (with its reason) in expected_differences.yml."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.schema import Event, json_schema, to_dict
from sensors.engine import DecodeReport, decode_file

HERE = Path(__file__).resolve().parent
EXPECTED = yaml.safe_load((HERE / "expected_differences.yml").read_text(encoding="utf-8"))
ICSNPP = "icsnpp-iec61850-goose"
BASELINES = {  # baseline folder -> trace (BASELINE_NOTES.md)
    "tests.test-GOOSE": "GOOSE.pcap",
    "tests.test-GOOSE-raw-hex": "GOOSE.pcap",
    "tests.test-GOOSE-all-data-primitives-fallbacks": "GOOSE_all_data_primitives_fallbacks.pcap",
    "tests.test-GOOSE-malformed-asn1": "GOOSE_malformed_asn1.pcap",
    "tests.test-GOOSE-missing-all-data": "GOOSE_missing_all_data.pcap",
    "tests.test-GOOSE-missing-conf-rev": "GOOSE_missing_conf_rev.pcap",
    "tests.test-GOOSE-missing-dataset": "GOOSE_missing_dataset.pcap",
    "tests.test-GOOSE-missing-go-id": "GOOSE_missing_go_id.pcap",
    "tests.test-GOOSE-missing-gocb-ref": "GOOSE_missing_gocb_ref.pcap",
    "tests.test-GOOSE-missing-num-dat-set-entries": "GOOSE_missing_num_dat_set_entries.pcap",
    "tests.test-GOOSE-missing-timestamp": "GOOSE_missing_timestamp.pcap",
    "tests.test-GOOSE-truncated": "GOOSE_truncated.pcap",
    "tests.test-GOOSE-unsupported-tlv": "GOOSE_unsupported_tlv.pcap",
}
OTHER = ("iti-ics-security-tools/IEC61850/GOOSE/GOOSE.pcap", "iti-ics-security-tools/IEC61850/GOOSE/GOOSE_DEMO.pcap",
         "iti-ics-security-tools/IEC61850/GOOSE/Sample_File_GOOSE.pcap", "iti-ics-security-tools/IEC61850/Sample_File_MMS_and_GOOSE.pcap")
_cache: dict[Path, list[Event]] = {}


def _events(path: Path) -> list[Event]:
    if path not in _cache:
        rep = DecodeReport()
        _cache[path] = [e for e in decode_file(path, report=rep) if e.event.dataset == "goose"]
        assert rep.decoder_errors == 0, path
    return _cache[path]


@pytest.fixture(scope="module")
def traces(corpus: Path) -> list[Path]:
    paths = sorted({corpus / ICSNPP / "traces" / t for t in BASELINES.values()}) + [corpus / t for t in OTHER]
    if not all(p.is_file() for p in paths):
        pytest.skip("GOOSE corpus traces missing")
    return paths


def _table(title: str, rows: list[tuple[str, int, int]]) -> float:
    print(f"\n{title}\n{'trace':45} {'agree':>7} {'differ':>7}")
    for name, a, d in rows:
        print(f"{name:45} {a:7d} {d:7d}")
    ta, td = sum(r[1] for r in rows), sum(r[2] for r in rows)
    pct = 100.0 * ta / max(ta + td, 1)
    print(f"{'total':45} {ta:7d} {td:7d}  agreement {pct:.2f}%")
    return pct


def _check(section: str, found: dict[str, int]) -> None:
    want = {d["file"]: int(d["count"]) for d in EXPECTED.get(section) or []}
    found = {k: v for k, v in found.items() if v}
    problems = [f"unlisted difference {k}: {v}" for k, v in found.items() if k not in want]
    problems += [f"listed difference {k}: count {v} but found {found.get(k, 0)}" for k, v in want.items() if found.get(k) != v]
    assert not problems, "\n".join(problems)


def test_every_trace_decodes_and_validates(traces: list[Path]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in traces:
        events = _events(path)
        assert events, path.name
        for e in events[::7]:
            errors = sorted(validator.iter_errors(to_dict(e)), key=str)
            assert not errors, f"{path.name} frame {e.evidence.frame if e.evidence else '?'}: {errors[0].message}"


def test_against_tshark(traces: list[Path], tshark: str) -> None:
    rows, found = [], {}
    for path in traces:
        mine = {}
        for e in _events(path):
            g = e.goose
            assert g is not None and e.evidence is not None
            if g.parse_status != "failed":
                mine[e.evidence.frame] = (g.appid, g.gocb_ref, g.st_num, g.sq_num, g.simulation, g.nds_com, g.conf_rev)
        out = subprocess.run([tshark, "-r", str(path), "-Y", "goose.gocbRef", "-T", "fields", "-E", "occurrence=f", "-e", "frame.number",
                              "-e", "goose.appid", "-e", "goose.gocbRef", "-e", "goose.stNum", "-e", "goose.sqNum", "-e", "goose.simulation",
                              "-e", "goose.ndsCom", "-e", "goose.confRev"], capture_output=True, text=True, check=True, timeout=120).stdout
        agree = differ = 0
        seen = set()
        for line in out.splitlines():
            fr, appid, ref, st, sq, sim, nds, conf = (line.split("\t") + [""] * 8)[:8]
            seen.add(int(fr))
            b = {"1": True, "True": True, "0": False, "False": False}
            theirs = (int(appid, 16) if appid.startswith("0x") else int(appid), ref, int(st) if st else None, int(sq) if sq else None,
                      b.get(sim), b.get(nds), int(conf) if conf else None)
            if mine.get(int(fr)) == theirs:
                agree += 1
            else:
                differ += 1
                print(f"  {path.name} frame {fr}: tshark {theirs} mine {mine.get(int(fr))}")
        differ += len(set(mine) - seen)
        rows.append((path.name, agree, differ))
        found[path.name] = differ
    assert _table("GOOSE vs tshark (APPID, gocbRef, stNum, sqNum, simulation, ndsCom, confRev)", rows) >= 99.0
    _check("tshark", found)


def _log(path: Path) -> list[dict[str, str]]:
    fields: list[str] = []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif not line.startswith("#") and fields:
            rows.append(dict(zip(fields, line.split("\t"))))
    return rows


def _b(v: bool | None) -> str:
    return "T" if v else "F"


def _ts(iso: str | None) -> str:
    if iso is None:
        return "-"
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return f"{t.timestamp():.6f}"


def _row(e: Event, raw_hex: bool) -> dict[str, str]:
    g = e.goose
    assert g is not None and e.source is not None and e.destination is not None
    failed = g.parse_status == "failed" and g.parse_error != "missing_required_field"
    empty = "(empty)"
    return {
        "src_mac": e.source.mac or "-", "dst_mac": e.destination.mac or "-", "eth_type": "0x88b8", "appid": hex(g.appid),
        "length": str(g.length), "gocb_ref": g.gocb_ref or empty, "time_allowed_to_live": str(g.time_allowed_to_live or 0),
        "dataset": g.dat_set or empty, "go_id": g.go_id or "-", "timestamp": _ts(g.t),
        "timestamp_quality": "-" if g.t_quality is None else hex(g.t_quality), "st_num": str(g.st_num or 0), "sq_num": str(g.sq_num or 0),
        "simulation": _b(g.simulation), "conf_rev": str(g.conf_rev or 0), "nds_com": _b(g.nds_com),
        "num_dat_set_entries": str(g.num_dat_set_entries or 0), "all_data_hash": g.all_data_hash or empty,
        "all_data_raw_hex": empty if failed or not raw_hex else "", "parse_status": g.parse_status, "parse_error": g.parse_error or "none",
    }


def test_against_icsnpp(traces: list[Path], corpus: Path) -> None:
    rows, found = [], {}
    for folder, trace in BASELINES.items():
        base = _log(corpus / ICSNPP / "baseline" / folder / "goose.log")
        raw_hex = folder.endswith("raw-hex")
        mine = [_row(e, raw_hex) for e in _events(corpus / ICSNPP / "traces" / trace)]
        agree = differ = 0
        for theirs, ours in zip(base, mine):
            keys = [k for k in ours if k != "all_data_raw_hex"]
            bad = [k for k in keys if theirs.get(k) != ours[k]]
            if bad:
                differ += 1
                print(f"  {folder}: {[(k, theirs.get(k), ours[k]) for k in bad]}")
            else:
                agree += 1
        differ += abs(len(base) - len(mine))
        rows.append((folder, agree, differ))
        found[folder] = differ
    assert _table("GOOSE vs ICSNPP goose.log (every column but ts and all_data_raw_hex)", rows) >= 99.0
    _check("icsnpp", found)
