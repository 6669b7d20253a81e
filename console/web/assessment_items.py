"""检查评估: the self-assessment questionnaire, its scoring, and the answers traffic can pre-fill.

The items follow the structure of MIIT's 《工业控制系统网络安全防护指南》(工信部网安〔2024〕14号,
2024): 安全管理 (资产安全, 配置管理, 供应链安全, 宣传教育), 技术防护 (主机与终端安全, 架构与边界安全,
上云安全, 应用安全, 数据安全), 安全运营 (监测预警, 应急处置, 安全评估, 安全运维) and 责任落实. Item texts
are condensed from the guide's requirements for a yes/partly/no answer, not quoted verbatim.

Scoring (pinned by tests/console/test_assessment.py):

- credit per answer: yes 1, partly 0.5, no 0, unanswered 0; "n/a" leaves the item out;
- area score = 100 × Σ(weight × credit) / Σ(weight) over the area's applicable items (rounded to 0.1);
  total score = the same over every applicable item (so heavier areas count more);
- an item is unmet when its credit is below 1; it becomes a risk `Gap` of weight × (1 − credit);
- remediation priority = weight × (1 − credit) × (2 when the stored traffic shows the gap, else 1),
  highest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detection.risk import Gap

ANSWERS = ("yes", "partly", "no", "na")
CREDIT = {"yes": 1.0, "partly": 0.5, "no": 0.0}
TRAFFIC_FACTOR = 2.0


@dataclass(frozen=True)
class Area:
    id: str
    zh: str
    en: str


AREAS = (
    Area("management", "安全管理", "Security management"),
    Area("technical", "技术防护", "Technical protection"),
    Area("operations", "安全运营", "Security operations"),
    Area("responsibility", "责任落实", "Responsibility"),
)


@dataclass(frozen=True)
class Item:
    id: str
    area: str
    topic_zh: str
    topic_en: str
    weight: float
    zh: str
    en: str
    prefill: str | None = None  # the traffic fact that pre-fills it (see `prefill`)


ITEMS: tuple[Item, ...] = (
    # 安全管理
    Item("M1", "management", "资产安全", "Asset security", 3, "建立工业控制系统资产清单（硬件、软件、固件），明确资产责任部门和责任人，并及时更新",
         "Keep an inventory of industrial control system assets (hardware, software, firmware) with an owning department and person, kept up to date", "inventory"),
    Item("M2", "management", "资产安全", "Asset security", 2, "根据资产重要程度和受破坏后的影响确定关键资产，实施重点保护",
         "Identify critical assets by importance and impact of compromise, and protect them with priority"),
    Item("M3", "management", "资产安全", "Asset security", 2, "对关键主机、网络设备和控制组件进行冗余配置",
         "Provide redundancy for critical hosts, network devices and control components"),
    Item("M4", "management", "配置管理", "Configuration management", 2, "建立配置清单并定期开展配置审计；重大配置变更前进行安全评估和测试",
         "Keep a configuration baseline and audit it regularly; assess and test major configuration changes beforehand"),
    Item("M5", "management", "配置管理", "Configuration management", 3, "控制程序、组态变更实行审批和记录，仅由授权工程师站执行",
         "Changes to control programs and configuration are approved, recorded and made only from authorised engineering stations"),
    Item("M6", "management", "供应链安全", "Supply chain security", 2, "选择具备相应安全能力的产品和服务，在合同中明确供应商的网络安全责任和义务",
         "Choose products and services with adequate security capability; contracts state the supplier's security duties"),
    Item("M7", "management", "供应链安全", "Supply chain security", 3, "跟踪所用产品的安全漏洞公告，经测试后及时修复或采取缓解措施",
         "Track security advisories for the products in use and patch or mitigate after testing", "vulns"),
    Item("M8", "management", "宣传教育", "Awareness and training", 1, "定期开展网络安全宣传教育和人员技能培训",
         "Run security awareness and skills training regularly"),
    # 技术防护
    Item("T1", "technical", "主机与终端安全", "Host and endpoint security", 3, "工程师站、操作员站等主机采用应用程序白名单等措施，关闭不必要的端口和服务",
         "Engineering and operator workstations use application allow-listing; unneeded ports and services are closed"),
    Item("T2", "technical", "主机与终端安全", "Host and endpoint security", 2, "严格管控 USB 等外设接口，移动存储介质使用前进行病毒查杀",
         "Control USB and other peripheral ports; scan removable media before use"),
    Item("T3", "technical", "主机与终端安全", "Host and endpoint security", 3, "对登录主机、设备和系统的用户进行身份鉴别，关键设备采用多因素认证，删除或修改默认账户和口令",
         "Authenticate users of hosts, devices and systems; multi-factor for critical ones; remove or change default accounts and passwords"),
    Item("T4", "technical", "主机与终端安全", "Host and endpoint security", 4, "工业控制协议启用认证和加密（如 OPC UA 安全模式、DNP3 安全认证、MQTT 身份认证），不使用无认证的明文协议跨域通信",
         "Industrial protocols use authentication and encryption (OPC UA security modes, DNP3 Secure Authentication, MQTT credentials); no unauthenticated clear-text protocols across zones", "insecure"),
    Item("T5", "technical", "架构与边界安全", "Architecture and boundary security", 4, "按业务和安全需求划分安全区域，区域之间部署访问控制等边界防护措施",
         "Divide the network into security zones by function and need; enforce access control between zones", "cross_zone"),
    Item("T6", "technical", "架构与边界安全", "Architecture and boundary security", 5, "工业控制网络与企业管理网、互联网之间实施有效隔离，控制网络不直连互联网",
         "Isolate the control network from the business network and the internet; no direct internet connection to control systems", "it_ot"),
    Item("T7", "technical", "架构与边界安全", "Architecture and boundary security", 4, "严格控制远程访问；确需远程运维的，采用加密通道并实施身份认证、访问控制和日志留存",
         "Restrict remote access; where remote maintenance is needed, use encrypted channels with authentication, access control and logging", "remote_access"),
    Item("T8", "technical", "上云安全", "Cloud connection security", 2, "设备上云前进行安全评估，上云数据加密传输，云平台实施访问控制",
         "Assess devices before connecting them to the cloud; encrypt data in transit; enforce access control on the cloud platform"),
    Item("T9", "technical", "应用安全", "Application security", 2, "对 SCADA、MES 等工业应用实施访问控制和操作审计",
         "Enforce access control and operation auditing on industrial applications (SCADA, MES, ...)"),
    Item("T10", "technical", "应用安全", "Application security", 3, "限制控制指令（写操作、参数修改）的来源，仅允许授权主机发出",
         "Control commands (writes, parameter changes) are accepted only from authorised hosts", "unapproved_writes"),
    Item("T11", "technical", "数据安全", "Data security", 2, "对工业数据进行分类分级管理，重要数据加密存储和传输",
         "Classify industrial data; encrypt important data at rest and in transit"),
    Item("T12", "technical", "数据安全", "Data security", 3, "定期备份关键数据、组态和控制程序，并开展恢复测试",
         "Back up critical data, configurations and control programs regularly and test restores"),
    # 安全运营
    Item("O1", "operations", "监测预警", "Monitoring and early warning", 3, "部署网络安全监测设施，对工业控制网络流量和攻击行为进行监测、审计",
         "Deploy security monitoring of control network traffic and attack behaviour", "monitoring"),
    Item("O2", "operations", "监测预警", "Monitoring and early warning", 2, "网络日志留存不少于六个月",
         "Keep network logs for at least six months"),
    Item("O3", "operations", "监测预警", "Monitoring and early warning", 2, "关注漏洞和威胁预警信息，及时研判并采取措施",
         "Follow vulnerability and threat warnings, assess them and act in time"),
    Item("O4", "operations", "应急处置", "Incident response", 3, "制定网络安全事件应急预案并定期演练",
         "Maintain an incident response plan and exercise it regularly"),
    Item("O5", "operations", "应急处置", "Incident response", 3, "发生网络安全事件时及时处置，并按规定向主管部门报告",
         "Handle security incidents promptly and report them to the competent authority as required", "untriaged"),
    Item("O6", "operations", "安全评估", "Security assessment", 2, "新建或升级工业控制系统上线前开展安全测试和评估",
         "Test and assess new or upgraded control systems before they go live"),
    Item("O7", "operations", "安全评估", "Security assessment", 2, "定期开展工业控制系统网络安全检查评估，每年至少一次",
         "Run a control system security inspection and assessment at least once a year"),
    Item("O8", "operations", "安全运维", "Secure maintenance", 2, "运维操作实行审批、记录和审计，第三方运维人员签订保密协议",
         "Maintenance work is approved, recorded and audited; third-party maintainers sign confidentiality agreements"),
    Item("O9", "operations", "安全运维", "Secure maintenance", 4, "程序下装、模式切换等操作仅在维护窗口内进行",
         "Program downloads and mode changes happen only within maintenance windows", "program_download"),
    # 责任落实
    Item("R1", "responsibility", "责任落实", "Responsibility", 3, "企业主要负责人是网络安全第一责任人，明确分管负责人和牵头部门",
         "The enterprise's head is accountable for security, with a designated deputy and lead department"),
    Item("R2", "responsibility", "责任落实", "Responsibility", 2, "设立工业控制系统网络安全管理机构，配备专职安全人员",
         "Set up a control system security function with dedicated staff"),
    Item("R3", "responsibility", "责任落实", "Responsibility", 2, "建立网络安全责任制和考核机制",
         "Establish security accountability and performance evaluation"),
    Item("R4", "responsibility", "责任落实", "Responsibility", 2, "保障网络安全所需的资金和人员投入",
         "Fund and staff security adequately"),
    Item("R5", "responsibility", "责任落实", "Responsibility", 2, "落实网络安全等级保护、关键信息基础设施安全保护等制度要求",
         "Meet the Multi-Level Protection Scheme (MLPS) and critical information infrastructure requirements"),
    Item("R6", "responsibility", "责任落实", "Responsibility", 2, "配合主管部门开展检查评估，及时整改发现的问题",
         "Cooperate with the authorities' inspections and remediate findings in time"),
)
BY_ID = {i.id: i for i in ITEMS}
SOURCE = "工业和信息化部《工业控制系统网络安全防护指南》（工信部网安〔2024〕14号）"
SOURCE_EN = "MIIT Guidelines for Cybersecurity Protection of Industrial Control Systems (2024)"


@dataclass
class Prefill:
    answer: str  # yes | partly | no
    evidence: list[dict[str, Any]] = field(default_factory=list)  # {en, zh, ref, href}

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "evidence": self.evidence}


def _ev(en: str, zh: str, ref: str = "", href: str | None = None) -> dict[str, Any]:
    return {"en": en, "zh": zh, "ref": ref, "href": href}


@dataclass
class Facts:
    """What the stored data says about one enterprise (gathered by console/web/assessment.py)."""

    assets: int = 0
    identified: int = 0  # assets with a vendor or model
    events: int = 0
    insecure: list[dict[str, Any]] = field(default_factory=list)  # {protocol, events, sample: {id, file, frame}}
    exposures: dict[str, list[str]] = field(default_factory=dict)  # exposure -> asset ips
    flagged_edges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # flag -> edges
    program_downloads: list[dict[str, Any]] = field(default_factory=list)  # alerts {id, rule, time}
    unapproved_writes: list[dict[str, Any]] = field(default_factory=list)
    untriaged: int = 0  # high/critical alerts with no triage state
    findings: int | None = None  # affected vulnerability findings; None: no index to match against
    vulnerable_assets: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # page urls for evidence (assets, map, findings, alerts)


def _edges_ev(edges: list[dict[str, Any]], flag: str, link: str | None) -> list[dict[str, Any]]:
    out = []
    for e in edges[:5]:
        ref = f"{e['source'].split(':', 1)[-1]} → {e['target'].split(':', 1)[-1]} {e['protocol']} ({e['source_zone']} → {e['target_zone']})"
        out.append(_ev(f"communication map: {flag} flow, {e['messages'] or e['packets']} messages/packets",
                       f"通信关系图：{flag} 通信，{e['messages'] or e['packets']} 条消息/包", ref, link))
    if len(edges) > 5:
        out.append(_ev(f"… and {len(edges) - 5} more", f"…… 另有 {len(edges) - 5} 条", "", link))
    return out


def prefill(f: Facts) -> dict[str, Prefill]:
    """Answers the stored traffic supports, each with its evidence. Items the traffic cannot judge are absent."""
    out: dict[str, Prefill] = {}
    if f.assets:
        out["M1"] = Prefill("yes" if f.identified * 2 >= f.assets else "partly", [_ev(
            f"passive inventory: {f.assets} assets seen, {f.identified} with vendor/model identified",
            f"被动资产识别：发现 {f.assets} 个资产，其中 {f.identified} 个识别出厂商/型号", "", f.links.get("assets"))])
    else:
        out["M1"] = Prefill("no", [_ev("no assets seen by passive monitoring", "被动监测未发现任何资产")])
    if f.findings is not None:
        out["M7"] = (Prefill("no", [_ev(f"{f.findings} vulnerability findings on {len(f.vulnerable_assets)} assets",
                                        f"{len(f.vulnerable_assets)} 个资产存在 {f.findings} 条漏洞匹配", ", ".join(f.vulnerable_assets[:10]),
                                        f.links.get("findings"))])
                     if f.findings else Prefill("yes", [_ev("no inventory asset matches a known advisory", "资产未匹配到已知漏洞通告", "",
                                                             f.links.get("findings"))]))
    insecure_ev = []
    for p in f.insecure:
        s = p.get("sample") or {}
        ref = " ".join(x for x in (f"event {s.get('id')}" if s.get("id") else "", f"{s.get('file')}#{s.get('frame')}" if s.get("file") else "") if x)
        insecure_ev.append(_ev(f"{p['protocol']}: {p['events']} events without authentication", f"{p['protocol']}：{p['events']} 条无认证通信事件",
                               ref, f.links.get("map")))
    names = {"opcua_security_none": ("OPC UA endpoint with security mode None", "OPC UA 安全模式为 None"),
             "mqtt_anonymous": ("MQTT broker accepting anonymous clients", "MQTT 允许匿名连接"),
             "dnp3_no_sa": ("DNP3 without Secure Authentication", "DNP3 未启用安全认证"),
             "mms_no_auth": ("MMS server asked for associations without authentication", "MMS 关联未认证")}
    for exp, ips in sorted(f.exposures.items()):
        if exp in names:
            insecure_ev.append(_ev(f"{names[exp][0]}: {len(ips)} assets", f"{names[exp][1]}：{len(ips)} 个资产", ", ".join(ips[:10]),
                                   f.links.get("assets")))
    if insecure_ev:
        out["T4"] = Prefill("no", insecure_ev)
    elif f.events:
        out["T4"] = Prefill("yes", [_ev("no unauthenticated industrial protocol seen", "未发现无认证的工业协议通信")])
    cross = f.flagged_edges.get("cross_zone", [])
    if cross:
        out["T5"] = Prefill("partly", _edges_ev(cross, "cross_zone", f.links.get("map")))
    it_ot = f.flagged_edges.get("internet_control", []) + f.flagged_edges.get("it_ot", [])
    if it_ot:
        out["T6"] = Prefill("no", _edges_ev(it_ot, "it_ot/internet_control", f.links.get("map")))
    remote = f.flagged_edges.get("remote_access", [])
    if remote:
        out["T7"] = Prefill("partly", _edges_ev(remote, "remote_access", f.links.get("map")))
    if f.unapproved_writes:
        out["T10"] = Prefill("no", [_ev(f"{len(f.unapproved_writes)} alerts: control writes from hosts that are not approved",
                                        f"{len(f.unapproved_writes)} 条告警：未授权主机发出控制写操作",
                                        ", ".join(a["id"] for a in f.unapproved_writes[:8]), f.links.get("writes"))])
    if f.events:
        out["O1"] = Prefill("yes", [_ev(f"traffic monitoring reports {f.events} protocol events", f"流量监测已上报 {f.events} 条协议事件")])
    if f.untriaged:
        out["O5"] = Prefill("partly", [_ev(f"{f.untriaged} high/critical alerts not yet triaged", f"{f.untriaged} 条高危/严重告警尚未处置",
                                           "", f.links.get("alerts"))])
    if f.program_downloads:
        out["O9"] = Prefill("no", [_ev(f"{len(f.program_downloads)} program download alerts (no maintenance window approves them)",
                                       f"{len(f.program_downloads)} 条程序下装告警（不在已批准的维护窗口内）",
                                       ", ".join(a["id"] for a in f.program_downloads[:8]), f.links.get("downloads"))])
    return out


def credit(answer: str | None) -> float | None:
    """None: not applicable (left out of the score)."""
    if answer == "na":
        return None
    return CREDIT.get(answer or "", 0.0)


@dataclass
class Result:
    areas: dict[str, float | None]  # area -> score 0..100 (None: nothing applicable)
    total: float | None
    gaps: list[Gap]
    remediation: list[dict[str, Any]]  # {id, priority, weight, answer, traffic, zh, en}
    answered: int

    def to_dict(self) -> dict[str, Any]:
        return {"areas": self.areas, "total": self.total, "answered": self.answered,
                "gaps": [g.__dict__ for g in self.gaps], "remediation": self.remediation}


def _pct(got: float, of: float) -> float | None:
    return round(100.0 * got / of + 1e-9, 1) if of else None


def score(answers: Mapping[str, Mapping[str, Any]], traffic_gaps: Sequence[str] = ()) -> Result:
    """`answers`: item id -> {answer, note}; `traffic_gaps`: items whose pre-fill from traffic says unmet."""
    got: dict[str, float] = {a.id: 0.0 for a in AREAS}
    of: dict[str, float] = {a.id: 0.0 for a in AREAS}
    gaps, todo, answered = [], [], 0
    for item in ITEMS:
        answer = (answers.get(item.id) or {}).get("answer")
        if answer in ANSWERS:
            answered += 1
        c = credit(answer)
        if c is None:
            continue
        got[item.area] += item.weight * c
        of[item.area] += item.weight
        if c < 1:
            missing = item.weight * (1 - c)
            gaps.append(Gap(item.id, missing, item.en, item.zh))
            traffic = item.id in traffic_gaps
            todo.append({"id": item.id, "priority": round(missing * (TRAFFIC_FACTOR if traffic else 1.0), 2), "weight": item.weight,
                         "answer": answer or "", "traffic": traffic, "zh": item.zh, "en": item.en, "area": item.area})
    todo.sort(key=lambda t: (-t["priority"], -t["weight"], t["id"]))
    return Result({a: _pct(got[a], of[a]) for a in got}, _pct(sum(got.values()), sum(of.values())), gaps, todo, answered)
