"""S7comm (ISO-on-TCP, port 102) with python-snap7: ``snap7.server.Server`` as the PLC,
``snap7.client.Client`` for masters and attackers.

Server config: ``dbs`` ({number: size}, default {1: 64, 2: 32}), ``outputs``/``inputs``/``flags``
(area sizes in bytes, default 16).  Areas are filled from ``seed``.

Actions: ``db_read`` (db, start, size), ``db_write`` (db, start, data_hex), ``ab_read``/``ab_write``
(outputs: start, size | data_hex), ``mb_read`` (flags), ``read_szl`` (szl_id, index),
``cpu_info``, ``cpu_state``, ``list_blocks``, ``upload`` (block: DB number), ``download`` (block,
data_hex or ``from_upload: true`` to re-download the block just uploaded, patched),
``plc_stop``, ``plc_hot_start``, ``plc_cold_start``, ``set_clock``, ``order_code`` (SZL 0x0011
through snap7's own parser).

Identity: python-snap7's server answers SZL 0x001C with 210 bytes and no partial-list header
(LENTHDR = N_DR = 0) and SZL 0x0011 with one 26-byte record, a layout no S7 CPU sends (our decoder,
as Wireshark's, finds no record in it) and the same canned values on every server.  The testbed's
PLC therefore answers 0x0011, 0x001C and 0x0111 as an S7-300 CPU does (LENTHDR 28 / 34, records
0x0001, 0x0006, 0x0007 and 0x0001-0x0005, 0x0007), with the identity :func:`identity` gives for the
scenario's ``plcs`` entry (``identity`` overrides per field).  The tests read the expected
inventory from that same function; snap7's client parses the answers (``cpu_info``, ``order_code``).
"""

from __future__ import annotations

import ctypes
import logging
import random
from typing import Any

from .common import STOP, emit, serve_until_stopped

PORT = 102
TRANSPORT = "tcp"

#: What the testbed's S7 PLCs announce (SZL 0x0011 / 0x001C); serial and names depend on the seed.
IDENTITY: dict[str, str] = {
    "vendor": "Siemens",  # not on the wire: derived from the 6ES7 order number
    "module_order_number": "6ES7 317-2EK14-0AB0",
    "module_type_name": "CPU 317-2 PN/DP",
    "firmware_version": "V3.2.8",
    "hardware_version": "7",
    "copyright": "Original Siemens Equipment",
}


def identity(cfg: dict[str, Any]) -> dict[str, str]:
    """The identity a PLC with this ``plcs`` entry announces (single source for server and tests)."""
    seed = int(cfg.get("seed", 1))
    out = dict(IDENTITY)
    out.update(system_name=f"QN-S7-{seed}", module_name=f"CPU317-{seed}",
               plant_name="Qinling testbed", serial_number=f"S C-QN{seed:04d}2026")
    out.update({k: str(v) for k, v in (cfg.get("identity") or {}).items()})
    return out


def szl_records(szl_id: int, szl_index: int, ident: dict[str, str]) -> bytes | None:
    """SZL data after the id/index words (LENTHDR, N_DR, records) as an S7-300 CPU sends it."""
    import struct

    def text(s: str, n: int) -> bytes:
        return s.encode("ascii")[:n].ljust(n, b"\x00")

    if szl_id & 0xFF == 0x11:
        mlfb = text(ident["module_order_number"], 20)
        major, minor, patch = (int(x) for x in ident["firmware_version"].lstrip("V").split("."))
        recs = {
            0x0001: struct.pack(">H20sHHH", 0x0001, mlfb, 0, 0, 0),
            0x0006: struct.pack(">H20sHHH", 0x0006, mlfb, 0, 0, int(ident["hardware_version"])),
            0x0007: struct.pack(">H20sHBBBB", 0x0007, text("", 20), 0, 0x56, major, minor, patch),
        }
        chosen = list(recs.values()) if szl_id == 0x0011 else [recs[szl_index]] if szl_index in recs else []
        return struct.pack(">HH", 28, len(chosen)) + b"".join(chosen) if chosen else None
    if szl_id == 0x001C:
        fields = {1: "system_name", 2: "module_name", 3: "plant_name", 4: "copyright",
                  5: "serial_number", 7: "module_type_name"}
        body = b"".join(struct.pack(">H", i) + text(ident[k], 32) for i, k in fields.items())
        return struct.pack(">HH", 34, len(fields)) + body
    return None


def _server_class() -> Any:
    import snap7

    class IdentityServer(snap7.server.Server):  # type: ignore[misc,name-defined]
        """snap7's server with S7-300-shaped identity lists (see the module docstring)."""

        ident: dict[str, str] = IDENTITY

        def _get_szl_data(self, szl_id: int, szl_index: int) -> bytes | None:
            data = szl_records(szl_id, szl_index, self.ident)
            return data if data is not None else super()._get_szl_data(szl_id, szl_index)

    return IdentityServer


