"""CSAF 2.0 advisories → a compact index: products (vendor, name, version range) and vulnerabilities per advisory.

`load_dir(DIR)` reads every `*.json` under DIR; `Index.save(path)` / `Index.load(path)` keep the
compact form (a few MB for the 408 CISA ICS advisories) so matching never re-reads the documents.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import VulnDataError
from ..inventory.vendors import normalize_vendor
from .versions import VersionRange, parse_range

INDEX_VERSION = 1
_EXPLOITED = re.compile(r"known to (?:be|have been) exploited|exploited in the wild|actively exploited|known exploited", re.I)


@dataclass
class Product:
    pid: str
    vendor: str
    vendor_key: str
    product: str
    version: str  # as written: "vers:all/<V3.2.19", "<= 11.001", "1.0"
    full_name: str = ""

    @property
    def range(self) -> VersionRange:
        return parse_range(self.version)


@dataclass
class Remediation:
    category: str
    details: str
    url: str | None = None
    products: list[str] = field(default_factory=list)


@dataclass
class Vulnerability:
    cve: str | None
    title: str | None
    cvss: float | None
    vector: str | None
    severity: str | None
    products: list[str]  # known_affected product ids
    remediations: list[Remediation]
    known_exploited: bool = False
    cwe: str | None = None


@dataclass
class Advisory:
    id: str
    title: str
    url: str | None
    released: str | None
    updated: str | None
    file: str
    products: list[Product]
    vulnerabilities: list[Vulnerability]
    sectors: str | None = None

    def product(self, pid: str) -> Product | None:
        for p in self.products:
            if p.pid == pid:
                return p
        return None


@dataclass
class Index:
    advisories: list[Advisory]
    source: str = ""
    built: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def product_count(self) -> int:
        return sum(len(a.products) for a in self.advisories)

    @property
    def cve_count(self) -> int:
        return len({v.cve for a in self.advisories for v in a.vulnerabilities if v.cve})

    def stats(self) -> dict[str, Any]:
        vendors = {p.vendor_key for a in self.advisories for p in a.products}
        return {"advisories": len(self.advisories), "products": self.product_count, "cves": self.cve_count,
                "vendors": len(vendors), "errors": len(self.errors),
                "unparsed_versions": sum(1 for a in self.advisories for p in a.products if not p.range.parsed)}

    def to_dict(self) -> dict[str, Any]:
        return {"version": INDEX_VERSION, "source": self.source, "built": self.built, "errors": self.errors,
                "advisories": [asdict(a) for a in self.advisories]}

    def save(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Index:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise VulnDataError(f"{p}: no vulnerability index; build it with `qinling vulns import DIR`") from e
        except (OSError, ValueError) as e:
            raise VulnDataError(f"{p}: unreadable vulnerability index ({e}); rebuild it with `qinling vulns import DIR`") from e
        if data.get("version") != INDEX_VERSION:
            raise VulnDataError(f"{p}: index version {data.get('version')} (expected {INDEX_VERSION}); rebuild it with `qinling vulns import DIR`")
        advisories = []
        for a in data["advisories"]:
            advisories.append(Advisory(
                **{**a, "products": [Product(**x) for x in a["products"]],
                   "vulnerabilities": [Vulnerability(**{**v, "remediations": [Remediation(**r) for r in v["remediations"]]})
                                       for v in a["vulnerabilities"]]}))
        return cls(advisories, data.get("source", ""), data.get("built", ""), data.get("errors", []))


def _walk(branch: dict[str, Any], ctx: dict[str, str], out: list[Product]) -> None:
    cat, name = branch.get("category"), str(branch.get("name") or "").strip()
    ctx = dict(ctx)
    if cat == "vendor":
        ctx["vendor"] = name
    elif cat in ("product_name", "product_family"):
        ctx["product"] = f"{ctx['product']} {name}".strip() if cat == "product_name" and ctx.get("family") == ctx.get("product") and ctx.get("product") else name
        if cat == "product_family":
            ctx["family"] = name
    elif cat in ("product_version", "product_version_range"):
        ctx["version"] = name
    prod = branch.get("product")
    if isinstance(prod, dict) and prod.get("product_id"):
        vendor = ctx.get("vendor", "")
        v = normalize_vendor(vendor)
        out.append(Product(str(prod["product_id"]), vendor.strip(), v.key if v else "", ctx.get("product", prod.get("name", "")),
                           ctx.get("version", "vers:all/*"), str(prod.get("name") or "")))
    for b in branch.get("branches") or []:
        if isinstance(b, dict):
            _walk(b, ctx, out)


def _score(v: dict[str, Any]) -> tuple[float | None, str | None, str | None]:
    best: tuple[float | None, str | None, str | None] = (None, None, None)
    for s in v.get("scores") or []:
        c = s.get("cvss_v3") or {}
        score = c.get("baseScore")
        if isinstance(score, (int, float)) and (best[0] is None or score > best[0]):
            best = (float(score), c.get("vectorString"), c.get("baseSeverity"))
    return best


def parse_advisory(doc: dict[str, Any], file: str = "", kev: frozenset[str] = frozenset()) -> Advisory:
    d = doc.get("document") or {}
    if not isinstance(d, dict) or "tracking" not in d:
        raise VulnDataError(f"{file}: not a CSAF document (no document.tracking)")
    tr = d["tracking"]
    url = None
    for r in d.get("references") or []:
        if r.get("category") == "self" and str(r.get("url", "")).startswith("https://www.cisa.gov"):
            url = r["url"]
    if url is None:
        url = next((r.get("url") for r in d.get("references") or [] if r.get("category") == "self"), None)
    products: list[Product] = []
    pt = doc.get("product_tree") or {}
    _walk(pt, {}, products)
    for fp in pt.get("full_product_names") or []:  # flat product lists without branches
        if fp.get("product_id") and not any(p.pid == fp["product_id"] for p in products):
            products.append(Product(fp["product_id"], "", "", str(fp.get("name", "")), "vers:all/*", str(fp.get("name", ""))))
    sectors = next((n.get("text") for n in d.get("notes") or [] if "sector" in str(n.get("title", "")).lower()), None)
    vulns = []
    for v in doc.get("vulnerabilities") or []:
        score, vector, sev = _score(v)
        st = v.get("product_status") or {}
        affected = list(dict.fromkeys([*st.get("known_affected", []), *st.get("first_affected", []), *st.get("last_affected", [])]))
        rems = [Remediation(str(r.get("category", "")), str(r.get("details", "")), r.get("url"), list(r.get("product_ids") or []))
                for r in v.get("remediations") or []]
        text = " ".join(str(n.get("text", "")) for n in v.get("notes") or [])
        threats = v.get("threats") or []
        exploited = (v.get("cve") in kev or bool(_EXPLOITED.search(text))
                     or any(t.get("category") == "exploit_status" and _EXPLOITED.search(str(t.get("details", ""))) for t in threats))
        cwe = (v.get("cwe") or {}).get("id") if isinstance(v.get("cwe"), dict) else None
        vulns.append(Vulnerability(v.get("cve"), v.get("title"), score, vector, sev, affected, rems, exploited, cwe))
    return Advisory(str(tr.get("id", Path(file).stem)), str(d.get("title", "")), url,
                    tr.get("initial_release_date"), tr.get("current_release_date"), file, products, vulns, sectors)


def load_kev(path: str | os.PathLike[str] | None) -> frozenset[str]:
    """CVE ids known to be exploited: CISA's KEV JSON (`vulnerabilities[].cveID`) or one CVE per line."""
    if not path:
        return frozenset()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise VulnDataError(f"{p}: cannot read the known-exploited list ({e.strerror or e})") from e
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        return frozenset(str(v.get("cveID")) for v in data.get("vulnerabilities", []) if v.get("cveID"))
    return frozenset(m.upper() for m in re.findall(r"CVE-\d{4}-\d{4,}", text, re.I))


def _files(directory: Path) -> Iterable[Path]:
    return sorted(p for p in directory.rglob("*.json") if p.is_file())


def load_dir(directory: str | os.PathLike[str], kev: frozenset[str] = frozenset(), strict: bool = False) -> Index:
    """Every CSAF JSON under `directory` (recursively). Unreadable files are listed in `errors` (raised when strict)."""
    root = Path(directory)
    if not root.is_dir():
        raise VulnDataError(f"{root}: not a directory of CSAF advisories")
    advisories, errors = [], []
    for f in _files(root):
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or "csaf_version" not in (doc.get("document") or {}):
                continue  # other JSON (an index, a schema): not an advisory
            advisories.append(parse_advisory(doc, str(f.relative_to(root)), kev))
        except (ValueError, VulnDataError, KeyError, TypeError, AttributeError) as e:
            msg = f"{f}: {e}"
            if strict:
                raise VulnDataError(msg) from e
            errors.append(msg)
    return Index(advisories, str(root), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), errors)
