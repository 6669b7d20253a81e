"""Protocol decoders, registered explicitly: one line per protocol. Importing a decoder registers nothing."""

from __future__ import annotations

from .base import DecoderSpec
from .modbus import SPEC as MODBUS
from .opcua import SPEC as OPCUA

REGISTRY: dict[str, DecoderSpec] = {
    MODBUS.name: MODBUS,
    OPCUA.name: OPCUA,
}


def by_port(transport: str, port: int) -> DecoderSpec | None:
    for spec in REGISTRY.values():
        if spec.transport == transport and port in spec.default_ports:
            return spec
    return None
