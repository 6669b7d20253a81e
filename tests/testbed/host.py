"""Host agent: runs *inside* one testbed host (a network namespace, or bound to a
127.10.1.x address in the loopback fallback).

Two roles::

    python -m tests.testbed.host serve  --bind 10.10.1.101 --port 502 [--seed 101]
    python -m tests.testbed.host client --spec '{"target": ..., "actions": [...]}'

``serve`` runs a real pymodbus TCP server (a PLC, device id 1).  ``client``
executes a JSON list of actions against one target with a real pymodbus
client (or a raw socket for byte-level steps).  Both print one JSON object per
line on stdout (``{"event": ..., "t": <epoch>, ...}``); the runner reads the
client's ``connect`` events to learn its local (ip, port) pairs, which is how
frames in the capture are attributed to steps.

Client spec (JSON)::

    {
      "target": "10.10.1.101", "port": 502,
      "bind": "10.10.1.66",            # source address (required in loopback fallback)
      "transport": "pymodbus" | "raw",
      "timeout": 1.0,
      "duration": 50.0,                # optional: repeat the actions until this many seconds passed
      "interval": [0.5, 1.0],          # pause between repetitions (uniform, seeded)
      "seed": 1,
      "new_connection_each_round": false,
      "actions": [{"op": "read_holding_registers", "address": 0, "count": 20, "unit": 1}, ...]
    }

Other protocols (``--stack s7comm|iec104|opcua|enip|bacnet|mqtt``, or ``"stack"`` in the client
spec) run the real stack in ``tests/testbed/stacks/<stack>.py`` with the same contract::

    python -m tests.testbed.host serve --stack s7comm --bind 10.10.1.101 --port 102 --config '{...}'

Modbus actions (``op``): read_coils, read_discrete_inputs, read_holding_registers,
read_input_registers, write_coil, write_register, write_registers,
read_device_information (``read_code``: 1 basic, 2 regular, 3 extended),
diag (``sub``: FC8 sub-function, ``data``: int), raw (``pdu_hex``: a PDU sent
with a fresh MBAP header, or ``adu_hex``: bytes sent verbatim), sleep (``s``),
reconnect.  Any action may carry ``"repeat": N`` and ``"gap": seconds``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import struct
import sys
import time
from typing import Any

from .stacks import common as _common
from .stacks.common import emit

_stop = _common.STOP
_install_signals = _common.install_signals


# --------------------------------------------------------------------- server
def build_device(seed: int):  # -> SimDevice
    """PLC datastore: coils 0-63, discrete inputs 0-63, holding registers 0-199,
    input registers 0-99, device id 1, with FC43/14 identity."""
    from pymodbus.pdu.device import ModbusDeviceIdentification
    from pymodbus.simulator import DataType, SimData, SimDevice

    rng = random.Random(seed)
    coils = [rng.random() < 0.5 for _ in range(64)]
    dis = [rng.random() < 0.5 for _ in range(64)]
    hregs = [rng.randrange(0, 1000) for _ in range(200)]
    iregs = [rng.randrange(0, 4000) for _ in range(100)]
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": "Qinling Testbed",
            "ProductCode": "QN-PLC",
            "MajorMinorRevision": "1.0",
            "VendorUrl": "https://example.invalid/qinling",
            "ProductName": "Qinling simulated PLC",
            "ModelName": "QN-PLC-1",
            "UserApplicationName": f"plant-seed-{seed}",
        }
    )
    return SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=coils, datatype=DataType.BITS)],
            [SimData(0, values=dis, datatype=DataType.BITS)],
            [SimData(0, values=hregs, datatype=DataType.REGISTERS)],
            [SimData(0, values=iregs, datatype=DataType.REGISTERS)],
        ),
        identity=identity,
    )


def run_server(bind: str, port: int, seed: int) -> int:
    import asyncio

    from pymodbus.server import ModbusTcpServer

    device = build_device(seed)

    async def main() -> None:
        server = ModbusTcpServer(
            device,
            address=(bind, port),
            identity=device.identity,
            broadcast_enable=True,
        )
        task = asyncio.create_task(server.serve_forever())
        # Wait until the listener is bound, then tell the runner.
        for _ in range(200):
            if server.transport is not None:
                break
            await asyncio.sleep(0.01)
        emit("listening", bind=bind, port=port, seed=seed)
        while not _stop.is_set() and not task.done():
            await asyncio.sleep(0.05)
        await server.shutdown()
        emit("stopped")

    asyncio.run(main())
    return 0


# --------------------------------------------------------------------- client
def _mbap(tid: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1, unit) + pdu


def _summarise(resp: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"fc": getattr(resp, "function_code", None)}
    if resp is None:
        return out
    if resp.isError():
        out["exception_code"] = getattr(resp, "exception_code", None)
        return out
    for attr in ("registers", "bits"):
        val = getattr(resp, attr, None)
        if val:
            out[attr] = [int(v) for v in val[:8]]
    info = getattr(resp, "information", None)
    if info:
        out["information"] = {
            str(k): (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
            for k, v in info.items()
        }
    return out


class RawClient:
    """Byte-level Modbus/TCP client over a plain socket."""

    def __init__(self, host: str, port: int, bind: str | None, timeout: float):
        self.host, self.port, self.bind, self.timeout = host, port, bind, timeout
        self.sock: socket.socket | None = None
        self.tid = 0

    def connect(self) -> None:
        if self.sock is not None:
            return
        self.sock = socket.create_connection(
            (self.host, self.port),
            timeout=self.timeout,
            source_address=(self.bind, 0) if self.bind else None,
        )
        local = self.sock.getsockname()
        emit("connect", local=[local[0], local[1]], remote=[self.host, self.port])

    def close(self) -> None:
        if self.sock is not None:
            local = self.sock.getsockname()
            self.sock.close()
            self.sock = None
            emit("close", local=[local[0], local[1]])

    def send(self, data: bytes) -> bytes:
        self.connect()
        assert self.sock is not None
        self.sock.sendall(data)
        try:
            return self.sock.recv(4096)
        except TimeoutError:
            return b""
        except ConnectionResetError:
            self.close()
            return b""

    def pdu(self, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
        self.tid = (self.tid + 1) & 0xFFFF
        return self.send(_mbap(self.tid, unit, pdu, protocol))


def _make_pymodbus_client(host: str, port: int, bind: str | None, timeout: float):
    from pymodbus.client import ModbusTcpClient

    class TrackingClient(ModbusTcpClient):
        """Reports every new socket's local address (pymodbus may reconnect)."""

        def connect(self) -> bool:  # type: ignore[override]
            had = self.socket is not None
            ok = super().connect()
            if ok and not had and self.socket is not None:
                local = self.socket.getsockname()
                emit("connect", local=[local[0], local[1]], remote=[host, port])
            return ok

        def close(self) -> None:  # type: ignore[override]
            if self.socket is not None:
                local = self.socket.getsockname()
                super().close()
                emit("close", local=[local[0], local[1]])
            else:
                super().close()

    return TrackingClient(
        host,
        port=port,
        source_address=(bind, 0) if bind else None,
        timeout=timeout,
        retries=0,
        reconnect_delay=0,
    )


