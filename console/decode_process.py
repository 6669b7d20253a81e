"""Replay's decoding in a process of its own: the sensor on one core, detection and the store on the other.

    decode process: decode_files ─ schema.encode ─▶ batches of (key, record) ─ pipe ─▶ caller: Wiring.put_record

On the embedded bus one replay is one Python process, so decoding, detection and the store share one
core. Here the decoding moves to a child that sends what the bus carries anyway, the encoded records
and their keys; the caller never builds the decoded `Event`s (detection decodes each record, as it
does for every record it reads, and the store reuses that). The records arrive in the same order as
`decode_files` yields them in the caller, with the same `Summary`: the file rows, the per-dataset
counts and the warnings (filled in when the decode process ends; each file's row is known to the
caller before its first record, so alerts are counted against the right file).

A decode process that fails or dies ends the run with a `DecodeProcessError` naming it, never a
hang; the caller's Ctrl-C or error stops it. Queues are bounded: memory does not grow with the capture.
"""

from __future__ import annotations

import os
import queue
import resource
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.exceptions import PipelineError
from pipeline.settings import Settings

BATCH = 2000  # records per message: a pipe hop costs ~20 µs, a record ~50 µs to decode
QUEUE_DEPTH = 8  # batches in flight
_POLL = 0.5  # seconds between liveness checks while waiting
PROGRESS_EVERY = 0.25  # seconds between progress messages
AUTO_MIN_BYTES = 16 << 20  # "auto": captures smaller than this decode in the caller (a process costs ~0.3 s to start)

Record = tuple[bytes | None, bytes]  # (key, encoded event)


class DecodeProcessError(PipelineError):
    """The decode process failed or died; the message says which and why, when it is known."""


def wanted(mode: str, paths: Sequence[str | Path], engine: str) -> bool:
    """Whether replay decodes in a process of its own: setting `replay_decode_process` (auto | on | off).

    auto: when this machine has a second CPU for it and the captures are large enough to repay the start."""
    if mode == "off":
        return False
    if mode == "on":
        return True
    if len(os.sched_getaffinity(0)) < 2:  # the CPUs this process may run on
        return False
    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p)
        except OSError:
            continue
    return total >= AUTO_MIN_BYTES


