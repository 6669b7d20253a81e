"""MMS over the OSI upper layers: pure functions over bytes; never raise.

Layers, outermost first (TPKT/COTP framing is the ISO transport flow's, shared with S7comm):
- `parse_session` takes one reassembled COTP DT payload: ISO 8327 session SPDUs (CN/AC/DT/FN/DN/AB/...),
  the presentation PPDU in their user data (CP/CPA sets, fully-encoded-data PDV lists, ARU), and the
  ACSE APDU (AARQ/AARE/RLRQ/RLRE/ABRT) of the ACSE context, down to the MMS PDUs they carry. Some
  stacks (and test tools) put MMS directly into COTP with no session or presentation: a payload that
  starts with an MMS PDU tag is taken as one.
- `parse_mms` decodes one MMS PDU (BER): PDU type, invoke id, confirmed/unconfirmed service, and the
  details an analyst needs (object names, identify answers, program invocation, file names, errors).
A layer that does not fit its layout is decoded as far as it goes and flagged (`anomaly`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from .constants import (
    AARE_RESULTS,
    ACSE_APDUS,
    DATA_ACCESS_ERRORS,
    DATA_TYPES,
    ERROR_CLASSES,
    MAX_NAMES,
    OBJECT_CLASSES,
    PDU_TYPES,
    REJECT_REASONS,
    RESPONSE_SERVICES,
    SERVICES,
    SESSION_USER_DATA,
    SPDU_TYPES,
    UNCONFIRMED_SERVICES,
    AnomalyCode,
)

__all__ = ["Tlv", "tlv", "children", "parse_mms", "parse_session", "MmsPdu", "SessionUnit", "looks_like_mms", "looks_like_session"]

CONTEXT = 0x80
APPLICATION = 0x40
UNIVERSAL = 0x00


@dataclass(frozen=True, slots=True)
class Tlv:
    cls: int  # 0x00 universal, 0x40 application, 0x80 context, 0xC0 private
    constructed: bool
    tag: int
    start: int  # first value byte
    end: int  # one past the last value byte
    buf: bytes

    @property
    def value(self) -> bytes:
        return self.buf[self.start : self.end]

    def ctx(self, n: int, constructed: bool | None = None) -> bool:
        return self.cls == CONTEXT and self.tag == n and (constructed is None or self.constructed == constructed)


def tlv(buf: bytes, off: int = 0, end: int | None = None) -> Tlv | None:
    """One BER TLV at `off` (within `end`); None when it is not BER or does not fit."""
    end = len(buf) if end is None else end
    if off + 2 > end:
        return None
    b0 = buf[off]
    cls, constructed, tag = b0 & 0xC0, bool(b0 & 0x20), b0 & 0x1F
    off += 1
    if tag == 0x1F:  # high tag number form
        tag = 0
        for _ in range(4):
            if off >= end:
                return None
            b = buf[off]
            off += 1
            tag = (tag << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            return None
    if off >= end:
        return None
    ln = buf[off]
    off += 1
    if ln == 0x80:  # indefinite: runs to the end of the enclosing value (end-of-contents tolerated)
        if not constructed:
            return None
        return Tlv(cls, constructed, tag, off, end, buf)
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4 or off + n > end:
            return None
        ln = int.from_bytes(buf[off : off + n], "big")
        off += n
    if off + ln > end:
        return None
    return Tlv(cls, constructed, tag, off, off + ln, buf)


def children(t: Tlv) -> list[Tlv]:
    """The TLVs inside a constructed value, up to the first that is not BER."""
    out: list[Tlv] = []
    off = t.start
    while off < t.end:
        if t.buf[off] == 0 and off + 1 < t.end and t.buf[off + 1] == 0:
            break  # end-of-contents of an indefinite length
        c = tlv(t.buf, off, t.end)
        if c is None:
            break
        out.append(c)
        off = c.end
    return out


def _int(t: Tlv) -> int | None:
    v = t.value
    if not v or len(v) > 8:
        return None
    return int.from_bytes(v, "big", signed=True)


def _str(t: Tlv) -> str:
    return "".join(chr(x) if 0x20 <= x < 0x7F else "?" for x in t.value[:256])


def _first(t: Tlv, n: int) -> Tlv | None:
    for c in children(t):
        if c.ctx(n):
            return c
    return None


# ---------------------------------------------------------------- MMS


@dataclass(slots=True)
class MmsPdu:
    f: dict[str, Any] = field(default_factory=dict)
    anomaly: str | None = None
    anomaly_message: str | None = None

    def bad(self, msg: str) -> None:
        if self.anomaly is None:
            self.anomaly, self.anomaly_message = AnomalyCode.INVALID_PDU.value, msg


def looks_like_mms(p: bytes) -> bool:
    """An MMS PDU tag: context class, type 0..13 (conclude/cancel are primitive)."""
    return bool(p) and (0xA0 <= p[0] <= 0xAD or 0x80 <= p[0] <= 0x8D)


def parse_mms(p: bytes) -> MmsPdu:
    """One MMS PDU from the front of `p` (bytes after it are flagged, not decoded)."""
    out = MmsPdu()
    f = out.f
    t = tlv(p, 0)
    if t is None or t.cls != CONTEXT or t.tag not in PDU_TYPES:
        out.bad(f"MMS PDU of {len(p)} byte(s) is not BER with a PDU type tag 0..13 (first byte 0x{p[0]:02x})" if p else "empty MMS PDU")
        return out
    n = t.tag
    f["pdu_type_code"], f["pdu_type"] = n, PDU_TYPES[n]
    if t.end < len(p):
        out.bad(f"{len(p) - t.end} byte(s) after the MMS PDU")
    _pdu(n, t, out)  # walks a fixed depth per service: no recursion on attacker-chosen nesting
    return out


def _pdu(n: int, t: Tlv, out: MmsPdu) -> None:
    f = out.f
    if n in (5, 6):  # cancel request/response: the invoke id itself
        if not t.constructed:
            f["invoke_id"] = _int(t)
        return
    if n in (11, 12):
        return
    if not t.constructed:
        out.bad(f"{PDU_TYPES[n]} is primitive")
        return
    kids = children(t)
    if n in (0, 1):
        svc = None
        for c in kids:
            if c.cls == UNIVERSAL and c.tag == 2 and "invoke_id" not in f:
                f["invoke_id"] = _int(c)
            elif c.cls == UNIVERSAL and c.tag == 16:
                f["modifiers"] = len(children(c))
            elif c.cls == CONTEXT and svc is None:
                svc = c
        if "invoke_id" not in f:
            out.bad(f"{PDU_TYPES[n]} without invoke id")
        if svc is None:
            out.bad(f"{PDU_TYPES[n]} without a service")
            return
        f["service_code"], f["service"] = svc.tag, (SERVICES if n == 0 else RESPONSE_SERVICES).get(svc.tag, f"unknown_{svc.tag}")
        (_request if n == 0 else _response)(svc.tag, svc, f)
    elif n == 2:  # confirmed error
        for c in kids:
            if c.ctx(0):
                f["invoke_id"] = _int(c)
            elif c.ctx(2):
                _service_error(c, f)
    elif n == 3:
        svc = next((c for c in kids if c.cls == CONTEXT), None)
        if svc is None:
            out.bad("unconfirmed-PDU without a service")
            return
        f["service_code"], f["service"] = svc.tag, UNCONFIRMED_SERVICES.get(svc.tag, f"unknown_{svc.tag}")
        if svc.tag == 0:
            _access(svc, f, results_tag=0)
    elif n == 4:
        for c in kids:
            if c.ctx(0):
                f["invoke_id"] = _int(c)
            elif c.cls == CONTEXT and c.tag in REJECT_REASONS:
                f["reject_pdu"] = REJECT_REASONS[c.tag]
                f["reject_code"] = _int(c)
    elif n == 7:
        for c in kids:
            if c.ctx(0):
                f["invoke_id"] = _int(c)
            elif c.ctx(1):
                _service_error(c, f)
    elif n in (8, 9):
        for c in kids:
            if c.ctx(0):
                f["local_detail"] = _int(c)
            elif c.ctx(1):
                f["max_serv_outstanding_calling"] = _int(c)
            elif c.ctx(2):
                f["max_serv_outstanding_called"] = _int(c)
            elif c.ctx(3):
                f["data_structure_nesting_level"] = _int(c)
            elif c.ctx(4, True):
                for d in children(c):
                    if d.ctx(0):
                        f["version"] = _int(d)
                    elif d.ctx(1):
                        f["parameter_cbb"] = d.value.hex()
                    elif d.ctx(2):
                        f["services_supported"] = d.value.hex()
    elif n in (10, 13):
        _service_error(t, f)


def _service_error(t: Tlv, f: dict[str, Any]) -> None:
    for c in children(t):
        if c.ctx(0, True):
            for e in children(c):
                if e.cls == CONTEXT:
                    f["error_class"] = ERROR_CLASSES.get(e.tag, f"unknown_{e.tag}")
                    f["error_code"] = _int(e)
                    break
        elif c.ctx(1):
            f["additional_code"] = _int(c)


def _object_name(t: Tlv) -> str | None:
    """ObjectName CHOICE: vmd-specific [0] / domain-specific [1] {domainId, itemId} / aa-specific [2]."""
    if t.cls != CONTEXT:
        return None
    if t.tag in (0, 2) and not t.constructed:
        return _str(t)
    if t.tag == 1 and t.constructed:
        ids = [c for c in children(t) if c.cls == UNIVERSAL and not c.constructed]
        if len(ids) >= 2:
            return f"{_str(ids[0])}/{_str(ids[1])}"
    return None


def _add_name(f: dict[str, Any], name: str | None) -> None:
    if name is None:
        return
    names = f.setdefault("object_names", [])
    if len(names) < MAX_NAMES:
        names.append(name)
    f["object_count"] = f.get("object_count", 0) + 1
    if "/" in name and "domain_id" not in f:
        f["domain_id"], f["item_id"] = name.split("/", 1)
    elif "/" not in name and "item_id" not in f:
        f["item_id"] = name


def _var_spec(t: Tlv, f: dict[str, Any]) -> None:
    """VariableAccessSpecification: listOfVariable [0] or variableListName [1]."""
    if t.ctx(0, True):
        for entry in children(t):
            for vs in children(entry)[:1]:
                if vs.ctx(0, True):  # name [0] ObjectName
                    for on in children(vs)[:1]:
                        _add_name(f, _object_name(on))
                elif vs.ctx(1):
                    f["addressed"] = True
    elif t.ctx(1, True):
        for on in children(t)[:1]:
            name = _object_name(on)
            if name is not None:
                f["variable_list_name"] = name
                _add_name(f, name)


def _access(t: Tlv, f: dict[str, Any], results_tag: int) -> None:
    """informationReport / read response: a spec, then listOfAccessResult ([0] failure or Data)."""
    kids = children(t)
    rest = kids
    if kids and t.tag == 0 and f.get("service") == "informationReport":
        _var_spec(kids[0], f)
        rest = kids[1:]
    for c in rest:
        if c.ctx(results_tag, True):
            _results(c, f)


def _results(t: Tlv, f: dict[str, Any]) -> None:
    ok = bad = 0
    data = []
    for r in children(t):
        if r.ctx(0, False):
            bad += 1
            code = _int(r)
            err = DATA_ACCESS_ERRORS.get(code, f"unknown_{code}") if code is not None else None
            if err is not None and "data_access_error" not in f:
                f["data_access_error"] = err
            d: dict[str, Any] = {"type": "failure"}
            if err is not None:
                d["error"] = err
            data.append(d)
        else:
            ok += 1
            data.append(_data(r))
    f["success_count"], f["failure_count"] = ok, bad
    if data:
        f["data"] = data[:MAX_NAMES]


def _data(t: Tlv) -> dict[str, Any]:
    """One Data value: its type and, for the simple types, the value (a process value for the detectors)."""
    name = DATA_TYPES.get(t.tag, f"unknown_{t.tag}") if t.cls == CONTEXT else f"unknown_{t.cls:02x}_{t.tag}"
    d: dict[str, Any] = {"type": name}
    if t.constructed or t.cls != CONTEXT:
        return d
    v = t.value
    if t.tag == 3 and len(v) == 1:  # boolean
        d["value"] = 1 if v[0] else 0
    elif t.tag == 4 and 1 <= len(v) <= 9 and v[0] < 8:  # bit-string: unused-bits octet, then the bits
        n = (len(v) - 1) * 8 - v[0]
        if n >= 0:
            d["bits"] = n
            d["value"] = int.from_bytes(v[1:], "big") >> v[0] if n else 0
    elif t.tag in (5, 6) and 1 <= len(v) <= 8:  # integer / unsigned
        d["value"] = int.from_bytes(v, "big", signed=t.tag == 5)
    elif t.tag == 7 and len(v) in (5, 9):  # floating-point: exponent width octet, then IEEE 754 single / double
        (x,) = struct.unpack(">f" if len(v) == 5 else ">d", v[1:])
        if math.isfinite(x):
            d["value"] = float(f"{x:.7g}") if len(v) == 5 else x
    return d


def _strings(t: Tlv) -> list[str]:
    return [_str(c) for c in children(t) if not c.constructed][:MAX_NAMES]


def _request(s: int, t: Tlv, f: dict[str, Any]) -> None:
    kids = children(t) if t.constructed else []
    if s == 1:  # getNameList
        for c in kids:
            if c.ctx(0, True):
                for oc in children(c)[:1]:
                    if oc.ctx(0):
                        code = _int(oc)
                        f["object_class"] = OBJECT_CLASSES.get(code, f"unknown_{code}") if code is not None else None
            elif c.ctx(1, True):
                for sc in children(c)[:1]:
                    f["object_scope"] = {0: "vmd", 1: "domain", 2: "aa"}.get(sc.tag, f"unknown_{sc.tag}")
                    if sc.tag == 1:
                        f["domain_id"] = _str(sc)
            elif c.ctx(2):
                f["continue_after"] = _str(c)
    elif s == 4:  # read
        for c in kids:
            if c.ctx(1, True):
                for vs in children(c)[:1]:
                    _var_spec(vs, f)
    elif s == 5:  # write: spec (untagged CHOICE) then listOfData [0]
        if kids:
            _var_spec(kids[0], f)
            for c in kids[1:]:
                if c.ctx(0, True):
                    items = children(c)
                    f["data_count"] = len(items)
                    if items:
                        f["data"] = [_data(d) for d in items[:MAX_NAMES]]
    elif s == 6:  # getVariableAccessAttributes: name [0] ObjectName | address [1]
        for c in kids[:1]:
            if c.ctx(0, True):
                for on in children(c)[:1]:
                    _add_name(f, _object_name(on))
    elif s in (7, 11, 12, 14, 15, 21, 22):  # define named variable / list, attributes, named type, semaphores: ObjectName first
        for on in kids[:1]:
            name = _object_name(on)
            if s in (11, 12):
                f["variable_list_name"] = name
            _add_name(f, name)
        if s == 11:
            for c in kids[1:]:
                if c.ctx(0, True):
                    inner: dict[str, Any] = {}
                    _var_spec(Tlv(CONTEXT, True, 0, c.start, c.end, c.buf), inner)
                    for nm in inner.get("object_names", []):
                        _add_name(f, nm)
    elif s in (13, 16, 10):  # delete named variable list / named type / variable access
        for c in kids:
            if c.ctx(1, True):
                for on in children(c):
                    _add_name(f, _object_name(on))
            elif c.ctx(2) and not c.constructed:
                f["domain_id"] = _str(c)
    elif s in (27, 29, 36, 37, 39, 45):  # Identifier-valued: domain or program invocation name
        if not t.constructed:
            key = "program_invocation" if s in (39, 45) else "domain_id"
            f[key] = _str(t)
    elif s in (26, 28, 32, 33, 34, 35):  # domain name [0], file name [4]/[1]
        for c in kids:
            if c.ctx(0, False):
                f["domain_id"] = _str(c)
            elif (c.ctx(4, True) and s in (32, 34)) or (c.ctx(1, True) and s in (33, 35)):
                f["file_name"] = "/".join(_strings(c))
    elif s in (30, 31, 73, 74):  # upload segment/terminate: ULSM id; file read/close: FRSM id
        if not t.constructed:
            f["state_machine_id"] = _int(t)
    elif 38 <= s <= 44 and s != 39:  # create / start / stop / resume / reset / kill: [0] programInvocationName
        for c in kids:
            if c.ctx(0, False):
                f["program_invocation"] = _str(c)
            elif c.ctx(1, True) and s == 38:
                for d in children(c):
                    if not d.constructed:
                        _add_name(f, _str(d))
    elif s == 72:  # fileOpen: [0] fileName
        for c in kids:
            if c.ctx(0, True):
                f["file_name"] = "/".join(_strings(c))
    elif s == 76:  # fileDelete: FileName
        f["file_name"] = "/".join(_strings(t))
    elif s == 75:  # fileRename: [0] current, [1] new
        for c in kids:
            if c.ctx(0, True):
                f["file_name"] = "/".join(_strings(c))
            elif c.ctx(1, True):
                f["new_file_name"] = "/".join(_strings(c))
    elif s == 77:  # fileDirectory: [0] fileSpecification
        for c in kids:
            if c.ctx(0, True):
                f["file_name"] = "/".join(_strings(c))
    elif s == 46:  # obtainFile: [1] sourceFile, [2] destinationFile
        for c in kids:
            if c.ctx(1, True):
                f["file_name"] = "/".join(_strings(c))
            elif c.ctx(2, True):
                f["new_file_name"] = "/".join(_strings(c))
    elif s == 3:  # rename: [0] objectClass, [1] currentName, [2] newIdentifier
        for c in kids:
            if c.ctx(1, True):
                for on in children(c)[:1]:
                    _add_name(f, _object_name(on))
            elif c.ctx(2, False):
                f["new_name"] = _str(c)


def _response(s: int, t: Tlv, f: dict[str, Any]) -> None:
    kids = children(t) if t.constructed else []
    if s == 2:  # identify
        for c in kids:
            if c.ctx(0):
                f["vendor_name"] = _str(c)
            elif c.ctx(1):
                f["model_name"] = _str(c)
            elif c.ctx(2):
                f["revision"] = _str(c)
    elif s == 1:  # getNameList: [0] listOfIdentifier, [1] moreFollows
        for c in kids:
            if c.ctx(0, True):
                ids = [d for d in children(c) if not d.constructed]
                f["identifiers"] = [_str(d) for d in ids[:MAX_NAMES]]
                f["object_count"] = len(ids)
            elif c.ctx(1):
                f["more_follows"] = bool(c.value and c.value[0])
    elif s == 4:  # read: [0] spec (optional), [1] listOfAccessResult
        for c in kids:
            if c.ctx(0, True):
                for vs in children(c)[:1]:
                    _var_spec(vs, f)
            elif c.ctx(1, True):
                _results(c, f)
    elif s == 5:  # write: per item failure [0] / success [1]
        ok = sum(1 for c in kids if c.ctx(1))
        bad = [c for c in kids if c.ctx(0)]
        f["success_count"], f["failure_count"] = ok, len(bad)
        if bad:
            code = _int(bad[0])
            if code is not None:
                f["data_access_error"] = DATA_ACCESS_ERRORS.get(code, f"unknown_{code}")
    elif s == 12:  # getNamedVariableListAttributes: [0] mmsDeletable, [1] listOfVariable
        for c in kids:
            if c.ctx(1, True):
                _var_spec(Tlv(CONTEXT, True, 0, c.start, c.end, c.buf), f)
    elif s == 29:  # initiateUploadSequence: [0] ulsmID
        for c in kids:
            if c.ctx(0):
                f["state_machine_id"] = _int(c)
    elif s == 72:  # fileOpen: [0] frsmID
        for c in kids:
            if c.ctx(0):
                f["state_machine_id"] = _int(c)
    elif s == 38:
        pass


# ---------------------------------------------------------------- session / presentation / ACSE


@dataclass(slots=True)
class SessionUnit:
    """What one COTP DT payload carries: the session SPDU, the ACSE APDU, the MMS PDUs."""

    spdu: str | None = None  # CN, AC, DT, FN, DN, AB, ... (None: MMS straight on COTP)
    acse: str | None = None  # aarq, aare, rlrq, rlre, abrt
    acse_result: str | None = None  # AARE result
    acse_fields: dict[str, Any] = field(default_factory=dict)  # AP titles, AE qualifiers, authentication
    mms: list[bytes] = field(default_factory=list)
    anomaly: str | None = None
    anomaly_message: str | None = None

    def bad(self, code: AnomalyCode, msg: str) -> None:
        if self.anomaly is None:
            self.anomaly, self.anomaly_message = code.value, msg


def looks_like_session(p: bytes) -> bool:
    return len(p) >= 2 and p[0] in SPDU_TYPES


def _spdu_header(p: bytes, off: int) -> tuple[int, int, int] | None:
    """(SI, parameters start, parameters end) of the SPDU at `off`."""
    if off + 2 > len(p):
        return None
    si, li = p[off], p[off + 1]
    start = off + 2
    if li == 0xFF:
        if off + 4 > len(p):
            return None
        li = int.from_bytes(p[off + 2 : off + 4], "big")
        start = off + 4
    if start + li > len(p):
        return None
    return si, start, start + li


def _session_user_data(p: bytes, start: int, end: int) -> bytes | None:
    """PI/PGI units of an SPDU's parameter field: the value of user data (193) / extended user data (194)."""
    off = start
    while off + 2 <= end:
        code, ln = p[off], p[off + 1]
        off += 2
        if ln == 0xFF:
            if off + 2 > end:
                return None
            ln = int.from_bytes(p[off : off + 2], "big")
            off += 2
        if code in SESSION_USER_DATA:
            return p[off : min(off + ln, end)]
        off += ln
    return None


