"""OPC UA (opc.tcp, port 4840) with asyncua: ``asyncua.Server`` as the PLC's OPC UA server,
``asyncua.Client`` for the HMI and the attacker.

The server offers two endpoints, as many plant servers do: Basic256Sha256 SignAndEncrypt (what
the HMI uses, with a user name) and, left enabled, security policy None with anonymous logins
(what the attacker uses).  Self-signed certificates are made at start-up in a temporary directory.
Address space: object ``Plant`` (ns 2) with variables ``Temperature``, ``Pressure``, ``Setpoint``
(writable), ``PumpRunning`` (writable) and a method ``ResetCounters``.

Identity: :func:`identity` gives the server's application URI and name (in every endpoint
description GetEndpoints returns) and its BuildInfo (manufacturer, product, software version,
build number under Server.ServerStatus.BuildInfo); ``identity`` in the ``plcs`` entry overrides.

Client options: ``security`` (``none``, the default, or ``sign_encrypt``), ``user``/``password``.
Actions: ``read`` (names: list of variable names), ``write`` (name, value), ``browse``
(depth: levels below Objects), ``browse_scan`` (requests: number of Browse calls over the
address space), ``call`` (method name), ``get_endpoints``, ``read_build_info`` (ServerStatus'
BuildInfo variables).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import tempfile
from pathlib import Path
from typing import Any

from .common import STOP, emit

PORT = 4840
TRANSPORT = "tcp"
NS_URI = "urn:qinling:testbed"
VARIABLES = {"Temperature": 21.5, "Pressure": 3.2, "Setpoint": 50.0, "PumpRunning": True}
WRITABLE = ("Setpoint", "PumpRunning")

#: What the testbed's OPC UA server announces about itself.
IDENTITY: dict[str, str] = {
    "manufacturer_name": "Qinling Testbed",
    "product_name": "Qinling OPC UA PLC",
    "product_uri": "urn:qinling:testbed:opcua-plc",
    "software_version": "2.4.1",
    "build_number": "20260101",
}


def identity(cfg: dict[str, Any]) -> dict[str, str]:
    """The identity a server with this ``plcs`` entry announces (single source for server and tests).
    The application URI is also the URI in the server's self-signed certificate."""
    out = dict(IDENTITY)
    out.update(application_uri=f"urn:qinling:testbed:opcua-plc:{int(cfg.get('seed', 1))}",
               application_name="Qinling testbed OPC UA PLC")
    out.update(cfg.get("identity") or {})
    return out


async def _certs(directory: Path, name: str, host: str, uri: str | None = None) -> tuple[Path, Path]:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = directory / f"{name}.pem", directory / f"{name}.der"
    use = [ExtendedKeyUsageOID.SERVER_AUTH if name == "server" else ExtendedKeyUsageOID.CLIENT_AUTH]
    await setup_self_signed_certificate(key, cert, uri or f"urn:qinling:testbed:{name}", host, use,
                                        {"commonName": f"qinling-{name}"})
    return cert, key


def _shared_cert(host: str, port: int) -> Path:
    """Where the server leaves its certificate for the HMI (a real HMI is configured with it;
    without it asyncua would fetch it with GetEndpoints over an unsecured channel first)."""
    return Path(tempfile.gettempdir()) / "qn-opcua-certs" / f"{host}-{port}.der"


