"""BACnet/IP (UDP 47808) with bacpypes3: a device (``Application.from_args`` with an
analog-value, a binary-value and an analog-input) as the controller, bacpypes3 applications for
the BMS front-end and the attacker.

Clients bind an ephemeral UDP port of their host (not 47808), so their datagrams - and the
device's unicast answers - carry a client ip:port of their own: the labeller attributes frames
to steps by that pair, as for TCP.  Who-Is goes unicast to the device (bacpypes3 answers I-Am to
the requester) or, for ``who_is_sweep``, to every address of a range.

Server config: ``instance`` (device instance, default 1000 + last octet); ``identity`` overrides
fields of :func:`identity`, the device object's vendor-name / vendor-identifier / model-name /
firmware-revision / application-software-version / serial-number the controller serves (and
the vendor id its I-Am carries).
Actions: ``read_device`` (ReadProperty of each identity property of the target's device object,
``instance`` as in the server's config), ``who_is`` (address: optional, default the target), ``who_is_sweep`` (``ranges``: that many
Who-Is with consecutive device-instance ranges of ``range_size`` to the /24's broadcast address;
and/or ``first``/``last``: unicast Who-Is to those host octets of the target's /24 - only the
ones that answer ARP reach the wire), ``read`` (object,
property), ``write`` (object, property, value, priority), ``reinitialize`` (state, password),
``dcc`` (enable_disable, duration minutes, password).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from .common import STOP, emit, free_port, local_ip_for

PORT = 47808
TRANSPORT = "udp"

#: The device object the testbed's BACnet controllers announce (BACnet vendor 7 is Siemens Schweiz AG).
IDENTITY: dict[str, Any] = {
    "vendor_identifier": 7,
    "vendor_name": "Siemens Schweiz AG",
    "model_name": "PXC4.E16",
    "firmware_revision": "V02.20.112",
    "application_software_version": "Desigo PXC4 2.2",
}
#: identity() key -> BACnet property the client reads
PROPERTIES = {"vendor_name": "vendor-name", "vendor_identifier": "vendor-identifier",
              "model_name": "model-name", "firmware_revision": "firmware-revision",
              "application_software_version": "application-software-version",
              "serial_number": "serial-number", "object_name": "object-name"}


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a controller with this ``plcs`` entry announces (single source for server and tests);
    ``cfg`` needs ``bind`` (the device instance and name depend on the last octet)."""
    octet = int(str(cfg["bind"]).rsplit(".", 1)[1])
    seed = int(cfg.get("seed", 1))
    out = dict(IDENTITY)
    out.update(instance=int(cfg.get("instance", 1000 + octet)), object_name=f"qn-bacnet-{octet}",
               serial_number=f"QN-PXC-{seed:05d}")
    out.update(cfg.get("identity") or {})
    return out


def _app(address: str, instance: int, name: str) -> Any:
    from bacpypes3.app import Application
    from bacpypes3.argparse import SimpleArgumentParser

    args = SimpleArgumentParser().parse_args(
        ["--address", address, "--instance", str(instance), "--name", name])
    return Application.from_args(args)


def serve(cfg: dict[str, Any]) -> int:
    asyncio.run(_serve(cfg))
    return 0


async def _serve(cfg: dict[str, Any]) -> None:
    from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
    from bacpypes3.local.binary import BinaryValueObject

    logging.getLogger("bacpypes3").setLevel(logging.CRITICAL)
    rng = random.Random(int(cfg.get("seed", 1)))
    ident = identity(cfg)
    instance = int(ident["instance"])
    app = _app(f"{cfg['bind']}/24:{int(cfg['port'])}", instance, ident["object_name"])
    dev = app.device_object
    dev.vendorName = ident["vendor_name"]
    dev.vendorIdentifier = int(ident["vendor_identifier"])
    dev.modelName = ident["model_name"]
    dev.firmwareRevision = ident["firmware_revision"]
    dev.applicationSoftwareVersion = ident["application_software_version"]
    dev.serialNumber = ident["serial_number"]
    temp = AnalogInputObject(objectIdentifier=("analog-input", 1), objectName="zone-temp",
                             presentValue=21.0, units="degreesCelsius")
    setpoint = AnalogValueObject(objectIdentifier=("analog-value", 1), objectName="zone-setpoint",
                                 presentValue=21.5, units="degreesCelsius")
    fan = BinaryValueObject(objectIdentifier=("binary-value", 1), objectName="supply-fan",
                            presentValue="active")
    for obj in (temp, setpoint, fan):
        app.add_object(obj)
    emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="bacnet", instance=instance)
    while not STOP.is_set():
        await asyncio.sleep(0.5)
        temp.presentValue = round(21.0 + rng.uniform(-0.5, 0.5), 2)
    app.close()
    emit("stopped")


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.loop = asyncio.new_event_loop()
        self.app: Any = None

    def run(self, coro: Any) -> Any:
        timeout = float(self.spec.get("timeout", 2.0))
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))
        except (KeyboardInterrupt, SystemExit, asyncio.TimeoutError):
            raise
        except BaseException as exc:  # bacpypes3's Reject/Abort/Error PDUs are BaseExceptions
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from exc

    def get(self) -> Any:
        if self.app is None:
            logging.getLogger("bacpypes3").setLevel(logging.CRITICAL)
            ip = self.spec.get("bind") or local_ip_for(self.spec["target"])
            port = free_port(ip)
            octet = int(ip.rsplit(".", 1)[1])

            async def make() -> Any:
                return _app(f"{ip}/24:{port}", 3_000_000 + octet * 100 + port % 100,
                            f"qn-client-{octet}")

            self.app = self.loop.run_until_complete(make())
            # The socket is bound now; report it (the tracker would find it in /proc too).
            emit("connect", local=[ip, port], remote=[self.spec["target"], int(self.spec["port"])])
        return self.app

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
            self.loop.run_until_complete(asyncio.sleep(0.05))
            self.app = None

    def target(self, a: dict[str, Any]) -> Any:
        from bacpypes3.pdu import Address

        return Address(f"{a.get('address', self.spec['target'])}:{int(self.spec['port'])}")


