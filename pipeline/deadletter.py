"""Records a stage will never store, kept on disk with the reason rather than dropped.

    dead = DeadLetters("var/dead-letter", stage="index")
    dead.put(record, "not an event: expected object, got array")

A record the store refuses for what it is (not an encoded event, a field the strict mapping
rejects, another organization's event on an enterprise topic) cannot be retried into the store:
retrying would stall the stage for every record behind it. It is committed with its batch and
appended to `<dir>/<stage>-<YYYY-MM-DD>.ndjson`, one JSON object per record: topic, partition,
offset, key and value (UTF-8 text when it decodes, else `value_b64`), the reason and when it was
set aside. An operator can read, fix and re-send them; nothing is lost.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from pathlib import Path

import msgspec

from .bus import Record
from .exceptions import StoreError

_encode = msgspec.json.Encoder().encode


def _text_or_b64(name: str, raw: bytes | None) -> dict[str, str | None]:
    if raw is None:
        return {name: None}
    try:
        return {name: bytes(raw).decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(bytes(raw)).decode("ascii")}


class DeadLetters:
    """Append-only daily files of records set aside by one stage; thread-safe."""

    def __init__(self, directory: str | Path, stage: str) -> None:
        self.dir = Path(directory)
        self.stage = stage
        self._lock = threading.Lock()

    def path(self, day: dt.date | None = None) -> Path:
        day = day or dt.datetime.now(dt.timezone.utc).date()
        return self.dir / f"{self.stage}-{day.isoformat()}.ndjson"

    def put(self, record: Record, reason: str) -> Path:
        """Append `record` with `reason`; raises StoreError (with the path) when the file cannot be written."""
        now = dt.datetime.now(dt.timezone.utc)
        line = _encode({
            "topic": record.topic, "partition": record.partition, "offset": record.offset,
            **_text_or_b64("key", record.key), **_text_or_b64("value", record.value),
            "reason": reason, "stage": self.stage, "set_aside": now.isoformat(),
        }) + b"\n"
        path = self.path(now.date())
        with self._lock:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as f:
                    f.write(line)
            except OSError as e:
                raise StoreError(f"dead letters: cannot append to {path} ({e.strerror or e}); free space or fix its permissions") from e
        return path
