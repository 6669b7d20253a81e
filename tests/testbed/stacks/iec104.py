"""IEC 60870-5-104 (port 2404) with c104: ``c104.Server`` as the RTU (one station), ``c104.Client``
for the SCADA master and the attacker.

Server config: ``common_address`` (47), ``spontaneous_s`` (1.0: period of the spontaneous
measurement changes).  Points of the station: M_ME_NC_1 IOA 11-12 (float measurements), M_SP_NA_1
IOA 21 (breaker state), M_DP_NA_1 IOA 22, commands C_SC_NA_1 IOA 31 (returns IOA 21),
C_DC_NA_1 IOA 32, C_SE_NC_1 IOA 41 (float set-point), C_SE_NB_1 IOA 42 (scaled set-point).

Client options: ``init`` (``NONE``: STARTDT only, the default; ``ALL``: STARTDT, interrogation,
clock sync), ``common_address``.  Actions: ``interrogation``, ``counter_interrogation``,
``clock_sync``, ``command`` (type: a c104 type name such as C_SC_NA_1, ioa, value),
``listen`` (s: stay connected, receiving spontaneous data), ``test`` (TESTFR).
"""

from __future__ import annotations

import random
import time
from typing import Any

from .common import STOP, emit

PORT = 2404
TRANSPORT = "tcp"


def serve(cfg: dict[str, Any]) -> int:
    import c104

    rng = random.Random(int(cfg.get("seed", 1)))
    ca = int(cfg.get("common_address", 47))
    server = c104.Server(ip=cfg["bind"], port=int(cfg["port"]), tick_rate_ms=50)
    station = server.add_station(common_address=ca)
    meas = [station.add_point(io_address=ioa, type=c104.Type.M_ME_NC_1) for ioa in (11, 12)]
    for p in meas:
        p.value = round(rng.uniform(10.0, 50.0), 2)
    breaker = station.add_point(io_address=21, type=c104.Type.M_SP_NA_1)
    breaker.value = True
    station.add_point(io_address=22, type=c104.Type.M_DP_NA_1)
    station.add_point(io_address=31, type=c104.Type.C_SC_NA_1, related_io_address=21,
                      related_io_autoreturn=True)
    station.add_point(io_address=32, type=c104.Type.C_DC_NA_1)
    station.add_point(io_address=41, type=c104.Type.C_SE_NC_1)
    station.add_point(io_address=42, type=c104.Type.C_SE_NB_1)
    server.start()
    emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="iec104", common_address=ca)
    period = float(cfg.get("spontaneous_s", 1.0))
    try:
        while not STOP.wait(period):
            p = meas[rng.randrange(len(meas))]
            p.value = round(float(p.value) + rng.uniform(-1.0, 1.0), 2)
            p.transmit(cause=c104.Cot.SPONTANEOUS)
    finally:
        server.stop()
        emit("stopped")
    return 0


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.opts = spec.get("options", {})
        self.ca = int(self.opts.get("common_address", 47))
        self.client: Any = None
        self.conn: Any = None
        self.received = 0

    def get(self) -> Any:
        import c104

        if self.conn is None:
            self.client = c104.Client(tick_rate_ms=50, command_timeout_ms=2000)
            init = getattr(c104.Init, str(self.opts.get("init", "NONE")))
            self.conn = self.client.add_connection(ip=self.spec["target"],
                                                   port=int(self.spec["port"]), init=init)
            self.station = self.conn.add_station(common_address=self.ca)

            def on_raw(connection, data):  # type: ignore[no-untyped-def]
                self.received += 1

            # c104 checks the callback's annotations (real classes, not postponed strings).
            on_raw.__annotations__ = {"connection": c104.Connection, "data": bytes, "return": None}
            self.conn.on_receive_raw(callable=on_raw)
            self.client.start()
            deadline = time.monotonic() + float(self.spec.get("timeout", 3.0))
            # OPEN = STARTDT confirmed (is_connected is already true before STARTDT act is sent).
            # c104 sometimes leaves a fresh connection muted (no STARTDT act): unmute sends it.
            muted_since = None
            while self.conn.state != c104.ConnectionState.OPEN and time.monotonic() < deadline:
                if self.conn.state == c104.ConnectionState.OPEN_MUTED:
                    muted_since = muted_since or time.monotonic()
                    if time.monotonic() - muted_since > 0.3:
                        self.conn.unmute()
                        muted_since = time.monotonic() + 1.0
                time.sleep(0.02)
            if self.conn.state != c104.ConnectionState.OPEN:
                raise ConnectionError(f"IEC 104 connection did not open ({self.conn.state})")
            time.sleep(0.1)
        return self.conn

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.stop()
            finally:
                self.client = self.conn = None

    def point(self, type_name: str, ioa: int) -> Any:
        import c104

        self.get()
        p = self.station.get_point(io_address=ioa)
        if p is None:
            p = self.station.add_point(io_address=ioa, type=getattr(c104.Type, type_name))
        return p