def parse_session(p: bytes) -> SessionUnit:
    """One COTP DT payload: session SPDU(s) -> presentation -> ACSE / MMS."""
    u = SessionUnit()
    if looks_like_mms(p) and not looks_like_session(p):
        u.mms.append(p)
        return u
    h = _spdu_header(p, 0)
    if h is None:
        u.bad(AnomalyCode.INVALID_SPDU, f"session SPDU of {len(p)} byte(s) shorter than its length indicator")
        if len(p) < 2 or p[0] not in SPDU_TYPES:
            return u
        # Known SPDU, length indicator past the data: say what it is and decode what is there.
        start = 4 if p[1] == 0xFF else 2
        h = (p[0], min(start, len(p)), len(p))
    si, start, end = h
    if si in (0x01, 0x02) and end < len(p):
        # Category 0 (GIVE TOKENS / PLEASE TOKENS) concatenated with a category 2 SPDU (DATA TRANSFER)
        h2 = _spdu_header(p, end)
        if h2 is None:
            u.bad(AnomalyCode.INVALID_SPDU, "DATA TRANSFER SPDU cut short")
            return u
        si, start, end = h2
        u.spdu = SPDU_TYPES.get(si, f"unknown_0x{si:02x}")
        user = p[end:]
    else:
        u.spdu = SPDU_TYPES.get(si, f"unknown_0x{si:02x}")
        if si == 0x01:
            user = p[end:]
        else:
            user = _session_user_data(p, start, end) or b""
            if not user and end < len(p) and si in (0x09, 0x0A, 0x19):
                user = p[end:]
    if si not in SPDU_TYPES:
        u.bad(AnomalyCode.INVALID_SPDU, f"unknown session SPDU identifier 0x{si:02x}")
        return u
    if user:
        _presentation(user, u)
    return u


