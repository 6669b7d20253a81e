"""检查评估 evidence export: one alert as a zip an auditor can check offline — the pcap slice of its
frames, its triggering events, the alert itself, and a report with every hash and the command that
reproduces the alert from the original capture.

The original capture is found by its SHA-256: an upload (the uploads folder keeps files by hash) or,
for bundled and command-line replays, a file of the same name and hash under CAPTURE_PATHS. When it
is nowhere, the zip is made without the slice and the report says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import struct
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, send_file
from flask.typing import ResponseReturnValue

from pipeline.schema import Event, to_dict
from pipeline.store import Query

from . import captures
from .auth import audit, requires
from .store import get_store

bp = Blueprint("evidence", __name__)
api = Blueprint("evidence_api", __name__, url_prefix="/api/v1")

ROOT = Path(__file__).resolve().parents[2]
MAX_EVENTS = 10_000
PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4": ">", b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">", b"\x4d\x3c\xb2\xa1": "<"}
_hash_cache: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 of a searched capture


# ---------------------------------------------------------------- finding the alert and its capture


def alert_or_404(alert_id: str) -> Event:
    """The alert, within what this user may read (auditors: every enterprise; enterprise users: their own)."""
    from flask import abort

    page = get_store().search("alerts", Query(organization=captures.scope(), filters={"event.id": alert_id}, size=1))
    if not page.items:
        abort(404)
    return page.items[0]


def triggering_events(alert: Event) -> tuple[list[Event], list[str]]:
    """The alert's events in the order it names them, and the ids the store does not hold."""
    ids = list(dict.fromkeys((alert.evidence.event_ids or []) if alert.evidence else []))[:MAX_EVENTS]
    if not ids:
        return [], []
    org = alert.organization.id if alert.organization else None
    page = get_store().search("events", Query(organization=org, filters={"event.id": ids}, size=len(ids)))
    by_id = {e.event.id: e for e in page.items}
    return [by_id[i] for i in ids if i in by_id], [i for i in ids if i not in by_id]


