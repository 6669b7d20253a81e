"""TCP stream reassembly: each direction's bytes delivered once, in order, with bounded buffering of gaps."""

from __future__ import annotations

from .packet import FIN, RST, SYN

MASK = 0xFFFFFFFF
HALF = 0x80000000

# Out-of-order data held per direction while waiting for a gap to fill. Past either bound the gap is
# declared lost: we skip to the earliest buffered byte and count the gap, so one lost segment cannot
# stall a stream (or grow memory) forever.
MAX_PENDING_BYTES = 1 << 20
MAX_PENDING_SEGMENTS = 1024


def rel(a: int, b: int) -> int:
    """Signed distance from sequence number b to a, modulo 2^32 (negative when a is before b)."""
    return ((a - b + HALF) & MASK) - HALF


Chunk = bytes | memoryview


class HalfStream:
    """One direction of a TCP connection: `next_seq` is the first byte not yet delivered."""

    __slots__ = (
        "next_seq", "pending", "pending_bytes", "fin_seq", "closed",
        "gaps", "missed_bytes", "skipped", "delivered", "max_pending_bytes", "max_pending_segments",
    )  # fmt: skip

    def __init__(self, max_pending_bytes: int = MAX_PENDING_BYTES, max_pending_segments: int = MAX_PENDING_SEGMENTS) -> None:
        self.next_seq: int | None = None  # None until the first SYN or data segment tells us where the stream starts
        self.pending: dict[int, bytes] = {}  # absolute seq -> bytes, for segments ahead of next_seq
        self.pending_bytes = 0
        self.fin_seq: int | None = None
        self.closed = False
        self.gaps = 0
        self.missed_bytes = 0
        self.skipped = 0  # bytes skipped by the last call; the caller reads and clears it to notify the decoder
        self.delivered = 0
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_segments = max_pending_segments

    def segment(self, seq: int, flags: int, payload: memoryview) -> Chunk | None:
        """Accept one segment sent in this direction; return the bytes that became deliverable (None if none)."""
        if self.closed:
            return None
        if flags & SYN:
            if self.next_seq is None or not self.delivered:
                self.next_seq = (seq + 1) & MASK
            seq = (seq + 1) & MASK  # SYN occupies one sequence number; any data (TCP Fast Open) follows it
        n = len(payload)
        if self.next_seq is None:
            self.next_seq = seq  # seen mid-stream: start at the first byte we have
        if flags & FIN:
            self.fin_seq = (seq + n) & MASK
        if n == 0:
            if flags & FIN:
                return self._drain(None)
            return None
        d = rel(seq, self.next_seq)
        if d > 0:
            self._hold(seq, payload)
            if self.pending_bytes > self.max_pending_bytes or len(self.pending) > self.max_pending_segments:
                first = min(self.pending, key=self._offset)
                self._skip(rel(first, self.next_seq))
                return self._drain(None)
            return None
        if d + n <= 0:
            return None  # retransmission of bytes already delivered
        data: Chunk = payload[-d:] if d else payload
        self.next_seq = (seq + n) & MASK
        self.delivered += n + d
        if self.pending or self.fin_seq is not None:
            return self._drain(data)
        return data

    def peer_ack(self, ack: int) -> Chunk | None:
        """The other side acknowledged up to `ack`: bytes before it that we never saw will never come (capture loss)."""
        if self.next_seq is None or self.closed:
            return None
        if self.fin_seq is not None and rel(ack, self.fin_seq) > 0:
            ack = self.fin_seq  # the ack also covers our FIN, which is a sequence number but not a byte
        d = rel(ack, self.next_seq)
        if d <= 0 or d > MAX_PENDING_BYTES * 64:  # not ahead, or too far ahead to be this stream's ack
            return None
        if self.pending:
            first = min(self.pending, key=self._offset)
            if 0 < rel(first, self.next_seq) < d:
                d = rel(first, self.next_seq)  # resume at buffered data: it is real, only the hole is lost
        self._skip(d)
        return self._drain(None)

    def flush(self) -> Chunk | None:
        """The connection is over: give up on open gaps and deliver whatever was buffered after them."""
        if not self.pending or self.next_seq is None:
            return None
        first = min(self.pending, key=self._offset)
        self._skip(rel(first, self.next_seq))
        out = self._drain(None)
        self.closed = True
        return out

    def reset(self) -> None:
        """RST: nothing after it belongs to this connection."""
        self.closed = True
        self.pending.clear()
        self.pending_bytes = 0

    # ------------------------------------------------------------ internals

    def _offset(self, s: int) -> int:
        return rel(s, self.next_seq or 0)

    def _hold(self, seq: int, payload: memoryview) -> None:
        old = self.pending.get(seq)
        if old is not None:
            if len(old) >= len(payload):
                return  # same start, no new bytes: a retransmission of buffered data
            self.pending_bytes -= len(old)
        self.pending[seq] = bytes(payload)  # copy: the frame buffer is not ours to keep
        self.pending_bytes += len(payload)

    def _skip(self, n: int) -> None:
        if n <= 0 or self.next_seq is None:
            return
        self.next_seq = (self.next_seq + n) & MASK
        self.gaps += 1
        self.missed_bytes += n
        self.skipped += n

    def _drain(self, head: Chunk | None) -> Chunk | None:
        """Append buffered segments that now continue the stream; each byte at most once (first copy wins)."""
        parts: list[Chunk] = [] if head is None else [head]
        pending = self.pending
        nxt = self.next_seq
        assert nxt is not None
        while pending:
            best = None
            best_d = 0
            for s in pending:
                d = rel(s, nxt)
                if d <= 0 and (best is None or d > best_d):
                    best, best_d = s, d
            if best is None:
                break
            buf = pending.pop(best)
            self.pending_bytes -= len(buf)
            if best_d + len(buf) <= 0:
                continue  # wholly covered by bytes already delivered
            parts.append(buf[-best_d:] if best_d else buf)
            nxt = (best + len(buf)) & MASK
            self.delivered += len(buf) + best_d
        self.next_seq = nxt
        if self.fin_seq is not None and nxt == self.fin_seq:
            self.next_seq = (nxt + 1) & MASK  # FIN occupies one sequence number
            self.closed = True
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


class TcpStream:
    """Both directions of one connection, indexed by is_orig (0 = responder, 1 = originator)."""

    __slots__ = ("halves", "rst")

    def __init__(self, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self.halves = (HalfStream(max_pending_bytes), HalfStream(max_pending_bytes))
        self.rst = False

    def segment(self, is_orig: bool, seq: int, ack: int, flags: int, payload: memoryview) -> tuple[Chunk | None, Chunk | None]:
        """Returns (bytes now deliverable in this direction, bytes now deliverable in the other direction)."""
        if flags & RST:
            self.rst = True
            mine = self.halves[is_orig].flush()
            theirs = self.halves[not is_orig].flush()
            for h in self.halves:
                h.reset()
            return mine, theirs
        half = self.halves[is_orig]
        other = None
        if flags & 0x10:  # ACK: may reveal bytes of the other direction lost by the capture
            o = self.halves[not is_orig]
            if o.next_seq is not None and not o.closed:
                other = o.peer_ack(ack)
        return half.segment(seq, flags, payload), other

    @property
    def gaps(self) -> int:
        return self.halves[0].gaps + self.halves[1].gaps

    @property
    def missed_bytes(self) -> int:
        return self.halves[0].missed_bytes + self.halves[1].missed_bytes
