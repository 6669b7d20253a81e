"""What every decoder of a framed TCP byte stream shares: buffering, resync, gaps, close, pairing.

A protocol subclasses `StreamFlow`, giving `parse` (one PDU from the front of a buffer, as
`Parsed`) and `handle` (turn a parsed PDU into events); the base does the rest the same way for
every protocol. `Pending` pairs requests with responses, bounded, with one flood signal per episode.
A decoder whose framing does not fit (one message per datagram) uses `EventNumbering` alone.
"""

from __future__ import annotations

import datetime as dt
import enum
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pipeline.schema import Anomaly, Event

from .base import Direction, FrameMeta, Parsed, make_event

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

# Events emitted by close() get seq numbers from here: the closing frame may belong to another flow.
CLOSE_SEQ = 900

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


def time_ns(meta: FrameMeta) -> int:
    """Capture time in integer nanoseconds (exact: no float rounding in durations)."""
    t = meta.time
    return ((t - (_EPOCH if t.tzinfo else _EPOCH_NAIVE)) // _US) * 1000


class _Slot(Generic[R]):
    __slots__ = ("item", "done")

    def __init__(self, item: R) -> None:
        self.item = item
        self.done = False


class Pending(Generic[K, R]):
    """Requests awaiting their response: FIFO per key (ids reused while pending), at most `limit`.

    `add` drops the oldest request past the limit and returns True once per flood episode (the
    episode ends when the backlog falls below half the limit), so a master that never gets answers
    raises one anomaly, not one per request.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_key: dict[K, deque[_Slot[R]]] = {}
        self._order: deque[_Slot[R]] = deque()  # every pending slot, oldest first (lazy removal)
        self._n = 0
        self._flooded = False

    def __len__(self) -> int:
        return self._n

    def add(self, key: K, item: R, replace: bool = False) -> bool:
        """Queue `item` under `key` (after any pending one, or instead of it with `replace`); True when a flood starts."""
        if replace:
            self._forget(key)
        slot = _Slot(item)
        self._by_key.setdefault(key, deque()).append(slot)
        self._order.append(slot)
        self._n += 1
        self._compact()
        if self._n <= self.limit:
            return False
        self._drop_oldest()
        started = not self._flooded
        self._flooded = True
        return started

    def peek(self, key: K) -> R | None:
        """The request `match` would return, left pending (a response that does not end the exchange)."""
        q = self._by_key.get(key)
        return q[0].item if q else None

    def match(self, key: K) -> R | None:
        q = self._by_key.get(key)
        if not q:
            return None
        slot = q.popleft()
        if not q:
            del self._by_key[key]
        slot.done = True
        self._n -= 1
        if self._flooded and self._n < self.limit // 2:
            self._flooded = False
        self._compact()
        return slot.item

    def clear(self) -> None:
        self._by_key.clear()
        self._order.clear()
        self._n = 0
        self._flooded = False

    def _compact(self) -> None:
        if len(self._order) > 4 * self.limit:  # keep the lazy order queue bounded
            self._order = deque(s for s in self._order if not s.done)

    def _forget(self, key: K) -> None:
        q = self._by_key.pop(key, None)
        for slot in q or ():
            slot.done = True
            self._n -= 1

    def _drop_oldest(self) -> None:
        while self._order:
            old = self._order.popleft()
            if old.done:
                continue
            old.done = True
            self._n -= 1
            for key, q in self._by_key.items():
                if q and q[0] is old:
                    q.popleft()
                    if not q:
                        del self._by_key[key]
                    break
            return


@dataclass(slots=True)
class Side:
    """One direction of the stream: bytes not yet framed, and whether it still looks like the protocol."""

    buf: bytearray = field(default_factory=bytearray)
    bad: int = 0  # bad frames in a row
    stopped: bool = False


class EventNumbering:
    """Events of one flow: per-frame numbering (ids are file + frame + index) and the envelope helpers."""

    DATASET: ClassVar[str]
    INVALID: ClassVar[str] = "invalid_pdu"
    ERROR: ClassVar[str | None] = None  # anomaly code of a decoder bug; INVALID when None

    _seq_frame: int = -1
    _seq: int = 0

    def next_seq(self, meta: FrameMeta, close: bool = False) -> int:
        """Index of the next event within this frame (ids are file + frame + index)."""
        if meta.frame != self._seq_frame:
            self._seq_frame = meta.frame
            self._seq = CLOSE_SEQ if close else 0
        elif close and self._seq < CLOSE_SEQ:
            self._seq = CLOSE_SEQ
        s = self._seq
        self._seq += 1
        return s

    def emit(self, meta: FrameMeta, direction: Direction, **kw: Any) -> Event:
        """One message event of this protocol (make_event with this flow's dataset and numbering)."""
        return make_event(meta, direction, dataset=self.DATASET, seq=self.next_seq(meta), **kw)

    def anomaly(self, meta: FrameMeta, direction: Direction, code: str | enum.Enum, message: str | None,
                close: bool = False, **protocol: Any) -> Event:
        value = code.value if isinstance(code, enum.Enum) else code
        return make_event(
            meta, direction, dataset=self.DATASET, seq=self.next_seq(meta, close), action="anomaly",
            anomaly=Anomaly(code=value, message=message), **protocol,
        )

    def error(self, meta: FrameMeta, direction: Direction, exc: Exception) -> Event:
        """The anomaly a decoder bug becomes: data, not a crash."""
        return self.anomaly(meta, direction, self.ERROR or self.INVALID, f"decoder error: {type(exc).__name__}: {exc}")


class StreamFlow(EventNumbering, ABC):
    """Base of a per-connection decoder (a `FlowDecoder`) for a protocol framed over a TCP stream."""

    # After this many bad frames in a row (no good PDU between), a direction is not this protocol
    # (TLS, RPC, a scanner): report NOT_PROTOCOL once and stop decoding that direction. 0 disables.
    MAX_BAD: ClassVar[int] = 4
    TRUNCATED: ClassVar[str] = "truncated_pdu"
    NOT_PROTOCOL: ClassVar[str] = "not_protocol"
    UNIT: ClassVar[str] = "PDU"  # how messages are called in anomaly texts (ADU, APDU, TPKT, ...)
    HEADER: ClassVar[str] = "PDU"  # how their headers are called (MBAP, APCI, ...)
    # Anomaly texts; a protocol may word them its own way (fields: nbytes, held, unit, bad, header, left).
    GAP_MESSAGE: ClassVar[str] = "{nbytes} byte(s) lost in capture: dropped a partial {unit} of {held} byte(s)"
    CLOSE_MESSAGE: ClassVar[str] = "connection ended with {held} byte(s) of a partial {unit}"
    STOP_MESSAGE: ClassVar[str] = "{bad} bad {header} headers in a row: stopped decoding this direction"
    DATAGRAM_MESSAGE: ClassVar[str] = "datagram ends inside a {unit} ({left} byte(s) left)"
    # Whether each feed is a whole datagram (what is left of it is a cut PDU, never continued by the
    # next one): None decides by the connection's transport.
    DATAGRAMS: ClassVar[bool | None] = None
    SIDE: ClassVar[type[Side]] = Side  # a protocol may keep more per-direction state in a subclass

    def __init__(self) -> None:
        self.sides = (self.SIDE(), self.SIDE())
        self._seq_frame = -1
        self._seq = 0
        self._last_meta: FrameMeta | None = None

    # ------------------------------------------------------------ what a protocol provides

    @abstractmethod
    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        """One PDU from the front of `data`; `consumed=0` when more bytes are needed. Never raises."""

    @abstractmethod
    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool | None:
        """Append the events of one parsed PDU to `out`; False when it was a bad frame (see MAX_BAD),
        None when it says nothing either way (a corrupted frame that is still this protocol)."""

    def held(self, direction: Direction) -> int:
        """Bytes of a partial message held for `direction` (reported by gap and close)."""
        return len(self.sides[direction].buf)

    def drop(self, direction: Direction) -> None:
        """Forget the partial message of `direction` (after a gap, a decoder error, at close)."""
        self.sides[direction].buf.clear()

    def on_close(self, meta: FrameMeta | None, out: list[Event]) -> None:
        """Connection ended: e.g. forget pending requests. Buffers are handled by the base."""

    def protocol_fields(self, direction: Direction) -> dict[str, Any]:
        """Protocol fields to put on anomalies the base raises (none by default)."""
        return {}

    # ------------------------------------------------------------ FlowDecoder

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        try:
            return self._feed(data, direction, meta)
        except Exception as exc:  # a decoder never raises; a bug becomes data, not a crash
            self.drop(direction)
            return [self.error(meta, direction, exc)]

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        """Bytes were lost in `direction`: drop the partial PDU they cut, keep pending requests."""
        self._last_meta = meta
        side = self.sides[direction]
        out: list[Event] = []
        held = self.held(direction)
        if held and not side.stopped:
            msg = self.GAP_MESSAGE.format(nbytes=nbytes, held=held, unit=self.UNIT)
            out.append(self.anomaly(meta, direction, self.TRUNCATED, msg, **self.protocol_fields(direction)))
        self.drop(direction)
        side.bad = 0
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        meta = meta or self._last_meta
        out: list[Event] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            held = self.held(direction)
            if held and not self.sides[direction].stopped and meta is not None:
                msg = self.CLOSE_MESSAGE.format(held=held, unit=self.UNIT)
                out.append(self.anomaly(meta, direction, self.TRUNCATED, msg, close=True, **self.protocol_fields(direction)))
            self.drop(direction)
        self.on_close(meta, out)
        return out

    # ------------------------------------------------------------ framing

    def _feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        self._last_meta = meta
        side = self.sides[direction]
        if side.stopped or not len(data):
            return []
        if side.buf:
            side.buf += data
            work = memoryview(bytes(side.buf))
            side.buf.clear()
        else:
            work = data
        out: list[Event] = []
        off, end = 0, len(work)
        while off < end:
            p = self.parse(work[off:], direction)
            if p.consumed <= 0:
                break
            off += min(p.consumed, end - off)
            good = self.handle(p, direction, meta, out)
            if good:
                side.bad = 0
                continue
            if good is None:
                continue
            side.bad += 1
            if self.MAX_BAD and side.bad >= self.MAX_BAD:
                side.stopped = True
                self.drop(direction)
                msg = self.STOP_MESSAGE.format(bad=side.bad, header=self.HEADER)
                out.append(self.anomaly(meta, direction, self.NOT_PROTOCOL, msg))
                return out
        if off < end:
            datagrams = self.DATAGRAMS if self.DATAGRAMS is not None else meta.conn.transport == "udp"
            if datagrams:
                msg = self.DATAGRAM_MESSAGE.format(unit=self.UNIT, left=end - off)
                out.append(self.anomaly(meta, direction, self.TRUNCATED, msg, **self.protocol_fields(direction)))
            else:
                side.buf += work[off:]
        return out