def _presentation(p: bytes, u: SessionUnit) -> None:
    t = tlv(p, 0)
    if t is None:
        u.bad(AnomalyCode.INVALID_PPDU, f"presentation PPDU of {len(p)} byte(s) is not BER")
        return
    fed = _find_user_data(t, 0)
    if fed is None:
        if not (t.cls == UNIVERSAL and t.tag == 17 or t.ctx(0, True) or t.cls == UNIVERSAL and t.tag == 16):
            u.bad(AnomalyCode.INVALID_PPDU, f"presentation PPDU with tag 0x{p[0]:02x}: no user data found")
        return
    for pdv in children(fed):
        if not (pdv.cls == UNIVERSAL and pdv.tag == 16):
            continue
        for c in children(pdv):
            if c.ctx(0, True):  # single-ASN1-type
                _apdu(c.buf[c.start : c.end], u)
            elif c.ctx(1, False):  # octet-aligned
                _apdu(c.value, u)


def _find_user_data(t: Tlv, depth: int) -> Tlv | None:
    """The fully-encoded-data ([APPLICATION 1]) of a PPDU: itself (DT), or in CP/CPA/ARU normal-mode parameters."""
    if t.cls == APPLICATION and t.tag == 1 and t.constructed:
        return t
    if depth > 3 or not t.constructed:
        return None
    for c in children(t):
        if c.cls == APPLICATION and c.tag == 1 and c.constructed:
            return c
        if c.constructed and (c.ctx(2) or c.ctx(0)) and depth < 3:
            r = _find_user_data(c, depth + 1)
            if r is not None:
                return r
    return None


