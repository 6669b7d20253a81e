"""MQTT control packet parser: pure functions over bytes, one packet from the front of a buffer; never raises.

Framing. The fixed header (type, flags, remaining length as a 1-4 octet varint) is the only framing
MQTT has. A varint longer than 4 octets leaves no boundary to trust: the buffer is consumed and
reported `invalid_length`. A packet over MAX_MESSAGE octets is decoded from its first octets (topic,
packet id, properties) as soon as they are buffered, reported `too_large`, and the rest is skipped
(`Parsed.extra[SKIP]` octets) without buffering. A body that does not fit its type's layout is
decoded as far as it goes and flagged `malformed`; the remaining length stays the boundary.

MQTT 5 adds properties; which layout applies is the protocol version of the connection's CONNECT,
passed in by the flow (3.1.1 when the CONNECT was not seen).
"""

from __future__ import annotations

import struct
from typing import Final

from pipeline.protocols.mqtt import Mqtt, MqttTopic

from ..base import Parsed
from ..wire import Body
from .constants import (
    AUTH,
    CONNACK,
    CONNECT,
    DISCONNECT,
    FIXED_FLAGS,
    MAX_MESSAGE,
    PAYLOAD_PREVIEW,
    PROPERTIES,
    PUBLISH,
    SECRET_PROPERTIES,
    SUBACK,
    SUBSCRIBE,
    TYPE_NAMES,
    UNSUBACK,
    UNSUBSCRIBE,
    AnomalyCode,
    reason_name,
)

__all__ = ["parse", "preview", "SKIP", "HEAD"]

SKIP: Final = "skip"  # Parsed.extra key: octets of this packet still to come that are to be skipped
HEAD: Final = 4096  # octets of an oversized packet decoded before skipping the rest
_H = struct.Struct(">H")
_I = struct.Struct(">I")


class _Short(Exception):
    """The body ended before a field it declares."""


class _Cur:
    __slots__ = ("b", "o", "end")

    def __init__(self, b: bytes, o: int, end: int) -> None:
        self.b, self.o, self.end = b, o, end

    def left(self) -> int:
        return self.end - self.o

    def take(self, n: int) -> bytes:
        if n < 0 or self.o + n > self.end:
            raise _Short(f"{n} octet(s) needed at offset {self.o}, {max(self.end - self.o, 0)} left")
        v = self.b[self.o : self.o + n]
        self.o += n
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_H.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_I.unpack(self.take(4))[0])

    def varint(self) -> int:
        v, shift = 0, 0
        for _ in range(4):
            x = self.u8()
            v |= (x & 0x7F) << shift
            if not x & 0x80:
                return v
            shift += 7
        raise _Short("variable byte integer longer than 4 octets")

    def binary(self) -> bytes:
        return self.take(self.u16())

    def utf8(self) -> str:
        return self.binary().decode("utf-8", errors="replace")


def preview(data: bytes) -> tuple[str, str, bool]:
    """(text, encoding, truncated) of the first PAYLOAD_PREVIEW octets: UTF-8 when they decode, else hex."""
    head = data[:PAYLOAD_PREVIEW]
    try:
        text = head.decode("utf-8")
        if all(c.isprintable() or c in "\t\r\n" for c in text):
            return text, "utf8", len(data) > PAYLOAD_PREVIEW
    except UnicodeDecodeError:
        if len(data) > PAYLOAD_PREVIEW:  # the cut may split a character
            try:
                text = head[: PAYLOAD_PREVIEW - 3].decode("utf-8")
                if len(text) and all(c.isprintable() or c in "\t\r\n" for c in text):
                    return head.decode("utf-8", errors="ignore"), "utf8", True
            except UnicodeDecodeError:
                pass
    return head.hex(), "hex", len(data) > PAYLOAD_PREVIEW


