"""Our Modbus events vs the Zeek and ICSNPP baselines shipped in the shared corpus.

Baselines had timestamps masked and some columns removed upstream (see BASELINE_NOTES.md in each
corpus folder), so records are matched by what is left: connection ports, transaction id, unit,
function, direction, field values. Accepted differences: expected_differences/modbus_baselines.yml.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.schema import Event, Modbus
from sensors.engine import decode_file

EXPECTED = Path(__file__).parent / "expected_differences" / "modbus_baselines.yml"

# Our snake_case names -> the upper-case names Zeek/ICSNPP log, where they differ beyond case.
_ZEEK_NAMES = {"report_server_id": "REPORT_SLAVE_ID", "encapsulated_interface_transport": "ENCAP_INTERFACE_TRANSPORT"}


def zeek_func(m: Modbus) -> str:
    if m.function_name.startswith(("unknown_", "user_defined_")):
        name = f"unknown-{m.function_code | (0x80 if m.exception_code is not None else 0)}"
        return name
    name = _ZEEK_NAMES.get(m.function_name, m.function_name.upper())
    return f"{name}_EXCEPTION" if m.exception_code is not None else name


def zeek_exception(m: Modbus) -> str:
    return m.exception_name.upper() if m.exception_name else "-"


def modbus_events(path: Path) -> list[tuple[Event, Modbus]]:
    return [(e, e.modbus) for e in decode_file(path) if e.modbus is not None and e.anomaly is None]


def log_rows(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a Zeek TSV log as dicts; a log whose header lines were cut by zeek-cut -n yields lists keyed by index."""
    fields: list[str] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        yield dict(zip(fields, cols)) if fields else {str(i): c for i, c in enumerate(cols)}


def accepted() -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in yaml.safe_load(EXPECTED.read_text()) or []:
        assert entry.get("why"), f"{EXPECTED}: entry {entry.get('key')} has no reason"
        out[(entry["baseline"], entry["key"])] = entry
    return out


