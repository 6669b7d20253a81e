"""IEC 60870-5-104 decoder: APCI framing (I/S/U), ASDU with every standard type id, activation/confirmation pairing."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import Iec104Flow
from .parser import parse, parse_asdu

NAME = "iec104"
DEFAULT_PORTS = (2404,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=Iec104Flow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "MAX_PENDING", "AnomalyCode", "Iec104Flow", "parse", "parse_asdu"]
