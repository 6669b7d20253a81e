"""Identifying fields per (frame, dataset) from either engine, for the agreement table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.schema import Event

Key = tuple[int, str, tuple[Any, ...]]


def ident(e: Event) -> tuple[Any, ...] | None:
    ds = e.event.dataset
    if e.anomaly is not None:
        return None
    if ds == "modbus" and e.modbus:
        m = e.modbus
        return (m.transaction_id, m.unit_id, m.function_code, m.exception_code)
    if ds == "dnp3" and e.dnp3:
        d = e.dnp3
        return (d.source, d.destination, d.function_code)
    if ds == "s7comm" and e.s7comm:
        s = e.s7comm
        if s.protocol == "cotp":
            return ("cotp", s.cotp_pdu_code)
        if s.protocol == "s7comm-plus":
            return ("s7comm-plus", s.opcode)
        return ("s7comm", s.rosctr, s.function_code if s.rosctr in (1, 3) else s.function_group)
    if ds == "iec104" and e.iec104:
        i = e.iec104
        return (i.apci_type, i.type_id, i.cot)
    if ds == "enip" and e.enip:
        return (e.enip.command_code, e.cip.service_code if e.cip else None, e.cip.message_type if e.cip else None)
    if ds == "opcua" and e.opcua:
        return (e.opcua.message_type, e.opcua.service_type_id)
    if ds == "bacnet" and e.bacnet:
        b = e.bacnet
        return (b.bvlc_function, b.apdu_type, b.service)
    if ds == "mqtt" and e.mqtt:
        return (e.mqtt.message_type,)
    return None


def keys(events: Any, datasets: set[str]) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for e in events:
        if e.event.dataset not in datasets or e.evidence is None or e.evidence.frame is None:
            continue
        k = ident(e)
        if k is not None:
            out[(e.evidence.frame, e.event.dataset, k)] += 1
    return out


def compare(path: Path, datasets: set[str]) -> tuple[Counter[Key], Counter[Key], Counter[Key]]:
    """(both, native only, tshark only)."""
    from sensors.engine import decode_file
    from sensors.tshark_engine import decode_file_tshark

    nat = keys(decode_file(path), datasets)
    tsh = keys(decode_file_tshark(path, protocols=sorted(datasets), flows=False), datasets)
    return nat & tsh, nat - tsh, tsh - nat
