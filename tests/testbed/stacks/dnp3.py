"""DNP3 (port 20000) with opendnp3, the reference C++ DNP3 stack (``pip install yadnp3``, module
``opendnp3``): an outstation per PLC, ``IMaster`` for the SCADA master, the engineering station and
the attacker.

Server config: ``address`` (the outstation's link address, 10), ``points`` (points of every type in the database, 8), ``unsolicited`` (allow
unsolicited reporting, true), ``update_s`` (period of the seeded measurement changes, 1.0),
``file`` (text of the one file the outstation serves for file reads, ``/cfg/setpoints.txt``).

An opendnp3 TCP server channel holds one master connection (a second master closes the first or
is closed), while the plant has several masters (SCADA, engineering station, attacker) on the same
outstation port.  So ``serve`` accepts on (bind, port) itself and gives every accepted connection
its own opendnp3 outstation (one association per master, as multi-master outstations do: it
reports to the link address the master's first frame comes from) on a loopback port inside the PLC's namespace, relaying bytes unchanged: every DNP3 byte on the wire is
opendnp3's.  All outstations share the seeded measurements (binary and analog inputs, counters,
binary and analog output status) and a command handler that accepts every control.

Client options: ``master_address`` (1), ``outstation_address`` (10), ``disable_unsol_on_startup``
(false), ``settle`` (seconds to let the master's start-up sequence finish: integrity poll, clear
restart IIN, enable unsolicited; 0.8).  Actions: ``integrity_poll``, ``event_poll``
(``classes``: [1, 2, 3]), ``read`` (``group``, ``variation``, optional ``start``/``stop``),
``crob`` (``index``, ``code``: LATCH_ON/LATCH_OFF/PULSE_ON/PULSE_OFF, ``mode``: direct or
select_operate), ``analog_output`` (``index``, ``value``, ``kind``: float32/int16/int32,
``mode``), ``restart`` (``type``: cold or warm), ``unsolicited`` (``enable``: bool),
``record_time`` (function 24), ``delay_measure`` (23), ``write_time`` (write g50v1 absolute time,
``ms`` or now), ``freeze`` (immediate freeze of counters), ``file_read``/``file_delete``/
``file_info`` (``name``), ``listen`` (``s``: stay connected receiving unsolicited responses).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

from .common import STOP, emit, free_port

PORT = 20000
TRANSPORT = "tcp"

DEFAULT_FILE = "/cfg/setpoints.txt"


# ----------------------------------------------------------------------------- outstation
class _Plant:
    """The seeded process values every outstation association reports."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.lock = threading.Lock()
        self.binary = [self.rng.random() < 0.5 for _ in range(n)]
        self.analog = [round(self.rng.uniform(10.0, 90.0), 2) for _ in range(n)]
        self.counter = [self.rng.randrange(1000) for _ in range(n)]
        self.bo = [False] * n
        self.ao = [0.0] * n
        self.commands = 0

    def step(self) -> None:
        with self.lock:
            i = self.rng.randrange(self.n)
            self.analog[i] = round(self.analog[i] + self.rng.uniform(-2.0, 2.0), 2)
            self.counter[self.rng.randrange(self.n)] += self.rng.randrange(1, 5)
            if self.rng.random() < 0.2:
                j = self.rng.randrange(self.n)
                self.binary[j] = not self.binary[j]

    def updates(self) -> Any:
        import opendnp3 as o

        b = o.UpdateBuilder()
        with self.lock:
            for i in range(self.n):
                b.Update(o.Binary(self.binary[i]), i)
                b.Update(o.Analog(self.analog[i]), i)
                b.Update(o.Counter(self.counter[i]), i)
                b.Update(o.BinaryOutputStatus(self.bo[i]), i)
                b.Update(o.AnalogOutputStatus(self.ao[i]), i)
        return b.Build()


