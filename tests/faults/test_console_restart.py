"""FAULT: the console (the werkzeug server `qinling console` runs) SIGKILLed while a large capture upload
streams in, then started again: the partial is removed and reported, never a capture; a re-upload
succeeds with the same SHA-256; the capture uploaded before is still there."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.faults, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "pcaps" / "modbus" / "modbus_plant_attack.pcap"
PASSWORD = "Faults-Test-Passw0rd!"


def _big_capture(path: Path, packets: int = 15_000) -> str:
    """A valid pcap of ~21 MB (Ethernet/IPv4/UDP, 1400-byte payloads); returns its SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        def w(b: bytes) -> None:
            h.update(b)
            f.write(b)
        w(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(packets):
            payload = i.to_bytes(4, "big") * 350
            udp = struct.pack(">HHHH", 40000, 9999, 8 + len(payload), 0) + payload
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
            frame = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + ip + udp
            w(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)) + frame)
    return h.hexdigest()


def _qinling(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    r = subprocess.run([sys.executable, "-m", "console", *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Console:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "console", "console", "--port", str(self.port)], cwd=REPO,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.request("GET", "/api/v1/captures")
                return
            except OSError:
                assert time.monotonic() < deadline and self.proc.poll() is None, self.log.read_text()
                time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            c.request(method, path, body=body, headers={"Authorization": f"Bearer {self.env['FAULTS_TOKEN']}", **(headers or {})})
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data[:1] in (b"{", b"[") else data.decode(errors="replace")
        finally:
            c.close()

    def upload(self, path: Path, *, slow_until_killed: bool = False) -> tuple[int, Any]:
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"capture\"; filename=\"{path.name}\"\r\n"
                "Content-Type: application/vnd.tcpdump.pcap\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = len(head) + path.stat().st_size + len(tail)

        def body() -> Iterator[bytes]:
            kill = slow_until_killed
            yield head
            sent = 0
            with open(path, "rb") as f:
                while chunk := f.read(256 * 1024):
                    yield chunk
                    sent += len(chunk)
                    if kill:
                        time.sleep(0.01)
                        if sent >= path.stat().st_size // 2:
                            self.kill()  # half of it is on the wire: the console dies mid-upload
                            kill = False
            yield tail

        return self.request("POST", "/api/v1/captures", body=body(), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(size)})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def _wait_done(console: Console, sha: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, cap = console.request("GET", f"/api/v1/captures/{sha}")
        assert status == 200, cap
        if cap["status"] in ("done", "failed") or time.monotonic() > deadline:
            return cap  # type: ignore[no-any-return]
        time.sleep(0.5)


def test_console_killed_mid_upload_partial_removed_and_reported_reupload_matches(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    env = {**os.environ, "QINLING_STORE": f"sqlite:///{store}", "QINLING_BUS": "embedded"}
    _qinling(env, "users", "enterprise", "plant1", "--name", "Plant 1")
    _qinling(env, "users", "add", "uploader", "--role", "enterprise", "--org", "plant1", "--password-stdin", stdin=PASSWORD + "\n")
    env["FAULTS_TOKEN"] = _qinling(env, "users", "token", "uploader").strip()
    big = tmp_path / "big-capture.pcap"
    big_sha = _big_capture(big)
    small_sha = hashlib.sha256(SMALL.read_bytes()).hexdigest()
    uploads = tmp_path / "uploads"
    console = Console(env, free_port(), tmp_path / "console.log")
    try:
        console.start()
        status, cap = console.upload(SMALL)
        assert status == 202 and cap["sha256"] == small_sha, cap
        small = _wait_done(console, small_sha)
        assert small["status"] == "done" and small["alerts"] > 0, small

        with pytest.raises(OSError):  # the server died under the client: reset, or a broken pipe
            console.upload(big, slow_until_killed=True)
        partial = list(uploads.glob(".upload-*"))
        assert len(partial) == 1 and 0 < partial[0].stat().st_size < big.stat().st_size, partial
        received = partial[0].stat().st_size

        console.start()
        status, listing = console.request("GET", "/api/v1/captures")
        assert status == 200
        assert [c["sha256"] for c in listing["items"]] == [small_sha], "a half file became a capture, or the earlier one was lost"
        report = listing["interrupted_uploads"]
        assert report["count"] == 1 and report["bytes"] == received, report
        assert "Upload the capture again" in report["message"] or "重新上传" in report["message"], report
        assert not list(uploads.glob(".upload-*")), "the partial was not removed"
        status, page = console.request("GET", "/captures/")
        assert status == 200 and ("重新上传" in page or "Upload the capture again" in page)

        status, cap = console.upload(big)
        assert status == 202 and cap["sha256"] == big_sha, cap
        assert hashlib.sha256((uploads / f"{big_sha}.pcap").read_bytes()).hexdigest() == big_sha
        done = _wait_done(console, big_sha, timeout=300)
        assert done["status"] == "done", done
        assert _wait_done(console, small_sha)["status"] == "done"
        assert sorted(f.name for f in uploads.iterdir()) == sorted([f"{small_sha}.pcap", f"{big_sha}.pcap"])
    finally:
        console.stop()