def _interrogation(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    ok = s.get().interrogation(common_address=int(a.get("common_address", s.ca)))
    return {"ok": bool(ok)}


def _counter_interrogation(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    ok = s.get().counter_interrogation(common_address=int(a.get("common_address", s.ca)))
    return {"ok": bool(ok)}


def _clock_sync(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    ok = s.get().clock_sync(common_address=int(a.get("common_address", s.ca)))
    return {"ok": bool(ok)}


def _command(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import c104

    t = str(a["type"])
    p = s.point(t, int(a["ioa"]))
    v = a.get("value")
    if t.startswith("C_DC"):
        p.value = getattr(c104.Double, str(v or "ON"))
    elif t.startswith(("C_SE_NB", "C_SE_TB")):
        p.value = c104.Int16(int(v))
    elif t.startswith(("C_SE_NA", "C_SE_TA")):
        p.value = c104.NormalizedFloat(float(v))
    elif t.startswith(("C_SE_NC", "C_SE_TC")):
        p.value = float(v)
    elif t.startswith(("C_SC", "C_SC_T")):
        p.value = bool(v)
    elif v is not None:
        p.value = v
    ok = p.transmit(cause=c104.Cot.ACTIVATION)
    return {"ok": bool(ok), "type": t}


def _listen(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()
    before = s.received
    STOP.wait(float(a.get("s", 1.0)))
    return {"received": s.received - before}


def _raw_asdu(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    """c104's client cannot send every type (C_RP_NA_1 reset process, for one): a plain socket
    does STARTDT act, waits for STARTDT con, sends one I-frame with ``asdu_hex`` (N(S)=N(R)=0)
    and reads what comes back.  ``type_id``/``cot``/``ca``/``ioa``/``ie_hex`` build the ASDU
    when ``asdu_hex`` is absent."""
    import socket
    import struct

    if "asdu_hex" in a:
        asdu = bytes.fromhex(a["asdu_hex"])
    else:
        asdu = (struct.pack("<BBBBH", int(a["type_id"]), 1, int(a.get("cot", 6)), 0,
                            int(a.get("ca", s.ca)))
                + int(a.get("ioa", 0)).to_bytes(3, "little") + bytes.fromhex(a.get("ie_hex", "")))
    with socket.create_connection((s.spec["target"], int(s.spec["port"])),
                                  timeout=float(s.spec.get("timeout", 2.0))) as sock:
        sock.sendall(bytes.fromhex("680407000000"))  # STARTDT act
        con = sock.recv(64)
        sock.sendall(bytes([0x68, len(asdu) + 4, 0, 0, 0, 0]) + asdu)
        try:
            reply = sock.recv(4096)
        except TimeoutError:
            reply = b""
        time.sleep(float(a.get("linger", 0.2)))
    return {"startdt_con": con.hex(), "reply_hex": reply.hex()}


def _test(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return {"ok": bool(s.get().test(common_address=s.ca))}


ACTIONS = {
    "interrogation": _interrogation,
    "counter_interrogation": _counter_interrogation,
    "clock_sync": _clock_sync,
    "command": _command,
    "listen": _listen,
    "test": _test,
    "raw_asdu": _raw_asdu,
}
