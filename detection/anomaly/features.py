"""Protocol-independent views of an event for the learned baselines: link, function, address range, points.

Every protocol's request names what it touches as *targets*: (space, first, last) address ranges.
A space is where addresses are numbered: "" for Modbus (the function code implies the table),
"g30" (DNP3 object group), "C_SE" (IEC 104 type family, addresses are IOAs), "db1" / "flags" /
"outputs" (S7 area, byte addresses), "class 0x8e" (CIP class, instance ids), or a name that is an
address of its own (a CIP tag "tag:Setpoint[1]", an OPC UA node "node:ns=2;i=4", a BACnet
"analog-value" object's instance). Process values come from what the decoders carry: Modbus
registers/coils (requests and paired responses), DNP3 points, IEC 104 information objects
(monitor direction and set-points/commands), S7 items (words of the data read or written), CIP
tag reads/writes (typed data), BACnet present-value reads/writes, numeric MQTT payloads (per
topic; topics and subscription filters are MQTT's addresses) and MMS simple data (per variable
named: "var:DOMAIN/ITEM" is an address of its own; written values, read responses, reports).
OPC UA events carry no values. Layer-2 protocols have no IP addresses: their MACs are the nodes
(a GOOSE link runs from the publisher to its multicast group; its control block and data set are
its addresses, its allData members its points, owned by the publisher).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pipeline.schema import Event

Link = tuple[str, str, str]  # (client ip, server ip, protocol)
# A point is a server's datum, whoever writes or reads it: (server ip, protocol, unit, table, address).
Point = tuple[str, str, Any, str, int]
Target = tuple[str, int, int]  # (address space, first, last)

# Modbus function code -> (table, kind): kind "write" carries values in the request, "read" in the response.
MODBUS_TABLES: dict[int, tuple[str, str]] = {
    1: ("coil", "read"), 2: ("discrete", "read"), 3: ("holding", "read"), 4: ("input", "read"),
    5: ("coil", "write"), 6: ("holding", "write"), 15: ("coil", "write"), 16: ("holding", "write"),
}
BINARY_TABLES = frozenset({
    "coil", "discrete",  # Modbus
    "g1", "g3", "g10",  # DNP3 binary inputs (single, double bit) and binary outputs
    "M_SP", "M_DP", "C_SC", "C_DC",  # IEC 104 single/double points and commands
    "binary-input", "binary-output", "binary-value",  # BACnet
})


# A GOOSE publisher's cycle is a heartbeat (T0) that bursts on every state change (retransmissions
# at T1, 2·T1, 4·T1, … back to T0): only a stream that stops is a timing departure, not a faster or
# irregular one.
BURSTY_CYCLES = frozenset({"goose"})
# Protocols whose every message is a report by the data's owner (a GOOSE publisher's own data): their
# values are read-only, never "written" by a client.
REPORTING = frozenset({"goose"})


def is_binary(table: str) -> bool:
    return table in BINARY_TABLES or table.startswith(("bool:", "bits:"))


@dataclass(frozen=True, slots=True)
class Message:
    """One protocol message as the baselines see it."""

    link: Link
    request: bool
    function: str  # "fc3" for Modbus, the protocol's function/service/type name, else event.action
    unit: int | None
    address: int | str | None  # first register/coil (Modbus) or "space:first" of the first target (requests)
    quantity: int | None
    targets: tuple[Target, ...]  # what a request touches (space, first, last); () for responses
    size: int  # application bytes (approximate when the decoder gives no length)
    exception: bool
    flow: str | None  # community id (pairs a response with its request)
    txn: int | None


def _proto(e: Event) -> Any:
    return getattr(e, e.event.dataset, None) if e.event.dataset.isidentifier() else None


def message_of(e: Event) -> Message | None:
    """The protocol message an event carries, or None (flows, alerts, events without endpoints)."""
    if e.event.kind != "event" or e.event.dataset == "flow" or e.source is None or e.destination is None:
        return None
    src, dst = e.source.ip, e.destination.ip
    if not src and not dst and e.source.mac and e.destination.mac:
        # Layer 2 only (GOOSE, PROFINET DCP): the MACs are the nodes; a GOOSE link is publisher → multicast group.
        src, dst = e.source.mac, e.destination.mac
    if not src or not dst:
        return None
    net = e.network
    p = _proto(e)
    mb = e.modbus
    if mb is not None:
        request = mb.message_type == "request"
    elif net is not None and net.direction is not None:
        request = net.direction == "request"
    elif net is not None and net.is_orig is not None:
        request = net.is_orig
    else:
        request = True
    link = (src, dst, e.event.dataset) if request else (dst, src, e.event.dataset)
    targets: tuple[Target, ...] = ()
    if mb is not None:
        function = f"fc{mb.function_code & 0x7F}"
        unit: Any = mb.unit_id
        address: int | str | None = mb.address
        quantity = mb.quantity if mb.quantity is not None else (len(mb.values) if mb.values and request else None)
        size = (mb.length or 2) + 6
        exc = mb.exception_code is not None
        txn: int | None = mb.transaction_id
        if request and mb.address is not None:
            targets = (("", mb.address, mb.address + max(1, quantity or 1) - 1),)
    else:
        dataset = e.event.dataset
        if dataset == "enip" and e.cip is not None:
            p = e.cip
        function, unit = _function_unit(dataset, p, e)
        quantity = None
        size = (net.bytes if net is not None and net.bytes else 0) or 0
        exc = e.event.outcome == "failure"
        txn = None
        if request and p is not None:
            targets = tuple(_targets(dataset, p))
        address = f"{targets[0][0]}:{targets[0][1]}" if targets else None
    return Message(link, request, function, unit if isinstance(unit, int) and not isinstance(unit, bool) else None, address, quantity, targets,
                   size, exc, net.community_id if net is not None else None, txn)


# ------------------------------------------------------------------ other protocols: function, unit, targets


def _function_unit(dataset: str, p: Any, e: Event) -> tuple[str, Any]:
    if p is None:
        return e.event.action or "unknown", None
    if dataset == "dnp3":
        fc = p.function_code
        return (f"fc{fc}" if fc is not None else "link"), p.destination if p.message_type == "request" else p.source
    if dataset == "iec104":
        if p.apci_type == "I":
            return p.type_name or f"type{p.type_id}", p.common_address
        return (p.u_function_name or p.apci_type), None
    if dataset == "s7comm":
        name = p.function_name or p.subfunction_name or p.cotp_pdu_name or p.protocol
        return str(name), None
    if dataset == "enip":
        name = getattr(p, "service_name", None) or getattr(p, "command_name", None)
        return str(name or e.event.action or "unknown"), None
    if dataset == "opcua":
        return str(p.service or p.message_type), None
    if dataset == "bacnet":
        return str(p.service_name or p.apdu_type_name or p.network_message_name or "bvlc"), None
    if dataset == "mqtt":
        return str(p.message_type_name), None
    if dataset == "goose":
        return "publish", p.appid
    if dataset == "fins":
        return str(p.command_name or (f"cmd{p.command_code:04x}" if p.command_code is not None else "fins_tcp")), p.da1 if p.message_type == "command" else p.sa1
    fc = getattr(p, "function_code", None)
    unit = getattr(p, "unit_id", None)
    return (f"fc{fc}" if isinstance(fc, int) else (e.event.action or "unknown")), unit


def _iec104_family(type_name: str | None) -> str | None:
    return type_name[:4] if type_name and len(type_name) >= 4 else None


def _s7_space(item: Any) -> str | None:
    area = item.area_name
    if area is None:
        return None
    return f"db{item.db_number}" if area in ("db", "di") and item.db_number is not None else str(area)


S7_SIZES = {"bit": 1, "byte": 1, "char": 1, "word": 2, "int": 2, "dword": 4, "dint": 4, "real": 4}


def _s7_range(item: Any) -> tuple[int, int] | None:
    if item.byte_address is None:
        return None
    n = max(1, item.length or 1) * S7_SIZES.get(item.transport_size_name or "byte", 1)
    if item.transport_size_name == "bit":
        n = 1
    return item.byte_address, item.byte_address + n - 1


def _targets(dataset: str, p: Any) -> list[Target]:
    out: list[Target] = []
    if dataset == "dnp3":
        for o in p.objects or ():
            if o.range_start is not None and o.range_stop is not None:
                out.append((f"g{o.group}", o.range_start, o.range_stop))
            elif o.points and any(pt.index is not None for pt in o.points):
                idx = [pt.index for pt in o.points if pt.index is not None]
                out.append((f"g{o.group}", min(idx), max(idx)))
            else:  # all objects of the group (class polls, qualifier 0x06)
                out.append((f"g{o.group}v{o.variation}", 0, 0))
    elif dataset == "iec104":
        fam = _iec104_family(p.type_name)
        if fam is not None:
            for o in p.objects or ():
                out.append((fam, o.ioa, o.ioa))
            if not p.objects and p.ioa is not None:
                out.append((fam, p.ioa, p.ioa))
    elif dataset == "s7comm":
        for it in p.items or ():
            space, rng = _s7_space(it), _s7_range(it)
            if space is not None and rng is not None:
                out.append((space, *rng))
        if p.block_type and p.block_number is not None:  # uploads, downloads, deletes name a block
            out.append((f"block {p.block_type}", p.block_number, p.block_number))
    elif dataset == "enip":
        tag = getattr(p, "tag", None)
        if tag:
            out.append((f"tag:{tag}", 0, 0))
        elif getattr(p, "class_id", None) is not None:
            inst = p.instance_id if p.instance_id is not None else 0
            out.append((f"class 0x{p.class_id:02x}", inst, inst))
    elif dataset == "opcua":
        for n in p.nodes or ():
            out.append((f"node:{n.node_id}", n.attribute_id or 0, n.attribute_id or 0))
        for c in p.calls or ():
            out.append((f"method:{c.object_id}/{c.method_id}", 0, 0))
    elif dataset == "bacnet":
        if p.object_type_name is not None and p.instance_number is not None and p.service_name not in ("who_is", "i_am"):
            out.append((p.object_type_name, p.instance_number, p.instance_number))
        for prop in p.properties or ():
            if prop.object_type_name is not None and prop.instance_number is not None:
                out.append((prop.object_type_name, prop.instance_number, prop.instance_number))
    elif dataset == "mqtt":
        if p.topic:
            out.append((f"topic:{p.topic}", 0, 0))
        for t in p.topics or ():
            out.append((f"filter:{t.topic}", 0, 0))
    elif dataset == "mms":
        out.extend(_mms_targets(p))
    elif dataset == "fins":
        # A memory area (dm_word, cio_bit, ...) is an address space of word addresses; program and
        # parameter areas are spaces of their own.
        n = max(1, p.item_count or 1)
        if p.memory_area_name and p.address is not None:
            out.append((p.memory_area_name, p.address, p.address + n - 1))
        for area in p.memory_areas or ():  # multiple memory area read: areas without addresses here
            out.append((area, 0, 0))
        if p.destination_memory_area_name and p.destination_address is not None:
            out.append((p.destination_memory_area_name, p.destination_address, p.destination_address + n - 1))
        if p.command_name in ("program_area_read", "program_area_write", "program_area_clear") and p.address is not None:
            size = p.data_length or p.item_count or 1
            out.append((f"program {p.program_number or 0}", p.address, p.address + max(0, size - 1)))
        if p.parameter_area_name and p.address is not None:
            out.append((f"parameter {p.parameter_area_name}", p.address, p.address + n - 1))
    elif dataset == "goose":
        # A control block and its data set are addresses of their own; a data set's members are its
        # addresses (a publisher that starts sending more members, or another data set, is new).
        if p.gocb_ref:
            out.append((f"gocb:{p.gocb_ref}", 0, 0))
        if p.dat_set:
            n = p.num_dat_set_entries if p.num_dat_set_entries else len(p.all_data or ()) or 1
            out.append((f"dataset:{p.dat_set}", 0, max(0, n - 1)))
    return out


def _mms_name(p: Any, name: str) -> str:
    return f"list:{name}" if name == p.variable_list_name else f"var:{name}"


def _mms_targets(p: Any) -> list[Target]:
    """Every object an MMS request names is an address of its own (like a CIP tag): a variable
    "var:DOMAIN/ITEM" (IEC 61850: logical device / LN$FC$DO$DA), a data set "list:…", a file, a
    program invocation, or, for a service that names only a domain (name lists, uploads), the domain."""
    if p.object_names:
        return [(_mms_name(p, n), 0, 0) for n in p.object_names]
    if p.file_name:
        return [(f"file:{p.file_name}", 0, 0)]
    if p.program_invocation:
        return [(f"program:{p.program_invocation}", 0, 0)]
    if p.domain_id:
        what = f"{p.object_class}@" if p.object_class else ""
        return [(f"domain:{what}{p.domain_id}", 0, 0)]
    return []


def point_values(e: Event, m: Message, request_of: dict[Any, Any]) -> list[tuple[Point, float]]:
    """(point, value) pairs a message carries (see the module doc); `request_of` is the caller's pairing state."""
    if e.modbus is not None:
        return _modbus_values(e, m, request_of)
    try:
        fn = _VALUES.get(e.event.dataset)
        return fn(e, m) if fn is not None else []
    except (ValueError, TypeError, struct.error):
        return []  # a value the decoder kept but we cannot read as a number is not a process value