def serve(cfg: dict[str, Any]) -> int:
    import snap7
    from snap7.type import SrvArea

    logging.getLogger("snap7").setLevel(logging.CRITICAL)
    rng = random.Random(int(cfg.get("seed", 1)))
    server = _server_class()(log=False)
    server.ident = identity(cfg)
    keep: list[Any] = []

    def area(kind: SrvArea, index: int, size: int) -> None:
        buf = (ctypes.c_char * size).from_buffer(bytearray(rng.randrange(256) for _ in range(size)))
        keep.append(buf)
        server.register_area(kind, index, buf)

    for num, size in {int(k): int(v) for k, v in (cfg.get("dbs") or {1: 64, 2: 32}).items()}.items():
        area(SrvArea.DB, num, size)
    area(SrvArea.PA, 0, int(cfg.get("outputs", 16)))
    area(SrvArea.PE, 0, int(cfg.get("inputs", 16)))
    area(SrvArea.MK, 0, int(cfg.get("flags", 16)))
    server.start_to(cfg["bind"], tcp_port=int(cfg["port"]))
    emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="s7comm")
    try:
        serve_until_stopped()
    finally:
        server.stop()
        emit("stopped")
    return 0


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.client: Any = None
        self.last_upload: bytes | None = None

    def get(self) -> Any:
        import snap7

        if self.client is None:
            logging.getLogger("snap7").setLevel(logging.CRITICAL)
            client = snap7.client.Client()
            opts = self.spec.get("options", {})
            client.connect(self.spec["target"], int(opts.get("rack", 0)), int(opts.get("slot", 1)),
                           tcp_port=int(self.spec["port"]))
            self.client = client
        return self.client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.disconnect()
            finally:
                self.client = None


def _hex(b: bytes | bytearray) -> str:
    return bytes(b[:16]).hex()


def _db_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"data": _hex(s.get().db_read(int(a["db"]), int(a.get("start", 0)), int(a["size"])))}


def _db_write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get().db_write(int(a["db"]), int(a.get("start", 0)), bytearray.fromhex(a["data_hex"]))
    return {"written": len(a["data_hex"]) // 2}


def _ab_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"data": _hex(s.get().ab_read(int(a.get("start", 0)), int(a["size"])))}


def _ab_write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get().ab_write(int(a.get("start", 0)), bytearray.fromhex(a["data_hex"]))
    return {"written": len(a["data_hex"]) // 2}


def _mb_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"data": _hex(s.get().mb_read(int(a.get("start", 0)), int(a["size"])))}


def _read_szl(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    szl = s.get().read_szl(int(a["szl_id"]), int(a.get("index", 0)))
    return {"szl_id": hex(int(a["szl_id"])), "len": int(szl.Header.LengthDR * szl.Header.NDR)}


def _cpu_info(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    info = s.get().get_cpu_info()
    return {"module": info.ModuleTypeName.decode(errors="replace"),
            "serial": info.SerialNumber.decode(errors="replace")}


def _order_code(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    oc = s.get().get_order_code()
    return {"order_code": oc.OrderCode.decode(errors="replace"),
            "version": f"V{oc.V1}.{oc.V2}.{oc.V3}"}


def _cpu_state(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"state": s.get().get_cpu_state()}


def _list_blocks(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    bl = s.get().list_blocks()
    return {"db": int(bl.DBCount), "ob": int(bl.OBCount)}


def _upload(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    data = s.get().upload(int(a["block"]))
    s.last_upload = bytes(data)
    return {"bytes": len(data)}


def _download(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    if a.get("from_upload"):
        if s.last_upload is None:
            raise RuntimeError("download from_upload without a previous upload")
        data = bytearray(s.last_upload)
        data[-1] ^= 0xFF  # the attacker's "patch"
    else:
        data = bytearray.fromhex(a["data_hex"])
    s.get().download(data, int(a["block"]))
    return {"bytes": len(data)}


def _simple(method: str) -> Any:
    def run(s: Session, a: dict[str, Any]) -> dict[str, Any]:
        return {"rc": getattr(s.get(), method)()}

    return run


def _set_clock(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import datetime

    return {"rc": s.get().set_plc_datetime(datetime.datetime(2020, 1, 1, 0, 0, 0))}


ACTIONS = {
    "db_read": _db_read,
    "db_write": _db_write,
    "ab_read": _ab_read,
    "ab_write": _ab_write,
    "mb_read": _mb_read,
    "read_szl": _read_szl,
    "cpu_info": _cpu_info,
    "order_code": _order_code,
    "cpu_state": _cpu_state,
    "list_blocks": _list_blocks,
    "upload": _upload,
    "download": _download,
    "plc_stop": _simple("plc_stop"),
    "plc_hot_start": _simple("plc_hot_start"),
    "plc_cold_start": _simple("plc_cold_start"),
    "set_clock": _set_clock,
}

__all__ = ["ACTIONS", "PORT", "STOP", "Session", "TRANSPORT", "serve"]
