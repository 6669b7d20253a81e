"""PROFINET RT frames after the ethertype: DCP services and blocks, alarm frames. Pure functions; never raise."""

from __future__ import annotations

import socket
import struct

from pipeline.protocols.profinet import Profinet, ProfinetDcpBlock

from . import constants as c

_HDR = struct.Struct("!HBBIHH")  # frame id, service id, service type, xid, response delay / reserved, data length


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip("\x00")


def parse_rt(data: bytes) -> Profinet | None:
    """A DCP or alarm frame -> Profinet; None for cyclic data, PTCP and other RT frames (not events)."""
    if len(data) < 2:
        return None
    frame_id = int.from_bytes(data[0:2], "big")
    if frame_id in c.ALARM_FRAMES:  # RTA-PDU: SAPs, PDU type, flags, sequence numbers, var part length, RTA-SDU
        if len(data) < 14:
            return Profinet(service="rt_alarm", frame_id=frame_id)
        pdu_type = data[6] & 0x0F
        alarm = None
        if pdu_type == 1 and len(data) >= 22:  # DATA: an AlarmNotification block (type, length, version, AlarmType)
            alarm = int.from_bytes(data[20:22], "big")
        return Profinet(service="rt_alarm", frame_id=frame_id, rta_pdu_type=pdu_type, alarm_type=alarm)
    if frame_id not in c.DCP_FRAMES:
        return None
    if len(data) < _HDR.size:
        return Profinet(service="dcp", frame_id=frame_id)
    _, sid, stype, xid, delay, dlen = _HDR.unpack_from(data, 0)
    f: dict[str, object] = {}
    blocks: list[ProfinetDcpBlock] = []
    off, end = _HDR.size, min(_HDR.size + dlen, len(data))
    # Requests of Get list options without data; Set requests and every response carry a 2-byte
    # qualifier/info before the data; Identify requests carry filter data without one.
    with_qualifier = stype != 0 or sid == c.SET
    if sid == c.GET and stype == 0:  # the options asked for: bare (option, suboption) pairs, no length
        while off + 2 <= end and len(blocks) < c.MAX_BLOCKS:
            opt, sub = data[off], data[off + 1]
            off += 2
            blocks.append(ProfinetDcpBlock(option=opt, suboption=sub, name=c.DCP_OPTIONS.get((opt, sub), f"option_{opt}_{sub}")))
    while off + 4 <= end and len(blocks) < c.MAX_BLOCKS:  # blocks with a length (a Get request's pairs used up the data)
        opt, sub, blen = data[off], data[off + 1], int.from_bytes(data[off + 2 : off + 4], "big")
        body = data[off + 4 : min(off + 4 + blen, end)]
        off += 4 + blen + (blen & 1)  # blocks are padded to an even length
        name = c.DCP_OPTIONS.get((opt, sub), f"option_{opt}_{sub}")
        qual = None
        if with_qualifier and len(body) >= 2 and (opt, sub) != (5, 4):
            qual = int.from_bytes(body[0:2], "big")
            body = body[2:]
        value: str | None = None
        error = None
        if (opt, sub) in ((1, 2), (1, 3)) and len(body) >= 12:
            ip, mask, gw = (socket.inet_ntoa(body[i : i + 4]) for i in (0, 4, 8))
            value = f"{ip}/{mask}/{gw}"
            f.update(ip=ip, netmask=mask, gateway=gw)
        elif (opt, sub) == (1, 1) and len(body) >= 6:
            value = body[0:6].hex(":")
        elif (opt, sub) in ((2, 1), (2, 2), (2, 6)):
            value = _text(body)
            key = {1: "type_of_station", 2: "station_name", 6: None}[sub]
            if key:
                f[key] = value
        elif (opt, sub) == (2, 3) and len(body) >= 4:
            f["vendor_id"], f["device_id"] = int.from_bytes(body[0:2], "big"), int.from_bytes(body[2:4], "big")
            value = f"{body[0:2].hex()}:{body[2:4].hex()}"
        elif (opt, sub) == (2, 4) and body:
            f["device_role"] = body[0]
            value = str(body[0])
        elif (opt, sub) == (5, 4) and len(body) >= 3:
            value = f"{body[0]}.{body[1]}"  # the option.suboption answered
            error = body[2]
            if body[0] == 5 and body[1] in c.CONTROLS:  # the answer to a control (signal, reset): same action as its request
                f.setdefault("control", c.CONTROLS[body[1]])
        elif opt == 5 and sub in c.CONTROLS:
            f["control"] = c.CONTROLS[sub]
            value = body.hex() or None
        elif body:
            value = body.hex()
        if sid == c.SET and qual is not None and opt != 5:
            f["permanent"] = bool(qual & 1)
        blocks.append(ProfinetDcpBlock(option=opt, suboption=sub, name=name, length=blen, qualifier=qual, value=value, error=error))
    return Profinet(
        service="dcp", frame_id=frame_id, dcp_service_id=sid, dcp_service_name=c.DCP_SERVICES.get(sid, f"service_{sid}"),
        dcp_service_type=stype, dcp_service_type_name=c.DCP_SERVICE_TYPES.get(stype, f"type_{stype}"), xid=xid,
        response_delay=delay if stype == 0 else None, dcp_blocks=blocks, **f,  # type: ignore[arg-type]
    )


def action_of(p: Profinet) -> str:
    """event.action of a DCP/RT message."""
    if p.service == "rt_alarm":
        return "alarm"
    if p.dcp_service_id in (c.IDENTIFY, c.HELLO):
        return "identify"
    if p.dcp_service_id == c.GET:
        return "read"
    if p.dcp_service_id == c.SET:
        if p.control in ("factory_reset", "reset_to_factory"):
            return "restart"
        if p.control == "signal":
            return "identify"  # flash the device's LED so a technician finds it
        return "write"
    return "unknown"
