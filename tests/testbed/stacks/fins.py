"""Omron FINS over UDP 9600: OUR OWN minimal FINS responder as the PLC (no FINS server or PLC
stack installs here: PyPI ``fins``, ``fins-driver``, ``omronfins`` and npm ``omron-fins`` are
client libraries only), the real client library ``fins`` 1.0.5 (aphyt/omron_fins,
``fins.udp.UDPFinsConnection``) for the HMI, the engineering station and the attacker.

The responder follows the Omron W342 FINS command reference: a 10-byte header (ICF, RSV, GCT,
DNA/DA1/DA2, SNA/SA1/SA2, SID), MRC/SRC, then MRES/SRES (end code) and data in the response.
The response's ICF is 0xC0 (gateway, response), GCT 0x02, its destination the command's source
and its source the PLC (net 0, node = last octet of its address, unit 0), the SID the command's.
A command with ICF bit 0 set (no response required) is not answered.  Served (everything else
gets 0x0401 undefined command):

* 0101 memory area read / 0102 memory area write: word areas CIO (0xB0), WR (0xB1), HR (0xB2),
  AR (0xB3), DM (0x82), timer/counter PV (0x89) and their bit areas (0x30-0x33, DM bit 0x02; one
  byte per bit); reads return what writes wrote.  DM holds 32768 words (CJ2M), other areas 8192
  (0x1103 address range error past the end, 0x1101 for an area we do not keep).
* 0306 program area read / 0307 program area write (program number 0xFFFF, beginning word,
  number of bytes with bit 15 = last block): a 4 KiB program area; writes only in PROGRAM mode
  (0x2202 not possible while running otherwise).
* 0401 run / 0402 stop: the operating mode (0x04 run, 0x00 program) that 0601 reports.
* 0501 controller data read: parameter 0x00 model (20 bytes), version (20), 40 bytes for
  system use and the area data (12: 92 bytes, the layout Wireshark's omron dissector reads);
  0x01 CPU bus unit configuration (64), remote I/O data (1) and PC status (1); no parameter both.  The model and version come from :func:`identity`.
* 0601 controller status read (status, mode, error words, 16-byte message).
* 0701 clock read / 0702 clock write (BCD year, month, day, hour, minute[, second[, day of week]]):
  the PLC keeps an offset to the host clock.

Server config: ``identity`` overrides fields of :func:`identity`; ``seed`` fills the DM area
(DM 0-9 process values) and the program area.

Actions (client: ``fins.udp.UDPFinsConnection``, bound to an ephemeral port of the host so every
step has a client ip:port of its own; DA1 = the PLC's last octet, SA1 = the host's):
``read`` (area: d/c/w/h, address, count: ``memory_area_read`` of words), ``write`` (area,
address, values: ``memory_area_write``), ``run`` (``change_to_run_mode``), ``stop``
(``change_to_program_mode``), ``controller_data_read`` (``cpu_unit_data_read``, parameter as
hex, default none), ``status`` (``cpu_unit_status_read``), ``clock_read`` / ``clock_write``
(the library's ``FinsCommandCode`` CLOCK_READ / CLOCK_WRITE through its own frame builder, the
library has no method for them; ``clock``: "YYYY-MM-DDTHH:MM:SS"), ``program_read`` (address,
size bytes per request, blocks: ``program_area_read``), ``program_write`` (address, size,
blocks: ``program_area_write``, last block flagged with bit 15).
"""

from __future__ import annotations

import datetime as _dt
import random
import socket
import struct
from typing import Any

from .common import STOP, emit

PORT = 9600
TRANSPORT = "udp"

#: What the testbed's FINS PLCs announce in a controller data read (0501).
IDENTITY: dict[str, str] = {"controller_model": "CJ2M-CPU31", "controller_version": "02.01"}

WORD_AREAS = {0x82: "d", 0xB0: "c", 0xB1: "w", 0xB2: "h", 0xB3: "a", 0x89: "t"}
BIT_AREAS = {0x02: "d", 0x30: "c", 0x31: "w", 0x32: "h", 0x33: "a"}
AREA_WORDS = {"d": 32768, "c": 6144, "w": 512, "h": 1536, "a": 960, "t": 4096}
PROGRAM_BYTES = 4096
_H = struct.Struct(">H")


