"""Omron FINS decoder: UDP 9600 datagrams and FINS/TCP 9600 (node address handshake, Frame Send), commands paired with responses."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import FinsTcpFlow, FinsUdpFlow, action_of
from .parser import parse_frame, parse_tcp

NAME = "fins"
DEFAULT_PORTS = (9600,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="udp", flow=FinsUdpFlow)
SPEC_TCP = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=FinsTcpFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "SPEC_TCP", "MAX_PENDING", "AnomalyCode", "FinsUdpFlow", "FinsTcpFlow", "action_of", "parse_frame", "parse_tcp"]
