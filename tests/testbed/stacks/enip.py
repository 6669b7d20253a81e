"""EtherNet/IP + CIP (TCP 44818): cpppo's Logix simulator (``python -m cpppo.server.enip`` with
tags) as the controller; cpppo's client for symbolic tag reads/writes (unconnected sends, as an
HMI does), pycomm3 for ListIdentity and raw CIP (``generic_message``).

Server config: ``tags`` (cpppo tag specs, default Temperature=REAL[4], Setpoint=INT[10],
Running=DINT[1]).

Actions: ``read_tags`` (tags: cpppo operation strings such as ``Setpoint[0-3]``), ``write_tag``
(tag: such as ``Setpoint[1]=(INT)42``), ``list_identity`` (pycomm3, TCP), ``list_identity_sweep``
(UDP ListIdentity to host octets ``first``-``last`` of the target's /24; only hosts that answer
ARP reach the wire), ``generic`` (pycomm3 generic_message: service, class_code, instance,
attribute, data_hex, connected).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from typing import Any

from .common import STOP, emit, wait_tcp

PORT = 44818
TRANSPORT = "tcp"
DEFAULT_TAGS = ["Temperature=REAL[4]", "Setpoint=INT[10]", "Running=DINT[1]"]


def serve(cfg: dict[str, Any]) -> int:
    argv = [sys.executable, "-m", "cpppo.server.enip", "--address",
            f"{cfg['bind']}:{int(cfg['port'])}", *cfg.get("tags", DEFAULT_TAGS)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_tcp(cfg["bind"], int(cfg["port"]), timeout=20.0):
            raise RuntimeError("cpppo did not start listening")
        emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="enip", server="cpppo")
        while not STOP.wait(0.1):
            if proc.poll() is not None:
                raise RuntimeError(f"cpppo exited with {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
        emit("stopped")
    return 0


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.conn: Any = None

    def cpppo(self) -> Any:
        from cpppo.server.enip import client

        if self.conn is None:
            self.conn = client.connector(host=self.spec["target"], port=int(self.spec["port"]),
                                         timeout=float(self.spec.get("timeout", 2.0)))
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close_gateway()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None


def _ops(s: Session, ops: list[str]) -> list[Any]:
    from cpppo.server.enip import client

    out = []
    conn = s.cpppo()
    with conn:  # cpppo's parser lock
        for _idx, _dsc, _op, _rpy, sts, val in conn.pipeline(
                operations=client.parse_operations(ops), depth=1):
            out.append({"status": sts, "value": val if not isinstance(val, list) else val[:4]})
    return out


def _read_tags(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"replies": _ops(s, list(a["tags"]))}


def _write_tag(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"replies": _ops(s, [str(a["tag"])])}


def _list_identity(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from pycomm3 import CIPDriver

    with CIPDriver(s.spec["target"]) as drv:
        ident = drv.list_identity(s.spec["target"])
    return {"product_name": (ident or {}).get("product_name")}


def _list_identity_sweep(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    net = s.spec["target"].rsplit(".", 1)[0]
    header = struct.pack("<HHII8sI", 0x63, 0, 0, 0, b"qn-scan!", 0)  # ListIdentity, no data
    answers = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((s.spec.get("bind") or "0.0.0.0", 0))
        sock.settimeout(0.05)
        for octet in range(int(a.get("first", 1)), int(a.get("last", 254)) + 1):
            try:
                sock.sendto(header, (f"{net}.{octet}", int(s.spec["port"])))
            except OSError:
                pass
            time.sleep(float(a.get("gap_each", 0.01)))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                sock.recvfrom(2048)
                answers += 1
            except (TimeoutError, OSError):
                pass
    return {"answers": answers}


def _generic(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from pycomm3 import CIPDriver

    with CIPDriver(s.spec["target"]) as drv:
        res = drv.generic_message(
            service=int(a["service"]), class_code=int(a["class_code"]),
            instance=int(a.get("instance", 1)),
            attribute=int(a["attribute"]) if "attribute" in a else b"",
            request_data=bytes.fromhex(a.get("data_hex", "")),
            connected=bool(a.get("connected", False)), name=str(a.get("name", "generic")))
    return {"error": res.error}


ACTIONS = {
    "read_tags": _read_tags,
    "write_tag": _write_tag,
    "list_identity": _list_identity,
    "list_identity_sweep": _list_identity_sweep,
    "generic": _generic,
}
