"""A bounded disk spool in front of a bus producer: a live sensor keeps capturing while Kafka is away.

    spool = Spool("var/spool/sensor-1", max_bytes=1 << 30)
    p = SpooledProducer(spool, bus.producer)      # the sensor's producer: send() never blocks on Kafka
    p.send(topic, value, key=key)                 # appended to disk; a thread sends it on, in order
    ...
    report = p.close(timeout=60)                  # waits for the backlog; what is left stays on disk

Every record is written to the spool first (segment files of framed, CRC-checked records) and a
background thread sends the oldest records in batches, advancing a persisted cursor only once the
bus acknowledged a batch (`Producer.flush`). While the broker is unreachable the batch waits (the
Kafka producer keeps retrying it, idempotently, for its delivery timeout) and newer records pile up
on disk; when the broker is back they drain in capture order. A spool left over by a previous run
(the sensor was stopped during an outage) is sent first.

Bound: `max_bytes` of records not yet acknowledged. Over it the spool drops the *newest* records
(the ones being appended) and counts them exactly: what is kept is the contiguous stretch of
traffic from the start of the outage, and the report says how many records (and which capture
times) were lost. Dropping the oldest would tear holes in a stretch that detection reads in order.

A batch the bus finally rejects (the broker was gone longer than the producer's delivery timeout)
is sent again; those records are counted in `resent`, since the broker may have stored some of
them before it went away (the store drops such duplicates by event id).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from .bus import Producer
from .exceptions import BusError, PipelineError

log = logging.getLogger(__name__)

_HEAD = struct.Struct(">II")  # body length, crc32(body)
_BODY = struct.Struct(">HI")  # topic length, key length (0xFFFFFFFF: no key)
_NO_KEY = 0xFFFFFFFF
SEGMENT_BYTES = 4 << 20
Record = tuple[str, bytes | None, bytes]  # topic, key, value


class SpoolError(PipelineError):
    """The spool directory cannot be used (permissions, disk full, a foreign file)."""


@dataclasses.dataclass
class SpoolStats:
    appended: int = 0  # records accepted
    delivered: int = 0  # records the bus acknowledged
    dropped: int = 0  # records refused because the spool was full (newest dropped)
    dropped_bytes: int = 0
    first_dropped_at: float | None = None  # wall time of the first / last refusal
    last_dropped_at: float | None = None
    resent: int = 0  # records sent again after the bus rejected their batch
    recovered: int = 0  # records found on disk at open (left by a previous run)
    pending: int = 0  # records on disk, not yet acknowledged
    pending_bytes: int = 0
    peak_pending: int = 0
    peak_pending_bytes: int = 0
    longest_wait: float = 0.0  # seconds the longest batch waited for its acknowledgement
    failures: int = 0  # batches the bus rejected
    last_error: str = ""

    def summary(self, directory: Path | str) -> str:
        mib = self.peak_pending_bytes / 2**20
        text = (f"spool {directory}: {self.delivered} record(s) delivered; buffered up to {self.peak_pending} record(s) "
                f"({mib:.1f} MiB) on disk; longest wait for the bus {self.longest_wait:.1f}s")
        if self.recovered:
            text += f"; {self.recovered} left by a previous run"
        if self.dropped:
            text += (f"; {self.dropped} record(s) ({self.dropped_bytes} bytes) DROPPED because the spool was full "
                     f"(newest dropped, {time.strftime('%H:%M:%S', time.localtime(self.first_dropped_at or 0))}–"
                     f"{time.strftime('%H:%M:%S', time.localtime(self.last_dropped_at or 0))})")
        if self.resent:
            text += f"; {self.resent} record(s) sent again after {self.failures} rejected batch(es) (last: {self.last_error})"
        if self.pending:
            text += f"; {self.pending} record(s) still on disk, sent first by the next start"
        return text


def _frame(topic: str, key: bytes | None, value: bytes) -> bytes:
    t = topic.encode()
    body = _BODY.pack(len(t), _NO_KEY if key is None else len(key)) + t + (key or b"") + value
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


def _unframe(body: bytes) -> Record:
    tlen, klen = _BODY.unpack_from(body)
    pos = _BODY.size
    topic = body[pos : pos + tlen].decode()
    pos += tlen
    key = None
    if klen != _NO_KEY:
        key = body[pos : pos + klen]
        pos += klen
    return topic, key, body[pos:]


class Spool:
    """Records on disk in segment files `NNNNNNNN.seg`, read from a persisted cursor (`cursor`).

    One writer thread (`append`) and one reader thread (`read`, then `ack`) may use it at once.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> None:
        if max_bytes < 1:
            raise SpoolError(f"spool size must be positive, got {max_bytes}")
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.stats = SpoolStats()
        self._lock = threading.Condition()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._segments = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        except OSError as e:
            raise SpoolError(f"cannot use spool directory {self.dir}: {e}") from e
        self._rseg, self._roff = self._load_cursor()
        self._segments = [s for s in self._segments if s >= self._rseg]
        for s in sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit()):
            if s < self._rseg:
                (self.dir / f"{s:08d}.seg").unlink(missing_ok=True)  # acknowledged before the last stop
        self._sizes: dict[int, int] = {}
        for s in self._segments:
            self._sizes[s] = self._recover(s)
        if not self._segments:
            self._segments = [self._rseg]
            self._sizes[self._rseg] = 0
        if self._rseg not in self._sizes:  # cursor points past every file: start at the cursor's segment
            self._rseg, self._roff = self._segments[0], 0
        self._wseg = self._segments[-1]
        self._wfd = self._open_segment(self._wseg)
        self._reader: tuple[int, object] | None = None
        pending, nbytes = self._count_pending()
        self.stats.recovered = self.stats.pending = self.stats.peak_pending = pending
        self.stats.pending_bytes = self.stats.peak_pending_bytes = nbytes

    # ------------------------------------------------------------ disk
    def _path(self, seg: int) -> Path:
        return self.dir / f"{seg:08d}.seg"

    def _load_cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self.dir / "cursor").read_text().split()
            return int(seg), int(off)
        except FileNotFoundError:
            return (self._segments[0] if self._segments else 1), 0
        except (OSError, ValueError) as e:
            raise SpoolError(f"spool cursor {self.dir / 'cursor'} is unreadable ({e}); move the directory aside") from e

    def _save_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(f"{self._rseg} {self._roff}\n")
        os.replace(tmp, self.dir / "cursor")

    def _recover(self, seg: int) -> int:
        """Size of the whole records of a segment; a torn last record (crash mid-write) is cut off."""
        path = self._path(seg)
        data = path.read_bytes()
        pos = 0
        while pos + _HEAD.size <= len(data):
            n, crc = _HEAD.unpack_from(data, pos)
            body = data[pos + _HEAD.size : pos + _HEAD.size + n]
            if len(body) < n or zlib.crc32(body) != crc:
                break
            pos += _HEAD.size + n
        if pos < len(data):
            log.warning("spool %s: cutting a torn record at byte %d of %d", path, pos, len(data))
            with open(path, "r+b") as f:
                f.truncate(pos)
        return pos

    def _open_segment(self, seg: int) -> int:
        try:
            return os.open(self._path(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            raise SpoolError(f"cannot open spool segment {self._path(seg)}: {e}") from e

    def _records(self, seg: int, start: int, end: int) -> list[tuple[int, int]]:
        """(offset, length) of each record of a segment between two offsets."""
        out = []
        with open(self._path(seg), "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        pos = 0
        while pos < len(data):
            n, _crc = _HEAD.unpack_from(data, pos)
            out.append((start + pos, _HEAD.size + n))
            pos += _HEAD.size + n
        return out

    def _count_pending(self) -> tuple[int, int]:
        n = nbytes = 0
        for s in self._segments:
            start = self._roff if s == self._rseg else 0
            if s < self._rseg:
                continue
            recs = self._records(s, start, self._sizes[s])
            n += len(recs)
            nbytes += sum(x[1] for x in recs)
        return n, nbytes

    # ------------------------------------------------------------ writer
    def append(self, records: Sequence[Record]) -> int:
        """Write records at the end; returns how many were accepted (the rest: dropped, counted)."""
        frames = [_frame(t, k, v) for t, k, v in records]
        with self._lock:
            room = self.max_bytes - self.stats.pending_bytes
            keep = 0
            used = 0
            for f in frames:
                if used + len(f) > room:
                    break
                used += len(f)
                keep += 1
            if keep < len(frames):
                now = time.time()
                if not self.stats.dropped:
                    log.warning("spool %s is full (%d bytes pending, limit %d): dropping the newest records", self.dir,
                                self.stats.pending_bytes, self.max_bytes)
                self.stats.dropped += len(frames) - keep
                self.stats.dropped_bytes += sum(len(f) for f in frames[keep:])
                self.stats.first_dropped_at = self.stats.first_dropped_at or now
                self.stats.last_dropped_at = now
            if not keep:
                return 0
            if self._sizes[self._wseg] >= self.segment_bytes:
                os.close(self._wfd)
                self._wseg += 1
                self._segments.append(self._wseg)
                self._sizes[self._wseg] = 0
                self._wfd = self._open_segment(self._wseg)
            data = b"".join(frames[:keep])
            try:
                written = os.write(self._wfd, data)
            except OSError as e:
                raise SpoolError(f"cannot write to spool {self._path(self._wseg)}: {e}") from e
            if written != len(data):
                raise SpoolError(f"short write to spool {self._path(self._wseg)} ({written} of {len(data)} bytes; disk full?)")
            self._sizes[self._wseg] += len(data)
            st = self.stats
            st.appended += keep
            st.pending += keep
            st.pending_bytes += len(data)
            st.peak_pending = max(st.peak_pending, st.pending)
            st.peak_pending_bytes = max(st.peak_pending_bytes, st.pending_bytes)
            self._lock.notify_all()
        return keep

    # ------------------------------------------------------------ reader
    def read(self, max_records: int, timeout: float = 0.0) -> tuple[list[Record], tuple[int, int, int, int]]:
        """The oldest unacknowledged records (at most `max_records`, one segment at a time) and the
        position to `ack` once they are delivered. Waits up to `timeout` s for a record."""
        with self._lock:
            if not self.stats.pending:
                self._lock.wait(timeout)
            seg, off = self._rseg, self._roff
            end = self._sizes.get(seg, 0)
            if off >= end and seg < self._wseg:  # a finished segment: move to the next
                seg, off = seg + 1, 0
                end = self._sizes[seg]
        recs = self._records(seg, off, end)[:max_records] if off < end else []
        if not recs:
            return [], (seg, off, 0, 0)
        start, stop = recs[0][0], recs[-1][0] + recs[-1][1]
        with open(self._path(seg), "rb") as f:
            f.seek(start)
            data = f.read(stop - start)
        out: list[Record] = []
        for o, n in recs:
            body = data[o - start + _HEAD.size : o - start + n]
            out.append(_unframe(body))
        return out, (seg, stop, len(recs), stop - start)

    def ack(self, position: tuple[int, int, int, int]) -> None:
        """The records `read` returned with this position were delivered: advance and persist the cursor."""
        seg, stop, n, nbytes = position
        if not n:
            return
        with self._lock:
            old = self._rseg
            self._rseg, self._roff = seg, stop
            self.stats.pending -= n
            self.stats.pending_bytes -= nbytes
            self.stats.delivered += n
            self._save_cursor()
            for s in range(old, seg):
                if s in self._sizes:
                    del self._sizes[s]
                    self._segments.remove(s)
                    self._path(s).unlink(missing_ok=True)
            self._lock.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.stats.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        with self._lock:
            if self._wfd >= 0:
                os.close(self._wfd)
                self._wfd = -1
            if not self.stats.pending:  # nothing left: leave an empty directory behind
                for s in list(self._segments):
                    self._path(s).unlink(missing_ok=True)
                (self.dir / "cursor").unlink(missing_ok=True)


class SpooledProducer(Producer):
    """A `Producer` whose `send` writes to a `Spool`; a thread moves the spool onto `open_producer()`.

    `flush()` returns at once (the records are on disk); `drain(timeout)` waits for the backlog;
    `close(timeout)` drains, stops the thread and returns the spool's statistics.
    """

    def __init__(self, spool: Spool, open_producer: Callable[[], Producer], *, batch: int = 1000, retry: float = 1.0) -> None:
        self.spool = spool
        self._open = open_producer
        self._batch = batch
        self._retry = retry
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._pending: list[Record] = []
        self._backlog = False
        self._thread = threading.Thread(target=self._run, name="qinling-spool", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> SpoolStats:
        return self.spool.stats

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self._pending.append((topic, key, value))
        if len(self._pending) >= 256:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            recs, self._pending = self._pending, []
            self.spool.append(recs)
            st = self.spool.stats
            if st.pending > self._batch and not self._backlog:
                self._backlog = True
                log.warning("spool: the bus is not taking records (%s): %d buffered on disk in %s", st.last_error or "no acknowledgement yet",
                            st.pending, self.spool.dir)
            elif self._backlog and st.pending <= self._batch:
                self._backlog = False
                log.warning("spool: the bus takes records again; backlog %d", st.pending)

    def drain(self, timeout: float) -> bool:
        self.flush()
        return self.spool.wait_empty(timeout)

    def _run(self) -> None:
        retry_batch = False
        while not self._stop.is_set():
            recs, pos = self.spool.read(self._batch, timeout=0.2)
            if not recs:
                continue
            t0 = time.monotonic()
            sent = False
            try:
                if self._producer is None:
                    self._producer = self._open()
                sent = True
                for topic, key, value in recs:
                    self._producer.send(topic, value, key=key)
                self._producer.flush()
            except BusError as e:
                st = self.spool.stats
                st.failures += 1
                st.resent += len(recs) if sent else 0
                st.last_error = str(e)[:200]
                if not retry_batch:
                    log.warning("spool: the bus rejected a batch of %d record(s) (%s); keeping them on disk and retrying", len(recs), e)
                retry_batch = True
                self._close_producer()
                self._stop.wait(self._retry)
                continue
            retry_batch = False
            self.spool.stats.longest_wait = max(self.spool.stats.longest_wait, time.monotonic() - t0)
            self.spool.ack(pos)

    def _close_producer(self) -> None:
        p, self._producer = self._producer, None
        if p is not None:
            try:
                p.close()
            except BusError:
                pass  # what it held is still on disk

    def close(self, timeout: float = 60.0) -> SpoolStats:  # type: ignore[override]
        """Wait up to `timeout` s for the backlog to be delivered, then stop; the rest stays on disk."""
        self.drain(timeout)
        self._stop.set()
        self._thread.join(5.0)  # a batch may still wait for the bus: it stays on disk, unacknowledged
        if not self._thread.is_alive():
            self._close_producer()
        self.spool.close()
        return self.spool.stats