def _quiet() -> None:
    for name in ("asyncua", "asyncua.server", "asyncua.client", "asyncua.crypto"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def serve(cfg: dict[str, Any]) -> int:
    asyncio.run(_serve(cfg))
    return 0


async def _serve(cfg: dict[str, Any]) -> None:
    from asyncua import Server, ua

    _quiet()
    rng = random.Random(int(cfg.get("seed", 1)))
    tmp = tempfile.TemporaryDirectory(prefix="qn-opcua-")
    ident = identity(cfg)
    cert, key = await _certs(Path(tmp.name), "server", cfg["bind"], ident["application_uri"])
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://{cfg['bind']}:{int(cfg['port'])}/qinling/")
    server.set_server_name(ident["application_name"])
    await server.set_application_uri(ident["application_uri"])
    await server.set_build_info(ident["product_uri"], ident["manufacturer_name"], ident["product_name"],
                                ident["software_version"], ident["build_number"],
                                datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity,
                                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    shared = _shared_cert(cfg["bind"], int(cfg["port"]))
    shared.parent.mkdir(parents=True, exist_ok=True)
    shared.write_bytes(cert.read_bytes())
    idx = await server.register_namespace(NS_URI)
    plant = await server.nodes.objects.add_object(idx, "Plant")
    nodes = {}
    for name, value in VARIABLES.items():
        nodes[name] = await plant.add_variable(idx, name, value)
        if name in WRITABLE:
            await nodes[name].set_writable()

    async def reset_counters(parent: Any) -> list[Any]:
        return [ua.Variant(True, ua.VariantType.Boolean)]

    await plant.add_method(idx, "ResetCounters", reset_counters, [], [ua.VariantType.Boolean])
    async with server:
        emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="opcua")
        while not STOP.is_set():
            await asyncio.sleep(0.5)
            await nodes["Temperature"].write_value(round(21.5 + rng.uniform(-0.5, 0.5), 2))
    tmp.cleanup()
    emit("stopped")


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.opts = spec.get("options", {})
        self.loop = asyncio.new_event_loop()
        self.client: Any = None
        self.tmp: tempfile.TemporaryDirectory[str] | None = None
        self.plant: Any = None
        self.ns = 2

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def get(self) -> Any:
        if self.client is None:
            self.run(self._connect())
        return self.client

    async def _connect(self) -> None:
        from asyncua import Client
        from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

        _quiet()
        url = f"opc.tcp://{self.spec['target']}:{int(self.spec['port'])}/qinling/"
        client = Client(url=url, timeout=float(self.spec.get("timeout", 4.0)))
        client.application_uri = "urn:qinling:testbed:client"
        if self.opts.get("security", "none") == "sign_encrypt":
            from asyncua import ua

            self.tmp = tempfile.TemporaryDirectory(prefix="qn-opcua-client-")
            cert, key = await _certs(Path(self.tmp.name), "client", self.spec["target"])
            server_cert = _shared_cert(self.spec["target"], int(self.spec["port"]))
            await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                      server_certificate=str(server_cert),
                                      mode=ua.MessageSecurityMode.SignAndEncrypt)
        if self.opts.get("user"):
            client.set_user(str(self.opts["user"]))
            client.set_password(str(self.opts.get("password", "")))
        await client.connect()
        self.client = client
        self.ns = await client.get_namespace_index(NS_URI)
        self.plant = await client.nodes.objects.get_child([f"{self.ns}:Plant"])

    def close(self) -> None:
        if self.client is not None:
            try:
                self.run(self.client.disconnect())
            finally:
                self.client = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def var(self, name: str) -> Any:
        self.get()
        return self.run(self.plant.get_child([f"{self.ns}:{name}"]))


def _read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in a.get("names", list(VARIABLES)):
        out[name] = s.run(s.var(name).read_value())
    return {"values": out}


def _write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from asyncua import ua

    node = s.var(a["name"])
    value = a["value"]
    vt = ua.VariantType.Boolean if isinstance(value, bool) else ua.VariantType.Double
    s.run(node.write_value(ua.DataValue(ua.Variant(float(value) if vt == ua.VariantType.Double
                                                   else value, vt))))
    return {"written": a["name"]}


def _browse(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()

    async def walk(node: Any, depth: int) -> int:
        n = 0
        for child in await node.get_children():
            n += 1
            if depth > 1:
                n += await walk(child, depth - 1)
        return n

    return {"nodes": s.run(walk(s.client.nodes.objects, int(a.get("depth", 2))))}


def _browse_scan(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    """Breadth-first Browse of the address space from Root, one Browse request per node,
    until ``requests`` calls were made."""
    s.get()
    limit = int(a.get("requests", 30))

    async def scan() -> int:
        queue, seen, calls = [s.client.nodes.root], set(), 0
        while queue and calls < limit:
            node = queue.pop(0)
            if node.nodeid in seen:
                continue
            seen.add(node.nodeid)
            queue.extend(await node.get_children())
            calls += 1
        return calls

    return {"browse_requests": s.run(scan())}


def _call(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()
    res = s.run(s.plant.call_method(f"{s.ns}:{a.get('name', 'ResetCounters')}"))
    return {"result": res}


def _get_endpoints(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()
    eps = s.run(s.client.get_endpoints())
    return {"endpoints": [str(e.SecurityPolicyUri).rsplit("#", 1)[-1] for e in eps]}


def _read_build_info(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    from asyncua import ua

    s.get()
    ids = {"product_uri": ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductUri,
           "manufacturer_name": ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName,
           "product_name": ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName,
           "software_version": ua.ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion,
           "build_number": ua.ObjectIds.Server_ServerStatus_BuildInfo_BuildNumber}
    return {k: s.run(s.client.get_node(ua.NodeId(v)).read_value()) for k, v in ids.items()}


ACTIONS = {
    "read": _read,
    "write": _write,
    "browse": _browse,
    "browse_scan": _browse_scan,
    "call": _call,
    "get_endpoints": _get_endpoints,
    "read_build_info": _read_build_info,
}
