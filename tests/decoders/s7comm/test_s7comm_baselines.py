"""Our S7comm events vs the ICSNPP (Zeek) baselines shipped with the three icsnpp-s7comm traces.

Per log, each ICSNPP record is reduced to the fields both sides have and compared as a multiset
with the records our events give. Accepted differences (expected_differences.yml, `icsnpp:`) are
listed per log with their reasons and counts; a test fails on an unlisted difference and on a
listed one that no longer occurs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pipeline.schema import Event

EXPECTED = Path(__file__).parent / "expected_differences.yml"
BASE = "icsnpp-s7comm/baseline"
CASES = {"s7comm_plus": "icsnpp-s7comm/traces/s7comm_plus.pcap", "s7ident": "icsnpp-s7comm/traces/s7ident.pcap", "snap7": "icsnpp-s7comm/traces/snap7.pcap"}
UD_TYPE = {"push": 0x0, "request": 0x4, "response": 0x8}
FN_CODES = {"Start Upload": 0x1D, "Upload": 0x1E, "End Upload": 0x1F, "Request Download": 0x1A, "Download Block": 0x1B, "Download Ended": 0x1C}
Row = tuple[Any, ...]


def read_log(path: Path) -> list[dict[str, str]]:
    fields: list[str] = []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"))))
    return rows


def _swap(ref: int | None) -> int:
    """ICSNPP reads the PDU reference little-endian (tshark and the protocol: big-endian)."""
    r = ref or 0
    return ((r & 0xFF) << 8) | (r >> 8)


def _orig(e: Event) -> str:
    return "T" if e.network is not None and e.network.is_orig else "F"


def _opt(v: str) -> str | None:
    return None if v in ("-", "(empty)") else v


def theirs(log: str, rows: list[dict[str, str]]) -> Counter[Row]:
    out: Counter[Row] = Counter()
    for r in rows:
        if log == "s7comm":
            out[(r["is_orig"], int(r["rosctr_code"]), int(r["pdu_reference"]), int(r["function_code"], 16), _opt(r["subfunction_code"]))] += 1
        elif log == "s7comm_plus":
            fc = _opt(r["function_code"])
            out[(r["is_orig"], int(r["version"]), int(r["opcode"], 16), int(fc, 16) if fc else None)] += 1
        elif log == "cotp":
            out[(r["is_orig"], int(r["pdu_code"], 16))] += 1
        elif log == "s7comm_read_szl":
            out[(r["is_orig"], int(r["pdu_reference"]), r["method"].lower(), int(r["szl_id"], 16), int(r["szl_index"], 16), int(r["return_code"], 16))] += 1
        elif log == "s7comm_upload_download":
            sid, bl = _opt(r["session_id"]), _opt(r["blocklength"])
            out[(r["is_orig"], int(r["pdu_reference"]), FN_CODES[r["function_name"]], int(sid) if sid else None, int(bl) if bl else None, _opt(r["filename"]))] += 1
        elif log == "s7comm_known_devices":
            out[(_opt(r["automation_system_name"]), _opt(r["module_name"]), _opt(r["plant_name"]), _opt(r["module_serial"]))] += 1
    return out


def ours(log: str, events: list[Event]) -> Counter[Row]:
    out: Counter[Row] = Counter()
    for e in events:
        s = e.s7comm
        if s is None or e.anomaly is not None:
            continue
        o = _orig(e)
        if log == "s7comm" and s.protocol == "s7comm" and s.rosctr is not None:
            if s.rosctr == 7:
                fc = (UD_TYPE.get(s.userdata_type or "", 0xF) << 4) | (s.function_group or 0)
                sub = f"0x{s.subfunction_code:02x}" if s.subfunction_code is not None else None
            else:
                fc, sub = s.function_code if s.function_code is not None else -1, None
                if fc == 0x28 and s.rosctr == 1:
                    sub = s.pi_service  # ICSNPP logs the PI service name as the sub-function
            out[(o, s.rosctr, _swap(s.pdu_reference), fc, sub)] += 1
        elif log == "s7comm_plus" and s.protocol == "s7comm-plus" and s.opcode is not None:
            out[(o, s.version, s.opcode, s.function_code)] += 1
        elif log == "cotp" and s.protocol == "cotp":
            out[(o, s.cotp_pdu_code)] += 1
        elif log == "cotp" and s.protocol in ("s7comm", "s7comm-plus"):
            out[(o, 0x0F)] += 1  # one DT per message (fragments are not events)
        elif log == "s7comm_read_szl" and s.szl_id is not None:
            out[(o, _swap(s.pdu_reference), s.userdata_type, s.szl_id, s.szl_index, s.return_code)] += 1
        elif log == "s7comm_upload_download" and s.function_code is not None and 0x1A <= s.function_code <= 0x1F and s.rosctr in (1, 3):
            bl = s.block_length if s.function_code in (0x1A, 0x1D) and s.rosctr == 3 else (s.transfer_length if s.rosctr == 3 else None)
            on_wire = s.rosctr == 1 and s.function_code in (0x1A, 0x1B, 0x1C, 0x1D)  # later PDUs name the block only by session id
            out[(o, _swap(s.pdu_reference), s.function_code, s.session_id, bl, s.filename if on_wire else None)] += 1
        elif log == "s7comm_known_devices" and (s.system_name or s.module_name or s.serial_number):
            out[(s.system_name, s.module_name, s.plant_name, s.serial_number)] += 1
    return out


def _accepted() -> dict[str, Any]:
    return (yaml.safe_load(EXPECTED.read_text(encoding="utf-8")) or {}).get("icsnpp") or {}


def test_agreement_with_icsnpp(decoded: Callable[[str], list[Event]], s7_corpus: Path) -> None:
    accepted = _accepted()
    problems: list[str] = []
    rows_out: list[str] = []
    agree_all = total_all = accepted_all = 0
    for case, trace in CASES.items():
        events = decoded(trace)
        for log_path in sorted((s7_corpus / BASE / f"analyzer.{case}").glob("*.log")):
            log = log_path.stem
            if log == "conn":
                continue
            t, o = theirs(log, read_log(log_path)), ours(log, events)
            agree = sum((t & o).values())
            only_t, only_o = t - o, o - t
            listed = (accepted.get(case) or {}).get(log) or {}
            lt = {tuple(yaml.safe_load(k)) if isinstance(k, str) else k: v for k, v in (listed.get("only_icsnpp") or {}).items()}
            lo = {tuple(yaml.safe_load(k)) if isinstance(k, str) else k: v for k, v in (listed.get("only_ours") or {}).items()}
            got_t = {tuple(map(_plain, k)): n for k, n in only_t.items()}
            got_o = {tuple(map(_plain, k)): n for k, n in only_o.items()}
            want_t = {tuple(map(_plain, k)): int(v[0] if isinstance(v, list) else v) for k, v in lt.items()}
            want_o = {tuple(map(_plain, k)): int(v[0] if isinstance(v, list) else v) for k, v in lo.items()}
            if got_t != want_t:
                problems.append(f"{case}/{log}: only in ICSNPP {got_t}, accepted {want_t}")
            if got_o != want_o:
                problems.append(f"{case}/{log}: only in ours {got_o}, accepted {want_o}")
            total = agree + sum(only_t.values()) + sum(only_o.values())
            agree_all += agree
            total_all += total
            accepted_all += sum(n for k, n in got_t.items() if want_t.get(k) == n) + sum(n for k, n in got_o.items() if want_o.get(k) == n)
            rows_out.append(f"| {case} | {log} | {sum(t.values())} | {sum(o.values())} | {agree} | {sum(only_t.values())} | {sum(only_o.values())} |")
    print("\n| trace | log | ICSNPP | ours | agree | only ICSNPP (accepted) | only ours (accepted) |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows_out))
    print(f"record agreement {100.0 * agree_all / max(total_all, 1):.2f}% ({agree_all}/{total_all}) raw, "
          f"{100.0 * (agree_all + accepted_all) / max(total_all, 1):.2f}% counting the listed differences (records ICSNPP's parser loses, each with its reason)")
    assert not problems, "\n".join(problems)
    assert total_all and (agree_all + accepted_all) / total_all >= 0.99


def _plain(x: Any) -> Any:
    return x
