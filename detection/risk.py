"""Risk scores 0–100 per asset, enterprise, city and industry, each with a breakdown and a daily trend.

Asset score = alerts + exposure + vulnerabilities (each component capped, total capped at 100):

- alerts (cap 40): per alert, severity weight (low 2, medium 5, high 10, critical 20) × age decay
  0.5^(age_days / 7) × triage factor (labels `triage`/`status`: false_positive 0, resolved/closed
  0.25, acknowledged/in_progress 0.75, otherwise 1).
- exposure (cap 30): insecure protocols it serves (modbus 6, s7comm 6, dnp3_no_sa 6, iec104 6,
  enip 4, bacnet 4, opcua_security_none 8, mqtt_anonymous 8, fins 6, mms_no_auth 4) plus crossings on its communication
  map edges (internet_control 15, remote_access 10, it_ot 5, level_skip 5; each kind once).
- vulnerabilities (cap 30): 2 × max CVSS of its affected findings, +10 when one is known
  exploited, +1 per further advisory (at most 5).

Enterprise = 0.6 × worst asset + 0.4 × mean of its five worst assets + self-assessment gaps (sum of
the unmet items' weights, cap 30), capped at 100. City and industry = 0.5 × worst enterprise + 0.5
× mean of their enterprises. Points are rounded to 0.1; scores to 0.1.

Every component carries `key` (for the console to translate), `reason_en` and `reason_zh`.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import LEVEL_OF_SEVERITY, Asset, Event

SEVERITY_POINTS = {"low": 2.0, "medium": 5.0, "high": 10.0, "critical": 20.0}
HALF_LIFE_DAYS = 7.0
TRIAGE = {"false_positive": 0.0, "resolved": 0.25, "closed": 0.25, "acknowledged": 0.75, "in_progress": 0.75}
EXPOSURE_POINTS = {"modbus": 6.0, "s7comm": 6.0, "dnp3_no_sa": 6.0, "iec104": 6.0, "enip": 4.0, "bacnet": 4.0,
                   "opcua_security_none": 8.0, "mqtt_anonymous": 8.0, "fins": 6.0, "mms_no_auth": 4.0}
_EXPOSURE_EN = {"opcua_security_none": "OPC UA endpoint with security mode None", "mqtt_anonymous": "MQTT broker accepts anonymous clients",
                "mms_no_auth": "MMS server asked for associations without authentication"}
FLAG_POINTS = {"internet_control": 15.0, "remote_access": 10.0, "it_ot": 5.0, "level_skip": 5.0}
CAPS = {"alerts": 40.0, "exposure": 30.0, "vulnerabilities": 30.0, "gaps": 30.0}
EXPOSURE_ZH = {"modbus": "Modbus 无认证", "s7comm": "S7comm 无认证", "dnp3_no_sa": "DNP3 未启用安全认证", "iec104": "IEC 104 无认证",
               "enip": "EtherNet/IP 无认证", "bacnet": "BACnet 无认证", "opcua_security_none": "OPC UA 安全模式为 None",
               "mqtt_anonymous": "MQTT 允许匿名连接", "fins": "FINS 无认证", "mms_no_auth": "MMS 关联未认证"}
FLAG_ZH = {"internet_control": "互联网与控制网直连", "remote_access": "远程访问通道", "it_ot": "IT 与 OT 跨区通信",
           "level_skip": "跨越普渡层级的通信"}
LEVEL_ZH = {"low": "低危", "medium": "中危", "high": "高危", "critical": "严重"}


def _r(x: float) -> float:
    return round(x + 1e-9, 1)


@dataclass
class Component:
    key: str
    points: float
    reason_en: str
    reason_zh: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "points": self.points, "reason_en": self.reason_en, "reason_zh": self.reason_zh, "params": self.params}


@dataclass
class Score:
    kind: str  # asset | enterprise | city | industry
    subject: str
    score: float
    components: list[Component]
    name: str | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "name": self.name, "score": self.score,
                "breakdown": [c.to_dict() for c in self.components], "trend": self.trend}


@dataclass(frozen=True)
class Gap:
    """One unmet self-assessment item."""

    id: str
    weight: float
    title_en: str = ""
    title_zh: str = ""


def _level(alert: Event) -> str:
    sev = alert.event.severity or 0
    return LEVEL_OF_SEVERITY.get(sev) or ("critical" if sev >= 99 else "high" if sev >= 73 else "medium" if sev >= 47 else "low")


def _triage(alert: Event) -> tuple[str | None, float]:
    labels = alert.labels or {}
    state = labels.get("triage") or labels.get("status")
    return state, TRIAGE.get(state or "", 1.0)


def alerts_of(asset: Asset, alerts: Iterable[Event]) -> list[Event]:
    org = asset.organization.id if asset.organization else None
    out = []
    for a in alerts:
        if org and a.organization is not None and a.organization.id and a.organization.id != org:
            continue
        ips = list(a.related.ip) if a.related is not None and a.related.ip else [
            ep.ip for ep in (a.source, a.destination) if ep is not None and ep.ip]
        if asset.ip in ips:
            out.append(a)
    return out


def alert_components(alerts: Sequence[Event], now: dt.datetime) -> list[Component]:
    by_level: dict[str, float] = collections.defaultdict(float)
    count: collections.Counter[str] = collections.Counter()
    muted = 0
    for a in alerts:
        if a.timestamp > now:
            continue
        level = _level(a)
        age = max(0.0, (now - a.timestamp).total_seconds() / 86400)
        _, factor = _triage(a)
        if factor == 0:
            muted += 1
            continue
        by_level[level] += SEVERITY_POINTS[level] * 0.5 ** (age / HALF_LIFE_DAYS) * factor
        count[level] += 1
    out, total = [], 0.0
    for level in ("critical", "high", "medium", "low"):
        if not count[level]:
            continue
        pts = _r(min(by_level[level], CAPS["alerts"] - total))
        total += pts
        out.append(Component(f"alerts.{level}", pts,
                             f"{count[level]} {level} alert(s), weighted by age and triage state",
                             f"{count[level]} 条{LEVEL_ZH[level]}告警（按时间衰减与处置状态加权）",
                             {"count": count[level], "raw": _r(by_level[level])}))
    if muted:
        out.append(Component("alerts.false_positive", 0.0, f"{muted} alert(s) triaged as false positive",
                             f"{muted} 条告警已判定为误报", {"count": muted}))
    return out


def exposure_components(asset: Asset, flags: Iterable[str] = ()) -> list[Component]:
    out, total = [], 0.0
    for exp in asset.exposures:
        pts = EXPOSURE_POINTS.get(exp)
        if pts is None:
            continue
        pts = _r(max(0.0, min(pts, CAPS["exposure"] - total)))
        total += pts
        out.append(Component(f"exposure.{exp}", pts, f"serves {exp} without authentication" if exp not in _EXPOSURE_EN else _EXPOSURE_EN[exp],
                             EXPOSURE_ZH[exp]))
    for flag in sorted(set(flags), key=lambda f: -FLAG_POINTS.get(f, 0)):
        pts = FLAG_POINTS.get(flag)
        if pts is None:
            continue
        pts = _r(max(0.0, min(pts, CAPS["exposure"] - total)))
        total += pts
        out.append(Component(f"exposure.{flag}", pts, f"communication map: {flag.replace('_', ' ')} flow", FLAG_ZH[flag]))
    return out


def vuln_components(findings: Sequence[Any]) -> list[Component]:
    affected = [f for f in findings if getattr(f, "status", "affected") == "affected"]
    if not affected:
        return []
    top = max(affected, key=lambda f: f.max_cvss or 0)
    cvss = top.max_cvss or 0.0
    out = [Component("vulns.max_cvss", _r(min(2 * cvss, CAPS["vulnerabilities"])),
                     f"vulnerable device: max CVSS {cvss} ({top.advisory_id}, {', '.join(top.cves[:3])})",
                     f"存在已知漏洞：最高 CVSS {cvss}（{top.advisory_id}）", {"cvss": cvss, "advisory": top.advisory_id})]
    total = out[0].points
    if any(f.known_exploited for f in affected):
        pts = _r(min(10.0, CAPS["vulnerabilities"] - total))
        total += pts
        out.append(Component("vulns.known_exploited", pts, "a vulnerability is known to be exploited", "存在已被利用的漏洞"))
    extra = len({f.advisory_id for f in affected}) - 1
    if extra > 0:
        pts = _r(min(float(min(extra, 5)), CAPS["vulnerabilities"] - total))
        out.append(Component("vulns.more_advisories", pts, f"{extra} more advisory(ies) apply", f"另有 {extra} 份安全通告适用", {"count": extra}))
    return out


def asset_risk(asset: Asset, alerts: Sequence[Event] = (), findings: Sequence[Any] = (), flags: Iterable[str] = (),
               now: dt.datetime | None = None) -> Score:
    """`alerts`: all alerts (those involving the asset are picked); `findings`: its vulnerability findings."""
    now = now or dt.datetime.now(dt.timezone.utc)
    mine = alerts_of(asset, alerts)
    comps = alert_components(mine, now) + exposure_components(asset, flags) + vuln_components(findings)
    return Score("asset", asset.id, _r(min(100.0, sum(c.points for c in comps))), comps, asset.name or asset.ip)


def _flags_by_node(graph: Mapping[str, Any] | None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = collections.defaultdict(set)
    for e in (graph or {}).get("edges", []):
        for node in (e["source"], e["target"]):
            out[node].update(e.get("flags", []))
    return out


def score_assets(assets: Sequence[Asset], alerts: Sequence[Event] = (), findings: Sequence[Any] = (),
                 graph: Mapping[str, Any] | None = None, now: dt.datetime | None = None, days: int = 0) -> dict[str, Score]:
    """Scores by asset id; `days` > 0 adds a daily trend (alert component recomputed at each day's end)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    flags = _flags_by_node(graph)
    by_asset: dict[str, list[Any]] = collections.defaultdict(list)
    for f in findings:
        by_asset[f.asset_id].append(f)
    out = {}
    for a in assets:
        s = asset_risk(a, alerts, by_asset[a.id], flags.get(a.id, ()), now)
        if days:
            s.trend = trend(a, alerts, by_asset[a.id], flags.get(a.id, ()), now, days)
        out[a.id] = s
    return out


def trend(asset: Asset, alerts: Sequence[Event], findings: Sequence[Any] = (), flags: Iterable[str] = (),
          now: dt.datetime | None = None, days: int = 7) -> list[dict[str, Any]]:
    """Score at the end of each of the last `days` UTC days (today up to `now`); exposure and vulnerabilities held at today's."""
    now = now or dt.datetime.now(dt.timezone.utc)
    flags = list(flags)
    mine = alerts_of(asset, alerts)
    out = []
    today = now.astimezone(dt.timezone.utc).date()
    for i in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=i)
        end = min(now, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc))
        comps = alert_components([a for a in mine if a.timestamp <= end], end) + exposure_components(asset, flags) + vuln_components(findings)
        out.append({"date": day.isoformat(), "score": _r(min(100.0, sum(c.points for c in comps)))})
    return out