def _do_pymodbus(client: Any, act: dict[str, Any]) -> dict[str, Any]:
    op = act["op"]
    unit = int(act.get("unit", 1))
    nr = bool(act.get("no_response", unit == 0))
    kw: dict[str, Any] = {"device_id": unit, "no_response_expected": nr}
    if op in (
        "read_coils",
        "read_discrete_inputs",
        "read_holding_registers",
        "read_input_registers",
    ):
        resp = getattr(client, op)(act["address"], count=act.get("count", 1), **kw)
    elif op == "write_coil":
        resp = client.write_coil(act["address"], bool(act["value"]), **kw)
    elif op == "write_register":
        resp = client.write_register(act["address"], int(act["value"]), **kw)
    elif op == "write_registers":
        resp = client.write_registers(act["address"], [int(v) for v in act["values"]], **kw)
    elif op == "read_device_information":
        resp = client.read_device_information(
            read_code=int(act.get("read_code", 1)), object_id=int(act.get("object_id", 0)), **kw
        )
    elif op == "diag":
        from pymodbus.pdu.diag_message import DiagnosticBase

        sub = int(act["sub"])
        req_cls = next(
            c for c in _all_subclasses(DiagnosticBase)
            if c.__name__.endswith("Request") and c.sub_function_code == sub
        )
        req = req_cls(message=int(act.get("data", 0)), dev_id=unit)
        kw_nr = bool(act.get("no_response", False))
        resp = client.execute(kw_nr, req)
    else:
        raise ValueError(f"unknown pymodbus op {op!r}")
    return _summarise(resp)