def _handlers(plant: _Plant, file_text: bytes) -> tuple[Any, Any, Any]:
    import opendnp3 as o

    class Commands(o.ICommandHandler):  # type: ignore[misc]
        def Begin(self) -> None:
            pass

        def End(self) -> None:
            pass

        def Select(self, *args: Any) -> Any:
            return o.CommandStatus.SUCCESS

        def Operate(self, command: Any, index: int, *rest: Any) -> Any:
            with plant.lock:
                plant.commands += 1
                if 0 <= index < plant.n:
                    if isinstance(command, o.ControlRelayOutputBlock):
                        plant.bo[index] = command.opType in (o.OperationType.LATCH_ON,
                                                             o.OperationType.PULSE_ON)
                    else:
                        plant.ao[index] = float(command.value)
            return o.CommandStatus.SUCCESS

    class App(o.IOutstationApplication):  # type: ignore[misc]
        def ColdRestartSupport(self) -> Any:
            return o.RestartMode.SUPPORTED_DELAY_COARSE

        def WarmRestartSupport(self) -> Any:
            return o.RestartMode.SUPPORTED_DELAY_FINE

        def ColdRestart(self) -> int:
            return 30  # seconds (coarse)

        def WarmRestart(self) -> int:
            return 500  # milliseconds (fine)

        def SupportsWriteAbsoluteTime(self) -> bool:
            return True

        def WriteAbsoluteTime(self, _ts: Any) -> bool:
            return True

    class Files(o.IFileHandler):  # type: ignore[misc]
        def OpenFile(self, name: str, _auth: int, _perm: Any, mode: Any, block: int,
                     _req: int) -> Any:
            r = o.FileOpenResult()
            r.status = o.FileStatus.SUCCESS if name == DEFAULT_FILE else o.FileStatus.NOT_EXIST
            r.fileHandle, r.fileSize, r.maxBlockSize = 7, len(file_text), block or 256
            return r

        def ReadBlock(self, _handle: int, _block: int) -> Any:
            r = o.FileBlockResult()
            r.status, r.data, r.lastBlock = o.FileStatus.SUCCESS, list(file_text), True
            return r

        def CloseFile(self, _handle: int, _req: int) -> Any:
            return o.FileStatus.SUCCESS

        def DeleteFile(self, name: str) -> Any:
            return o.FileStatus.SUCCESS if name == DEFAULT_FILE else o.FileStatus.NOT_EXIST

        def GetFileInfo(self, name: str) -> Any:
            r = o.FileCommandResult()
            r.status = o.FileStatus.SUCCESS if name == DEFAULT_FILE else o.FileStatus.NOT_EXIST
            return r

        def AbortFile(self, _handle: int) -> None:
            pass

    return Commands(), App(), Files()


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy a -> b until either side closes; then close both."""
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(cfg: dict[str, Any]) -> int:
    import opendnp3 as o

    n = int(cfg.get("points", 8))
    plant = _Plant(n, int(cfg.get("seed", 1)))
    file_text = str(cfg.get("file", "setpoint.1=42.5\nsetpoint.2=17.0\n")).encode()
    manager = o.DNP3Manager(1)
    live: list[Any] = []  # outstations of open associations
    live_lock = threading.Lock()

    def association(conn: socket.socket) -> None:
        # The association is with the master that speaks first: its link address (source of
        # its first frame, 0x0564 header) is where this outstation sends unsolicited responses.
        conn.settimeout(3.0)
        try:
            first = conn.recv(65536)
        except OSError:
            first = b""
        conn.settimeout(None)
        if len(first) < 8 or first[:2] != b"\x05\x64":
            conn.close()
            return
        master_address = int.from_bytes(first[6:8], "little")
        inner_port = free_port("127.0.0.1", socket.SOCK_STREAM)
        channel = manager.AddTCPServer(f"os-{inner_port}", o.LogLevels(0),
                                       o.ServerAcceptMode.CloseExisting,
                                       o.IPEndpoint("127.0.0.1", inner_port), None)
        sc = o.OutstationStackConfig(o.DatabaseConfig(n))
        sc.outstation.params.allowUnsolicited = bool(cfg.get("unsolicited", True))
        sc.outstation.params.respondToAnyMaster = True
        sc.link.LocalAddr = int(cfg.get("address", 10))
        sc.link.RemoteAddr = master_address
        commands, app, files = handlers = _handlers(plant, file_text)
        outstation = channel.AddOutstation(f"os-{inner_port}", commands, app, sc, files)
        outstation.Apply(plant.updates())
        outstation.Enable()
        inner = None
        deadline = time.monotonic() + 3.0
        while inner is None and time.monotonic() < deadline:
            try:
                inner = socket.create_connection(("127.0.0.1", inner_port), timeout=0.5)
            except OSError:
                time.sleep(0.02)
        if inner is None:
            conn.close()
            channel.Shutdown()
            return
        inner.settimeout(None)
        inner.sendall(first)
        with live_lock:
            live.append(outstation)
        t = threading.Thread(target=_relay, args=(inner, conn), daemon=True)
        t.start()
        _relay(conn, inner)
        t.join(timeout=2.0)
        with live_lock:
            live.remove(outstation)
        conn.close()
        inner.close()
        channel.Shutdown()
        del handlers

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((cfg["bind"], int(cfg["port"])))
    listener.listen(8)
    listener.settimeout(0.1)
    emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="dnp3",
         address=int(cfg.get("address", 10)), unsolicited=bool(cfg.get("unsolicited", True)))
    period = float(cfg.get("update_s", 1.0))
    next_update = time.monotonic() + period
    try:
        while not STOP.is_set():
            try:
                conn, _peer = listener.accept()
                conn.settimeout(None)
                threading.Thread(target=association, args=(conn,), daemon=True).start()
            except TimeoutError:
                pass
            if time.monotonic() >= next_update:
                next_update += period
                plant.step()
                with live_lock:
                    for os_ in live:
                        os_.Apply(plant.updates())
    finally:
        listener.close()
        manager.Shutdown()
        emit("stopped", commands=plant.commands)
    return 0


# ----------------------------------------------------------------------------- master
class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.opts = spec.get("options", {})
        self.manager: Any = None
        self.master: Any = None
        self.soe: Any = None
        self.fragments = 0
        self.opened = threading.Event()

    def get(self) -> Any:
        import opendnp3 as o

        if self.master is not None:
            return self.master
        session = self

        class Listener(o.IChannelListener):  # type: ignore[misc]
            def OnStateChange(self, state: Any) -> None:
                if state == o.ChannelState.OPEN:
                    session.opened.set()

        class Soe(o.ISOEHandler):  # type: ignore[misc]
            def BeginFragment(self, *_a: Any) -> None:
                pass

            def EndFragment(self, *_a: Any) -> None:
                session.fragments += 1

        class App(o.IMasterApplication):  # type: ignore[misc]
            def AssignClassDuringStartup(self) -> bool:
                return False

        self.listener, self.soe, self.app = Listener(), Soe(), App()
        self.manager = o.DNP3Manager(1)
        retry = o.ChannelRetry.Default()
        channel = self.manager.AddTCPClient(
            "master", o.LogLevels(0), retry,
            [o.IPEndpoint(self.spec["target"], int(self.spec["port"]))],
            str(self.spec.get("bind", "0.0.0.0")), self.listener)
        mc = o.MasterStackConfig()
        mc.link.LocalAddr = int(self.opts.get("master_address", 1))
        mc.link.RemoteAddr = int(self.opts.get("outstation_address", 10))
        mc.master.disableUnsolOnStartup = bool(self.opts.get("disable_unsol_on_startup", False))
        mc.master.responseTimeout = o.TimeDuration.Seconds(2)
        self.master = channel.AddMaster("master", self.soe, self.app, mc)
        self.master.Enable()
        if not self.opened.wait(float(self.spec.get("timeout", 3.0)) + 2.0):
            raise ConnectionError("DNP3 channel did not open")
        time.sleep(float(self.opts.get("settle", 0.8)))  # start-up: integrity poll, IIN, unsol
        return self.master

    def close(self) -> None:
        if self.manager is not None:
            try:
                self.manager.Shutdown()
            finally:
                self.manager = self.master = None
                self.opened.clear()

    def call(self, fn: Any, *args: Any, wait: float = 3.0) -> str:
        """Run one callback-style IMaster task; returns its summary (TaskCompletion name)."""
        done = threading.Event()
        out: list[Any] = []

        def cb(*res: Any) -> None:
            out.append(res[0] if res else None)
            done.set()

        fn(*args, cb)
        if not done.wait(wait):
            return "NO_CALLBACK"
        r = out[0]
        for attr in ("summary", "status", "result"):
            v = getattr(r, attr, None)
            if v is not None:
                return str(getattr(v, "name", v))
        return str(r)


def _linger(a: dict[str, Any], default: float = 0.4) -> None:
    STOP.wait(float(a.get("linger", default)))


def _integrity_poll(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    m = s.get()
    before = s.fragments
    m.ScanClasses(o.ClassField.AllClasses(), s.soe)
    _linger(a)
    return {"fragments": s.fragments - before}


def _event_poll(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    classes = {int(c) for c in a.get("classes", [1, 2, 3])}
    m = s.get()
    before = s.fragments
    m.ScanClasses(o.ClassField(False, 1 in classes, 2 in classes, 3 in classes), s.soe)
    _linger(a)
    return {"fragments": s.fragments - before}


def _read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    m = s.get()
    gv = o.GroupVariationID(int(a["group"]), int(a.get("variation", 0)))
    if "start" in a:
        m.ScanRange(gv, int(a["start"]), int(a.get("stop", a["start"])), s.soe)
    else:
        m.ScanAllObjects(gv, s.soe)
    _linger(a)
    return {"group": int(a["group"]), "variation": int(a.get("variation", 0))}


def _operate(s: Session, a: dict[str, Any], command: Any) -> str:
    m = s.get()
    fn = m.SelectAndOperate if a.get("mode", "direct") == "select_operate" else m.DirectOperate
    result = s.call(fn, command, int(a.get("index", 0)))
    _linger(a, 0.2)
    return result


def _crob(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    code = getattr(o.OperationType, str(a.get("code", "LATCH_ON")))
    return {"result": _operate(s, a, o.ControlRelayOutputBlock(code)),
            "mode": a.get("mode", "direct")}


def _analog_output(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    kind = str(a.get("kind", "float32"))
    cls = {"float32": o.AnalogOutputFloat32, "int16": o.AnalogOutputInt16,
           "int32": o.AnalogOutputInt32, "double64": o.AnalogOutputDouble64}[kind]
    value = float(a["value"]) if kind in ("float32", "double64") else int(a["value"])
    return {"result": _operate(s, a, cls(value)), "kind": kind}


def _restart(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    kind = str(a.get("type", "cold")).upper()
    result = s.call(s.get().Restart, getattr(o.RestartType, kind))
    _linger(a, 0.2)
    return {"result": result, "type": kind.lower()}


def _perform(s: Session, a: dict[str, Any], name: str, headers: list[Any]) -> dict[str, Any]:
    import opendnp3 as o

    s.get().PerformFunction(name, getattr(o.FunctionCode, name), headers)
    _linger(a)
    return {"function": name.lower()}


def _unsolicited(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    name = "ENABLE_UNSOLICITED" if a.get("enable", True) else "DISABLE_UNSOLICITED"
    return _perform(s, a, name, [o.Header.AllObjects(60, c) for c in (2, 3, 4)])


def _record_time(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return _perform(s, a, "RECORD_CURRENT_TIME", [])


def _delay_measure(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return _perform(s, a, "DELAY_MEASURE", [])


def _write_time(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    """Write g50v1 (absolute time, qualifier 0x07 count 1): what a master's time sync does."""
    import opendnp3 as o

    ms = int(a.get("ms", time.time() * 1000))
    raw = bytes([50, 1, 0x07, 1]) + ms.to_bytes(6, "little")
    return _perform(s, a, "WRITE", [o.Header.Raw(raw)]) | {"ms": ms}