def _sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        with open(path, "rb") as f:
            _hash_cache[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _hash_cache[key]


def capture_paths(app: Flask) -> list[Path]:
    configured = app.config.get("CAPTURE_PATHS")
    if configured is None:
        return [ROOT / "pcaps"]
    if isinstance(configured, str):
        configured = [p for p in configured.split(os.pathsep) if p]
    return [Path(p) for p in configured]


def find_capture(app: Flask, sha256: str, name: str | None) -> Path | None:
    """The original capture with this hash: an upload, else a same-named file under CAPTURE_PATHS."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        return None
    uploaded = captures.uploaded_path(app, sha256)
    if uploaded is not None:
        return uploaded
    base = Path(name or "").name  # a name off an event is never a path
    if not base or base in (".", ".."):
        return None
    for folder in capture_paths(app):
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.rglob(base)):
            if candidate.is_file() and _sha256_of(candidate) == sha256:
                return candidate
    return None


# ---------------------------------------------------------------- the pcap slice


def write_slice(capture: Path, frames: Iterable[int], out: io.BytesIO) -> list[int]:
    """Writes a classic pcap holding only `frames` (1-based, Wireshark's numbering); returns those found.

    A classic pcap is copied record by record, byte for byte (its own header, byte order and time
    resolution), so each record in the slice is identical to the original's. pcapng (and gzip) go
    through the capture reader and are written as microsecond pcap.
    """
    wanted = sorted(set(int(f) for f in frames if int(f) > 0))
    if not wanted:
        return []
    with open(capture, "rb") as f:
        head = f.read(24)
        endian = PCAP_MAGICS.get(head[:4])
        if endian is not None and len(head) == 24:
            return _copy_pcap_records(f, head, endian, wanted, out)
    return _rewrite_records(capture, wanted, out)


def _copy_pcap_records(f: Any, head: bytes, endian: str, wanted: list[int], out: io.BytesIO) -> list[int]:
    out.write(head)
    rec = struct.Struct(endian + "IIII")
    want, last, found = set(wanted), wanted[-1], []
    frame = 0
    while frame < last:
        header = f.read(16)
        if len(header) < 16:
            break
        caplen = rec.unpack(header)[2]
        data = f.read(caplen)
        if len(data) < caplen:
            break  # truncated capture: the record is incomplete
        frame += 1
        if frame in want:
            out.write(header)
            out.write(data)
            found.append(frame)
    return found


def _rewrite_records(capture: Path, wanted: list[int], out: io.BytesIO) -> list[int]:
    from sensors.pcapfile import CaptureReader

    want, last, found = set(wanted), wanted[-1], []
    header_written = False
    with CaptureReader(capture) as reader:
        for frame, stamp, linktype, data in reader:
            if frame > last:
                break
            if frame not in want:
                continue
            if not header_written:
                out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
                header_written = True
            usec = round(stamp * 1_000_000)
            out.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(data), len(data)))
            out.write(data)
            found.append(frame)
    return found


# ---------------------------------------------------------------- the zip


def _safe_name(alert_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", alert_id)[:80] or "alert"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_zip(app: Flask, alert: Event, events: Sequence[Event], missing: Sequence[str]) -> tuple[bytes, dict[str, Any]]:
    """The evidence zip and what went into it (for the audit log)."""
    ev = alert.evidence
    sha = (ev.file_sha256 if ev else None) or ""
    name = (ev.file if ev else None) or ""
    frames = sorted(set(ev.frames or [])) if ev else []
    org = alert.organization.id if alert.organization else ""
    files: dict[str, bytes] = {}
    files["alert.json"] = (json.dumps(to_dict(alert), ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    files["events.jsonl"] = "".join(json.dumps(to_dict(e), ensure_ascii=False, sort_keys=True) + "\n"
                                    for e in events).encode()
    capture = find_capture(app, sha, name) if sha else None
    sliced: list[int] = []
    if capture is not None and frames:
        buf = io.BytesIO()
        sliced = write_slice(capture, frames, buf)
        files["frames.pcap"] = buf.getvalue()
    report = _report(alert, org=org, sha=sha, name=name, frames=frames, sliced=sliced, capture=capture,
                     hashes={k: _sha(v) for k, v in files.items()}, missing=missing, events=len(events))
    files["REPORT.md"] = report.encode()
    sums = "".join(f"{_sha(data)}  {fname}\n" for fname, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode()
    out = io.BytesIO()
    folder = f"evidence-{_safe_name(alert.event.id or 'alert')}"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for fname, data in files.items():
            z.writestr(f"{folder}/{fname}", data)
    blob = out.getvalue()
    return blob, {"zip_sha256": _sha(blob), "capture_sha256": sha, "slice": "frames.pcap" in files,
                  "frames": len(sliced), "events": len(events), "organization": org}


def _report(alert: Event, *, org: str, sha: str, name: str, frames: list[int], sliced: list[int],
            capture: Path | None, hashes: dict[str, str], missing: Sequence[str], events: int) -> str:
    rule = alert.rule
    aid = alert.event.id or ""
    lines = [
        f"# Evidence for alert {aid}",
        "",
        f"- Rule: `{rule.id if rule else '-'}` {rule.name if rule else ''}",
        f"- Severity: {alert.event.severity}",
        f"- Enterprise (organization.id): `{org}`",
        f"- Time (@timestamp): {alert.timestamp.isoformat() if alert.timestamp else '-'}",
        f"- Techniques: {', '.join(alert.threat.technique.id) if alert.threat and alert.threat.technique and alert.threat.technique.id else '-'}",
        f"- Exported: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        "",
        "## Original capture",
        "",
        f"- File name: `{name or '-'}`",
        f"- SHA-256: `{sha or '-'}`",
        f"- Frames (1-based, as Wireshark numbers them): {', '.join(map(str, frames)) or '-'}",
    ]
    if capture is None:
        lines += ["", "**The original capture is not available to this console: this export has no pcap slice.** "
                      "Ask the enterprise or the sensor's operator for the file with the SHA-256 above."]
    elif sliced != frames:
        absent = sorted(set(frames) - set(sliced))
        lines += ["", f"Frames not found in the capture (it may be truncated): {', '.join(map(str, absent))}"]
    lines += ["", "## Files in this export", "", "| file | SHA-256 | what |", "|---|---|---|"]
    what = {"alert.json": "the alert as stored (ECS JSON)",
            "events.jsonl": f"the {events} triggering event(s), one JSON document a line, in evidence.event_ids order",
            "frames.pcap": f"only the alert's {len(sliced)} frame(s) of the original capture, records copied unchanged"}
    for fname, digest in hashes.items():
        lines.append(f"| `{fname}` | `{digest}` | {what.get(fname, '')} |")
    if missing:
        lines += ["", f"Event ids the alert names that the store no longer holds: {', '.join(missing)}"]
    capture_arg = name or "CAPTURE.pcap"
    lines += [
        "",
        "Check the files: `sha256sum -c SHA256SUMS`; check the original: `sha256sum " + capture_arg + "` must print the SHA-256 above.",
        "",
        "## Reproduce",
        "",
        "With the original capture and the same rules (Qinling's `rules/`):",
        "",
        "```sh",
        f"qinling replay {capture_arg} --org {org or 'ORG'} --no-store --out alerts.jsonl",
        f"grep -c '\"id\": *\"{aid}\"' alerts.jsonl   # 1: the same alert id was raised again",
        "```",
        "",
        "Alert ids are deterministic: a hash of the rule id and the triggering event ids, which are made of the "
        "enterprise, the capture's SHA-256 and the frame numbers. The same capture, enterprise and rule give the same id.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- routes


def _send(alert: Event) -> ResponseReturnValue:
    events, missing = triggering_events(alert)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    blob, detail = build_zip(app, alert, events, missing)
    audit("evidence.export", alert.event.id or "", detail=detail)
    return send_file(io.BytesIO(blob), mimetype="application/zip", as_attachment=True,
                     download_name=f"evidence-{_safe_name(alert.event.id or 'alert')}.zip", max_age=0)


@bp.get("/alerts/<path:alert_id>/export")
@requires("evidence.export")
def page(alert_id: str) -> ResponseReturnValue:
    alert = alert_or_404(alert_id)
    events, missing = triggering_events(alert)
    ev = alert.evidence
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    capture = find_capture(app, ev.file_sha256 or "", ev.file) if ev and ev.file_sha256 else None
    return render_template("captures/evidence.html", alert=alert, events=events, missing=missing,
                           available=capture is not None)


@bp.get("/alerts/<path:alert_id>/evidence.zip")
@requires("evidence.export")
def download(alert_id: str) -> ResponseReturnValue:
    return _send(alert_or_404(alert_id))


@api.get("/alerts/<path:alert_id>/evidence.zip")
@requires("evidence.export")
def api_download(alert_id: str) -> ResponseReturnValue:
    return _send(alert_or_404(alert_id))


__all__ = ["api", "bp", "build_zip", "find_capture", "triggering_events", "write_slice"]