def _all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def run_client(spec: dict[str, Any]) -> int:
    from pymodbus.exceptions import ModbusException

    host, port = spec["target"], int(spec.get("port", 502))
    bind = spec.get("bind")
    timeout = float(spec.get("timeout", 1.0))
    transport = spec.get("transport", "pymodbus")
    rng = random.Random(int(spec.get("seed", 0)))
    duration = spec.get("duration")
    lo, hi = spec.get("interval", [0.0, 0.0])
    per_round = bool(spec.get("new_connection_each_round", False))
    deadline = time.monotonic() + float(duration) if duration is not None else None

    raw = RawClient(host, port, bind, timeout)
    mb = _make_pymodbus_client(host, port, bind, timeout) if transport == "pymodbus" else None
    emit("start", target=[host, port], transport=transport, label=spec.get("label"))
    n_ok = n_err = 0
    try:
        while True:
            for act in spec["actions"]:
                for i in range(int(act.get("repeat", 1))):
                    if _stop.is_set():
                        break
                    op = act["op"]
                    if op == "sleep":
                        _stop.wait(float(act["s"]))
                        continue
                    if op == "reconnect":
                        (mb or raw).close()
                        continue
                    a = dict(act)
                    if "address_step" in act:
                        a["address"] = int(act["address"]) + i * int(act["address_step"])
                    try:
                        if op == "raw":
                            unit = int(a.get("unit", 1))
                            if "adu_hex" in a:
                                reply = raw.send(bytes.fromhex(a["adu_hex"]))
                            else:
                                if "pdu_hex" in a:
                                    pdu = bytes.fromhex(a["pdu_hex"])
                                else:  # simple read-style PDU: fc, address, count
                                    pdu = struct.pack(">BHH", int(a["fc"]), int(a["address"]),
                                                      int(a.get("count", 1)))
                                reply = raw.pdu(unit, pdu, int(a.get("protocol", 0)))
                            result: dict[str, Any] = {"reply_hex": reply.hex()}
                        else:
                            assert mb is not None, "pymodbus op on raw transport"
                            if not mb.connect():
                                raise ConnectionError(f"cannot connect to {host}:{port}")
                            result = _do_pymodbus(mb, a)
                        n_ok += 1
                        emit("action", op=op, args={k: v for k, v in a.items() if k != "op"},
                             ok=True, result=result)
                    except (ModbusException, OSError, ConnectionError) as exc:
                        n_err += 1
                        emit("action", op=op, args={k: v for k, v in a.items() if k != "op"},
                             ok=False, error=f"{type(exc).__name__}: {exc}")
                    gap = float(act.get("gap", 0.0))
                    if gap:
                        _stop.wait(gap)
            if deadline is None or _stop.is_set() or time.monotonic() >= deadline:
                break
            if per_round:
                (mb or raw).close()
            _stop.wait(rng.uniform(lo, hi))
            if _stop.is_set() or time.monotonic() >= deadline:
                break
    finally:
        if mb is not None:
            mb.close()
        raw.close()
        emit("end", ok=n_ok, errors=n_err)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.testbed.host")
    sub = ap.add_subparsers(dest="role", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--port", type=int, default=502)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--stack", default="modbus")
    s.add_argument("--config", default="{}", help="JSON: the scenario's plcs entry (other stacks)")
    c = sub.add_parser("client")
    c.add_argument("--spec", required=True, help="JSON spec, or @file")
    args = ap.parse_args(argv)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    _install_signals()
    if args.role == "serve":
        if args.stack == "modbus":
            return run_server(args.bind, args.port, args.seed)
        from . import stacks

        cfg = json.loads(args.config) | {"bind": args.bind, "port": args.port, "seed": args.seed}
        return int(stacks.load(args.stack).serve(cfg) or 0)
    text = args.spec
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    spec = json.loads(text)
    if spec.get("stack", "modbus") != "modbus":
        from . import stacks

        mod = stacks.load(spec["stack"])
        return _common.run_actions(spec, mod.Session(spec), mod.ACTIONS)
    return run_client(spec)


if __name__ == "__main__":
    sys.exit(main())
