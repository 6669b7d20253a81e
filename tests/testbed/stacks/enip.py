"""EtherNet/IP + CIP (TCP 44818): cpppo's Logix simulator (``python -m cpppo.server.enip`` with
tags) as the controller; cpppo's client for symbolic tag reads/writes (unconnected sends, as an
HMI does), pycomm3 for ListIdentity and raw CIP (``generic_message``).

Server config: ``tags`` (cpppo tag specs, default Temperature=REAL[4], Setpoint=INT[10],
Running=DINT[1]); ``identity`` overrides fields of :func:`identity` (the CIP Identity object cpppo
serves, given to it as an ``[Identity]`` section of a cpppo config file).  In the plant (one netns
per host) cpppo binds 0.0.0.0 so that its UDP socket also hears ListIdentity broadcasts to the
subnet's .255; in the loopback fallback it binds the PLC's own address.

Actions: ``read_tags`` (tags: cpppo operation strings such as ``Setpoint[0-3]``), ``write_tag``
(tag: such as ``Setpoint[1]=(INT)42``), ``list_identity`` (pycomm3, TCP), ``list_identity_sweep``
(UDP ListIdentity to host octets ``first``-``last`` of the target's /24; only hosts that answer
ARP reach the wire), ``list_identity_broadcast`` (one UDP ListIdentity to the /24's .255, as
pycomm3's ``discover()`` or nmap's enip-info do; answers counted and their product names parsed),
``generic`` (pycomm3 generic_message: service, class_code, instance, attribute, data_hex, connected).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import emit, supervise

PORT = 44818
TRANSPORT = "tcp"
DEFAULT_TAGS = ["Temperature=REAL[4]", "Setpoint=INT[10]", "Running=DINT[1]"]

#: The CIP Identity object (class 1 instance 1) the testbed's controllers announce in ListIdentity.
IDENTITY: dict[str, Any] = {
    "vendor_id": 1,  # CIP vendor 1: Rockwell Automation/Allen-Bradley
    "vendor": "Rockwell Automation",  # the inventory's name for that vendor (not on the wire)
    "device_type": 0x0E,  # Programmable Logic Controller
    "product_code": 0x0037,
    "revision": "20.13",  # major.minor
    "product_name": "1756-L71/B LOGIX5571",
}


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a controller with this ``plcs`` entry announces (single source for server and tests)."""
    out = dict(IDENTITY)
    out["serial"] = f"0x{0x00C0F000 + int(cfg.get('seed', 1)):08x}"
    out.update(cfg.get("identity") or {})
    return out


def _cpppo_config(ident: dict[str, Any]) -> str:
    major, minor = (int(x) for x in str(ident["revision"]).split("."))
    return "\n".join([
        "[Identity]",
        f"Vendor Number = {int(ident['vendor_id'])}",
        f"Device Type = {int(ident['device_type'])}",
        f"Product Code Number = {int(ident['product_code'])}",
        f"Product Revision = {major | minor << 8}",  # INT, little-endian: major byte first
        f"Serial Number = {int(str(ident['serial']), 16)}",
        f"Product Name = {ident['product_name']}",
        "",
    ])


def serve(cfg: dict[str, Any]) -> int:
    import tempfile

    tmp = tempfile.TemporaryDirectory(prefix="qn-enip-")
    conf = Path(tmp.name) / "identity.cfg"
    conf.write_text(_cpppo_config(identity(cfg)), encoding="utf-8")
    bind = cfg["bind"] if cfg["bind"].startswith("127.") else "0.0.0.0"
    argv = [sys.executable, "-m", "cpppo.server.enip", "--config", str(conf),
            "--address", f"{bind}:{int(cfg['port'])}", *cfg.get("tags", DEFAULT_TAGS)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp.name)
    try:
        return supervise(proc, cfg, "cpppo", timeout=20.0, stack="enip", server="cpppo")
    finally:
        tmp.cleanup()
        emit("stopped")


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
    ident = ident or {}
    return {k: ident.get(k) for k in ("product_name", "vendor", "serial", "revision")}


def _list_identity_broadcast(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from .common import emit_connect, local_ip_for

    net = s.spec["target"].rsplit(".", 1)[0]
    dest = (str(a.get("address", f"{net}.255")), int(s.spec["port"]))
    header = struct.pack("<HHII8sI", 0x63, 0, 0, 0, b"qn-disc!", 0)  # ListIdentity, no data
    names: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((s.spec.get("bind") or local_ip_for(s.spec["target"]), 0))
        emit_connect(sock, dest)
        sock.sendto(header, dest)
        sock.settimeout(0.1)
        deadline = time.monotonic() + float(a.get("wait", 1.0))
        while time.monotonic() < deadline:
            try:
                data, peer = sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            # header 24, item count 2, type 2, length 2, version 2, sockaddr 16, vendor .. serial 14
            if len(data) > 63:
                names.append(f"{peer[0]}: " + data[63:63 + data[62]].decode(errors="replace"))
    return {"answers": sorted(names)}


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
    "list_identity_broadcast": _list_identity_broadcast,
    "generic": _generic,
}