class DecodedRecords:
    """Iterate over the records; `summary` (a console.jobs.Summary) is kept up to date as decode_files would.

    `on_file(row)` is called with each file's summary row before that file's first record (and for a
    file without records, before the next file's): the caller maps the capture to its row."""

    def __init__(self, paths: Sequence[str | Path], settings: Settings, summary: Any, *, progress: bool = False,
                 ports: Mapping[str, Sequence[int]] | None = None, engine: str = "native",
                 remap: Mapping[str, Mapping[str, str]] | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.summary = summary
        self.on_progress = on_progress  # (bytes read, size) of the capture being decoded, a few times a second
        self.cpu_seconds = 0.0  # the decode process's own CPU time, known at its end
        self.pid: int | None = None
        self._args = ([str(p) for p in paths], settings, progress, dict(ports or {}), engine,
                      {k: dict(v) for k, v in (remap or {}).items()}, on_progress is not None)

    def __iter__(self) -> Iterator[tuple[str | None, list[Record]]]:
        """(sha256 of the capture the batch comes from, its records), batch by batch."""
        import multiprocessing as mp

        ctx = mp.get_context("forkserver")  # the caller may have threads (a web console, a Kafka client)
        out = ctx.Queue(QUEUE_DEPTH)
        proc = ctx.Process(target=_main, args=(*self._args, out), name="qinling-decode", daemon=True)
        proc.start()
        self.pid = proc.pid
        out._writer.close()  # only the child writes: its death reads as end of file here, not a wait forever
        try:
            while True:
                msg = _receive(out, proc)
                kind = msg[0]
                if kind == "batch":
                    yield msg[1], msg[2]
                elif kind == "progress":
                    if self.on_progress is not None:
                        self.on_progress(msg[1], msg[2])
                elif kind == "file":
                    self.summary.files.append(msg[1])
                elif kind == "end":
                    _, rows, events, warnings, self.cpu_seconds = msg
                    for mine, final in zip(self.summary.files, rows):
                        mine.update({k: v for k, v in final.items() if k != "alerts"})
                    self.summary.events.update(events)
                    self.summary.warnings.extend(warnings)
                    proc.join(5.0)
                    return
                else:  # "error"
                    raise DecodeProcessError(msg[1])
        finally:
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            out.cancel_join_thread()
            out.close()
            del proc, out  # the queue's semaphores are released now, not at exit (no "leaked semaphore" warning)


def _receive(out: Any, proc: Any) -> tuple[Any, ...]:
    while True:
        try:
            return out.get(timeout=_POLL)  # type: ignore[no-any-return]
        except (EOFError, OSError):
            proc.join(5.0)
            raise DecodeProcessError(f"the decode process (pid {proc.pid}) died with exit code {proc.exitcode} "
                                     "while sending its events (killed, or out of memory?)") from None
        except queue.Empty:
            if proc.exitcode is None:
                continue
            try:  # it exited: what it sent last is still in the pipe
                return out.get(timeout=2.0)  # type: ignore[no-any-return]
            except (queue.Empty, EOFError, OSError):
                raise DecodeProcessError(f"the decode process (pid {proc.pid}) exited with code {proc.exitcode} "
                                         "before the end of the captures (killed, or out of memory?)") from None


# ------------------------------------------------------------ decode process


def _main(paths: list[str], settings: Settings, progress: bool, ports: dict[str, Any], engine: str,
          remap: dict[str, dict[str, str]], report_progress: bool, out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides when to stop, and stops this process ...
    signal.signal(signal.SIGTERM, _stop)  # ... with SIGTERM: exit through the normal path, so what was
    try:  # created here (a progress bar's lock is a named semaphore) is released, not reported as leaked
        from .jobs import fewer_collections

        with fewer_collections():
            _decode(paths, settings, progress, ports, engine, remap, report_progress, out)
    except _Stopped:
        out.cancel_join_thread()  # nobody reads what is still buffered
    except BaseException as e:  # noqa: BLE001 - reported to the caller, which raises it
        out.put(("error", f"the decode process failed: {type(e).__name__}: {e}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None


class _Stopped(BaseException):
    pass


def _stop(_signum: int, _frame: Any) -> None:
    raise _Stopped


def _decode(paths: list[str], settings: Settings, progress: bool, ports: dict[str, Any], engine: str,
            remap: dict[str, dict[str, str]], report_progress: bool, out: Any) -> None:
    from pipeline import schema
    from pipeline.keys import asset_key

    from .jobs import Summary, decode_files

    summary = Summary()
    encode, put = schema.encode, out.put
    batch: list[Record] = []
    sha: str | None = None
    sent_rows = 0
    last = [0.0]

    def on_progress(done: int, total: int) -> None:  # a few times a second, and at the end of each capture
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or done >= total:
            last[0] = now
            put(("progress", done, total))

    for ev in decode_files(paths, settings, summary, progress=progress, ports=ports or None, engine=engine, remap=remap or None,
                           on_progress=on_progress if report_progress else None):
        if len(summary.files) != sent_rows:  # a new capture began: its row goes ahead of its records
            if batch:
                put(("batch", sha, batch))
                batch = []
            for row in summary.files[sent_rows:]:
                put(("file", dict(row)))
            sent_rows = len(summary.files)
        ev_sha = ev.evidence.file_sha256 if ev.evidence is not None else None
        if ev_sha != sha and batch:
            put(("batch", sha, batch))
            batch = []
        sha = ev_sha
        batch.append((asset_key(ev), encode(ev)))
        if len(batch) >= BATCH:
            put(("batch", sha, batch))
            batch = []
    if batch:
        put(("batch", sha, batch))
    for row in summary.files[sent_rows:]:
        put(("file", dict(row)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    put(("end", [dict(r) for r in summary.files], dict(summary.events), list(summary.warnings),
         usage.ru_utime + usage.ru_stime))
