"""Record keys on the bus: every event and alert is keyed by its asset, the responder of its conversation.

The responder (the PLC, RTU or server: a request's destination, a response's source) is the asset
whose state the detection rules mostly keep, so keying by it puts all of one asset's traffic on
one partition, in order, and therefore on one detector worker. Both bus implementations use this
key, so the embedded and Kafka paths see the same keys.
"""

from __future__ import annotations

from .schema import Event


def asset_of(ev: Event) -> str | None:
    """The responder's IP: the source when this message was sent by the responder, else the destination."""
    src = ev.source.ip if ev.source is not None else None
    dst = ev.destination.ip if ev.destination is not None else None
    if ev.network is not None and ev.network.is_orig is False:
        return src or dst
    return dst or src


def asset_key(ev: Event) -> bytes | None:
    """The record key: `organization/ip` (tenants never share a key), or the community id, or None."""
    ip = asset_of(ev)
    if ip:
        org = ev.organization.id if ev.organization is not None and ev.organization.id else ""
        return f"{org}/{ip}".encode()
    cid = ev.network.community_id if ev.network is not None else None
    return cid.encode() if cid else None
