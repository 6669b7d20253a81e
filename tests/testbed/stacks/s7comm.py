"""S7comm (ISO-on-TCP, port 102) with python-snap7: ``snap7.server.Server`` as the PLC,
``snap7.client.Client`` for masters and attackers.

Server config: ``dbs`` ({number: size}, default {1: 64, 2: 32}), ``outputs``/``inputs``/``flags``
(area sizes in bytes, default 16).  Areas are filled from ``seed``.

Actions: ``db_read`` (db, start, size), ``db_write`` (db, start, data_hex), ``ab_read``/``ab_write``
(outputs: start, size | data_hex), ``mb_read`` (flags), ``read_szl`` (szl_id, index),
``cpu_info``, ``cpu_state``, ``list_blocks``, ``upload`` (block: DB number), ``download`` (block,
data_hex or ``from_upload: true`` to re-download the block just uploaded, patched),
``plc_stop``, ``plc_hot_start``, ``plc_cold_start``, ``set_clock``.
"""

from __future__ import annotations

import ctypes
import logging
import random
from typing import Any

from .common import STOP, emit, serve_until_stopped

PORT = 102
TRANSPORT = "tcp"


def serve(cfg: dict[str, Any]) -> int:
    import snap7
    from snap7.type import SrvArea

    logging.getLogger("snap7").setLevel(logging.CRITICAL)
    rng = random.Random(int(cfg.get("seed", 1)))
    server = snap7.server.Server(log=False)
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