def _props(c: _Cur, o: Body, key: str = "properties") -> None:
    n = c.varint()
    if n > c.left():
        o.bad(AnomalyCode.MALFORMED_TRAFFIC, f"property length {n} > {c.left()} octet(s) left")
        c.o = c.end
        return
    end = c.o + n
    sub = _Cur(c.b, c.o, end)
    props: dict[str, int | str] = {}
    users: dict[str, str] = {}
    try:
        while sub.left() > 0:
            pid = sub.varint()
            spec = PROPERTIES.get(pid)
            if spec is None:
                o.bad(AnomalyCode.MALFORMED_TRAFFIC, f"unknown property id 0x{pid:02x}")
                break
            name, kind = spec
            if kind == "byte":
                props[name] = sub.u8()
            elif kind == "u16":
                props[name] = sub.u16()
            elif kind == "u32":
                props[name] = sub.u32()
            elif kind == "varint":
                props[name] = sub.varint()
            elif kind == "utf8":
                props[name] = sub.utf8()
            elif kind == "binary":
                v = sub.binary()
                if pid in SECRET_PROPERTIES:
                    props[name] = len(v)  # never the secret itself
                else:
                    t, enc, _ = preview(v)
                    props[name] = t if enc == "utf8" else v[:PAYLOAD_PREVIEW].hex()
            else:
                k = sub.utf8()
                users[k] = sub.utf8()
    except _Short as exc:
        o.bad(AnomalyCode.MALFORMED_TRAFFIC, f"property list: {exc}")
    c.o = end
    if props:
        o.f[key] = props
    if users and key == "properties":
        o.f["user_properties"] = users
    elif users:
        props.update({f"user.{k}": v for k, v in users.items()})
        o.f[key] = props


def _connect(c: _Cur, o: Body) -> int:
    f = o.f
    f["protocol_name"] = c.utf8()
    level = c.u8()
    f["protocol_version"] = level
    flags = c.u8()
    f["username_present"] = bool(flags & 0x80)
    f["password_present"] = bool(flags & 0x40)
    f["will_retain"] = bool(flags & 0x20)
    f["will_qos"] = (flags >> 3) & 3
    f["will_flag"] = bool(flags & 0x04)
    f["clean_session"] = bool(flags & 0x02)
    if flags & 0x01:
        o.bad(AnomalyCode.MALFORMED_TRAFFIC, "CONNECT reserved flag set")
    if f["will_qos"] == 3:
        o.bad(AnomalyCode.INVALID_QOS_LEVEL, "CONNECT will QoS 3")
    f["keepalive"] = c.u16()
    if level >= 5:
        _props(c, o)
    f["client_id"] = c.utf8()
    if flags & 0x04:
        if level >= 5:
            _props(c, o, "will_properties")
        f["will_topic"] = c.utf8()
        msg, _, _ = preview(c.binary())
        f["will_message"] = msg
    if flags & 0x80:
        f["username"] = c.utf8()
    if flags & 0x40:
        c.binary()  # the password: skipped, never stored
    return level


def _topics(c: _Cur, o: Body, subscribe: bool, version: int) -> None:
    topics: list[MqttTopic] = []
    while c.left() > 0:
        t = c.utf8()
        wild = "#" in t or "+" in t
        if subscribe:
            opt = c.u8()
            qos = opt & 3
            if qos == 3:
                o.bad(AnomalyCode.INVALID_QOS_LEVEL, f"SUBSCRIBE QoS 3 for {t!r}")
            if version >= 5:
                topics.append(MqttTopic(topic=t, qos=qos, wildcard=wild, no_local=bool(opt & 4), retain_as_published=bool(opt & 8), retain_handling=(opt >> 4) & 3))
            else:
                topics.append(MqttTopic(topic=t, qos=qos, wildcard=wild))
        else:
            topics.append(MqttTopic(topic=t, wildcard=wild))
    o.f["topics"] = topics
    if any("#" in x.topic for x in topics):
        o.f["wildcard"] = "#"
    elif any(x.wildcard for x in topics):
        o.f["wildcard"] = "+"
    if not topics:
        o.bad(AnomalyCode.MALFORMED_TRAFFIC, f"{'SUBSCRIBE' if subscribe else 'UNSUBSCRIBE'} without a topic filter")