# AARQ / AARE fields ([n] explicit around an OID or INTEGER) -> Mms field
_ACSE_NAMES: dict[int, dict[int, str]] = {
    0: {1: "application_context", 2: "called_ap_title", 3: "called_ae_qualifier", 6: "calling_ap_title", 7: "calling_ae_qualifier"},
    1: {1: "application_context", 4: "responding_ap_title", 5: "responding_ae_qualifier"},
}


def _oid(v: bytes) -> str | None:
    """BER OBJECT IDENTIFIER contents -> dotted string."""
    if not v or len(v) > 64:
        return None
    arcs: list[int] = []
    n = 0
    for b in v:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    if not arcs:
        return None
    first = min(arcs[0] // 40, 2)
    return ".".join(str(x) for x in [first, arcs[0] - 40 * first, *arcs[1:]])


def _apdu(p: bytes, u: SessionUnit) -> None:
    t = tlv(p, 0)
    if t is None:
        u.bad(AnomalyCode.INVALID_PPDU, "presentation data value is not BER")
        return
    if t.cls == APPLICATION and t.tag in ACSE_APDUS:
        u.acse = ACSE_APDUS[t.tag]
        if t.tag == 0:  # AARQ: an association request carries a calling-authentication-value or none
            u.acse_fields["authenticated"] = False
        for c in children(t) if t.constructed else []:
            if t.tag in (0, 1) and c.cls == CONTEXT and c.tag in _ACSE_NAMES.get(t.tag, {}) and c.constructed:
                key = _ACSE_NAMES[t.tag][c.tag]
                for v in children(c)[:1]:
                    u.acse_fields[key] = _oid(v.value) if v.cls == UNIVERSAL and v.tag == 6 else (_int(v) if v.cls == UNIVERSAL and v.tag == 2 else None)
            elif t.tag == 0 and c.ctx(11, False):
                u.acse_fields["authentication_mechanism"] = _oid(c.value)
            elif t.tag == 0 and c.ctx(12):
                u.acse_fields["authenticated"] = True  # calling-authentication-value: never stored
            if t.tag == 1 and c.ctx(2, True):
                for r in children(c)[:1]:
                    code = _int(r)
                    u.acse_result = AARE_RESULTS.get(code, f"unknown_{code}") if code is not None else None
            elif c.ctx(30, True):  # user-information: EXTERNAL -> single-ASN1-type [0]
                for ext in children(c):
                    for e in children(ext) if ext.constructed else []:
                        if e.ctx(0, True):
                            u.mms.append(e.buf[e.start : e.end])
                        elif e.ctx(1, False):
                            u.mms.append(e.value)
        return
    if t.cls == CONTEXT:
        u.mms.append(p)
        return
    u.bad(AnomalyCode.INVALID_PPDU, f"presentation data value with tag 0x{p[0]:02x} is neither ACSE nor MMS")