def _modbus_values(e: Event, m: Message, request_of: dict[Any, Any]) -> list[tuple[Point, float]]:
    """Write requests and read responses (paired by transaction).

    `request_of` maps (community id, transaction id) to (function code, start address) of pending reads.
    """
    mb = e.modbus
    assert mb is not None
    if mb is None or mb.exception_code is not None:
        return []
    fc = mb.function_code
    table_kind = MODBUS_TABLES.get(fc)
    if table_kind is None:
        return []
    table, kind = table_kind
    server = m.link[1]
    if m.request:
        if kind == "read":
            if mb.address is not None:
                request_of[(m.flow, m.txn)] = (fc, mb.address)
            return []
        if mb.address is None or not mb.values:
            return []
        vals = mb.values
        if fc == 5:  # FC5 carries 0xFF00 / 0x0000; the decoder may give the raw word
            vals = [1 if v else 0 for v in vals[:1]]
        return [((server, "modbus", mb.unit_id, table, mb.address + i), int(v)) for i, v in enumerate(vals)]
    if kind != "read" or not mb.values:
        return []
    pending = request_of.pop((m.flow, m.txn), None)
    if pending is None or pending[0] != fc or pending[1] is None:
        return []
    start = pending[1]
    n = mb.quantity if mb.quantity is not None else len(mb.values)
    return [((server, "modbus", mb.unit_id, table, start + i), int(v)) for i, v in enumerate(mb.values[:n])]


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v) if v == v else None  # NaN is no value
    return None


