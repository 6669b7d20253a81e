"""Vendor names to one canonical form (key, English name, Chinese display name), whatever spelling the traffic uses.

Protocol fields, OUI entries and advisories spell vendors differently ("Allen-Bradley",
"Rockwell Automation/Allen-Bradley", "Rockwell Automation "); `normalize_vendor` maps each to one
`Vendor`. Chinese vendors are recognised by their romanised and Chinese names.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Vendor:
    key: str  # stable id: "rockwell", "hollysys", ...
    name: str  # canonical English name
    name_zh: str | None = None  # display name in Chinese

    def to_dict(self) -> dict[str, str | None]:
        return {"key": self.key, "name": self.name, "name_zh": self.name_zh}


# key, English, Chinese, regex over the lower-cased name (first match wins; keep specific before general).
_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("qinling-testbed", "Qinling Testbed", "秦岭测试床", r"qinling\s*testbed"),
    ("hollysys", "Hollysys", "和利时", r"hollysys|和利时"),
    ("supcon", "SUPCON", "中控技术", r"supcon|中控"),
    ("inovance", "Inovance", "汇川技术", r"inovance|汇川"),
    ("wellintech", "WellinTech (KingView)", "亚控科技", r"wellintech|wellin\s+tech|kingview|kinghistorian|kingscada|亚控|组态王"),
    ("nari", "NARI", "南瑞", r"\bnari\b|naritech|nari[- ]?(group|technology|relays)|\bnr electric\b|南瑞"),
    ("xj-electric", "XJ Electric", "许继电气", r"\bxj\s*electric|许继"),
    ("sifang", "Beijing Sifang Automation", "北京四方", r"sifang|四方继保|北京四方"),
    ("xinje", "XINJE", "信捷电气", r"xinje|信捷"),
    ("huawei", "Huawei", "华为", r"huawei|华为"),
    ("siemens", "Siemens", "西门子", r"siemens|西门子"),
    ("schneider", "Schneider Electric", "施耐德电气", r"schneider|modicon|telemecanique|square\s*d\b|施耐德"),
    ("rockwell", "Rockwell Automation", "罗克韦尔自动化", r"rockwell|allen[- ]?bradley|罗克韦尔"),
    ("mitsubishi", "Mitsubishi Electric", "三菱电机", r"mitsubishi|三菱"),
    ("omron", "Omron", "欧姆龙", r"omron|欧姆龙"),
    ("hitachi-energy", "Hitachi Energy", "日立能源", r"hitachi\s*energy"),
    ("abb", "ABB", "ABB", r"^abb\b|\babb\s+(ltd|ag|inc|automation|oy)|^abb$"),
    ("ge", "GE", "通用电气", r"general\s+electric|^ge\b|\bge\s+(digital|vernova|grid|intelligent|fanuc|automation)|\(ge\)"),
    ("honeywell", "Honeywell", "霍尼韦尔", r"honeywell|霍尼韦尔"),
    ("moxa", "Moxa", "摩莎", r"\bmoxa\b"),
    ("emerson", "Emerson", "艾默生", r"emerson|fisher[- ]rosemount"),
    ("yokogawa", "Yokogawa", "横河电机", r"yokogawa"),
    ("beckhoff", "Beckhoff", "倍福", r"beckhoff"),
    ("phoenix-contact", "Phoenix Contact", "菲尼克斯电气", r"phoenix\s*contact"),
    ("wago", "WAGO", "万可", r"\bwago\b"),
    ("delta-electronics", "Delta Electronics", "台达电子", r"delta\s+electronics"),
    ("advantech", "Advantech", "研华科技", r"advantech"),
    ("johnson-controls", "Johnson Controls", "江森自控", r"johnson\s+controls|\bjci\b"),
    ("trane", "Trane", "特灵", r"\btrane\b"),
    ("opc-foundation", "OPC Foundation", "OPC 基金会", r"opc\s*foundation"),
    ("open62541", "open62541", None, r"open62541"),
)
_COMPILED = tuple((k, n, zh, re.compile(rx)) for k, n, zh, rx in _TABLE)
_BY_KEY = {k: Vendor(k, n, zh) for k, n, zh, _ in _TABLE}

_SUFFIX = re.compile(
    r"[,.]?\s*\b(co\.?,?\s*ltd\.?|company|corporation|corp\.?|inc\.?|ltd\.?|llc|gmbh|ag|s\.?a\.?|limited|technology|technologies)\s*$",
    re.I,
)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "-", text.lower()).strip("-")


def _clean(text: str) -> str:
    t = " ".join(text.split())
    for _ in range(3):
        t2 = _SUFFIX.sub("", t).strip(" ,.")
        if t2 == t or not t2:
            break
        t = t2
    return t


@functools.lru_cache(maxsize=8192)
def normalize_vendor(text: str | None) -> Vendor | None:
    """The canonical vendor for a name as written anywhere; unknown names keep a cleaned form of themselves."""
    if text is None:
        return None
    t = " ".join(str(text).split())
    if not t or t.lower() in ("unknown", "n/a", "none", "-"):
        return None
    low = t.lower()
    for key, name, zh, rx in _COMPILED:
        if rx.search(low):
            return Vendor(key, name, zh)
    cleaned = _clean(t)
    return Vendor(_slug(cleaned) or _slug(t), cleaned, None)


def vendor_by_key(key: str) -> Vendor | None:
    return _BY_KEY.get(key)


def known_vendors() -> list[Vendor]:
    return list(_BY_KEY.values())


# S7 order numbers (MLFB) and other model strings that name their maker.
_MODEL_VENDORS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*6(es|ag|gk|av|ep|ed)\d", re.I), "siemens"),  # 6ES7, 6AG1 (SIPLUS), 6GK7 (CPs)
    (re.compile(r"^\s*(1756|1769|1766|1763|1762|1761|1747|1734|1794|1783|5069|2080)-", re.I), "rockwell"),
    (re.compile(r"^\s*(bmx|bme|bmh|tsx|140cpu|m340|m580|tm2|tm221|tm241|tm251)", re.I), "schneider"),
)


def vendor_from_model(model: str | None) -> Vendor | None:
    if not model:
        return None
    for rx, key in _MODEL_VENDORS:
        if rx.search(model):
            return _BY_KEY[key]
    return None
