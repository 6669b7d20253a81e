"""Protocol-independent views of an event for the learned baselines: link, function, address range, points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.schema import Event

Link = tuple[str, str, str]  # (client ip, server ip, protocol)
# A point is a server's datum, whoever writes or reads it: (server ip, protocol, unit, table, address).
Point = tuple[str, str, int, str, int]

# Modbus function code -> (table, kind): kind "write" carries values in the request, "read" in the response.
MODBUS_TABLES: dict[int, tuple[str, str]] = {
    1: ("coil", "read"), 2: ("discrete", "read"), 3: ("holding", "read"), 4: ("input", "read"),
    5: ("coil", "write"), 6: ("holding", "write"), 15: ("coil", "write"), 16: ("holding", "write"),
}
BINARY_TABLES = frozenset({"coil", "discrete"})


@dataclass(frozen=True, slots=True)
class Message:
    """One protocol message as the baselines see it."""

    link: Link
    request: bool
    function: str  # "fc3" for Modbus, the protocol's function code or else event.action
    unit: int | None
    address: int | None  # first register/coil/object touched (requests)
    quantity: int | None
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
    if mb is not None:
        function = f"fc{mb.function_code & 0x7F}"
        unit: int | None = mb.unit_id
        address = mb.address
        quantity = mb.quantity if mb.quantity is not None else (len(mb.values) if mb.values and request else None)
        size = (mb.length or 2) + 6
        exc = mb.exception_code is not None
        txn: int | None = mb.transaction_id
    else:
        fc = getattr(p, "function_code", None) if p is not None else None
        function = f"fc{fc}" if isinstance(fc, int) else (e.event.action or "unknown")
        unit = getattr(p, "unit_id", None) if p is not None else None
        address = quantity = None
        size = (net.bytes if net is not None and net.bytes else 0) or 0
        exc = e.event.outcome == "failure"
        txn = None
    return Message(link, request, function, unit if isinstance(unit, int) else None, address, quantity, size, exc,
                   net.community_id if net is not None else None, txn)


def request_range(m: Message) -> tuple[int, int] | None:
    if m.address is None:
        return None
    return (m.address, m.address + max(1, m.quantity or 1) - 1)


def point_values(e: Event, m: Message, request_of: dict[tuple[str | None, int | None], tuple[int, int | None]]) -> list[tuple[Point, int]]:
    """(point, value) pairs a Modbus message carries: write requests and read responses (paired by transaction).

    `request_of` maps (community id, transaction id) to (function code, start address) of pending reads;
    the caller keeps it between events.
    """
    mb = e.modbus
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
