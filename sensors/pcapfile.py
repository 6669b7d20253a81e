"""Capture files (pcap, pcapng, gzip of either) read as raw records through scapy's raw readers."""

from __future__ import annotations

import gzip
import zlib
import hashlib
import logging
import os
import struct
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapNgReader, RawPcapReader

from .exceptions import CaptureFileError

log = logging.getLogger(__name__)

# Linktypes the packet parser understands (pcap LINKTYPE_* numbers).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = frozenset(
    {LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2}
)

# Largest record we keep whole; scapy bounds a single read to the same size (MTU * 4).
MAX_RECORD = 65535 * 4
_BLOCK = 1 << 20  # bytes per read of a classic pcap
_MAX_EPOCH = 253402300800.0  # 10000-01-01T00:00:00Z: the first second Python's datetime cannot hold
_PROGRESS_EVERY = 1024  # records between progress callbacks: often enough for a bar, cheap enough to ignore

ProgressHook = Callable[[int, int], None]  # (bytes read so far, file size)
Record = tuple[int, float, int, bytes]  # (frame number from 1, epoch seconds, linktype, frame bytes)

_PCAPNG_SHB = 0x0A0D0D0A
# pcap (micro- and nanosecond, either byte order) and pcapng section header magics.
_MAGICS = frozenset({b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a"})
_HINT_FORMAT = "Give a pcap or pcapng capture (Wireshark/tcpdump output); convert other formats with `editcap -F pcap IN OUT`"


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class CaptureReader:
    """Iterate `(frame_no, epoch, linktype, data)` over a capture; problems short of unreadable go to `warnings`.

    A capture cut mid-record yields every complete record and then records the truncation in
    `warnings` (and sets `truncated`) instead of raising: what was read is still evidence.
    """

    def __init__(self, path: str | os.PathLike[str], on_progress: ProgressHook | None = None) -> None:
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self.on_progress = on_progress
        self.warnings: list[str] = []
        self.truncated = False
        self.frames = 0
        try:
            self.size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                head = f.read(8)
        except FileNotFoundError:
            raise CaptureFileError(self.path, "no such file", "Check the path and file name") from None
        except IsADirectoryError:
            raise CaptureFileError(self.path, "is a directory, not a capture file", "Name a .pcap or .pcapng file inside it") from None
        except PermissionError:
            raise CaptureFileError(self.path, "permission denied", "Make the file readable by this user (or run as its owner)") from None
        if self.size == 0:
            raise CaptureFileError(self.path, "is empty (0 bytes)", "Capture again; the file was probably never written")
        if head[:4] not in _MAGICS and head[:2] != b"\x1f\x8b":
            raise CaptureFileError(self.path, f"not a pcap or pcapng capture (starts with {head.hex(' ')})", _HINT_FORMAT)
        # Our own file object: scapy does not close the file it opened when the format check fails.
        fdesc = open(self.path, "rb")
        try:
            self._reader: Any = RawPcapReader(fdesc)  # type: ignore[arg-type]  # scapy opens file objects too (its hint says str); picks pcapng by magic, unwraps gzip
        except (Scapy_Exception, EOFError, OSError, struct.error) as e:
            fdesc.close()
            raise CaptureFileError(
                self.path, f"not a readable pcap or pcapng capture (starts with {head.hex(' ')}; {e})", _HINT_FORMAT
            ) from None
        self._fdesc = fdesc
        self.sha256 = file_sha256(self.path)
        self.format = "pcapng" if isinstance(self._reader, RawPcapNgReader) else "pcap"
        self.gzip = isinstance(self._reader.f, gzip.GzipFile)
        self.linktype: int | None = getattr(self._reader, "linktype", None) if self.format == "pcap" else None
        self._nano = bool(getattr(self._reader, "nano", False))

    # ------------------------------------------------------------ iteration

    def _raw_pos(self) -> int:
        f = self._reader.f
        return int(self._fdesc.tell()) if self.gzip else int(f.tell())  # gzip: compressed bytes, to match the file size

    def __iter__(self) -> Iterator[Record]:
        if self.format == "pcap" and not self.gzip:  # gzip keeps the per-record reader: a cut stream ends it cleanly
            return self._iter_pcap()
        return self._iter_records()

    def _iter_pcap(self) -> Iterator[Record]:
        """Uncompressed classic pcap, parsed from large blocks: one read() per MiB instead of two per record."""
        reader = self._reader
        f = reader.f
        rec = struct.Struct(reader.endian + "IIII")
        unpack = rec.unpack_from
        linktype = self.linktype or 0
        unsupported = linktype not in SUPPORTED_LINKTYPES
        nano_div = 1e9 if self._nano else 1e6
        progress = self.on_progress
        next_progress = _PROGRESS_EVERY
        frame = 0
        base = f.tell()  # file offset (uncompressed, for gzip) of buf[0]
        buf = f.read(_BLOCK)
        pos = 0
        size = len(buf)
        try:
            while True:
                if size - pos < 16:
                    more = f.read(_BLOCK)
                    base += pos
                    buf = buf[pos:] + more
                    pos, size = 0, len(buf)
                    if size < 16:
                        break  # clean end, or a partial record header (reported below)
                sec, frac, caplen, _wirelen = unpack(buf, pos)
                end = pos + 16 + caplen
                if end > size:
                    base += pos
                    buf = buf[pos:]
                    pos = 0
                    need = 16 + min(caplen, MAX_RECORD)
                    while len(buf) < need:
                        more = f.read(max(_BLOCK, need - len(buf)))
                        if not more:
                            break
                        buf += more
                    size = len(buf)
                    if caplen > MAX_RECORD:  # oversized record: keep the first MAX_RECORD bytes, skip the rest
                        data = buf[16:16 + MAX_RECORD]
                        skip = caplen - (size - 16)
                        if skip > 0:
                            got = 0
                            while got < skip:
                                chunk = f.read(min(skip - got, _BLOCK))
                                if not chunk:
                                    break
                                got += len(chunk)
                            base += size + got
                            buf, size, end = b"", 0, 0
                        else:
                            end = 16 + caplen
                    elif size < need:
                        self._truncation(frame, base)  # the file ends inside this record
                        self._done()
                        return
                    else:
                        end = 16 + caplen
                        data = buf[16:end]
                else:
                    data = buf[pos + 16:end]
                pos = end
                frame += 1
                if unsupported and frame == 1:
                    self._warn(f"{self.path}: frame 1: linktype {linktype} is not supported; such frames are counted but not decoded")
                if progress is not None and frame >= next_progress:
                    next_progress += _PROGRESS_EVERY
                    self.frames = frame
                    progress(base + pos, self.size)
                yield frame, sec + frac / nano_div, linktype, data
            if base + pos < self.size:
                self._truncation(frame, base + pos, "partial record header")
        except (OSError, EOFError, ValueError) as e:
            self._warn(f"{self.path}: unreadable record after frame {frame} at byte {base + pos} ({e}); stopped there")
            self.truncated = True
            return
        finally:
            self.frames = frame
        self._done()

    def _iter_records(self) -> Iterator[Record]:
        reader = self._reader
        read = reader._read_packet  # the raw record reader scapy itself points to (read_packet refuses in Raw readers)
        pcapng = self.format == "pcapng"
        linktype = self.linktype or 0
        nano_div = 1e9 if self._nano else 1e6
        progress = self.on_progress
        frame = 0
        good_end = reader.f.tell()
        warned_linktypes: set[int] = set()
        bad_stamps, last_stamp = 0, 0.0
        while True:
            try:
                data, meta = read(MAX_RECORD)
            except EOFError:
                break
            except (Scapy_Exception, OSError, struct.error, ValueError) as e:
                self._warn(f"{self.path}: unreadable record after frame {frame} at byte {good_end} ({e}); stopped there")
                self.truncated = True
                break
            if pcapng:
                linktype = meta.linktype
                stamp = (meta.tshigh << 32 | meta.tslow) / meta.tsresol if meta.tshigh is not None else 0.0
                if not 0.0 <= stamp < _MAX_EPOCH:  # 64-bit stamps reach past year 9999, where datetime ends
                    if not bad_stamps:
                        self._warn(f"{self.path}: frame {frame + 1}: timestamp {stamp:.0f} s is past the year 9999; "
                                   f"the previous frame's time is used for it and any other such frame")
                    bad_stamps += 1
                    stamp = last_stamp
                last_stamp = stamp
            else:
                if len(data) < meta.caplen and meta.caplen <= MAX_RECORD:
                    # The file ends inside this record: drop the partial frame, keep what came before.
                    self._truncation(frame, good_end)
                    self._done()
                    return
                stamp = meta.sec + meta.usec / nano_div
            frame += 1
            good_end = reader.f.tell()
            if linktype not in SUPPORTED_LINKTYPES and linktype not in warned_linktypes:
                warned_linktypes.add(linktype)
                self._warn(f"{self.path}: frame {frame}: linktype {linktype} is not supported; such frames are counted but not decoded")
            if progress is not None and frame % _PROGRESS_EVERY == 0:
                progress(self._raw_pos(), self.size)
            self.frames = frame
            yield frame, stamp, linktype, data
        if not self.gzip:
            if pcapng:
                problem = self._pcapng_tail(good_end)
            else:
                problem = "partial record header" if good_end < self.size else None
            if problem:
                self._truncation(frame, good_end, problem)
        else:
            self._gzip_tail(frame)
        self._done()

    def _gzip_tail(self, frame: int) -> None:
        """A gzip stream that ends before its end-of-stream marker (the reader sees that as a plain end of
        the records): say so, as for an uncompressed capture cut short."""
        try:
            rest = self._reader.f.read(1)
        except EOFError as e:  # "Compressed file ended before the end-of-stream marker was reached"
            problem = f"gzip stream cut short ({e})"
        except (OSError, ValueError, zlib.error) as e:
            problem = f"gzip stream damaged ({e})"
        else:
            problem = "partial record" if rest else None
        if problem:
            self.truncated = True
            self._warn(f"{self.path}: truncated after frame {frame}: {problem} (file cut short, e.g. capture killed or "
                       f"copy interrupted); the {frame} complete frames were decoded")

    def _done(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.size, self.size)

    def _truncation(self, frame: int, good_end: int, problem: str = "partial record") -> None:
        self.truncated = True
        self._warn(
            f"{self.path}: truncated after frame {frame}: {problem} in the last {self.size - good_end} bytes "
            f"(file cut short, e.g. capture killed or copy interrupted); the {frame} complete frames were decoded"
        )

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        log.warning("%s", msg)

    def _pcapng_tail(self, offset: int) -> str | None:
        """Why the bytes after the last packet block are not whole blocks (None when they are).

        scapy's reader stops silently on a short block, so walk the remaining block headers to tell a
        clean end (trailing statistics blocks) from a cut one.
        """
        endian = self._reader.endian
        with open(self.path, "rb") as f:
            f.seek(offset)
            tail = f.read()
        pos = 0
        while pos < len(tail):
            if len(tail) - pos < 12:
                return "partial block header"
            btype = struct.unpack_from(endian + "I", tail, pos)[0]
            if btype == _PCAPNG_SHB and len(tail) - pos >= 12:
                endian = ">" if tail[pos + 8 : pos + 12] == b"\x1a\x2b\x3c\x4d" else "<"
            blen = struct.unpack_from(endian + "I", tail, pos + 4)[0]
            if blen < 12 or blen % 4:
                return f"corrupt block (length {blen})"
            if pos + blen > len(tail):
                return "partial block"
            pos += blen
        return None

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._reader.close()
        self._fdesc.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_capture(path: str | os.PathLike[str]) -> Iterator[Record]:
    """Every complete record of a capture; truncation is logged, not raised."""
    with CaptureReader(path) as r:
        yield from r
