"""BACnet/IP decoder: BVLC, NPDU (incl. network-layer messages), APDU of every type, key service parameters."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import BacnetFlow
from .parser import parse

NAME = "bacnet"
DEFAULT_PORTS = (47808,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="udp", flow=BacnetFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "MAX_PENDING", "AnomalyCode", "BacnetFlow", "parse"]
