"""Our MMS decoding vs the peers: the ICSNPP MMS parser's expected XML for 756 raw BER PDUs, and tshark 4.0
on every IEC 61850 MMS capture of the corpus.

- ICSNPP (`icsnpp-mms/traces/pdus.der` + `baseline/tests.parser/pdus.xml`): each PDU of the DER file is
  fed to `parse_mms`; it agrees when the PDU type, the confirmed/unconfirmed service, the invoke id, and
  the identify answer (vendor, model, revision) are the ones the XML shows.
- tshark (told that presentation context 3 is MMS, see PRES_CONTEXT): per frame, the MMS PDU types (from tshark's Info column) and the service codes
  (`mms.confirmedServiceRequest/Response`, `mms.unconfirmedService`), invoke ids, domain-specific
  object names (`mms.domainId`/`mms.itemId`, as "domain/item") and identify answers (vendor, model, revision).

Accepted differences are listed, with their reason, in expected_differences.yml; the test fails on any
other difference and on any listed one that no longer occurs. An agreement table is printed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.schema import Event
from sensors.decoders.mms import parse_mms
from sensors.decoders.mms.constants import PDU_TYPES
from sensors.decoders.mms.parser import tlv

from .conftest import MMS_TRACES

EXPECTED = Path(__file__).parent / "expected_differences.yml"
_PDU_RE = re.compile("|".join(sorted((re.escape(n) for n in PDU_TYPES.values()), key=len, reverse=True)))


def _accepted() -> dict[str, Any]:
    return yaml.safe_load(EXPECTED.read_text(encoding="utf-8")) or {}


# ---------------------------------------------------------------- ICSNPP parser baseline


def icsnpp_view(xml: str) -> list[dict[str, Any]]:
    out = []
    for typ, body in re.findall(r"<MMSpdu>\s*<([\w-]+)>(.*?)</MMSpdu>", xml, re.S):
        d: dict[str, Any] = {"pdu_type": typ}
        m = re.search(r"<(?:confirmedServiceRequest|confirmedServiceResponse|unconfirmedService)>\s*<([\w-]+)", body)
        if m:
            d["service"] = m.group(1)
        m = re.match(r"\s*<invokeID>(\d+)</invokeID>", body) or re.match(r"\s*(\d+)\s*</", body)
        if m and typ not in ("cancel-ErrorPDU", "rejectPDU"):
            d["invoke_id"] = int(m.group(1))
        for k, tag in (("vendor_name", "vendorName"), ("model_name", "modelName"), ("revision", "revision")):
            m = re.search(rf"<{tag}>([^<]*)</{tag}>", body)
            if m and d.get("service") == "identify" and typ == "confirmed-ResponsePDU":
                d[k] = m.group(1)
        out.append(d)
    return out


def our_pdu_view(der: bytes) -> list[dict[str, Any]]:
    out, off = [], 0
    while off < len(der):
        t = tlv(der, off)
        assert t is not None, f"pdus.der: no BER TLV at offset {off}"
        f = parse_mms(der[off : t.end]).f
        d: dict[str, Any] = {"pdu_type": f.get("pdu_type")}
        if f.get("pdu_type_code") in (0, 1, 3) and f.get("service"):
            d["service"] = f["service"]
        if f.get("invoke_id") is not None and f.get("pdu_type_code") not in (4, 7):
            d["invoke_id"] = f["invoke_id"]
        for k in ("vendor_name", "model_name", "revision"):
            if f.get(k) is not None:
                d[k] = f[k]
        out.append(d)
        off = t.end
    return out


def test_pdus_der_agree_with_icsnpp_parser(corpus: Path) -> None:
    der = corpus / "icsnpp-mms" / "traces" / "pdus.der"
    xml = corpus / "icsnpp-mms" / "baseline" / "tests.parser" / "pdus.xml"
    theirs = icsnpp_view(xml.read_text(encoding="utf-8"))
    ours = our_pdu_view(der.read_bytes())
    assert len(ours) == len(theirs) == 756
    accepted = {int(k): v for k, v in (_accepted().get("icsnpp_pdus") or {}).items()}
    problems: list[str] = []
    same = listed = 0
    for i, (a, b) in enumerate(zip(theirs, ours)):
        if a == b:
            same += 1
            if i in accepted:
                problems.append(f"PDU {i}: listed in icsnpp_pdus but agrees now: remove it")
        elif i in accepted:
            listed += 1
        else:
            problems.append(f"PDU {i}: ICSNPP {a} ours {b}")
    by_type: dict[str, list[int]] = {}
    for a, b in zip(theirs, ours):
        r = by_type.setdefault(a["pdu_type"], [0, 0])
        r[0] += 1
        r[1] += a == b
    print("\n| PDU type | PDUs | agree |\n|---|---|---|\n" + "\n".join(f"| {k} | {n} | {ok} |" for k, (n, ok) in sorted(by_type.items())))
    print(f"| total | {len(theirs)} | {same} (+{listed} accepted) |\nICSNPP PDU agreement {100.0 * same / len(theirs):.2f}%")
    assert not problems, "\n".join(problems[:40])
    assert same / len(theirs) >= 0.99


# ---------------------------------------------------------------- tshark on captures

Unit = tuple[Any, ...]
# Presentation context 3 carries the MMS abstract syntax (1.0.9506.2.1) in every connection here. tshark
# learns that from the connect (CP/CPA); for connections captured mid-stream, or whose accept is
# malformed, it would leave the data undecoded, so it is told what the connect would have said.
PRES_CONTEXT = 'uat:pres_context_list:"3","1.0.9506.2.1"'


def tshark_view(tshark: str, path: Path) -> tuple[dict[int, list[str]], dict[int, dict[str, tuple[Any, ...]]]]:
    fields = ("_ws.col.Info", "mms.confirmedServiceRequest", "mms.confirmedServiceResponse", "mms.unconfirmedService", "mms.invokeID", "mms.domainId", "mms.itemId", "mms.vendorName", "mms.modelName", "mms.revision")
    out = subprocess.run(
        [tshark, "-n", "-o", PRES_CONTEXT, "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f", "-e", "frame.number", *[a for f in fields for a in ("-e", f)], "-Y", "mms"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    pdus: dict[int, list[str]] = {}
    detail: dict[int, dict[str, tuple[int, ...]]] = {}
    for line in out.splitlines():
        cols = (line.split("\t") + [""] * 11)[:11]
        frame = int(cols[0])
        nums = [tuple(sorted(int(x) for x in c.split("\x1f") if x)) for c in cols[2:6]]
        domains, items = [x for x in cols[6].split("\x1f") if x], [x for x in cols[7].split("\x1f") if x]
        types = _PDU_RE.findall(cols[1])
        services = len(nums[0]) + len(nums[1]) + len(nums[2])
        if len(set(types)) == 1 and len(types) < services:  # Info names a PDU type once per frame
            types = types * services
        pdus[frame] = types
        detail[frame] = {"service": tuple(sorted(nums[0] + nums[1] + nums[2])), "invoke_id": nums[3], "names": tuple(sorted(f"{d}/{i}" for d, i in zip(domains, items))),
                         "identity": tuple(x for x in cols[8:11] if x)}
    return pdus, detail


def our_view(events: list[Event]) -> tuple[dict[int, list[str]], dict[int, dict[str, tuple[Any, ...]]]]:
    """Per frame: PDU types; service codes, invoke ids and domain-specific names (an answer's names
    may be its request's, carried over: `answer_names` keeps them apart)."""
    pdus: dict[int, list[str]] = {}
    acc: dict[int, dict[str, list[Any]]] = {}
    for e in events:
        m = e.mms
        if e.event.dataset != "mms" or m is None or e.anomaly is not None or m.pdu_type is None or e.evidence is None or e.evidence.frame is None:
            continue
        fr = e.evidence.frame
        pdus.setdefault(fr, []).append(m.pdu_type)
        d = acc.setdefault(fr, {"service": [], "invoke_id": [], "names": [], "answer_names": [], "identity": []})
        d["identity"].extend(x for x in (m.vendor_name, m.model_name, m.revision) if x)
        (d["answer_names"] if m.request_frame is not None else d["names"]).extend(n for n in (m.object_names or []) if "/" in n)
        if m.pdu_type_code in (0, 1, 3) and m.service_code is not None:
            d["service"].append(m.service_code)
        if m.invoke_id is not None and m.pdu_type_code in (0, 1, 2):
            d["invoke_id"].append(m.invoke_id)
    return pdus, {f: {k: tuple(v) if k == "identity" else tuple(sorted(v)) for k, v in d.items()} for f, d in acc.items()}


@pytest.mark.tshark
def test_agreement_with_tshark(decoded: Callable[[str], list[Event]], corpus: Path, tshark: str) -> None:
    accepted = _accepted().get("tshark") or {}
    problems: list[str] = []
    rows: list[str] = []
    t_total = t_same = t_det = t_det_ok = t_listed = 0
    for rel in MMS_TRACES:
        if not (corpus / rel).is_file():
            continue
        tp, td = tshark_view(tshark, corpus / rel)
        op, od = our_view(decoded(rel))
        listed = {int(k): v for k, v in (accepted.get(rel) or {}).items()}
        total = same = det = det_ok = n_listed = 0
        for f in sorted(set(tp) | set(op)):
            a, b = sorted(tp.get(f, [])), sorted(op.get(f, []))
            n = max(len(a), len(b))
            total += n
            ok = a == b
            if ok and f in td and f in od:
                det += 1
                mine = dict(od[f])
                answer_names = mine.pop("answer_names")
                if td[f]["names"] and not mine["names"]:  # names an answer carries itself
                    mine["names"] = answer_names
                if td[f] == mine:
                    det_ok += 1
                else:
                    ok = False
            if ok:
                same += n
                if f in listed:
                    problems.append(f"{rel} frame {f}: listed but agrees now: remove it")
            elif f in listed:
                n_listed += n
            else:
                problems.append(f"{rel} frame {f}: tshark {a} {td.get(f)} ours {b} {od.get(f)}")
        rows.append(f"| {rel} | {total} | {same} | {n_listed} | {det_ok}/{det} |")
        t_total, t_same, t_det, t_det_ok, t_listed = t_total + total, t_same + same, t_det + det, t_det_ok + det_ok, t_listed + n_listed
    print("\n| trace | MMS PDUs | agree | accepted difference | service/invoke id/names/identity agree |\n|---|---|---|---|---|\n" + "\n".join(rows))
    print(f"| total | {t_total} | {t_same} | {t_listed} | {t_det_ok}/{t_det} |")
    print(f"MMS PDU agreement with tshark {100.0 * t_same / max(t_total, 1):.2f}% raw, {100.0 * (t_same + t_listed) / max(t_total, 1):.2f}% counting the listed differences (tshark's, each with its reason)")
    assert not problems, "\n".join(problems[:40])
    assert t_total and (t_same + t_listed) / t_total >= 0.99 and t_det_ok / max(t_det, 1) >= 0.99


@pytest.mark.tshark
def test_session_spdus_agree_with_tshark(decoded: Callable[[str], list[Event]], corpus: Path, tshark: str) -> None:
    """The ISO 8327 session SPDU that carried each message (CN, AC, DT, FN, DN, AB, ...), per frame:
    the set of SPDU types tshark's `ses.type` shows vs the `mms.session_spdu` of our events there
    (GIVE TOKENS, which shares code 1 with DATA TRANSFER, folds into DT)."""
    from sensors.decoders.mms.constants import SPDU_TYPES

    codes = {v: k for k, v in SPDU_TYPES.items()}
    total = same = 0
    problems: list[str] = []
    for rel in MMS_TRACES:
        if not (corpus / rel).is_file():
            continue
        out = subprocess.run(
            [tshark, "-n", "-o", PRES_CONTEXT, "-r", str(corpus / rel), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", "-e", "ses.type", "-Y", "ses"],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
        theirs = {int(f): {int(x) for x in t.split(",") if x} for f, t in (line.split("\t") for line in out.splitlines()) if t}
        ours: dict[int, set[int]] = {}
        for e in decoded(rel):
            m = e.mms
            if e.event.dataset == "mms" and m is not None and m.session_spdu and e.evidence is not None and e.evidence.frame is not None:
                ours.setdefault(e.evidence.frame, set()).add(codes[m.session_spdu])
        for f in sorted(set(theirs) | set(ours)):
            total += 1
            if theirs.get(f) == ours.get(f):
                same += 1
            else:
                problems.append(f"{rel} frame {f}: tshark ses.type {sorted(theirs.get(f, ()))}, ours {sorted(ours.get(f, ()))}")
    print(f"\nsession SPDUs: {same}/{total} frames agree with tshark")
    assert not problems, "\n".join(problems[:40])
    assert total