def _freeze(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    import opendnp3 as o

    s.get().Freeze(o.FreezeType.ImmediateFreeze, [o.Header.AllObjects(20, 0)])
    _linger(a)
    return {"function": "immed_freeze"}


def _file_read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    result = s.call(s.get().ReadFile, str(a.get("name", DEFAULT_FILE)), wait=5.0)
    _linger(a, 0.2)
    return {"result": result}


def _file_delete(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    result = s.call(s.get().DeleteFile, str(a.get("name", DEFAULT_FILE)))
    _linger(a, 0.2)
    return {"result": result}


def _file_info(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    result = s.call(s.get().GetFileInfo, str(a.get("name", DEFAULT_FILE)))
    _linger(a, 0.2)
    return {"result": result}


def _listen(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()
    before = s.fragments
    STOP.wait(float(a.get("s", 1.0)))
    return {"fragments": s.fragments - before}


ACTIONS = {
    "integrity_poll": _integrity_poll,
    "event_poll": _event_poll,
    "read": _read,
    "crob": _crob,
    "analog_output": _analog_output,
    "restart": _restart,
    "unsolicited": _unsolicited,
    "record_time": _record_time,
    "delay_measure": _delay_measure,
    "write_time": _write_time,
    "freeze": _freeze,
    "file_read": _file_read,
    "file_delete": _file_delete,
    "file_info": _file_info,
    "listen": _listen,
}
