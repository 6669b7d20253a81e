"""Zeek-iec104's annotated APDUs (apdu-hex/*.test): our parser must decode every asserted value.

Each .test file is hex octets with `; key=value` assertions in the order the Spicy analyzer
prints them (format: apdu-hex/README.org). The octets are concatenated and parsed APDU by APDU;
each assertion group (starting at `iec104::Apdu`) is compared with our decoding, key by key, as
the ordered list of that key's values in the APDU (so `iv` of a QDS and `iv` of its CP56Time2a
are checked in turn). Accepted differences (annotation errors in the upstream files) are listed
in expected_differences.yml under `apdu_hex`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from pipeline.protocols.iec104 import Iec104, Iec104Object
from sensors.decoders.iec104 import parse

APDU_HEX = "zeek-iec104/apdu-hex"
_HEX = re.compile(r"^[0-9a-fA-F\s]*$")


def read_test(path: Path) -> tuple[bytes, list[list[tuple[str, str]]]]:
    data = bytearray()
    groups: list[list[tuple[str, str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        code, sep, comment = line.partition(";")
        code = code.strip()
        if code:
            assert _HEX.match(code), f"{path.name}: not hex: {code!r}"
            data += bytes.fromhex(code.replace(" ", ""))
        if not sep or comment.startswith(";"):
            continue
        for tok in comment.split():
            if tok == "iec104::Apdu":
                groups.append([])
            elif "=" in tok:
                k, _, v = tok.partition("=")
                if not groups:
                    groups.append([])
                groups[-1].append((k, v))
    return bytes(data), groups


def _b(x: bool | None) -> int:
    return int(bool(x))


def _quality(o: Iec104Object, ov: bool) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("ov", _b(o.overflow))] if ov else []
    return out + [("bl", _b(o.blocked)), ("sb", _b(o.substituted)), ("nt", _b(o.not_topical)), ("iv", _b(o.invalid))]


def _time(o: Iec104Object) -> list[tuple[str, object]]:
    t = o.time
    if t is None:
        return []
    return [("ms", t.ms), ("minute", t.minute), ("iv", _b(t.invalid)), ("hour", t.hour), ("su", _b(t.summer)),
            ("day", t.day), ("dow", t.dow), ("month", t.month), ("year", t.year)]  # fmt: skip


def zeek_view(p: Iec104) -> list[tuple[str, object]]:
    """Our decoding as the (key, value) pairs the Spicy analyzer prints, in its order."""
    out: list[tuple[str, object]] = [("len", p.apdu_length), ("tag", {"I": 0, "S": 1, "U": 3}[p.apci_type])]
    if p.send_seq is not None:
        out.append(("ssn", p.send_seq))
    if p.recv_seq is not None:
        out.append(("rsn", p.recv_seq))
    if p.type_id is None:
        return out
    out += [("type_id", p.type_name), ("nobj", p.num_objects), ("sq", _b(p.sq)), ("cot", p.cot_name), ("pn", _b(p.negative)),
            ("test", _b(p.test)), ("originator_address", p.originator_address), ("common_address", p.common_address)]  # fmt: skip
    objs = p.objects or []
    if p.sq and objs:
        out.append(("base_addr", objs[0].ioa))
    tid = p.type_id
    for o in objs:
        if not p.sq:
            out.append(("obj_addr", o.ioa))
        if tid in (1, 2, 30):
            out += [("spi", o.value)] + _quality(o, False)
        elif tid in (3, 4, 31):
            out += [("dpi", o.value)] + _quality(o, False)
        elif tid in (11, 12, 35):
            out += [("sva", o.value)] + _quality(o, True)
        elif tid in (13, 14, 36):
            out += [("r32", o.value)] + _quality(o, True)
        elif tid in (49, 62):
            out += [("sva", o.value), ("ql", o.qualifier), ("se", _b(o.select))]
        elif tid in (50, 63):
            out += [("r32", o.value), ("ql", o.qualifier), ("se", _b(o.select))]
        elif tid in (47, 60):
            out += [("rcs", o.value), ("qu", o.qualifier), ("se", _b(o.select))]
        elif tid == 70:
            out += [("coi", o.qualifier), ("lpc", _b(o.local_change))]
        elif tid == 100:
            out += [("qoi", o.qualifier)]
        out += _time(o)
    if p.data:
        out += [("raw_data", x) for x in bytes.fromhex(p.data)]
    return out


def _same(key: str, want: str, got: object) -> bool:
    if key == "type_id":
        return want.split("::")[-1] == got
    if key == "cot":
        return re.sub(r"[^a-z0-9]", "", want.split("::")[-1].lower()) == re.sub(r"[^a-z0-9]", "", str(got))
    if key == "r32":
        return isinstance(got, float) and math.isclose(float(want), got, rel_tol=1e-5, abs_tol=1e-6)
    return str(got) == want


def _cases() -> list[str]:
    folder = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / APDU_HEX
    return sorted(p.name for p in folder.glob("*.test")) if folder.is_dir() else []


@pytest.mark.parametrize("name", _cases() or ["(corpus absent)"])
def test_apdu_hex_case(name: str, corpus: Path, accepted_apdu_hex: dict[str, dict[str, str]]) -> None:
    data, groups = read_test(corpus / APDU_HEX / name)
    fix = accepted_apdu_hex.get(name)
    if fix is not None:  # the listed difference must still occur, then the fixed octets must decode
        assert parse(data).consumed == 0, f"{name}: listed in expected_differences.yml but now parses"
        data = bytes.fromhex(fix["fixed_hex"]) if "fixed_hex" in fix else data[:1] + bytes([len(data) - 2]) + data[2:]
    pdus: list[Iec104] = []
    off = 0
    while off < len(data):
        p = parse(data[off:])
        assert p.consumed > 0, f"{name}: incomplete APDU at octet {off}: {p.needed} more needed"
        assert isinstance(p.pdu, Iec104), f"{name}: {p.anomaly}: {p.anomaly_message}"
        pdus.append(p.pdu)
        off += p.consumed
    assert len(pdus) == len(groups), f"{name}: {len(pdus)} APDUs parsed, {len(groups)} annotated"
    problems: list[str] = []
    for i, (pdu, asserted) in enumerate(zip(pdus, groups)):
        ours: dict[str, list[object]] = {}
        for k, v in zeek_view(pdu):
            ours.setdefault(k, []).append(v)
        want: dict[str, list[str]] = {}
        for k, v in asserted:
            want.setdefault(k, []).append(v)
        for k, values in want.items():
            if fix is not None and k == "len":
                continue  # the length is what we fixed
            got = ours.get(k, [])
            # A prefix: annotations sometimes stop before the last element (m_me_nc_1-sq-2's last QDS).
            if len(got) < len(values) or not all(_same(k, w, g) for w, g in zip(values, got)):
                problems.append(f"APDU {i} {k}: zeek {values[:8]}{'...' if len(values) > 8 else ''} ours {got[:8]}")
    assert not problems, f"{name}:\n" + "\n".join(problems)
