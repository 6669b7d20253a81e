"""The one event schema every stage shares: ECS envelope, protocol fields under the protocol's name.

Events are immutable msgspec structs (frozen, typed, unknown fields forbidden). The serialized form
is JSON with Elastic Common Schema names; `json_schema()` generates its JSON Schema and
`tests/test_schema.py` validates every emitted event against it.

Python attribute names equal the serialized names except `Event.timestamp` (`@timestamp`).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable, Literal

import msgspec

from .protocols.arp import Arp
from .protocols.bacnet import Bacnet
from .protocols.base import Fields
from .protocols.dnp3 import Dnp3
from .protocols.enip import Cip, Enip
from .protocols.fins import Fins
from .protocols.generic import Tshark
from .protocols.goose import Goose
from .protocols.iec104 import Iec104
from .protocols.mms import Mms
from .protocols.mqtt import Mqtt
from .protocols.opcua import Opcua
from .protocols.profinet import Profinet
from .protocols.s7comm import S7comm

UTC = dt.timezone.utc

# Numeric ECS event.severity per level, as Elastic's detection engine maps them.
SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}
LEVEL_OF_SEVERITY = {v: k for k, v in SEVERITY.items()}

Kind = Literal["event", "alert", "state"]
Outcome = Literal["success", "failure", "unknown"]


_S = Fields  # the base of every schema struct: immutable, compact, strict on decode


# ---------------------------------------------------------------- envelope (ECS)


class EventInfo(_S):
    kind: Kind  # required, so it is always serialized (defaults are omitted)
    dataset: str  # "modbus", "flow", "qinling.alert", ...
    action: str | None = None  # protocol-independent: read, write, identify, restart, anomaly, ...
    outcome: Outcome | None = None
    severity: int | None = None
    id: str | None = None  # deterministic: same input, same id (idempotent writes)
    duration: int | None = None  # nanoseconds; on a response: time since its request
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    reason: str | None = None


class Endpoint(_S):
    ip: str | None = None
    port: int | None = None
    mac: str | None = None
    bytes: int | None = None
    packets: int | None = None


class Network(_S):
    transport: str | None = None  # tcp, udp, icmp, ...
    protocol: str | None = None  # application protocol: modbus, s7comm, ...
    type: str | None = None  # ipv4, ipv6
    community_id: str | None = None
    direction: str | None = None  # "request" (from originator) or "response"
    is_orig: bool | None = None  # True when source is the connection's originator
    vlan_id: list[int] | None = None
    bytes: int | None = None
    packets: int | None = None


class Observer(_S):
    id: str | None = None  # the sensor
    hostname: str | None = None
    interface: str | None = None


class Organization(_S):
    id: str | None = None  # the enterprise
    name: str | None = None


class Evidence(_S):
    """Where an event came from, precisely enough to find the packets again."""

    file_sha256: str | None = None
    file: str | None = None  # capture file name (basename)
    frame: int | None = None  # 1-based frame that completed this message, as Wireshark numbers it
    frames: list[int] | None = None  # on alerts: frames of every triggering event
    event_ids: list[str] | None = None  # on alerts: ids of every triggering event
    sensor: str | None = None  # live capture: sensor id (time is @timestamp)


class RuleInfo(_S):
    id: str
    name: str
    description: str | None = None
    ruleset: str | None = None
    version: str | None = None


class Technique(_S):
    id: list[str] = []
    name: list[str] = []


class Threat(_S):
    framework: str = "MITRE ATT&CK for ICS"
    technique: Technique = Technique()


class Related(_S):
    ip: list[str] = []


class Anomaly(_S):
    """Malformed or unexpected traffic, as data rules can match (a fixed enum per decoder)."""

    code: str  # invalid_length, invalid_protocol_id, unsolicited_response, flooded, ...
    message: str | None = None


# ---------------------------------------------------------------- protocols


class FileRecord(_S):
    reference_type: int | None = None
    file_number: int | None = None
    record_number: int | None = None
    record_length: int | None = None
    values: list[int] | None = None


class DeviceIdentification(_S):
    read_code: int | None = None  # 1 basic, 2 regular, 3 extended, 4 individual
    conformity_level: int | None = None
    more_follows: bool | None = None
    object_id: int | None = None
    vendor_name: str | None = None
    product_code: str | None = None
    revision: str | None = None
    vendor_url: str | None = None
    product_name: str | None = None
    model_name: str | None = None
    user_application_name: str | None = None
    objects: dict[str, str] | None = None  # every object by id (hex string key), incl. private ones


class Modbus(_S):
    transaction_id: int
    unit_id: int
    function_code: int
    function_name: str
    message_type: Literal["request", "response"]
    protocol_id: int | None = None
    length: int | None = None
    exception_code: int | None = None
    exception_name: str | None = None
    subfunction_code: int | None = None  # FC 8 diagnostics sub-function, FC 43 MEI type
    subfunction_name: str | None = None
    address: int | None = None  # first register/coil (write address for FC 23)
    quantity: int | None = None
    values: list[int] | None = None  # register words or coil bits (0/1)
    read_address: int | None = None  # FC 23
    read_quantity: int | None = None
    and_mask: int | None = None  # FC 22
    or_mask: int | None = None
    byte_count: int | None = None
    data: str | None = None  # hex of payload not decoded further (diagnostics data, unknown FCs)
    file_records: list[FileRecord] | None = None
    fifo_count: int | None = None
    status: int | None = None  # FC 7 exception status, FC 11 status word, FC 17 run indicator
    event_count: int | None = None
    message_count: int | None = None
    device_id: DeviceIdentification | None = None
    request_frame: int | None = None  # on a response: frame of its request


class Event(_S):
    """One decoded protocol message, one flow record, or one alert (`event.kind`)."""

    timestamp: dt.datetime = msgspec.field(name="@timestamp")
    event: EventInfo
    message: str | None = None
    source: Endpoint | None = None
    destination: Endpoint | None = None
    network: Network | None = None
    observer: Observer | None = None
    organization: Organization | None = None
    evidence: Evidence | None = None
    related: Related | None = None
    rule: RuleInfo | None = None
    threat: Threat | None = None
    anomaly: Anomaly | None = None
    modbus: Modbus | None = None
    dnp3: Dnp3 | None = None
    s7comm: S7comm | None = None
    iec104: Iec104 | None = None
    enip: Enip | None = None
    cip: Cip | None = None
    opcua: Opcua | None = None
    bacnet: Bacnet | None = None
    mqtt: Mqtt | None = None
    mms: Mms | None = None
    fins: Fins | None = None
    goose: Goose | None = None
    profinet: Profinet | None = None
    arp: Arp | None = None
    tshark: Tshark | None = None  # a protocol only the tshark engine decodes (event.dataset names it)
    labels: dict[str, str] | None = None


class AssetEvidence(_S):
    """Where one inventory value of an asset came from: the field of which event (or the OUI table, or behaviour)."""

    field: str  # vendor, product, model, firmware, serial, name, hardware, software, role, ...
    value: str  # as announced (vendor: as written on the wire, before normalisation)
    source: str  # field path ("s7comm.module_order_number"), "oui" (MAC prefix) or "behaviour" (role)
    strength: int | None = None  # 3 announced by the device, 2 derived from an announced value, 1 hint
    event_id: str | None = None
    frame: int | None = None
    file: str | None = None
    timestamp: dt.datetime | None = None
    reason: str | None = None  # role: why (counts behind the inference)


class Asset(_S):
    """A device seen on the network, as passive inventory knows it."""

    id: str  # "<organization>:<ip>"
    ip: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    mac: str | None = None
    organization: Organization | None = None
    roles: list[str] = []  # modbus_master, modbus_slave, ...
    protocols: list[str] = []
    ports: list[int] = []  # server ports it answered on
    unit_ids: list[int] = []
    peers: list[str] = []
    vendor: str | None = None
    product: str | None = None
    revision: str | None = None
    events: int = 0
    alerts: int = 0
    # identity (detection/inventory): canonical vendor, what the device announced, with evidence
    vendor_key: str | None = None  # canonical vendor id: siemens, rockwell, hollysys, supcon, ...
    vendor_zh: str | None = None  # Chinese display name of the vendor (西门子, 和利时, ...)
    model: str | None = None  # order number / catalogue code: "6ES7 315-2EH14-0AB0", "1756-ENBT/A"
    firmware: str | None = None
    serial: str | None = None
    name: str | None = None  # the device's own name (S7 module name, BACnet object-name, ...)
    oui_vendor: str | None = None  # manufacturer of the MAC prefix (Wireshark manuf)
    role: str | None = None  # inferred primary role: plc, rtu, hmi, engineering_station, historian, ...
    zone: str | None = None  # network zone (configured CIDR name, else the /24, or "internet")
    exposures: list[str] = []  # insecure protocols it serves or uses: modbus, s7comm, opcua_security_none, ...
    evidence: list[AssetEvidence] = []  # one entry per (field, value) source, first few occurrences


# ---------------------------------------------------------------- serialization

_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_asset_decoder = msgspec.json.Decoder(Asset)


def encode(obj: Event | Asset) -> bytes:
    return _encoder.encode(obj)


def encode_many(objs: list[Event]) -> bytes:
    """JSON lines."""
    out = [_encoder.encode(o) for o in objs]
    return b"\n".join(out) + (b"\n" if out else b"")


def decode_event(data: bytes | str) -> Event:
    return _event_decoder.decode(data)


def decode_asset(data: bytes | str) -> Asset:
    return _asset_decoder.decode(data)


def to_dict(obj: Event | Asset) -> dict[str, Any]:
    """The serialized form as plain Python (what JSON, SQLite and Elasticsearch see)."""
    return msgspec.to_builtins(obj)  # type: ignore[no-any-return]


def from_dict(d: dict[str, Any]) -> Event:
    return msgspec.convert(d, Event, strict=False)


def json_schema(root: type = Event) -> dict[str, Any]:
    """JSON Schema of the serialized Event (or Asset): `additionalProperties: false` throughout."""
    return msgspec.json.schema(root)


def ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


# ---------------------------------------------------------------- dotted field access

_ALIASES = {"@timestamp": "timestamp"}


def _struct_fields(tp: Any) -> dict[str, Any] | None:
    """Serialized name -> annotated type, for a struct type (None for non-structs)."""
    import typing

    origin = typing.get_origin(tp)
    if origin is not None:  # X | None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _struct_fields(args[0])
        return None
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        hints = typing.get_type_hints(tp)
        return {enc: hints[name] for name, enc in zip(tp.__struct_fields__, tp.__struct_encode_fields__)}
    return None


@functools.cache
def known_fields(root: type = Event) -> frozenset[str]:
    """Every dotted serialized field path of `root`, leaves and inner structs alike."""
    out: set[str] = set()

    def walk(tp: Any, prefix: str) -> None:
        fields = _struct_fields(tp)
        if fields is None:
            return
        for name, sub in fields.items():
            path = f"{prefix}{name}"
            out.add(path)
            walk(sub, path + ".")

    walk(root, "")
    return frozenset(out)


@functools.cache
def getter(path: str) -> Callable[[Any], Any]:
    """A fast accessor for a dotted serialized path (`source.ip`, `@timestamp`, `modbus.device_id.vendor_name`).

    Returns None where any step is missing. Raises KeyError for a path the schema does not know.
    """
    if path not in known_fields(Event):
        raise KeyError(path)
    attrs = [_ALIASES.get(p, p) for p in path.split(".")]
    # Rules call these for every event: paths of one to three steps (nearly all) get a closure
    # without a loop; each step is the same `getattr(obj, name, None)` as the general case.
    if len(attrs) == 1:
        (a,) = attrs

        def get1(obj: Any) -> Any:
            return getattr(obj, a, None)

        return get1
    if len(attrs) == 2:
        a, b = attrs

        def get2(obj: Any) -> Any:
            obj = getattr(obj, a, None)
            return None if obj is None else getattr(obj, b, None)

        return get2
    if len(attrs) == 3:
        a, b, c = attrs

        def get3(obj: Any) -> Any:
            obj = getattr(obj, a, None)
            if obj is None:
                return None
            obj = getattr(obj, b, None)
            return None if obj is None else getattr(obj, c, None)

        return get3

    def get(obj: Any) -> Any:
        for a in attrs:
            obj = getattr(obj, a, None)
            if obj is None:
                return None
        return obj

    return get


def get_field(event: Event, path: str) -> Any:
    return getter(path)(event)
