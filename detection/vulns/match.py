"""Inventory × advisories: "vulnerable device seen" findings, matched conservatively.

An asset matches an advisory product when the canonical vendors agree and
  - exact: the advisory's product names the asset's order number, model or product (whole words), or
  - family: both belong to one product family (S7-300, ControlLogix, Modicon M580, ...) and the
    advisory entry is a family-wide one (it names no specific CPU or order number);
and the asset's firmware lies in the advisory's version range (`VersionRange.contains` is True).
Unknown firmware or an unreadable range gives a "possible" finding, reported only on request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.schema import Asset

from ..inventory.vendors import normalize_vendor, vendor_from_model
from .csaf import Advisory, Index, Product

# Product families: (family, regex over upper-cased product text).
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((f, re.compile(rx)) for f, rx in (
    ("S7-300", r"S7-?300|\bCPU\s*31[2-9]|6ES7\s*3[1-9]"),
    ("S7-400", r"S7-?400|\bCPU\s*41[0-7]|6ES7\s*4[1-9]"),
    ("S7-1200", r"S7-?1200|\bCPU\s*12[1-2]\d|6ES7\s*21"),
    ("S7-1500", r"S7-?1500|\bCPU\s*15[01]\d|6ES7\s*51"),
    ("ET 200", r"\bET\s?200"),
    ("ControlLogix", r"CONTROLLOGIX|\b1756-L"),
    ("CompactLogix", r"COMPACTLOGIX|\b1769-L|\b5069-L"),
    ("GuardLogix", r"GUARDLOGIX"),
    ("MicroLogix", r"MICROLOGIX|\b176[1-6]-L"),
    ("Modicon M340", r"M340|\bBMX\s?P34"),
    ("Modicon M580", r"M580|\bBME\s?[PH]58"),
    ("Modicon Quantum", r"\bQUANTUM\b|140\s?CPU"),
    ("Modicon Premium", r"\bPREMIUM\b|\bTSX\s?P57"),
    ("MELSEC iQ-R", r"MELSEC\s*IQ-R|\bIQ-R\b"),
    ("MELSEC iQ-F", r"MELSEC\s*IQ-F|\bIQ-F\b|\bFX5"),
    ("1756-EN", r"\b1756-EN"),
))
_SPECIFIC = re.compile(r"\b6[A-Z]{2}\d|\bCPU\s*\d|\b\d{4}-[A-Z]{1,4}\d", re.I)


def families(texts: Iterable[str | None]) -> set[str]:
    out = set()
    for t in texts:
        if t:
            u = t.upper()
            out.update(f for f, rx in _FAMILIES if rx.search(u))
    return out


def _norm(text: str) -> str:
    return " ".join(text.upper().replace("_", " ").split())


def _compact(text: str) -> str:
    return re.sub(r"[\s]", "", text.upper())


def asset_products(a: Asset) -> list[str]:
    """Every product/model string the asset announced (chosen values and alternatives)."""
    vals = [a.model, a.product]
    vals += [ev.value for ev in a.evidence if ev.field in ("model", "product")]
    return [v for v in dict.fromkeys(vals) if v and len(v) >= 3]


def _exact(names: Sequence[str], product: Product) -> str | None:
    hay = _norm(f"{product.product} {product.full_name}")
    hay_c = _compact(hay)
    for n in names:
        nn = _norm(n)
        if nn == _norm(product.product):
            return n
        if re.search(rf"(?<![\w-]){re.escape(nn)}(?![\w-])", hay):
            return n
        c = _compact(n)
        if len(c) >= 8 and re.match(r"^6[A-Z]{2}\d", c) and c in hay_c:  # order number written with or without spaces
            return n
    return None


@dataclass
class Finding:
    asset_id: str
    ip: str
    organization: str | None
    advisory_id: str
    title: str
    url: str | None
    status: str  # affected | possible
    match: str  # exact | family
    matched_on: str  # the asset value that matched
    product: str  # advisory product
    product_id: str
    version_range: str
    firmware: str | None
    cves: list[str]
    max_cvss: float | None
    vector: str | None
    known_exploited: bool
    remediations: list[dict[str, Any]]
    evidence: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _firmware(a: Asset) -> str | None:
    return a.firmware or a.revision


@dataclass(frozen=True)
class Identity:
    """One self-description of a device: vendor, model/product names and firmware that belong together."""

    vendor_key: str
    names: tuple[str, ...]
    firmware: str | None
    source: str  # protocol whose fields announced it ("s7comm", "enip", ...), or "asset" (the chosen values)


def identities(a: Asset) -> list[Identity]:
    """The identities to match: one per protocol that announced a model or product, each with that
    protocol's own firmware and vendor, when the asset announced itself through more than one (a
    gateway, a multi-protocol controller, or addresses reused between plants): pairing one
    protocol's model with another's firmware would report versions the device does not run. An
    asset with one identity is matched on its chosen values."""
    groups: dict[str, dict[str, list[str]]] = {}
    for ev in a.evidence:
        if ev.field in ("vendor", "model", "product", "firmware") and "." in ev.source:
            groups.setdefault(ev.source.split(".", 1)[0], {}).setdefault(ev.field, []).append(ev.value)
    out: list[Identity] = []
    for proto, g in sorted(groups.items()):
        names = tuple(v for v in dict.fromkeys(g.get("model", []) + g.get("product", [])) if v and len(v) >= 3)
        if not names:
            continue
        vendor = normalize_vendor(g["vendor"][0]) if g.get("vendor") else next(
            (v for v in map(vendor_from_model, names) if v is not None), None)
        key = vendor.key if vendor else a.vendor_key
        if key:
            out.append(Identity(key, names, g["firmware"][0] if g.get("firmware") else None, proto))
    if len(out) > 1:
        return out
    return [Identity(a.vendor_key, tuple(asset_products(a)), _firmware(a), "asset")] if a.vendor_key else []


def match_asset(a: Asset, index: Index, include_possible: bool = False) -> list[Finding]:
    out: dict[tuple[str, str], Finding] = {}
    for ident in identities(a):
        _match_identity(a, ident, index, include_possible, out)
    if any(k[1] == "affected" for k in out):
        out = {k: v for k, v in out.items() if not (v.status == "possible" and (k[0], "affected") in out)}
    return sorted(out.values(), key=lambda f: (-(f.max_cvss or 0), f.advisory_id))


def _match_identity(a: Asset, ident: Identity, index: Index, include_possible: bool, out: dict[tuple[str, str], Finding]) -> None:
    names = list(ident.names)
    fams = families(names)
    fw = ident.firmware
    for adv in index.advisories:
        for p in adv.products:
            if p.vendor_key != ident.vendor_key:
                continue
            kind, on = "exact", _exact(names, p)
            if on is None:
                shared = fams & families([p.product])
                if not shared or _SPECIFIC.search(p.product):
                    continue
                kind, on = "family", sorted(shared)[0]
            inside = p.range.contains(fw)
            if inside is False:
                continue
            status = "affected" if inside else "possible"
            if status == "possible" and not include_possible:
                continue
            f = _finding(a, adv, p, kind, on, status, fw, ident.source)
            if f is None:
                continue
            key = (adv.id, status)
            prev = out.get(key)
            if prev is None or (prev.match == "family" and kind == "exact"):
                out[key] = f


def _finding(a: Asset, adv: Advisory, p: Product, kind: str, on: str, status: str, fw: str | None,
             source: str = "asset") -> Finding | None:
    vulns = [v for v in adv.vulnerabilities if p.pid in v.products]
    if not vulns:
        return None
    scores = [v.cvss for v in vulns if v.cvss is not None]
    top = max(vulns, key=lambda v: v.cvss or 0)
    rems, seen = [], set()
    for v in vulns:
        for r in v.remediations:
            if r.products and p.pid not in r.products:
                continue
            k = (r.category, r.details)
            if k not in seen:
                seen.add(k)
                rems.append({"category": r.category, "details": r.details, "url": r.url})
    ev = [e for e in a.evidence if e.field in ("vendor", "model", "product", "firmware")
          and (source == "asset" or e.source.split(".", 1)[0] in (source, "oui"))]
    return Finding(
        asset_id=a.id, ip=a.ip, organization=a.organization.id if a.organization else None,
        advisory_id=adv.id, title=adv.title, url=adv.url, status=status, match=kind, matched_on=on,
        product=p.product, product_id=p.pid, version_range=p.version, firmware=fw,
        cves=sorted({v.cve for v in vulns if v.cve}), max_cvss=max(scores) if scores else None,
        vector=top.vector, known_exploited=any(v.known_exploited for v in vulns), remediations=rems,
        evidence=[{"field": e.field, "value": e.value, "source": e.source, "event_id": e.event_id, "frame": e.frame, "file": e.file}
                  for e in ev],
    )


def match_inventory(assets: Iterable[Asset], index: Index, include_possible: bool = False) -> list[Finding]:
    """Findings for every asset, worst (highest CVSS) first within each asset."""
    out: list[Finding] = []
    for a in assets:
        out.extend(match_asset(a, index, include_possible))
    return out
