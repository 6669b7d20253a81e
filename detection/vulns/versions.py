"""Conservative version ranges: CSAF `vers:` strings and the free text advisories use ("<= 11.001", "<V3.2.19").

`VersionRange.contains(version)` answers True, False or None (cannot tell: the version or a bound
does not parse). Callers report a device as vulnerable only on True.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\d+|[a-z]+", re.I)
_OPS = ("<=", ">=", "!=", "<", ">", "=")
_ALL = re.compile(r"^(\*|all|all\s+versions?\.?|vers:all/\*)$", re.I)
_ALL_PREFIX = re.compile(r"^all\s+versions?\s*", re.I)

Key = tuple[tuple[int, int | str], ...]


def version_key(text: str | None) -> Key | None:
    """Numeric components compare as numbers, letters after them; None when there is no number at all."""
    if not text:
        return None
    t = text.strip()
    t = re.sub(r"^(v|ver\.?|version|fw|firmware|rev\.?|r)\s*", "", t, flags=re.I)
    m = re.match(r"[\d][\w.\-]*", t)
    if not m or re.search(r"(^|[.\-])[xX*]($|[.\-])", m.group(0)):  # wildcards ("3.X.16") do not order
        return None
    parts = _TOKEN.findall(m.group(0))
    key: list[tuple[int, int | str]] = []
    for p in parts:
        key.append((1, int(p)) if p.isdigit() else (0, p.lower()))
    while len(key) > 1 and key[-1] == (1, 0):  # 1.0.0 == 1.0 == 1
        key.pop()
    return tuple(key) if any(k[0] == 1 for k in key) else None


def compare(a: str, b: str) -> int | None:
    ka, kb = version_key(a), version_key(b)
    if ka is None or kb is None:
        return None
    return (ka > kb) - (ka < kb)


@dataclass(frozen=True)
class Constraint:
    op: str  # one of _OPS
    version: str


@dataclass(frozen=True)
class VersionRange:
    text: str
    all_versions: bool = False
    constraints: tuple[Constraint, ...] = ()
    parsed: bool = True  # False: text we could not read as a range (never matches)

    def contains(self, version: str | None) -> bool | None:
        if self.all_versions:
            return True
        if not self.parsed or not self.constraints:
            return None
        if version_key(version) is None:
            return None
        assert version is not None
        equals = [c for c in self.constraints if c.op == "="]
        bounds = [c for c in self.constraints if c.op not in ("=", "!=")]
        for c in self.constraints:
            if c.op == "!=" and compare(version, c.version) == 0:
                return False
        for c in equals:
            r = compare(version, c.version)
            if r == 0:
                return True
        if not bounds:
            return False if equals else None
        for c in bounds:
            r = compare(version, c.version)
            if r is None:
                return None
            ok = {"<": r < 0, "<=": r <= 0, ">": r > 0, ">=": r >= 0}[c.op]
            if not ok:
                return False
        return True

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "all": self.all_versions, "constraints": [[c.op, c.version] for c in self.constraints], "parsed": self.parsed}


def parse_range(text: str) -> VersionRange:
    """`vers:<scheme>/<c>|<c>`, `vers:all/*`, `<= x`, `>=a|<=b`, `a-b`, `a | b | c`, or one exact version."""
    raw = " ".join((text or "").split())
    t = raw
    if t.lower().startswith("vers:"):
        _, _, t = t[5:].partition("/")
    t = t.strip()
    if not t or _ALL.match(t):
        return VersionRange(raw, all_versions=True)
    cons: list[Constraint] = []
    for part in (_ALL_PREFIX.sub("", p.strip()) if _ALL_PREFIX.match(p.strip()) and len(p.strip()) > 12 else p.strip() for p in t.split("|")):
        if not part:
            continue
        if _ALL.match(part):
            return VersionRange(raw, all_versions=True)
        op = next((o for o in _OPS if part.startswith(o)), None)
        if op is not None:
            v = part[len(op):].strip()
            if version_key(v) is None:
                return VersionRange(raw, parsed=False)
            cons.append(Constraint(op, v))
            continue
        m = re.match(r"^[vV]?(\d+(?:\.\d+)*)\.[xX*]$", part)
        if m:  # "2.x": every 2.* version
            nums = m.group(1).split(".")
            upper = ".".join(nums[:-1] + [str(int(nums[-1]) + 1)])
            cons += [Constraint(">=", m.group(1)), Constraint("<", upper)]
            continue
        m = re.match(r"^(\S+)\s*(?:-|to)\s*(\S+)$", part)
        if m and version_key(m.group(1)) is not None and version_key(m.group(2)) is not None and "." in part:
            cons += [Constraint(">=", m.group(1)), Constraint("<=", m.group(2))]
            continue
        m = re.match(r"^(?:prior to|before|earlier than)\s+(\S+)$", part, re.I)
        if m and version_key(m.group(1)) is not None:
            cons.append(Constraint("<", m.group(1)))
            continue
        m = re.match(r"^(\S+)\s+(?:and|or)\s+(?:prior|earlier|below|lower)$", part, re.I)
        if m and version_key(m.group(1)) is not None:
            cons.append(Constraint("<=", m.group(1)))
            continue
        if version_key(part) is not None and " " not in part:
            cons.append(Constraint("=", part))
            continue
        return VersionRange(raw, parsed=False)
    if not cons:
        return VersionRange(raw, parsed=False)
    return VersionRange(raw, constraints=tuple(cons))