def _body(mtype: int, flags: int, c: _Cur, o: Body, version: int) -> None:
    f = o.f
    v5 = version >= 5
    if mtype == CONNECT:
        _connect(c, o)
    elif mtype == CONNACK:
        f["session_present"] = bool(c.u8() & 1)
        rc = c.u8()
        f["reason_code"], f["reason_name"] = rc, reason_name(CONNACK, rc, version)
        if v5 and c.left():
            _props(c, o)
    elif mtype == PUBLISH:
        f["topic"] = c.utf8()
        if (flags >> 1) & 3:
            f["packet_id"] = c.u16()
        if v5:
            _props(c, o)
        body = c.take(c.left())
        text, enc, trunc = preview(body)
        f["payload"], f["payload_encoding"], f["payload_truncated"] = text, enc, trunc
        f["_payload_start"] = c.o - len(body)
    elif mtype in (4, 5, 6, 7):
        f["packet_id"] = c.u16()
        if v5 and c.left():
            rc = c.u8()
            f["reason_code"], f["reason_name"] = rc, reason_name(mtype, rc, version)
            if c.left():
                _props(c, o)
    elif mtype in (SUBSCRIBE, UNSUBSCRIBE):
        f["packet_id"] = c.u16()
        if v5:
            _props(c, o)
        _topics(c, o, mtype == SUBSCRIBE, version)
    elif mtype in (SUBACK, UNSUBACK):
        f["packet_id"] = c.u16()
        if v5:
            _props(c, o)
        codes = list(c.take(c.left()))
        if codes:
            f["reason_codes"] = codes
    elif mtype in (DISCONNECT, AUTH):
        if c.left():
            rc = c.u8()
            f["reason_code"], f["reason_name"] = rc, reason_name(mtype, rc, version)
            if c.left():
                _props(c, o)
    if c.left() > 0 and mtype != PUBLISH:
        o.bad(AnomalyCode.MALFORMED_TRAFFIC, f"{TYPE_NAMES.get(mtype, mtype)}: {c.left()} trailing octet(s)")


def _header(data: memoryview | bytes) -> tuple[int, int] | None | str:
    """(remaining length, header size), None when more octets are needed, 'bad' on a varint over 4 octets."""
    v, shift = 0, 0
    for i in range(1, 5):
        if i >= len(data):
            return None
        x = data[i]
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            return v, i + 1
        shift += 7
    return "bad"


def parse(data: memoryview | bytes, version: int | None = None) -> Parsed:
    """One MQTT control packet from the front of `data` (see the module docstring)."""
    n = len(data)
    if n < 2:
        return Parsed(consumed=0, needed=2 - n)
    h = _header(data)
    if h is None:
        return Parsed(consumed=0, needed=1)
    if h == "bad":
        return Parsed(consumed=n, anomaly=AnomalyCode.INVALID_LENGTH.value, anomaly_message="remaining length longer than 4 octets")
    assert isinstance(h, tuple)
    remaining, hsize = h
    total = hsize + remaining
    oversized = total > MAX_MESSAGE
    if oversized:
        if n < min(total, hsize + HEAD):
            return Parsed(consumed=0, needed=min(total, hsize + HEAD) - n)
        avail = min(n, total)
    else:
        if n < total:
            return Parsed(consumed=0, needed=total - n)
        avail = total
    b0 = data[0]
    mtype, flags = b0 >> 4, b0 & 0x0F
    ver = version or 4
    buf = bytes(data[:avail])
    o = Body()
    f = o.f
    f["remaining_length"] = remaining
    name = TYPE_NAMES.get(mtype)
    if name is None or (mtype == AUTH and ver < 5):
        o.bad(AnomalyCode.UNASSIGNED_MSG_TYPE, f"control packet type {mtype}" + ("" if name is None else " (AUTH before MQTT 5)"))
    if mtype == PUBLISH:
        f["dup"], f["qos"], f["retain"] = bool(flags & 8), (flags >> 1) & 3, bool(flags & 1)
        if f["qos"] == 3:
            o.bad(AnomalyCode.INVALID_QOS_LEVEL, "PUBLISH QoS 3")
    else:
        f["dup"], f["qos"], f["retain"] = bool(flags & 8), (flags >> 1) & 3, bool(flags & 1)
        want = FIXED_FLAGS.get(mtype)
        if want is not None and flags != want:
            o.bad(AnomalyCode.INVALID_FLAGS, f"{name} with flags 0x{flags:x}, 0x{want:x} expected")
    cur = _Cur(buf, hsize, avail)
    if name is not None:
        try:
            _body(mtype, flags, cur, o, ver)
        except _Short as exc:
            if not oversized:
                o.bad(AnomalyCode.MALFORMED_TRAFFIC, f"{name}: {exc}")
    start = f.pop("_payload_start", None)
    if mtype == PUBLISH:
        f["payload_length"] = total - int(start) if isinstance(start, int) else None
        if oversized:
            f["payload_truncated"] = True
    if oversized:
        o.bad(AnomalyCode.TOO_LARGE, f"{name or mtype} of {total} octets > {MAX_MESSAGE}: {total - avail} octet(s) skipped")
    pdu = Mqtt(message_type=mtype, message_type_name=name or f"reserved_{mtype}", **{k: v for k, v in f.items() if v is not None})  # type: ignore[arg-type]
    extra: dict[str, object] = {SKIP: total - avail} if total > avail else {}
    return Parsed(consumed=avail, pdu=pdu, anomaly=o.code, anomaly_message=o.msg, extra=extra)