def identity(cfg: dict[str, Any]) -> dict[str, str]:
    """The identity a PLC with this ``plcs`` entry announces (single source for server and tests)."""
    out = dict(IDENTITY)
    out.update({k: str(v) for k, v in (cfg.get("identity") or {}).items()})
    return out


def _bcd(v: int) -> int:
    return ((v // 10) << 4) | (v % 10)


def _unbcd(b: int) -> int:
    return (b >> 4) * 10 + (b & 0x0F)


class Plc:
    """The PLC's state and the W342 command handlers: ``handle(command frame) -> response | None``."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        rng = random.Random(int(cfg.get("seed", 1)))
        self.node = int(str(cfg["bind"]).rsplit(".", 1)[1]) & 0xFF
        self.ident = identity(cfg)
        self.mem = {a: [0] * n for a, n in AREA_WORDS.items()}
        for i in range(10):  # DM 0-9: process values the HMI polls
            self.mem["d"][i] = rng.randrange(0, 4000)
        self.program = bytearray(rng.getrandbits(8) for _ in range(PROGRAM_BYTES))
        self.mode = 0x04  # RUN
        self.clock_offset = 0.0
        self.commands = 0

    def handle(self, p: bytes) -> bytes | None:
        if len(p) < 12 or p[0] & 0x40:  # too short for header + command code, or a response
            return None
        icf, dna, da1, da2, sna, sa1, sa2, sid = p[0], p[3], p[4], p[5], p[6], p[7], p[8], p[9]
        del dna, da1, da2  # a real PLC relays or drops others' frames; ours answers everything
        code = _H.unpack_from(p, 10)[0]
        self.commands += 1
        try:
            end, data = self.command(code, p[12:])
        except (IndexError, struct.error):
            end, data = 0x1002, b""  # command too short
        if icf & 0x01:  # no response required
            return None
        header = bytes([0xC0, 0x00, 0x02, sna, sa1, sa2, 0x00, self.node, 0x00, sid])
        return header + _H.pack(code) + _H.pack(end) + data

    def _area(self, code: int) -> tuple[str, bool] | None:
        if code in WORD_AREAS:
            return WORD_AREAS[code], False
        if code in BIT_AREAS:
            return BIT_AREAS[code], True
        return None

    def command(self, code: int, d: bytes) -> tuple[int, bytes]:
        if code in (0x0101, 0x0102):
            if len(d) < 6:
                return 0x1002, b""
            area = self._area(d[0])
            if area is None:
                return 0x1101, b""
            name, bits = area
            addr, bit, count = _H.unpack_from(d, 1)[0], d[3], _H.unpack_from(d, 4)[0]
            words = self.mem[name]
            if (not bits and bit) or bit > 15:
                return 0x1103, b""
            end_bit = addr * 16 + bit + count if bits else (addr + count) * 16
            if end_bit > len(words) * 16:
                return 0x1103, b""
            if code == 0x0101:
                if bits:
                    return 0, bytes((words[(addr * 16 + bit + i) // 16] >> ((bit + i) % 16)) & 1
                                    for i in range(count))
                return 0, b"".join(_H.pack(words[addr + i]) for i in range(count))
            payload = d[6:]
            if len(payload) != (count if bits else 2 * count):
                return 0x1003, b""  # number of elements and data do not agree
            for i in range(count):
                if bits:
                    w, b = divmod(addr * 16 + bit + i, 16)
                    words[w] = (words[w] | (1 << b)) if payload[i] & 1 else (words[w] & ~(1 << b))
                else:
                    words[addr + i] = _H.unpack_from(payload, 2 * i)[0]
            return 0, b""
        if code in (0x0306, 0x0307):
            if len(d) < 8:
                return 0x1002, b""
            prog, start, nbytes = d[0:2], struct.unpack_from(">I", d, 2)[0], _H.unpack_from(d, 6)[0]
            n = nbytes & 0x7FFF
            if start + n > PROGRAM_BYTES:
                return 0x1103, b""
            if code == 0x0306:
                last = 0x8000 if start + n >= PROGRAM_BYTES else 0
                return 0, prog + d[2:6] + _H.pack(n | last) + bytes(self.program[start:start + n])
            if self.mode != 0x00:
                return 0x2202, b""  # program write only in PROGRAM mode
            data = d[8:]
            if len(data) != n:
                return 0x1003, b""
            self.program[start:start + n] = data
            return 0, prog + d[2:6] + _H.pack(nbytes)
        if code == 0x0401:
            self.mode = d[2] if len(d) >= 3 else 0x04
            return 0, b""
        if code == 0x0402:
            self.mode = 0x00
            return 0, b""
        if code == 0x0501:
            model = self.ident["controller_model"].encode("ascii")[:20].ljust(20, b" ")
            version = self.ident["controller_version"].encode("ascii")[:20].ljust(20, b" ")
            # 00: model, version, for system use and the area data (program area size, IOM size, DM
            # words, timer/counter size, expansion DM size, steps, memory card kind and size) - 92
            # bytes, the layout Wireshark's omron dissector reads; 01: CPU bus unit configuration,
            # remote I/O data and PC status (0x01 running).
            first = (model + version + bytes(40) + _H.pack(10) + bytes([0x17]) + _H.pack(32768)
                     + bytes([8, 0]) + _H.pack(0) + bytes([0]) + _H.pack(0))
            second = bytes(64) + bytes([0x00]) + bytes([0x01 if self.mode else 0x00])
            if not d:
                return 0, first + second
            if d[0] not in (0x00, 0x01):
                return 0x110C, b""  # parameter error
            return 0, first if d[0] == 0x00 else second
        if code == 0x0601:
            status = 0x01 if self.mode else 0x00
            return 0, bytes([status, self.mode]) + bytes(8) + b" " * 16
        if code == 0x0701:
            now = _dt.datetime.now() + _dt.timedelta(seconds=self.clock_offset)
            return 0, bytes(_bcd(v) for v in (now.year % 100, now.month, now.day, now.hour,
                                                now.minute, now.second, (now.weekday() + 1) % 7))
        if code == 0x0702:
            if len(d) < 5:
                return 0x1002, b""
            yy, mo, dd, hh, mi = (_unbcd(b) for b in d[:5])
            ss = _unbcd(d[5]) if len(d) >= 6 else 0
            try:
                t = _dt.datetime(2000 + yy if yy < 70 else 1900 + yy, mo, dd, hh, mi, ss)
            except ValueError:
                return 0x110C, b""  # parameter error
            self.clock_offset = (t - _dt.datetime.now()).total_seconds()
            return 0, b""
        return 0x0401, b""  # undefined command


def serve(cfg: dict[str, Any]) -> int:
    plc = Plc(cfg)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((cfg["bind"], int(cfg["port"])))
    sock.settimeout(0.2)
    emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="fins", node=plc.node,
         model=plc.ident["controller_model"])
    try:
        while not STOP.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except socket.timeout:
                continue
            resp = plc.handle(data)
            if resp is not None:
                sock.sendto(resp, peer)
    finally:
        sock.close()
        emit("stopped", commands=plc.commands, mode=plc.mode)
    return 0


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.conn: Any = None
        self.local: tuple[str, int] | None = None

    def get(self) -> Any:
        if self.conn is None:
            from fins.udp import UDPFinsConnection

            target, tport = self.spec["target"], int(self.spec["port"])
            conn = UDPFinsConnection()
            conn.connect(target, port=tport, bind_port=0)  # binds ("", 0): an ephemeral port
            # Connected, so the socket has its local address now (the library sends with sendto to
            # the same address, which a connected datagram socket accepts): no probe socket of our
            # own that the SocketTracker would report as a step's connection.
            conn.fins_socket.connect((target, tport))
            ip, port = conn.fins_socket.getsockname()[:2]
            conn.fins_socket.settimeout(float(self.spec.get("timeout", 2.0)))
            conn.dest_node_add = int(self.spec["target"].rsplit(".", 1)[1])
            conn.srce_node_add = int(ip.rsplit(".", 1)[1])
            self.conn, self.local = conn, (ip, port)
            emit("connect", local=[ip, port], remote=[target, tport])
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.fins_socket.close()
            emit("close", local=list(self.local or ()))
            self.conn = None


def _result(resp: bytes) -> dict[str, Any]:
    """Command code, end code and data of a FINS response (parsed with the library's own frame)."""
    from fins.fins_common import FinsResponseFrame

    r = FinsResponseFrame()
    r.from_bytes(resp)
    end = int.from_bytes(r.end_code, "big")
    if end not in (0x0000, 0x0001):
        raise RuntimeError(f"FINS end code 0x{end:04x} for command 0x{r.command_code.hex()}")
    return {"sid": r.header.sid[0], "end_code": end, "data": r.text}


def _area(a: dict[str, Any]) -> bytes:
    from fins.fins_common import FinsPLCMemoryAreas

    areas = FinsPLCMemoryAreas()
    return {"d": areas.DATA_MEMORY_WORD, "c": areas.CIO_WORD, "w": areas.WORK_WORD,
            "h": areas.HOLDING_WORD}[str(a.get("area", "d"))]


def _read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    count = int(a.get("count", 10))
    res = _result(s.get().memory_area_read(_area(a), int(a.get("address", 0)).to_bytes(2, "big") + b"\x00", count))
    return {"words": [_H.unpack_from(res["data"], 2 * i)[0] for i in range(len(res["data"]) // 2)]}


def _write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    values = [int(v) for v in a["values"]]
    data = b"".join(_H.pack(v & 0xFFFF) for v in values)
    _result(s.get().memory_area_write(_area(a), int(a.get("address", 0)).to_bytes(2, "big") + b"\x00",
                                      data, len(values)))
    return {"written": len(values)}


def _run(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"end_code": _result(s.get().change_to_run_mode())["end_code"]}


def _stop(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"end_code": _result(s.get().change_to_program_mode())["end_code"]}


def _controller_data_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    param = bytes.fromhex(str(a.get("parameter", "")))
    data = _result(s.get().cpu_unit_data_read(param))["data"]
    out: dict[str, Any] = {"bytes": len(data)}
    if not param or param == b"\x00":
        out.update(model=data[0:20].decode("ascii", "replace").strip(),
                   version=data[20:40].decode("ascii", "replace").strip())
    return out


def _status(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    data = _result(s.get().cpu_unit_status_read())["data"]
    return {"status": data[0], "mode": data[1]}


def _clock_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from fins.fins_common import FinsCommandCode

    conn = s.get()
    data = _result(conn.execute_fins_command_frame(conn.fins_command_frame(FinsCommandCode().CLOCK_READ)))["data"]
    return {"clock": "20{:02x}-{:02x}-{:02x}T{:02x}:{:02x}:{:02x}".format(*data[:6])}


def _clock_write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from fins.fins_common import FinsCommandCode

    t = _dt.datetime.fromisoformat(str(a.get("clock", "2020-01-01T00:00:00")))
    text = bytes(_bcd(v) for v in (t.year % 100, t.month, t.day, t.hour, t.minute, t.second,
                                   (t.weekday() + 1) % 7))
    conn = s.get()
    _result(conn.execute_fins_command_frame(conn.fins_command_frame(FinsCommandCode().CLOCK_WRITE, text)))
    return {"clock": t.isoformat()}


def _program_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    start, size = int(a.get("address", 0)), int(a.get("size", 512))
    got = 0
    for _ in range(int(a.get("blocks", 1))):
        data = _result(s.get().program_area_read(start, size))["data"]
        got += len(data) - 8
        start += size
    return {"bytes": got}


def _program_write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(int(a.get("seed", 7)))
    start, size, blocks = int(a.get("address", 0)), int(a.get("size", 256)), int(a.get("blocks", 1))
    for k in range(blocks):
        flag = 0x8000 if k == blocks - 1 else 0
        _result(s.get().program_area_write(start, size | flag, bytes(rng.getrandbits(8) for _ in range(size))))
        start += size
    return {"bytes": size * blocks}


ACTIONS = {
    "read": _read,
    "write": _write,
    "run": _run,
    "stop": _stop,
    "controller_data_read": _controller_data_read,
    "status": _status,
    "clock_read": _clock_read,
    "clock_write": _clock_write,
    "program_read": _program_read,
    "program_write": _program_write,
}