def gap_components(gaps: Sequence[Gap]) -> list[Component]:
    out, total = [], 0.0
    for g in sorted(gaps, key=lambda g: (-g.weight, g.id)):
        pts = _r(max(0.0, min(g.weight, CAPS["gaps"] - total)))
        total += pts
        out.append(Component(f"gaps.{g.id}", pts, f"self-assessment item not met: {g.title_en or g.id}",
                             f"自评估未达标项：{g.title_zh or g.title_en or g.id}", {"item": g.id, "weight": g.weight}))
    return out


def enterprise_risk(org_id: str, asset_scores: Sequence[Score], gaps: Sequence[Gap] = (), name: str | None = None) -> Score:
    comps: list[Component] = []
    if asset_scores:
        worst = max(asset_scores, key=lambda s: s.score)
        top5 = sorted((s.score for s in asset_scores), reverse=True)[:5]
        comps.append(Component("enterprise.worst_asset", _r(0.6 * worst.score),
                               f"0.6 × worst asset {worst.name or worst.subject} ({worst.score})",
                               f"0.6 × 风险最高资产 {worst.name or worst.subject}（{worst.score}）", {"asset": worst.subject, "score": worst.score}))
        mean = sum(top5) / len(top5)
        comps.append(Component("enterprise.top_assets", _r(0.4 * mean),
                               f"0.4 × mean of the {len(top5)} worst assets ({_r(mean)})",
                               f"0.4 × 风险最高的 {len(top5)} 个资产平均分（{_r(mean)}）", {"mean": _r(mean), "assets": len(asset_scores)}))
    comps += gap_components(gaps)
    return Score("enterprise", org_id, _r(min(100.0, sum(c.points for c in comps))), comps, name)


