"""What every protocol decoder is given and returns. Decoders are pure: no I/O, no globals."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.schema import Anomaly, Endpoint, Event, EventInfo, Evidence, Network, Observer, Organization, Related


class Direction(enum.IntEnum):
    """Which side of the connection sent these bytes."""

    TO_SERVER = 0  # from the originator (client/master): requests
    TO_CLIENT = 1  # from the responder (server/slave/PLC): responses


@dataclass(frozen=True, slots=True)
class Conn:
    """The connection as seen from its originator; identical for both directions."""

    orig_ip: str
    orig_port: int
    resp_ip: str
    resp_port: int
    transport: str  # "tcp" | "udp"
    community_id: str
    orig_mac: str | None = None
    resp_mac: str | None = None
    vlan_id: tuple[int, ...] = ()
    # make_event's per-direction envelope parts, built on first use. Not a field of the connection
    # (no init, compare, hash or repr); `replace()` gives the copy an empty one of its own.
    _envelope: list[object] = field(default_factory=list, init=False, compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """The packet whose payload is being fed (for a PDU spanning segments: the one completing it)."""

    frame: int  # 1-based frame number in the capture (or the live sensor's packet counter)
    time: dt.datetime
    conn: Conn
    file_sha256: str | None = None
    file: str | None = None
    observer_id: str | None = None
    organization_id: str | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """Result of parsing one PDU from the front of a buffer (Suricata's incomplete(consumed, needed))."""

    consumed: int  # bytes used; 0 when incomplete
    needed: int = 0  # when incomplete: how many more bytes are needed at least
    pdu: object | None = None
    anomaly: str | None = None  # from the decoder's fixed enum
    anomaly_message: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class FlowDecoder(Protocol):
    """One instance per connection; fed the reassembled, in-order bytes of each direction."""

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        """Every complete PDU in `data` (plus what was buffered) -> one event each. Never raises."""
        ...

    def close(self, meta: FrameMeta | None) -> list[Event]:
        """Connection ended: events for what is still pending (e.g. requests never answered)."""
        ...


@dataclass(frozen=True)
class DecoderSpec:
    name: str
    default_ports: tuple[int, ...]  # for transport "ethernet": ethertypes
    transport: str  # "tcp" | "udp" | "ethernet" (layer 2, see ether.py)
    flow: type  # class implementing FlowDecoder (ethernet: ether.EtherDecoder), constructed with no arguments
    # udp only: recognises the first datagram of a flow on any port (DCE/RPC servers answer from ephemeral ports)
    probe: Callable[[memoryview], bool] | None = None


def event_id(meta: FrameMeta, seq: int, kind: str = "") -> str:
    """Deterministic id: the same capture decoded twice gives the same ids (idempotent store writes).

    The enterprise is part of it, so one capture replayed for two enterprises (an auditor's copy and
    the plant's own) gives two sets of events and alerts, not one overwriting the other.
    """
    origin = (meta.file_sha256 or meta.observer_id or "live")[:16]
    if meta.organization_id:
        return f"{meta.organization_id}/{origin}-{meta.frame}-{kind}{seq}"
    return f"{origin}-{meta.frame}-{kind}{seq}"


def make_event(
    meta: FrameMeta,
    direction: Direction,
    *,
    dataset: str,
    seq: int = 0,
    action: str | None = None,
    outcome: str | None = None,
    duration: int | None = None,
    message: str | None = None,
    anomaly: Anomaly | None = None,
    **protocol: object,
) -> Event:
    """The ECS envelope for one message sent in `direction` on `meta.conn`, with protocol fields.

    `source` is the true sender of this message (a response's source is the server/PLC).
    `protocol` is one keyword named for the protocol, e.g. `modbus=Modbus(...)`.
    """
    c = meta.conn
    orig = direction is Direction.TO_SERVER
    env = c._envelope
    if not env:
        env.extend(_envelope(c))
    src, dst, related, nets = env[0] if orig else env[1]  # type: ignore[misc]
    net = nets.get(dataset)
    if net is None:
        net = nets[dataset] = _network(c, dataset, orig)
    obs_id, org_id = meta.observer_id, meta.organization_id
    if obs_id is None and org_id is None:
        observer = organization = None
    else:
        parties = env[2]
        if parties is None or parties[0] != obs_id or parties[1] != org_id:  # type: ignore[index]
            parties = env[2] = (obs_id, org_id, Observer(id=obs_id) if obs_id else None, Organization(id=org_id) if org_id else None)
        observer, organization = parties[2], parties[3]  # type: ignore[index]
    return Event(
        timestamp=meta.time,
        event=EventInfo(kind="event", dataset=dataset, action=action, outcome=outcome, duration=duration, id=event_id(meta, seq)),  # type: ignore[arg-type]
        message=message,
        source=src,
        destination=dst,
        network=net,
        observer=observer,
        organization=organization,
        evidence=Evidence(file_sha256=meta.file_sha256, file=meta.file, frame=meta.frame, sensor=obs_id if meta.file_sha256 is None else None),
        related=related,
        anomaly=anomaly,
        **protocol,  # type: ignore[arg-type]
    )


def _envelope(c: Conn) -> list[object]:
    """The parts of make_event's envelope that depend only on the connection and direction.

    Built once per connection and shared by its events: the structs are frozen, so sharing them
    is invisible to readers (and saves building five structs per event).
    """
    if not c.orig_ip:  # layer 2 (GOOSE, PROFINET DCP, sensors/decoders/ether.py): link addresses only
        a, b, related = Endpoint(mac=c.orig_mac), Endpoint(mac=c.resp_mac), None
    else:
        a = Endpoint(ip=c.orig_ip, port=c.orig_port, mac=c.orig_mac)
        b = Endpoint(ip=c.resp_ip, port=c.resp_port, mac=c.resp_mac)
        related = Related(ip=sorted({c.orig_ip, c.resp_ip}))
    return [(a, b, related, {}), (b, a, related, {}), None]  # per direction: source, destination, related, network by dataset


def _network(c: Conn, dataset: str, orig: bool) -> Network:
    if not c.orig_ip:  # layer 2: no transport, IP version or community id
        return Network(protocol=dataset, direction="request" if orig else "response", is_orig=orig, vlan_id=list(c.vlan_id) or None)
    return Network(
        transport=c.transport,
        protocol=dataset,
        type="ipv6" if ":" in c.orig_ip else "ipv4",
        community_id=c.community_id,
        direction="request" if orig else "response",
        is_orig=orig,
        vlan_id=list(c.vlan_id) or None,
    )
