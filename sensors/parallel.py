"""Process per core: one capture decoded by N `Sensor`s in worker processes, events identical to `decode_file`.

    reader process ──batches of frames──▶ worker 1..N (one Sensor each) ──batches of events──▶ caller

The reader shards frames by a symmetric flow hash, so both directions of a connection reach the
same worker and every flow's state lives in one Sensor:

- IP frames: the unordered pair of (address, port) ends plus the transport (TCP, UDP, SCTP); other
  IP protocols (ICMP, ...) by the unordered address pair. Addresses are taken after `remap`, the
  way the Sensor keys its flows. Non-first IP fragments are only counted: any worker will do.
- Layer-2 frames of a registered ethertype (GOOSE, PROFINET): by decoder, since the Sensor keeps
  one decoder instance per layer-2 protocol; other non-IP frames are only counted.

What makes the output identical, event for event and in order, to the single-process path:

- Every worker sees the capture time of every frame (8 bytes a frame), so every worker's clock, and
  with it every idle-timeout and close-delay sweep, runs exactly as the single Sensor's does.
- The events of a sweep come back tagged with the order the single Sensor would have ended their
  flows in (closed flows by the frame that closed them, then idle flows by the frame that created
  them, which is the flow table's order); the end-of-capture flush likewise (flows by creation,
  then the layer-2 decoders by their first frame). The caller merges the tags with a sort.
- A frame's own events follow every sweep that frame triggered, as in `Sensor.process`.

Frames travel as raw bytes plus packed metadata, events as msgpack, a few thousand frames a batch;
every queue is bounded, so memory does not grow with the capture. A worker that raises or dies is
reported as a `ParallelDecodeError` naming it, never a hang.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import queue
import time
import traceback
import zlib
from array import array
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import msgspec

from pipeline.schema import Event

from .decoders.base import DecoderSpec
from .engine import DecodeReport, Sensor, _remap
from .exceptions import SensorError
from .flows import Flow
from .packet import LATER_FRAGMENT, PROTO_SCTP, PROTO_TCP, PROTO_UDP, parse, parse_l2
from .pcapfile import CaptureReader, ProgressHook

log = logging.getLogger(__name__)

BATCH_FRAMES = 4096  # frames per batch: large enough to amortise a queue hop, small enough to stay bounded
BATCH_BYTES = 4 << 20  # ... or this many frame bytes, whichever comes first
QUEUE_DEPTH = 4  # batches in flight per worker, each way
_POLL = 0.5  # seconds between liveness checks while waiting for a batch
_SUMMED = ("packets", "bytes", "non_ip", "fragments", "flows", "tcp_gaps", "missed_bytes", "decoder_errors")

# Order of the groups of events within one frame (and in the final flush).
_CLOSED, _IDLE, _OWN = 0, 1, 2  # sweep of closed flows, sweep of idle flows, the frame's own events
_FLUSH_FLOWS, _FLUSH_L2 = 0, 1
_END = 1 << 62  # frame index of the end-of-capture flush: after every frame


class ParallelDecodeError(SensorError):
    """A reader or worker process failed or died; the message names which, and why when it is known."""


def resolve_workers(value: int | str | None) -> int:
    """`--workers` as given: a count, or 0 / "auto" for one per CPU."""
    if value is None:
        return 1
    if isinstance(value, str):
        value = 0 if value.strip().lower() == "auto" else int(value)
    if value < 0:
        raise ValueError(f"workers must be 0 (one per CPU) or more, not {value}")
    return value or (os.cpu_count() or 1)


def decode_parallel(
    path: str | os.PathLike[str],
    workers: int = 2,
    *,
    organization_id: str | None = None,
    observer_id: str | None = None,
    registry: Mapping[str, DecoderSpec] | None = None,
    report: DecodeReport | MutableMapping[str, Any] | None = None,
    on_progress: ProgressHook | None = None,
    **sensor_options: Any,
) -> Iterator[Event]:
    """`sensors.engine.decode_file` over `workers` processes: the same events in the same order, and the same report.

    Like decode_file, opens the file at once, so a missing or non-capture file raises CaptureFileError here.
    `workers` <= 1 is decode_file itself.
    """
    from .engine import decode_file

    if workers <= 1:
        return decode_file(path, organization_id=organization_id, observer_id=observer_id, registry=registry, report=report,
                           on_progress=on_progress, **sensor_options)
    with CaptureReader(path) as probe:  # the same checks and errors as decode_file, before any process starts
        name, sha256, fmt = probe.name, probe.sha256, probe.format
    rep = report if isinstance(report, DecodeReport) else DecodeReport()
    rep.file, rep.sha256, rep.format = name, sha256, fmt
    opts = dict(organization_id=organization_id, observer_id=observer_id, registry=registry, file_sha256=sha256, file=name,
                **sensor_options)
    Sensor(**opts)  # bad options (an unknown keyword, a malformed remap) raise here, as they do in decode_file
    return _run(os.fspath(path), workers, opts, rep, report if isinstance(report, MutableMapping) else None, on_progress)


# ------------------------------------------------------------ caller side


def _context() -> Any:
    # forkserver: the caller may have threads (a progress bar, a Kafka client) that fork would copy mid-lock.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["sensors.parallel", "sensors.decoders"])
    return ctx


def _run(path: str, n: int, opts: dict[str, Any], rep: DecodeReport, out: MutableMapping[str, Any] | None,
         on_progress: ProgressHook | None) -> Iterator[Event]:
    started = time.perf_counter()
    ctx = _context()
    inboxes = [ctx.Queue(QUEUE_DEPTH) for _ in range(n)]
    outboxes = [ctx.Queue(QUEUE_DEPTH) for _ in range(n)]
    reader = ctx.Process(target=_reader_main, args=(path, n, opts, inboxes), name="qinling-reader", daemon=True)
    workers = [ctx.Process(target=_worker_main, args=(k, opts, inboxes[k], outboxes[k]), name=f"qinling-sensor-{k + 1}", daemon=True)
               for k in range(n)]
    decode = msgspec.msgpack.Decoder(list[Event]).decode
    procs = [reader, *workers]
    info: dict[str, Any] = {}
    try:
        for p in procs:
            p.start()
        # This process only reads the workers' batches: with its copies of the other pipe ends closed, a
        # process killed halfway through writing a batch reads as end of file here, not as a wait forever.
        for q in outboxes:
            q._writer.close()
        for q in inboxes:
            q._reader.close()
            q._writer.close()
        while True:
            results = [_receive(k, outboxes, workers, reader) for k in range(n)]
            kind = results[0][0]
            if any(r[0] != kind for r in results):
                raise ParallelDecodeError(f"{path}: sensor workers out of step ({[r[0] for r in results]})")
            groups: list[tuple[int, int, int, int, int, int]] = []
            events: list[list[Event]] = []
            for k, (_, index, blob, *_rest) in enumerate(results):
                events.append(_decode_events(decode, blob) if blob else [])
                groups.extend((i, order, key, k, start, stop) for i, order, key, start, stop in index)
            groups.sort()
            for _i, _o, _key, k, start, stop in groups:
                yield from events[k][start:stop]
            if kind == "batch":
                if on_progress is not None and results[0][3] is not None:
                    on_progress(*results[0][3])
                continue
            info = results[0][3]  # the reader's end-of-capture facts (warnings, truncation), passed on by each worker
            for r in results:
                _add(rep, r[4])
            if on_progress is not None:
                on_progress(info["size"], info["size"])
            break
        for p in procs:
            p.join(5.0)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is None:
                continue  # never started
            p.join(2.0)
            if p.is_alive():
                p.kill()
                p.join()
        for q in (*inboxes, *outboxes):
            q.cancel_join_thread()
            q.close()
        rep.warnings.extend(w for w in info.get("warnings", ()) if w not in rep.warnings)
        rep.truncated = bool(info.get("truncated", False))
        rep.elapsed = time.perf_counter() - started
        if out is not None:
            out.update(rep.to_dict())


def _receive(k: int, outboxes: list[Any], workers: list[Any], reader: Any) -> tuple[Any, ...]:
    """Worker k's next batch; a worker or reader that failed or died ends the run with a ParallelDecodeError.

    Every process is watched, not only worker k: when one worker dies, the reader blocks on its full
    queue and the others starve, so waiting for worker k alone would wait forever.
    """
    while True:
        try:
            msg = outboxes[k].get(timeout=_POLL)
        except (EOFError, OSError):  # its end of the pipe closed, mid-batch or between batches: it died
            workers[k].join(5.0)
            raise ParallelDecodeError(f"sensor worker {k + 1} (pid {workers[k].pid}) died with exit code {workers[k].exitcode} "
                                      f"while sending its events (killed, or out of memory?)") from None
        except queue.Empty:
            failed = [j for j, p in enumerate(workers) if p.exitcode not in (None, 0)]
            if workers[k].exitcode is None and not failed and reader.exitcode in (None, 0):
                continue  # all working, or waiting for one another
            for j in failed:  # a worker that raised said why before it exited
                try:
                    last = outboxes[j].get(timeout=_POLL)
                except (queue.Empty, EOFError, OSError):
                    continue
                if last[0] == "error":
                    raise ParallelDecodeError(last[1])
            if failed:
                p = workers[failed[0]]
                raise ParallelDecodeError(f"sensor worker {failed[0] + 1} (pid {p.pid}) died with exit code {p.exitcode} "
                                          f"without reporting an error (killed, or out of memory?)")
            if reader.exitcode not in (None, 0):
                try:  # a reader that raised said why, through every worker
                    last = outboxes[k].get(timeout=2.0)
                except (queue.Empty, EOFError, OSError):
                    last = ("",)
                if last[0] == "error":
                    raise ParallelDecodeError(last[1])
                raise ParallelDecodeError(f"capture reader process (pid {reader.pid}) died with exit code {reader.exitcode}")
            try:  # worker k exited cleanly: its last batch is in the pipe
                msg = outboxes[k].get(timeout=_POLL)
            except queue.Empty:
                raise ParallelDecodeError(f"sensor worker {k + 1} (pid {workers[k].pid}) exited before the end of the capture") from None
        if msg[0] == "error":
            raise ParallelDecodeError(msg[1])
        return msg  # type: ignore[no-any-return]


def _decode_events(decode: Any, blob: bytes) -> list[Event]:
    # Thousands of acyclic structs at once: the cycle collector would walk them again and again while
    # they are built (~20 % of this process's time, measured); it runs once afterwards instead.
    was = gc.isenabled()
    gc.disable()
    try:
        return decode(blob)  # type: ignore[no-any-return]
    finally:
        if was:
            gc.enable()


def _add(rep: DecodeReport, part: dict[str, Any]) -> None:
    for f in _SUMMED:
        setattr(rep, f, getattr(rep, f) + part[f])
    rep.events.update(part["events"])


# ------------------------------------------------------------ reader


def _reader_main(path: str, n: int, opts: dict[str, Any], inboxes: list[Any]) -> None:
    try:
        _read(path, n, opts, inboxes)
    except BaseException as e:  # every worker learns of it, and passes it on to the caller
        log.error("capture reader of %s failed:\n%s", path, traceback.format_exc())
        msg = ("error", f"{path}: capture reader process (pid {os.getpid()}) failed: {type(e).__name__}: {e} (traceback on stderr)")
        for box in inboxes:
            box.put(msg)
        raise SystemExit(1) from None


def _read(path: str, n: int, opts: dict[str, Any], inboxes: list[Any]) -> None:
    shard = _Sharder(n, opts)
    progress: list[Any] = [None]

    def on_progress(done: int, total: int) -> None:
        progress[0] = (done, total)

    with CaptureReader(path, on_progress=on_progress) as reader:
        first = 1
        stamps = array("d")
        owned = [_Owned() for _ in range(n)]
        size = 0
        for frame, stamp, linktype, data in reader:
            stamps.append(stamp)
            owned[shard(frame, linktype, data)].add(frame - first, linktype, data)
            size += len(data)
            if len(stamps) >= BATCH_FRAMES or size >= BATCH_BYTES:
                _send(inboxes, first, stamps, owned, progress[0])
                first, stamps, size = frame + 1, array("d"), 0
                owned = [_Owned() for _ in range(n)]
        if stamps:
            _send(inboxes, first, stamps, owned, progress[0])
        end = ("end", {"warnings": reader.warnings, "truncated": reader.truncated, "frames": reader.frames, "size": reader.size})
    for box in inboxes:
        box.put(end)
    for box in inboxes:
        box.close()
        box.join_thread()


class _Owned:
    """The frames of one batch that go to one worker: offsets in the batch, linktypes, lengths, and the bytes end to end."""

    __slots__ = ("idx", "linktypes", "lengths", "data")

    def __init__(self) -> None:
        self.idx = array("I")
        self.linktypes = array("I")
        self.lengths = array("I")
        self.data: list[bytes] = []

    def add(self, i: int, linktype: int, data: bytes) -> None:
        self.idx.append(i)
        self.linktypes.append(linktype)
        self.lengths.append(len(data))
        self.data.append(data)


def _send(inboxes: list[Any], first: int, stamps: array, owned: list[_Owned], progress: Any) -> None:
    ts = stamps.tobytes()
    for box, o in zip(inboxes, owned):
        box.put(("batch", first, ts, o.idx.tobytes(), o.linktypes.tobytes(), o.lengths.tobytes(), b"".join(o.data), progress))


class _Sharder:
    """frame -> worker: symmetric in the flow's two directions, one worker per layer-2 decoder."""

    def __init__(self, n: int, opts: dict[str, Any]) -> None:
        self.n = n
        probe = Sensor(**opts)  # its ethertype table and remap, so the reader cannot disagree with the workers
        self.l2 = {etype: zlib.crc32(spec.name.encode()) % n for etype, spec in probe._ethertypes.items()}
        self.remap = probe._remap

    def __call__(self, frame: int, linktype: int, data: bytes) -> int:
        p = parse(linktype, data)
        if p is None:
            if self.l2:
                l2 = parse_l2(linktype, data)
                if l2 is not None:
                    k = self.l2.get(l2[0])
                    if k is not None:
                        return k
            return frame % self.n  # counted as non-IP, nothing else: any worker
        if self.remap is not None:
            _remap(p, self.remap)
        a, b = p.src, p.dst
        proto = p.proto
        if p.fragment != LATER_FRAGMENT and (proto == PROTO_TCP or proto == PROTO_UDP or proto == PROTO_SCTP):
            x, y = (a, p.sport), (b, p.dport)
            return hash((x, y, proto) if x <= y else (y, x, proto)) % self.n
        return hash((a, b, proto) if a <= b else (b, a, proto)) % self.n