def _dnp3_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    p = e.dnp3
    if p is None:
        return []
    out: list[tuple[Point, float]] = []
    server = m.link[1]
    unit = p.destination if m.request else p.source
    for o in p.objects or ():
        if o.group == 12:  # CROB: the operation is the value of a binary output
            for pt in o.points or ():
                if pt.index is not None and pt.operation_name in ("latch_on", "latch_off", "pulse_on", "pulse_off"):
                    out.append(((server, "dnp3", unit, "g10", pt.index), 1.0 if pt.operation_name.endswith("on") else 0.0))
            continue
        if o.group not in (1, 2, 3, 4, 10, 11, 20, 21, 22, 30, 32, 40, 41, 42):
            continue
        table = {2: "g1", 4: "g3", 11: "g10", 22: "g20", 32: "g30", 42: "g40", 41: "g40"}.get(o.group, f"g{o.group}")
        for pt in o.points or ():
            v = _number(pt.value)
            if pt.index is not None and v is not None:
                out.append(((server, "dnp3", unit, table, pt.index), v))
    return out


def _iec104_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    p = e.iec104
    if p is None or p.apci_type != "I" or p.negative:
        return []
    fam = _iec104_family(p.type_name)
    if fam is None or fam[0] not in "MC" or fam in ("C_IC", "C_CI", "C_RD", "C_CS", "C_TS", "C_RP", "C_CD"):
        return []
    if fam[0] == "C" and p.cot_name not in ("act", None):  # a command's confirmation repeats it
        return []
    family = {"M_SP": "M_SP", "M_DP": "M_DP", "C_SC": "C_SC", "C_DC": "C_DC"}.get(fam, fam)
    out = []
    for o in p.objects or ():
        v = _number(o.value)
        if v is not None and not o.select:
            out.append(((m.link[1], "iec104", p.common_address, family, o.ioa), v))
    return out