class Diffs:
    """Collects differences keyed (baseline, key); the test fails on any not accepted."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], str] = {}
        self.checked: Counter[str] = Counter()
        self.agreed: Counter[str] = Counter()

    def compare(self, baseline: str, key: str, theirs: object, ours: object) -> None:
        self.checked[baseline] += 1
        if theirs == ours:
            self.agreed[baseline] += 1
        else:
            self.found[(baseline, key)] = f"theirs={theirs!r} ours={ours!r}"


# ---------------------------------------------------------------- ICSNPP


def icsnpp(corpus: Path, d: Diffs) -> None:
    base = corpus / "icsnpp-modbus" / "baseline" / "analyzer.basic"
    events = modbus_events(corpus / "icsnpp-modbus" / "traces" / "modbus_example.pcap")
    responses = [m for _, m in events if m.message_type == "response"]
    # modbus.log: REQ rows were grepped out and tid/unit/pdu_type cut: responses in order, func + exception.
    rows = list(log_rows(base / "modbus.log"))
    d.compare("icsnpp/modbus.log", "row count", len(rows), len(responses))
    for i, (row, m) in enumerate(zip(rows, responses)):
        d.compare("icsnpp/modbus.log", f"row {i + 1} func/exception", (row["6"], row["7"]), (zeek_func(m), zeek_exception(m)))
    # modbus_detailed.log: one row per request/response pair (or per unpaired message).
    by_key: dict[tuple[int, int], list[Modbus]] = {}
    for _, m in events:
        by_key.setdefault((m.transaction_id, m.unit_id), []).append(m)

    def fmt(v: list[int] | None) -> str:
        return ",".join(map(str, v)) if v else "-"

    for row in log_rows(base / "modbus_detailed.log"):
        tid, unit = int(row["tid"]), int(row["unit"])
        msgs = by_key.get((tid, unit), [])
        req = next((m for m in msgs if m.message_type == "request"), None)
        resp = next((m for m in msgs if m.message_type == "response"), None)
        k = f"tid {tid} {row['func']}"
        if req is None or resp is None:
            d.compare("icsnpp/modbus_detailed.log", f"{k} pair", "request+response", f"request={req is not None} response={resp is not None}")
            continue
        d.compare("icsnpp/modbus_detailed.log", f"{k} func", row["func"], zeek_func(req))
        d.compare("icsnpp/modbus_detailed.log", f"{k} matched", row["matched"], "T")
        # FC 23 addresses live in ICSNPP's read_write_multiple_registers log, not the detailed one.
        d.compare("icsnpp/modbus_detailed.log", f"{k} address", row["address"], "-" if req.address is None or req.function_code == 23 else str(req.address))
        qty = req.quantity if req.function_code not in (20, 21, 24) else (req.byte_count if req.function_code != 24 else resp.fifo_count)
        d.compare("icsnpp/modbus_detailed.log", f"{k} quantity", row["quantity"], "-" if qty is None or req.function_code in (22, 23) else str(qty))
        if req.function_code not in (23,):
            d.compare("icsnpp/modbus_detailed.log", f"{k} request_values", row["request_values"], fmt(req.values) if req.function_code in (5, 6, 15, 16) else "-")
            d.compare("icsnpp/modbus_detailed.log", f"{k} response_values", row["response_values"], fmt(resp.values) if resp.function_code in (1, 2, 3, 4, 5, 6) else "-")
        sub = req.subfunction_name.replace("_", " ").title() if req.function_code == 8 and req.subfunction_name else "-"
        d.compare("icsnpp/modbus_detailed.log", f"{k} subfunction", (row["request_subfunction_code"], row["response_subfunction_code"]), (sub, sub))
        if req.function_code in (1, 2):
            # ICSNPP keeps the padding bits of the last byte in response_data; we drop them.
            d.compare("icsnpp/modbus_detailed.log", f"{k} response_data", row["response_data"], "-")
        if req.function_code == 8:
            hexes = tuple("".join(f"\\x{req_b}" for req_b in re.findall("..", m.data or "")) or "-" for m in (req, resp))
            d.compare("icsnpp/modbus_detailed.log", f"{k} data", (row["request_data"], row["response_data"]), hexes)
        d.compare("icsnpp/modbus_detailed.log", f"{k} exception", row["exception_code"], zeek_exception(resp))
        mei = "Read Device Identification" if req.subfunction_code == 14 and req.function_code == 43 else "-"
        d.compare("icsnpp/modbus_detailed.log", f"{k} mei_type", row["mei_type"], mei)
    for row in log_rows(base / "modbus_mask_write_register.log"):
        tid = int(row["tid"])
        m = next(m for m in by_key[(tid, int(row["unit"]))] if m.message_type == ("request" if row["is_orig"] == "T" else "response"))
        d.compare("icsnpp/modbus_mask_write_register.log", f"tid {tid} {row['request_response']}", (row["address"], row["and_mask"], row["or_mask"]), (str(m.address), str(m.and_mask), str(m.or_mask)))
    for row in log_rows(base / "modbus_read_write_multiple_registers.log"):
        tid = int(row["tid"])
        m = next(m for m in by_key[(tid, int(row["unit"]))] if m.message_type == ("request" if row["is_orig"] == "T" else "response"))
        if row["is_orig"] == "T":
            ours = (str(m.address), fmt(m.values), str(m.read_address), str(m.read_quantity), "-")
        else:
            ours = ("-", "-", "-", "-", fmt(m.values))
        theirs = (row["write_start_address"], row["write_registers"], row["read_start_address"], row["read_quantity"], row["read_registers"])
        d.compare("icsnpp/modbus_read_write_multiple_registers.log", f"tid {tid} {row['request_response']}", theirs, ours)


# ---------------------------------------------------------------- Zeek logs


def zeek_log(corpus: Path, d: Diffs, test: str, trace: str) -> None:
    name = f"zeek/{test}/modbus.log"
    rows = list(log_rows(corpus / "zeek" / "baseline" / f"scripts.base.protocols.modbus.{test}" / "modbus.log"))
    theirs = Counter((r["id.orig_p"], r["tid"], r["unit"], r["func"], r["pdu_type"], r["exception"]) for r in rows)
    ours = Counter(
        (str(e.network.is_orig and e.source.port or e.destination.port if e.source and e.destination and e.network else ""), str(m.transaction_id), str(m.unit_id), zeek_func(m) if m.exception_code is None else zeek_func(m).removesuffix("_EXCEPTION"), "REQ" if m.message_type == "request" else "RESP", zeek_exception(m))
        for e, m in modbus_events(corpus / "zeek" / "traces" / "modbus" / trace)
    )
    for key in sorted(set(theirs) | set(ours)):
        d.compare(name, " ".join(key), theirs[key], ours[key])


# ---------------------------------------------------------------- Zeek event output

_LINE = re.compile(r"^(?:(\d+) )?(\w+), \[orig_h=[^,]+, orig_p=(\d+)/tcp[^\]]*ctx=\[\]\], \[tid=(\d+), pid=\d+, uid=(\d+), function_code=(\d+), len=\d+\](?:, (.*))?$")


def _tf(bits: list[int]) -> str:
    return "[" + ", ".join("T" if b else "F" for b in bits) + "]"


def zeek_output(corpus: Path, d: Diffs, test: str, trace: str) -> None:
    name = f"zeek/{test}/output"
    theirs: Counter[tuple[str, ...]] = Counter()
    for line in (corpus / "zeek" / "baseline" / f"scripts.base.protocols.modbus.{test}" / "output").read_text().splitlines():
        mt = _LINE.match(line)
        if mt:
            count, ev, port, tid, uid, fc, rest = mt.groups()
            theirs[(ev, port, tid, uid, fc, rest or "")] += int(count or 1)
    ours: Counter[tuple[str, ...]] = Counter()
    for e, m in modbus_events(corpus / "zeek" / "traces" / "modbus" / trace):
        assert e.network is not None and e.source is not None and e.destination is not None
        port = str(e.source.port if e.network.is_orig else e.destination.port)
        is_req = m.message_type == "request"
        fc = str(m.function_code | (0x80 if m.exception_code is not None else 0))
        head = (port, str(m.transaction_id), str(m.unit_id), fc)
        ours[("modbus_message", *head, "T" if is_req else "F")] += 1  # Zeek's last argument: is_orig
        suffix = "request" if is_req else "response"
        ev = f"modbus_{m.function_name}_{suffix}"
        if m.function_code in (1, 2) and not is_req:
            # Zeek passes every bit of the last byte; we trim to the request's quantity: compare padded.
            bits = list(m.values or [])
            bits += [0] * (8 * (m.byte_count or 0) - len(bits))
            rest = _tf(bits)
        elif m.function_code in (1, 2, 3, 4) and is_req:
            rest = f"{m.address}, {m.quantity}"
        elif m.function_code in (3, 4):
            # the upstream script prints the registers and how many there are
            rest = f"[{', '.join(map(str, m.values or []))}], {len(m.values or [])}"
        elif m.function_code == 5:
            rest = f"{m.address}, {'T' if (m.values or [0])[0] else 'F'}"
        elif m.function_code == 15:
            rest = f"{m.address}, {_tf(m.values or [])}" if is_req else f"{m.address}, {m.quantity}"
        else:
            continue
        ours[(ev, *head, rest)] += 1
    printed = {k[0] for k in theirs}  # the upstream test script printed only these events
    for key in sorted(set(theirs) | {k for k in ours if k[0] in printed}):
        d.compare(name, " ".join(key)[:200], theirs[key], ours[key])


def test_modbus_agrees_with_zeek_and_icsnpp(corpus: Path) -> None:
    d = Diffs()
    icsnpp(corpus, d)
    zeek_log(corpus, d, "exception_handling", "fuzz-72.pcap")
    zeek_log(corpus, d, "modbus_and_non_modbus_on_port_502", "modbus-and-non-modbus-p502.pcap")
    zeek_log(corpus, d, "register_parsing", "fuzz-1011.pcap")
    zeek_output(corpus, d, "register_parsing", "fuzz-1011.pcap")
    zeek_output(corpus, d, "coil_parsing_small", "modbusSmall.pcap")
    zeek_output(corpus, d, "coil_parsing_big", "modbusBig.pcap")
    allowed = accepted()
    width = max(len(b) for b in d.checked)
    print(f"\n{'baseline':<{width}}  checked  agree  accepted  unexplained")
    for b in d.checked:
        acc = sum(1 for (bb, k) in d.found if bb == b and (bb, k) in allowed)
        bad = sum(1 for (bb, k) in d.found if bb == b and (bb, k) not in allowed)
        print(f"{b:<{width}}  {d.checked[b]:>7}  {d.agreed[b]:>5}  {acc:>8}  {bad:>11}")
    unexplained = [f"{b} | {k} | {v}" for (b, k), v in sorted(d.found.items()) if (b, k) not in allowed]
    stale = sorted(k for k in allowed if k not in d.found)
    assert not unexplained, "differences not in expected_differences/modbus_baselines.yml:\n" + "\n".join(unexplained)
    assert not stale, f"entries in expected_differences/modbus_baselines.yml that no longer happen: {stale}"