# ------------------------------------------------------------ worker


class _ShardSensor(Sensor):
    """A Sensor that sees only its shard's frames, and every frame's time, and tags the events of its sweeps.

    The tags are what the single Sensor's order is made of: a closed flow ends in the order it was
    closed (frame number), an idle flow or a flow at the end of input in the flow table's order
    (creation, i.e. first frame), a layer-2 decoder's flush in the order it was created.
    """

    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self._groups: list[tuple[int, int, int, int]] | None = None  # (order, key, start, stop) while sweeping
        self._finishing = False
        self._closed_by: dict[Flow, int] = {}  # flow in the closing list -> frame that closed it
        self._l2_first: dict[str, int] = {}

    def step(self, frame_no: int, ts: float, linktype: int, data: bytes) -> tuple[list[Event], list[tuple[int, int, int, int]], int]:
        """Sensor.process, plus the tags of the sweep it ran and where the frame's own events start."""
        self._swept = 0
        self._sweep: list[tuple[int, int, int, int]] = []
        n_l2 = len(self._l2)
        out = self.process(frame_no, ts, linktype, data)
        closing = self._closing
        if closing and closing[-1] not in self._closed_by and not closing[-1].ended:
            self._closed_by[closing[-1]] = frame_no
        if len(self._l2) != n_l2:
            for name in self._l2:
                self._l2_first.setdefault(name, frame_no)
        return out, self._sweep, self._swept

    def tick(self, ts: float) -> tuple[list[Event], list[tuple[int, int, int, int]]]:
        """Another worker's frame: only its time, which moves the clock exactly as Sensor.process does."""
        if ts > self._clock:
            self._clock = ts
            if ts >= self._next_close_check:
                self._sweep = []
                out: list[Event] = []
                self._expire(out)
                return self._count(out), self._sweep
        return [], []

    def flush(self) -> tuple[list[Event], list[tuple[int, int, int, int]]]:
        """Sensor.finish, tagged: the flows (by first frame), then each layer-2 decoder's close on its own."""
        l2, self._l2 = self._l2, {}
        self._groups, self._finishing = [], True
        out = self.finish()
        groups = self._groups
        self._groups, self._finishing = None, False
        for name, dec in l2.items():
            self._l2 = {name: dec}
            start = len(out)
            out.extend(self.finish())
            groups.append((_FLUSH_L2, self._l2_first.get(name, 0), start, len(out)))
        self._l2 = l2
        return out, groups

    def _expire(self, out: list[Event]) -> None:
        self._groups = self._sweep
        try:
            super()._expire(out)
        finally:
            self._groups = None
        self._swept = len(out)

    def _end(self, flow: Flow, out: list[Event]) -> None:
        closed_by = self._closed_by.pop(flow, None)
        groups = self._groups
        if groups is None or flow.ended:
            super()._end(flow, out)
            return
        if self._finishing:
            order, key = _FLUSH_FLOWS, flow.first_frame
        elif closed_by is not None and self._clock - (flow.closed_at or self._clock) >= self._close_delay:
            order, key = _CLOSED, closed_by  # the test Sensor._expire's closing pass makes
        else:
            order, key = _IDLE, flow.first_frame
        start = len(out)
        super()._end(flow, out)
        groups.append((order, key, start, len(out)))