def _who_is(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    app = s.get()

    async def ask() -> Any:
        return await app.who_is(address=s.target(a), timeout=1)

    try:
        found = s.run(ask())
    except asyncio.TimeoutError:
        found = []
    return {"i_am": [str(x.iAmDeviceIdentifier) for x in found or []]}


def _who_is_sweep(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from bacpypes3.apdu import WhoIsRequest
    from bacpypes3.pdu import Address

    app = s.get()
    net = s.spec["target"].rsplit(".", 1)[0]

    async def sweep() -> int:
        sent = 0
        if "ranges" in a:  # directed broadcast, one Who-Is per device-instance range
            step = int(a.get("range_size", 1000))
            for k in range(int(a["ranges"])):
                req = WhoIsRequest(destination=Address(f"{net}.255:{int(s.spec['port'])}"))
                req.deviceInstanceRangeLowLimit = k * step
                req.deviceInstanceRangeHighLimit = (k + 1) * step - 1
                await app.request(req)
                sent += 1
                await asyncio.sleep(float(a.get("gap_each", 0.05)))
        for octet in range(int(a.get("first", 1)), int(a.get("last", 0)) + 1):
            await app.request(WhoIsRequest(destination=Address(f"{net}.{octet}:{int(s.spec['port'])}")))
            sent += 1
            await asyncio.sleep(float(a.get("gap_each", 0.02)))
        await asyncio.sleep(0.5)  # I-Am answers
        return sent

    return {"who_is_sent": s.loop.run_until_complete(sweep())}


def _read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    value = s.run(s.get().read_property(s.target(a), a.get("object", "analog-input,1"),
                                        a.get("property", "present-value")))
    return {"value": str(value)}


def _read_device(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    octet = int(s.spec["target"].rsplit(".", 1)[1])
    device = f"device,{int(a.get('instance', 1000 + octet))}"
    out = {}
    for prop in a.get("properties", list(PROPERTIES.values())):
        out[prop] = str(s.run(s.get().read_property(s.target(a), device, prop)))
    return {"device": out}


def _write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from bacpypes3.primitivedata import Enumerated, Real

    value = a["value"]
    val = Real(float(value)) if isinstance(value, (int, float)) else Enumerated(
        {"inactive": 0, "active": 1}[str(value)])
    res = s.run(s.get().write_property(s.target(a), a.get("object", "analog-value,1"),
                                       a.get("property", "present-value"), val,
                                       priority=a.get("priority")))
    return {"result": str(res)}


def _confirmed(s: Session, request: Any) -> dict[str, Any]:
    app = s.get()

    async def ask() -> Any:
        try:
            return await app.request(request)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - bacpypes3's Reject/Abort/Error PDUs
            return exc

    res = s.run(ask())
    return {"response": f"{type(res).__name__}: {res}" if isinstance(res, BaseException)
            else type(res).__name__}


def _reinitialize(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from bacpypes3.apdu import ReinitializeDeviceRequest

    req = ReinitializeDeviceRequest(reinitializedStateOfDevice=a.get("state", "warmstart"),
                                    destination=s.target(a))
    if a.get("password"):
        req.password = a["password"]
    return _confirmed(s, req)


def _dcc(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from bacpypes3.apdu import DeviceCommunicationControlRequest

    req = DeviceCommunicationControlRequest(enableDisable=a.get("enable_disable", "disable"),
                                            destination=s.target(a))
    if a.get("duration") is not None:
        req.timeDuration = int(a["duration"])
    if a.get("password"):
        req.password = a["password"]
    return _confirmed(s, req)


ACTIONS = {
    "who_is": _who_is,
    "who_is_sweep": _who_is_sweep,
    "read": _read,
    "read_device": _read_device,
    "write": _write,
    "reinitialize": _reinitialize,
    "dcc": _dcc,
}