def group_risk(kind: str, name: str, enterprise_scores: Sequence[Score]) -> Score:
    comps: list[Component] = []
    if enterprise_scores:
        worst = max(enterprise_scores, key=lambda s: s.score)
        mean = sum(s.score for s in enterprise_scores) / len(enterprise_scores)
        comps.append(Component(f"{kind}.worst_enterprise", _r(0.5 * worst.score),
                               f"0.5 × worst enterprise {worst.name or worst.subject} ({worst.score})",
                               f"0.5 × 风险最高企业 {worst.name or worst.subject}（{worst.score}）", {"enterprise": worst.subject, "score": worst.score}))
        comps.append(Component(f"{kind}.mean", _r(0.5 * mean), f"0.5 × mean of {len(enterprise_scores)} enterprise(s) ({_r(mean)})",
                               f"0.5 × {len(enterprise_scores)} 家企业平均分（{_r(mean)}）", {"mean": _r(mean), "enterprises": len(enterprise_scores)}))
    return Score(kind, name, _r(min(100.0, sum(c.points for c in comps))), comps, name)


def risk_report(assets: Sequence[Asset], alerts: Sequence[Event] = (), findings: Sequence[Any] = (),
                graph: Mapping[str, Any] | None = None, organizations: Mapping[str, Mapping[str, str]] | None = None,
                gaps: Mapping[str, Sequence[Gap]] | None = None, now: dt.datetime | None = None, days: int = 7) -> dict[str, Any]:
    """Everything the console shows: scores (with breakdowns and trends) per asset, enterprise, city, industry.

    `organizations`: org id → {name, city, industry}; `gaps`: org id → unmet self-assessment items.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    organizations = organizations or {}
    gaps = gaps or {}
    a_scores = score_assets(assets, alerts, findings, graph, now, days)
    by_org: dict[str, list[Score]] = collections.defaultdict(list)
    for a in assets:
        by_org[(a.organization.id if a.organization else None) or "default"].append(a_scores[a.id])
    for org in organizations:
        by_org.setdefault(org, [])
    e_scores = {org: enterprise_risk(org, ss, gaps.get(org, ()), organizations.get(org, {}).get("name")) for org, ss in by_org.items()}
    cities: dict[str, list[Score]] = collections.defaultdict(list)
    industries: dict[str, list[Score]] = collections.defaultdict(list)
    for org, s in e_scores.items():
        meta = organizations.get(org, {})
        if meta.get("city"):
            cities[meta["city"]].append(s)
        if meta.get("industry"):
            industries[meta["industry"]].append(s)
    return {
        "generated": now.isoformat(),
        "assets": [s.to_dict() for s in sorted(a_scores.values(), key=lambda s: (-s.score, s.subject))],
        "enterprises": [s.to_dict() for s in sorted(e_scores.values(), key=lambda s: (-s.score, s.subject))],
        "cities": [group_risk("city", c, ss).to_dict() for c, ss in sorted(cities.items())],
        "industries": [group_risk("industry", i, ss).to_dict() for i, ss in sorted(industries.items())],
    }