# CIP elementary data types: code -> struct format (little endian)
CIP_TYPES = {0xC1: "<B", 0xC2: "<b", 0xC3: "<h", 0xC4: "<i", 0xC6: "<B", 0xC7: "<H", 0xC8: "<I", 0xCA: "<f", 0xCB: "<d"}


def _cip_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    c = e.cip
    if c is None or not c.tag or not c.data or (c.status_code not in (None, 0)):
        return []
    raw = bytes.fromhex(c.data)
    if c.service_name == "write_tag" and m.request:
        if len(raw) < 4:
            return []
        code, count, body = raw[0], int.from_bytes(raw[2:4], "little"), raw[4:]
    elif c.service_name == "read_tag" and not m.request:
        if len(raw) < 2:
            return []
        code, count, body = raw[0], 1, raw[2:]
    else:
        return []
    fmt = CIP_TYPES.get(code)
    if fmt is None or not body:
        return []
    size = struct.calcsize(fmt)
    if len(body) < size:
        return []
    (v,) = struct.unpack_from(fmt, body)
    table = f"bool:{c.tag}" if code == 0xC1 else f"tag:{c.tag}"
    return [((m.link[1], "enip", None, table, 0), float(v))] if count >= 1 else []


def _s7_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    p = e.s7comm
    if p is None or p.function_name not in ("read_var", "write_var"):
        return []
    if (p.function_name == "write_var") != m.request:  # values: in write requests and read responses
        return []
    out: list[tuple[Point, float]] = []
    for it in p.items or ():
        space = _s7_space(it)
        if space is None or not it.data or it.byte_address is None or it.return_code not in (None, 255):
            continue
        raw = bytes.fromhex(it.data)
        kind = it.transport_size_name or "byte"
        if kind == "bit":
            out.append(((m.link[1], "s7comm", None, f"{space} bit", it.byte_address * 8 + (it.bit_address or 0)), float(raw[0] & 1)))
        elif kind == "real":
            out.extend(((m.link[1], "s7comm", None, space, it.byte_address + 4 * i), v)
                       for i, (v,) in enumerate(struct.iter_unpack(">f", raw[: len(raw) // 4 * 4])) if v == v)
        elif kind in ("dword", "dint"):
            out.extend(((m.link[1], "s7comm", None, space, it.byte_address + 4 * i), float(v))
                       for i, (v,) in enumerate(struct.iter_unpack(">i", raw[: len(raw) // 4 * 4])))
        elif len(raw) == 1:
            out.append(((m.link[1], "s7comm", None, space, it.byte_address), float(raw[0])))
        else:  # bytes, words, ints: read as 16-bit words (the usual layout of a data block's INT/WORD fields)
            out.extend(((m.link[1], "s7comm", None, space, it.byte_address + 2 * i), float(v))
                       for i, (v,) in enumerate(struct.iter_unpack(">h", raw[: len(raw) // 2 * 2])))
    return out


def _bacnet_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    p = e.bacnet
    if p is None or p.service_name not in ("read_property", "write_property") or p.property_name != "present-value":
        return []
    if (p.service_name == "write_property") != m.request or p.value is None or p.object_type_name is None:
        return []
    text = p.value.split(";")[0].strip().lower()
    v = {"active": 1.0, "inactive": 0.0, "true": 1.0, "false": 0.0}.get(text)
    if v is None:
        v = float(text)
    return [((m.link[1], "bacnet", None, p.object_type_name, p.instance_number or 0), v)]


def _mms_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    """Simple values of write requests and of read responses / information reports, one point per
    variable named (a response carries its request's names, paired by the decoder on the invoke id).
    Data sets (named variable lists) are skipped: their members are not named on the wire."""
    p = e.mms
    if p is None or not p.data or not p.object_names or p.variable_list_name is not None:
        return []
    if p.service == "write":
        if not m.request:
            return []
    elif p.service not in ("read", "informationReport") or m.request and p.service == "read":
        return []
    if len(p.data) != len(p.object_names):
        return []
    out: list[tuple[Point, float]] = []
    for name, d in zip(p.object_names, p.data):
        if d.value is None:
            continue
        table = {"boolean": "bool:", "bit-string": "bits:"}.get(d.type, "var:") + name
        out.append(((m.link[1], "mms", None, table, 0), float(d.value)))
    return out


def _goose_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    """allData members of simple types, one point per control block and member position, owned by the
    publisher (the link's first end): booleans and bit strings (double-point positions, quality) as
    states, integers and floats as values. Every frame carries them (retransmissions repeat them)."""
    p = e.goose
    if p is None or not p.gocb_ref or not p.all_data or p.parse_status == "failed":
        return []
    out: list[tuple[Point, float]] = []
    for d in p.all_data:
        if d.value is None or d.type in ("structure", "array") or "." in d.index:
            continue
        if d.type == "boolean":
            table, v = "bool:", float(bool(d.value))
        elif d.type == "bit_string" and isinstance(d.value, str):  # BER content: unused-bit count, then the bits
            table, v = "bits:", float(int(d.value[2:], 16)) if len(d.value) > 2 else 0.0
        elif d.type in ("integer", "unsigned", "float") and not isinstance(d.value, (bool, str)):
            table, v = "goose:", float(d.value)
        else:
            continue
        out.append(((m.link[0], "goose", None, f"{table}{p.gocb_ref}[{d.index}]", 0), v))
    return out


def _mqtt_values(e: Event, m: Message) -> list[tuple[Point, float]]:
    p = e.mqtt
    if p is None or p.message_type_name != "publish" or not m.request or not p.topic or p.payload_encoding != "utf8":
        return []
    if p.payload is None or p.payload_truncated:
        return []
    return [((m.link[1], "mqtt", None, f"topic:{p.topic}", 0), float(p.payload.strip()))]


_VALUES = {"mms": _mms_values, "mqtt": _mqtt_values, "dnp3": _dnp3_values, "iec104": _iec104_values, "enip": _cip_values, "s7comm": _s7_values,
           "bacnet": _bacnet_values, "goose": _goose_values}
