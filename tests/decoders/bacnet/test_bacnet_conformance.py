"""BACnet/IP decoder vs tshark and vs the ICSNPP baselines (bacnet, bacnet_property, bacnet_discovery,
bacnet_device_control logs) on every corpus trace; every trace decodes, every event validates.

Fails on any difference not listed in expected_differences.yml and on a listed one that changed.

How our events are viewed as ICSNPP rows (the view, not the decoder, bridges the two shapes):
- Segmented messages. tshark shows every segment, and so do we: one event per datagram, compared
  one to one with tshark. ICSNPP's bacnet.log logs a segmented message once, and its
  bacnet_property.log logs the reassembled parameters once. We decode the reassembled parameters
  onto the final segment's event (more_follows false, segment_count set), so the ICSNPP views
  count a segmented message as its final segment only. The earlier segments stay out of those
  views: they are the same message, and the first one's partial decode would count it twice. A
  message whose final segment is missing from the capture is then absent from the views (no
  corpus trace has one).
- Array and list values. ICSNPP writes one bacnet_property row per element of a value read without
  an array index (426 rows for an object-list of 426 entries, 16 for a priority-array); we write
  one property whose `value` joins the elements and whose `value_count` counts them. The property
  view expands such a property into `value_count` rows with the same key (values are not compared).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.schema import Event, json_schema, to_dict
from sensors.decoders.bacnet import SPEC
from sensors.engine import DecodeReport, decode_file

HERE = Path(__file__).resolve().parent
EXPECTED = yaml.safe_load((HERE / "expected_differences.yml").read_text(encoding="utf-8"))


def _messages(events: list[Event]) -> list[Event]:
    return [e for e in events if e.event.dataset == "bacnet" and e.bacnet is not None and e.anomaly is None]


def _icsnpp_messages(events: list[Event]) -> list[Event]:
    """A segmented message counts once, as its final segment (see the module docstring)."""
    return [e for e in _messages(events) if not (e.bacnet and e.bacnet.more_follows)]


def _check(section: str, found: dict[tuple[str, str], int]) -> None:
    want = {(d["file"], d["kind"]): int(d["count"]) for d in EXPECTED.get(section) or []}
    found = {k: v for k, v in found.items() if v}
    problems = [f"unlisted difference {k}: {v}" for k, v in found.items() if k not in want]
    problems += [f"listed difference {k}: count {v} but found {found.get(k, 0)}" for k, v in want.items() if found.get(k) != v]
    assert not problems, "\n".join(problems)


def _table(title: str, rows: list[tuple[str, int, int]]) -> None:
    print(f"\n{title}\n{'trace':45} {'agree':>7} {'differ':>7}")
    for name, a, d in rows:
        print(f"{name:45} {a:7d} {d:7d}")
    ta, td = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'total':45} {ta:7d} {td:7d}  agreement {100.0 * ta / max(ta + td, 1):.2f}%")


def test_every_trace_decodes_and_validates(bac_traces: list[Path]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in bac_traces:
        report = DecodeReport()
        events = [e for e in decode_file(path, registry={"bacnet": SPEC}, report=report) if e.event.dataset == "bacnet"]
        assert report.decoder_errors == 0, path.name
        assert events, path.name
        # Validating every event of the 7158-packet trace costs seconds: every 7th is plenty.
        for e in events[::7] + [e for e in events if e.anomaly is not None]:
            errors = sorted(validator.iter_errors(to_dict(e)), key=str)
            assert not errors, f"{path.name} frame {e.evidence.frame if e.evidence else '?'}: {errors[0].message}"


def test_default_registry(bac_traces: list[Path]) -> None:
    path = next(p for p in bac_traces if p.name == "bacnet_segmented_data.pcap")
    assert len(_messages(list(decode_file(path)))) == 20


def test_against_tshark(bac_traces: list[Path], bac_decode: Callable[[Path], list[Event]], tshark: str) -> None:
    rows = []
    found: dict[tuple[str, str], int] = {}
    for path in bac_traces:
        mine: dict[int, tuple[Any, ...]] = {}
        for e in _messages(bac_decode(path)):
            b = e.bacnet
            assert b is not None and e.evidence is not None
            mine[e.evidence.frame or 0] = (b.bvlc_function, b.apdu_type, b.service if b.apdu_type in (0, 1, 2, 3, 5) else None, b.invoke_id, b.network_message_type)
        out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "bvlc.function", "-e", "bacapp.type",
                              "-e", "bacapp.confirmed_service", "-e", "bacapp.unconfirmed_service", "-e", "bacapp.invoke_id",
                              "-e", "bacnet.mesgtyp", "-Y", "bvlc"], capture_output=True, text=True, check=True, timeout=120).stdout
        agree = differ = 0
        seen = set()
        for line in out.splitlines():
            fr, fn, ty, cs, us, iv, mt = (line.split("\t") + [""] * 7)[:7]
            seen.add(int(fr))
            t = int(ty) if ty else None
            svc = int(cs) if cs else (int(us) if us else None)
            theirs = (int(fn, 16) if fn else None, t, svc if t in (0, 1, 2, 3, 5) else None, int(iv) if iv else None, int(mt, 16) if mt else None)
            if mine.get(int(fr)) == theirs:
                agree += 1
            else:
                differ += 1
        differ += len(set(mine) - seen)
        rows.append((path.name, agree, differ))
        found[(path.name, "tshark_mismatch")] = differ
    _table("BACnet vs tshark (per datagram: BVLC function, APDU type, service, invoke id, network message)", rows)
    _check("tshark", found)


def _log(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    fields: list[str] = []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif not line.startswith("#") and fields:
            rows.append(dict(zip(fields, line.split("\t"))))
    return rows


def _norm(s: str | None) -> str:
    return "-" if s in (None, "", "-") else str(s).lower().replace("-", "_")


_PDU = {"error": "error_pdu", "reject": "reject_pdu", "abort": "abort_pdu"}


def _main_row(e: Event) -> tuple[str, ...]:
    b = e.bacnet
    assert b is not None and e.source is not None and e.destination is not None
    if b.network_message_name is not None:
        pdu, svc = "npdu", b.network_message_name
    else:
        pdu = _PDU.get(b.apdu_type_name or "", b.apdu_type_name or "-")
        svc = b.service_name or {"reject": "reject", "abort": "abort"}.get(b.apdu_type_name or "", "-")
    result = b.error_code_name or b.reject_reason_name or b.abort_reason_name
    return (str(e.source.ip), str(e.destination.ip), _norm(b.bvlc_function_name), _norm(pdu), _norm(svc),
            "-" if b.invoke_id is None or b.apdu_type == 1 else str(b.invoke_id), _norm(result))


def _their_main(r: dict[str, str]) -> tuple[str, ...]:
    return (r["source_h"], r["destination_h"], _norm(r["bvlc_function"]), _norm(r["pdu_type"]), _norm(r["pdu_service"]),
            r["invoke_id"], _norm(r["result_code"]))


def _my_props(e: Event) -> list[tuple[str, ...]]:
    b = e.bacnet
    assert b is not None and e.source is not None
    if b.service_name not in ("read_property", "write_property", "read_property_multiple", "write_property_multiple", "read_range") or b.apdu_type not in (0, 3):
        return []
    props = b.properties or ([] if b.property_name is None else [b])
    return [(str(e.source.ip), str(b.invoke_id), _norm(p.object_type_name), str(p.instance_number), _norm(p.property_name),
             "-" if p.array_index is None else str(p.array_index))
            for p in props for _ in range(p.value_count or 1 if p.array_index is None else 1)]


def _their_prop(r: dict[str, str]) -> tuple[str, ...]:
    prop = r["property"]
    if prop.startswith("Vendor Specific ("):  # ICSNPP's name for proprietary ids (>= 512)
        prop = "vendor-specific-" + prop[len("Vendor Specific (") : -1]
    return (r["source_h"], r["invoke_id"], _norm(r["object_type"]), r["instance_number"], _norm(prop), r["array_index"])


def _my_discovery(e: Event) -> tuple[str, ...] | None:
    b = e.bacnet
    assert b is not None and e.source is not None
    if b.service_name not in ("who_is", "i_am", "who_has", "i_have"):
        return None
    # A vendor id missing from our ASHRAE vendor table matches any name (counted as vendor_unnamed).
    return (str(e.source.ip), _norm(b.service_name), "-" if b.instance_number is None else str(b.instance_number),
            _vendor(b.vendor_name) if b.vendor_name else ("*" if b.vendor_id is not None else "-"))


def _vendor(name: str) -> str:
    """ICSNPP's vendor names have no commas ("M&M Systems Inc." for ASHRAE's "M&M Systems, Inc."): the
    comma is the set separator of Zeek logs. Compared without them."""
    return name.replace(",", "")


def _their_discovery(r: dict[str, str]) -> tuple[str, ...]:
    return (r["source_h"], _norm(r["pdu_service"]), r["instance_number"], _vendor(r["vendor"]))


def _my_control(e: Event) -> tuple[str, ...] | None:
    b = e.bacnet
    assert b is not None and e.source is not None
    if b.service_name not in ("device_communication_control", "reinitialize_device"):
        return None
    return (str(e.source.ip), str(b.invoke_id), _norm(b.service_name), _norm(b.enable_disable or b.reinitialize_state),
            _norm(b.error_code_name or b.reject_reason_name or b.abort_reason_name))


def _their_control(r: dict[str, str]) -> tuple[str, ...]:
    return (r["source_h"], r["invoke_id"], _norm(r["pdu_service"]), _norm(r["device_state"]), _norm(r["result_code"]))


LOGS: dict[str, tuple[Callable[[Event], Any], Callable[[dict[str, str]], tuple[str, ...]]]] = {
    "bacnet.log": (lambda e: [_main_row(e)], _their_main),
    "bacnet_property.log": (_my_props, _their_prop),
    "bacnet_discovery.log": (lambda e: [x] if (x := _my_discovery(e)) else [], _their_discovery),
    "bacnet_device_control.log": (lambda e: [x] if (x := _my_control(e)) else [], _their_control),
}


def test_against_icsnpp_baselines(bac_traces: list[Path], bac_baselines: dict[str, Path], bac_decode: Callable[[Path], list[Event]]) -> None:
    by_name = {p.name: p for p in bac_traces}
    found: dict[tuple[str, str], int] = {}
    for log, (mine_of, theirs_of) in LOGS.items():
        rows = []
        for trace, folder in bac_baselines.items():
            their_rows = _log(folder / log)
            if not their_rows:
                continue
            theirs = Counter(theirs_of(r) for r in their_rows)
            mine = Counter(x for e in _icsnpp_messages(bac_decode(by_name[trace])) for x in mine_of(e))
            if log == "bacnet_discovery.log":  # unnamed vendor ids: counted apart, then matched on the rest
                unnamed = sum(v for k, v in mine.items() if k[3] == "*")
                found[(f"{trace}:{log}", "vendor_unnamed")] = unnamed
                theirs = Counter({(k[:3] + ("*",) if (k[:3] + ("*",)) in mine else k): v for k, v in theirs.items()}) if unnamed else theirs
            agree = sum((theirs & mine).values())
            missing = sum((theirs - mine).values())
            extra = sum((mine - theirs).values())
            rows.append((trace, agree, missing + extra))
            found[(f"{trace}:{log}", "missing")] = missing
            found[(f"{trace}:{log}", "extra")] = extra
        _table(f"BACnet vs ICSNPP {log}", rows)
    _check("icsnpp", found)
