"""BACnet/IP per-flow state: one event per datagram, confirmed requests paired with their acks by
invoke id, segmented confirmed requests and complex acks reassembled and decoded whole."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from pipeline.protocols.bacnet import Bacnet
from pipeline.schema import Event

from ..base import Direction, FrameMeta
from ..stream import EventNumbering, Pending, time_ns
from .constants import MAX_PENDING, MAX_REASSEMBLY, MAX_SEGMENTED, SEGMENT_TIMEOUT_NS, AnomalyCode, action_of
from .parser import decode_segmented, parse

__all__ = ["BacnetFlow", "Reassembly"]

DATASET = "bacnet"
_FAILURES = frozenset({5, 6, 7})  # error, reject, abort


@dataclass(slots=True)
class _Request:
    frame: int
    time_ns: int
    action: str
    service: int | None


@dataclass(slots=True)
class _Message:
    """A segmented message being reassembled: the parameter slices of its segments so far."""

    invoke_id: int
    last_ns: int  # capture time of the latest segment
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    failed: bool = False  # already reported: later segments are absorbed until the last one

    @property
    def next_seq(self) -> int:
        return len(self.chunks) & 0xFF


# (direction of the sender, invoke id, APDU type): a requester's segmented request (type 0) and a
# responder's segmented ack (type 3) of the same transaction never share a key.
_Key = tuple[int, int, int]


class Reassembly:
    """Segmented messages of one flow, bounded in number, size and time; problems come back as text.

    Sequence numbers must follow one another (mod 256). A segment repeating one already held with
    the same bytes is a retransmission (a lost SegmentACK makes the sender resend its window) and
    is ignored; any other gap or reordering abandons the message, as a BACnet receiver does.
    """

    def __init__(self, max_messages: int = MAX_SEGMENTED, max_bytes: int = MAX_REASSEMBLY, timeout_ns: int = SEGMENT_TIMEOUT_NS) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.timeout_ns = timeout_ns
        self._msgs: dict[_Key, _Message] = {}

    def __len__(self) -> int:
        return len(self._msgs)

    def segment(self, key: _Key, seq: int, more: bool, data: bytes, now: int) -> tuple[list[bytes] | None, list[str]]:
        """Add one segment; returns (the slices of the whole message when this completed it, problems)."""
        problems: list[str] = []
        msg = self._msgs.get(key)
        if msg is not None and not msg.failed and msg.chunks:
            back = (msg.next_seq - seq) & 0xFF
            if 0 < back <= len(msg.chunks) and msg.chunks[len(msg.chunks) - back] == data:
                msg.last_ns = now
                return None, problems  # retransmission of a segment already held
        if seq == 0:
            if msg is not None and not msg.failed:
                problems.append(f"invoke id {key[1]}: a new segmented message began after {len(msg.chunks)} segment(s) of an unfinished one; "
                                "the unfinished one is dropped")
            msg = _Message(key[1], now)
            self._msgs.pop(key, None)
            self._msgs[key] = msg
            if len(self._msgs) > self.max_messages:
                old_key = min((k for k in self._msgs if k != key), key=lambda k: self._msgs[k].last_ns)
                old = self._msgs.pop(old_key)
                if not old.failed:
                    problems.append(f"more than {self.max_messages} segmented messages in reassembly: dropped the oldest "
                                    f"(invoke id {old.invoke_id}, {len(old.chunks)} segment(s))")
        elif msg is None:
            msg = self._msgs[key] = _Message(key[1], now, failed=True)
            problems.append(f"invoke id {key[1]}: segment {seq} without the segments before it; not reassembled")
        elif not msg.failed and seq != msg.next_seq:
            msg.failed = True
            problems.append(f"invoke id {key[1]}: segment {seq} where {msg.next_seq} was expected; not reassembled")
        msg.last_ns = now
        if not msg.failed:
            if msg.size + len(data) > self.max_bytes:
                msg.failed = True
                problems.append(f"invoke id {key[1]}: segmented message larger than {self.max_bytes} bytes; not reassembled")
                msg.chunks.clear()
            else:
                msg.chunks.append(data)
                msg.size += len(data)
        if more:
            return None, problems
        del self._msgs[key]
        return (None if msg.failed else msg.chunks), problems

    def expire(self, now: int) -> list[str]:
        """Drop messages whose next segment is overdue; a problem for each not yet reported."""
        late = [k for k, m in self._msgs.items() if now - m.last_ns > self.timeout_ns]
        out = []
        for k in late:
            m = self._msgs.pop(k)
            if not m.failed:
                out.append(f"invoke id {m.invoke_id}: no segment for {self.timeout_ns // 10**9} s after {len(m.chunks)} segment(s); "
                           "not reassembled")
        return out

    def end(self, requester: int, invoke_id: int) -> None:
        """The transaction ended (abort, error, reject): forget its partial request and ack."""
        self._msgs.pop((requester, invoke_id, 0), None)
        self._msgs.pop((1 - requester, invoke_id, 3), None)

    def clear(self) -> list[str]:
        out = [f"invoke id {m.invoke_id}: flow ended after {len(m.chunks)} segment(s) of a segmented message; not reassembled"
               for m in self._msgs.values() if not m.failed]
        self._msgs.clear()
        return out


class BacnetFlow(EventNumbering):
    """The datagrams between two BACnet/IP endpoints. `feed` one datagram at a time."""

    DATASET = DATASET
    MAX_PENDING = MAX_PENDING
    INVALID = AnomalyCode.INVALID_APDU.value

    def __init__(self) -> None:
        # (direction of the requester, invoke id) -> request; a reused invoke id replaces the request
        self._pending: Pending[tuple[int, int], _Request] = Pending(self.MAX_PENDING)
        self._segments = Reassembly()
        self._last: tuple[FrameMeta, Direction] | None = None

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises
            return [self.error(meta, direction, exc)]

    def close(self, meta: FrameMeta | None) -> list[Event]:
        self._pending.clear()
        problems = self._segments.clear()
        if self._last is None:
            return []
        last_meta, direction = self._last
        meta = meta or last_meta
        return [self.anomaly(meta, direction, AnomalyCode.REASSEMBLY_FAILED, m, close=True) for m in problems]

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        if not len(data):
            return []
        self._last = (meta, direction)
        p = parse(data)
        pdu = p.pdu
        out: list[Event] = []
        if not isinstance(pdu, Bacnet):
            out.append(self.anomaly(meta, direction, p.anomaly or AnomalyCode.INVALID_BVLC.value, p.anomaly_message))
            return out
        now = time_ns(meta)
        late = self._segments.expire(now) if len(self._segments) else []
        action = action_of(pdu.service_name) if pdu.apdu_type in (0, 1) else "unknown"
        if pdu.network_message_type is not None:
            action = "identify" if pdu.network_message_type in (0x00, 0x01, 0x02, 0x12, 0x13) else "unknown"
        elif pdu.apdu_type is None:
            action = "unknown"
        outcome = None
        duration = None
        unsolicited = False
        if pdu.apdu_type == 0 and pdu.invoke_id is not None and not pdu.sequence_number:
            if self._pending.add((int(direction), pdu.invoke_id), _Request(meta.frame, now, action, pdu.service), replace=True):
                out.append(self.anomaly(meta, direction, AnomalyCode.FLOODED, f"more than {self.MAX_PENDING} confirmed requests without an answer: oldest dropped"))
        elif pdu.apdu_type in (2, 3, 5, 6, 7) and pdu.invoke_id is not None:
            invoke_id = pdu.invoke_id
            key = (1 - int(direction), invoke_id)
            final = not pdu.more_follows
            req = self._pending.match(key) if final else self._pending.peek(key)
            if pdu.apdu_type == 7 and not pdu.from_server:
                req = self._pending.match((int(direction), pdu.invoke_id))  # client aborted its own request
            if req is not None:
                action = req.action
                duration = max(time_ns(meta) - req.time_ns, 0)
                pdu = msgspec.structs.replace(pdu, request_frame=req.frame)
            else:
                action = action_of(pdu.service_name) if pdu.service_name else "unknown"
                unsolicited = pdu.apdu_type != 7 and not pdu.sequence_number
            outcome = "failure" if pdu.apdu_type in _FAILURES else "success"
            if pdu.apdu_type in _FAILURES and len(self._segments):
                requester = int(direction) if pdu.apdu_type == 7 and not pdu.from_server else 1 - int(direction)
                self._segments.end(requester, invoke_id)
        problems: list[str] = []
        invalid: str | None = None
        segment = p.extra.get("segment")
        if isinstance(segment, bytes) and pdu.invoke_id is not None and pdu.apdu_type is not None:
            chunks, problems = self._segments.segment((int(direction), pdu.invoke_id, pdu.apdu_type), pdu.sequence_number or 0,
                                                      bool(pdu.more_follows), segment, now)
            if chunks is not None and pdu.service_name is not None:
                fields, invalid = decode_segmented(pdu.apdu_type, pdu.service_name, b"".join(chunks))
                pdu = msgspec.structs.replace(pdu, segment_count=len(chunks), **fields)
        out.append(self.emit(meta, direction, action=action, outcome=outcome, duration=duration, bacnet=pdu))
        if p.anomaly:
            out.append(self.anomaly(meta, direction, p.anomaly, p.anomaly_message, bacnet=_header(pdu)))
        if invalid:
            out.append(self.anomaly(meta, direction, AnomalyCode.INVALID_APDU, f"reassembled {pdu.segment_count} segments: {invalid}", bacnet=_header(pdu)))
        for m in late:  # another message of this flow: the texts name its invoke id
            out.append(self.anomaly(meta, direction, AnomalyCode.REASSEMBLY_FAILED, m))
        for m in problems:
            out.append(self.anomaly(meta, direction, AnomalyCode.REASSEMBLY_FAILED, m, bacnet=_header(pdu)))
        if unsolicited:
            out.append(self.anomaly(meta, direction, AnomalyCode.UNSOLICITED_RESPONSE, f"no pending confirmed request with invoke id {pdu.invoke_id}", bacnet=_header(pdu)))
        return out


def _header(pdu: Bacnet) -> Bacnet:
    return Bacnet(bvlc_function=pdu.bvlc_function, bvlc_function_name=pdu.bvlc_function_name, apdu_type=pdu.apdu_type,
                  apdu_type_name=pdu.apdu_type_name, invoke_id=pdu.invoke_id, service=pdu.service, service_name=pdu.service_name)
