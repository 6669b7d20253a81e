"""Modbus/TCP decoder: MBAP framing, every public function code both ways, request/response pairing."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import ModbusFlow
from .parser import parse

NAME = "modbus"
DEFAULT_PORTS = (502,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=ModbusFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "MAX_PENDING", "AnomalyCode", "ModbusFlow", "parse"]
