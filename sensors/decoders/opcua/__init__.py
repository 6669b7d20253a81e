"""OPC UA binary (UA TCP) decoder: chunk framing and reassembly, secure channels, service messages, pairing."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import OpcuaFlow
from .parser import decode_service, parse

NAME = "opcua"
DEFAULT_PORTS = (4840,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=OpcuaFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "MAX_PENDING", "AnomalyCode", "OpcuaFlow", "parse", "decode_service"]