def _worker_main(k: int, opts: dict[str, Any], inbox: Any, outbox: Any) -> None:
    try:
        _work(opts, inbox, outbox)
    except BaseException as e:
        if not isinstance(e, ParallelDecodeError):  # that one already says all there is
            log.error("sensor worker %d failed:\n%s", k + 1, traceback.format_exc())
        msg = f"sensor worker {k + 1} (pid {os.getpid()}) failed: {type(e).__name__}: {e} (traceback on stderr)"
        outbox.put(("error", msg))
        outbox.close()
        outbox.join_thread()
        raise SystemExit(1) from None


def _work(opts: dict[str, Any], inbox: Any, outbox: Any) -> None:
    sensor = _ShardSensor(**opts)
    encode = msgspec.msgpack.Encoder().encode
    step, tick = sensor.step, sensor.tick
    while True:
        try:
            msg = inbox.get()
        except EOFError:
            raise ParallelDecodeError("the capture reader process died before the end of the capture") from None
        kind = msg[0]
        if kind == "error":
            outbox.put(msg)
            return
        if kind == "end":
            events, groups = sensor.flush()
            tags = [(_END, order, key, start, stop) for order, key, start, stop in groups]
            outbox.put(("end", tags, encode(events) if events else b"", msg[1], sensor.report.to_dict()))
            outbox.close()
            outbox.join_thread()
            return
        _, first, ts_bytes, idx_bytes, lt_bytes, len_bytes, blob, progress = msg
        stamps = array("d")
        stamps.frombytes(ts_bytes)
        idx, linktypes, lengths = array("I"), array("I"), array("I")
        idx.frombytes(idx_bytes)
        linktypes.frombytes(lt_bytes)
        lengths.frombytes(len_bytes)
        out: list[Event] = []
        index: list[tuple[int, int, int, int, int]] = []
        mine = iter(zip(idx, linktypes, lengths))
        nxt, linktype, length = next(mine, (-1, 0, 0))
        off = 0
        for i, ts in enumerate(stamps):
            if i == nxt:
                data = blob[off:off + length]
                off += length
                events, sweep, own = step(first + i, ts, linktype, data)
                nxt, linktype, length = next(mine, (-1, 0, 0))
                if not events:
                    continue
            else:
                events, sweep = tick(ts)
                if not events:
                    continue
                own = len(events)
            base = len(out)
            out.extend(events)
            for order, key, start, stop in sweep:
                index.append((i, order, key, base + start, base + stop))
            if own < len(events):
                index.append((i, _OWN, 0, base + own, base + len(events)))
        outbox.put(("batch", index, encode(out) if out else b"", progress))
