"""A device's primary role from how it behaves on the wire (who it polls, what it writes, what it answers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

READS = frozenset({"read", "read_status", "interrogation", "subscribe", "publish"})
WRITES = frozenset({"write", "operate", "select", "file_write", "file_delete"})
PROGRAMMING = frozenset({"program_download", "program_upload", "mode_change", "restart", "firmware_update"})
# Industrial protocols (flows of anything else are IT). cip/cip_io travel inside enip.
# s7comm covers S7comm-plus too (one decoder, `s7comm.protocol` tells them apart).
INDUSTRIAL = frozenset({"modbus", "s7comm", "enip", "cip", "cip_io", "bacnet", "opcua", "dnp3", "iec104", "mqtt",
                        "mms", "goose", "fins", "profinet"})
CONTROLLER = frozenset({"modbus", "s7comm", "enip", "cip", "fins"})  # FINS servers are Omron PLCs
TELECONTROL = frozenset({"dnp3", "iec104"})
SUBSTATION = frozenset({"mms", "goose"})  # IEC 61850: the server/publisher is an IED (relay, bay controller)
FIELDBUS = frozenset({"profinet"})  # answers DCP Identify / IO CM calls: an IO device
BURST_GAP_S = 0.5  # requests closer than this belong to one polling cycle

ROLES = ("plc", "rtu", "ied", "field_device", "opc_server", "iiot_broker", "hmi", "engineering_station", "historian",
         "ot_client", "iiot_client", "it_host", "unknown")
ROLE_NAMES_ZH = {
    "plc": "PLC 控制器", "rtu": "RTU 远动终端", "ied": "IED 智能电子设备", "field_device": "现场设备", "opc_server": "OPC UA 服务器",
    "iiot_broker": "物联网消息代理", "hmi": "HMI/SCADA 主站", "engineering_station": "工程师站", "historian": "历史数据库",
    "ot_client": "工控客户端", "iiot_client": "物联网终端", "it_host": "IT 主机", "unknown": "未知",
}


@dataclass
class Poll:
    """Polling cycles of one client towards one server (reads only)."""

    requests: int = 0
    burst_start: float | None = None
    last: float | None = None
    n: int = 0  # intervals between cycle starts
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, t: float) -> None:
        self.requests += 1
        if self.last is None or t - self.last > BURST_GAP_S:
            if self.burst_start is not None:
                d = t - self.burst_start
                self.n += 1
                self.total += d
                self.total_sq += d * d
            self.burst_start = t
        self.last = t

    @property
    def period(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def periodic(self) -> bool:
        """At least 4 cycles whose spacing varies by less than half its mean."""
        if self.n < 4 or self.total <= 0:
            return False
        mean = self.total / self.n
        var = max(0.0, self.total_sq / self.n - mean * mean)
        return math.sqrt(var) <= 0.5 * mean


@dataclass
class Behaviour:
    reads: int = 0
    writes: int = 0
    programming: int = 0
    requests: int = 0
    answered: int = 0  # industrial responses sent
    served: set[str] = field(default_factory=set)  # industrial protocols it answered
    used: set[str] = field(default_factory=set)  # industrial protocols it sent requests in
    polls: dict[str, Poll] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    programmed: set[str] = field(default_factory=set)
    device_types: set[str] = field(default_factory=set)
    flow_protocols: set[str] = field(default_factory=set)
    span_s: float = 0.0


def infer_role(b: Behaviour) -> tuple[str, str]:
    """(role, reason in English). The reason lists the counts behind the decision."""
    servers_read = [ip for ip, p in b.polls.items() if p.requests]
    periodic = [ip for ip in servers_read if b.polls[ip].periodic]
    client_side = b.requests > 0 and b.requests > b.answered
    if b.answered and not client_side:
        served = b.served
        if served & TELECONTROL:
            return "rtu", f"answered {b.answered} {'/'.join(sorted(served & TELECONTROL))} requests as outstation"
        if any(("adapter" in t.lower() or "drive" in t.lower() or "i/o" in t.lower()) for t in b.device_types):
            return "field_device", f"answered {b.answered} requests; device type {', '.join(sorted(b.device_types))}"
        if served & SUBSTATION:
            return "ied", f"answered {b.answered} {'/'.join(sorted(served & SUBSTATION))} requests as an IEC 61850 server"
        if served & CONTROLLER:
            return "plc", f"answered {b.answered} {'/'.join(sorted(served & CONTROLLER))} requests on its server port"
        if served & FIELDBUS and any("io_controller" in t for t in b.device_types):
            return "plc", "PROFINET DCP DeviceRole: IO controller"
        if served & FIELDBUS:
            return "field_device", f"PROFINET IO device answering {b.answered} DCP/IO CM requests"
        if "bacnet" in served:
            return "field_device", f"BACnet device answering {b.answered} requests"
        if "opcua" in served:
            return "opc_server", f"answered {b.answered} OPC UA requests"
        if "mqtt" in served:
            return "iiot_broker", f"MQTT broker for {b.answered} client packets"
    if b.requests:
        if b.used <= {"mqtt"}:
            return "iiot_client", f"MQTT client ({b.requests} packets)"
        if b.programming or (b.writes and b.writes >= b.reads):
            return "engineering_station", (
                f"{b.programming} program/mode/restart operations, {b.writes} writes to {len(b.written)} device(s), "
                f"{b.reads} reads")
        if b.reads and not b.writes and len(servers_read) >= 3 and (b.span_s >= 600 or "opcua" in b.used):
            return "historian", f"reads only ({b.reads}) from {len(servers_read)} devices over {b.span_s:.0f} s"
        if b.reads:
            per = sorted(p.period for ip in periodic if (p := b.polls[ip]).period is not None)
            how = f"periodically (~{per[len(per) // 2]:.1f} s)" if per else "without a regular period"
            return "hmi", (f"polls {len(servers_read)} device(s) {how}: {b.reads} reads, {b.writes} writes"
                           + (f", {len(periodic)} periodic" if periodic else ""))
        return "ot_client", f"{b.requests} industrial requests"
    if b.answered:
        return "ot_client", f"answered {b.answered} requests and sent {b.requests}"
    if b.flow_protocols and not (b.flow_protocols & INDUSTRIAL):
        return "it_host", "only IT protocols: " + ", ".join(sorted(b.flow_protocols)[:8])
    if b.device_types:
        return "field_device", "announced itself: " + ", ".join(sorted(b.device_types))
    return "unknown", "no industrial requests or answers seen"
