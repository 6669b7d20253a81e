"""What every decoder of a framed TCP byte stream shares: buffering, resync, gaps, close, pairing.

A protocol subclasses `StreamFlow`, giving `parse` (one PDU from the front of a buffer, as
`Parsed`) and `handle` (turn a parsed PDU into events); the base does the rest the same way for
every protocol. `Pending` pairs requests with responses, bounded, with one flood signal per episode.
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

    def add(self, key: K, item: R) -> bool:
        slot = _Slot(item)
        self._by_key.setdefault(key, deque()).append(slot)
        self._order.append(slot)
        self._n += 1
        if self._n <= self.limit:
            return False
        self._drop_oldest()
        started = not self._flooded
        self._flooded = True
        return started

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
        if len(self._order) > 4 * self.limit:  # keep the lazy order queue bounded
            self._order = deque(s for s in self._order if not s.done)
        return slot.item

    def clear(self) -> None:
        self._by_key.clear()
        self._order.clear()
        self._n = 0
        self._flooded = False

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


class StreamFlow(ABC):
    """Base of a per-connection decoder (a `FlowDecoder`) for a protocol framed over a TCP stream."""

    DATASET: ClassVar[str]
    # After this many bad frames in a row (no good PDU between), a direction is not this protocol
    # (TLS, RPC, a scanner): report NOT_PROTOCOL once and stop decoding that direction. 0 disables.
    MAX_BAD: ClassVar[int] = 4
    TRUNCATED: ClassVar[str] = "truncated_pdu"
    INVALID: ClassVar[str] = "invalid_pdu"
    NOT_PROTOCOL: ClassVar[str] = "not_protocol"
    UNIT: ClassVar[str] = "PDU"  # how messages are called in anomaly texts (ADU, APDU, TPKT, ...)
    HEADER: ClassVar[str] = "PDU"  # how their headers are called (MBAP, APCI, ...)

    def __init__(self) -> None:
        self.sides = (Side(), Side())
        self._seq_frame = -1
        self._seq = 0
        self._last_meta: FrameMeta | None = None

    # ------------------------------------------------------------ what a protocol provides

    @abstractmethod
    def parse(self, data: memoryview, direction: Direction) -> Parsed:
        """One PDU from the front of `data`; `consumed=0` when more bytes are needed. Never raises."""

    @abstractmethod
    def handle(self, p: Parsed, direction: Direction, meta: FrameMeta, out: list[Event]) -> bool:
        """Append the events of one parsed PDU to `out`; False when it was a bad frame (see MAX_BAD)."""

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
            self.sides[direction].buf.clear()
            return [self.anomaly(meta, direction, self.INVALID, f"decoder error: {type(exc).__name__}: {exc}")]

    def gap(self, direction: Direction, nbytes: int, meta: FrameMeta) -> list[Event]:
        """Bytes were lost in `direction`: drop the partial PDU they cut, keep pending requests."""
        self._last_meta = meta
        side = self.sides[direction]
        out: list[Event] = []
        if side.buf and not side.stopped:
            msg = f"{nbytes} byte(s) lost in capture: dropped a partial {self.UNIT} of {len(side.buf)} byte(s)"
            out.append(self.anomaly(meta, direction, self.TRUNCATED, msg, **self.protocol_fields(direction)))
        side.buf.clear()
        side.bad = 0
        return out

    def close(self, meta: FrameMeta | None) -> list[Event]:
        meta = meta or self._last_meta
        out: list[Event] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            side = self.sides[direction]
            if side.buf and not side.stopped and meta is not None:
                msg = f"connection ended with {len(side.buf)} byte(s) of a partial {self.UNIT}"
                out.append(self.anomaly(meta, direction, self.TRUNCATED, msg, close=True, **self.protocol_fields(direction)))
            side.buf.clear()
        self.on_close(meta, out)
        return out

    # ------------------------------------------------------------ helpers for subclasses

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
            if self.handle(p, direction, meta, out):
                side.bad = 0
                continue
            side.bad += 1
            if self.MAX_BAD and side.bad >= self.MAX_BAD:
                side.stopped = True
                side.buf.clear()
                msg = f"{side.bad} bad {self.HEADER} headers in a row: stopped decoding this direction"
                out.append(self.anomaly(meta, direction, self.NOT_PROTOCOL, msg))
                return out
        if off < end:
            side.buf += work[off:]
        return out
