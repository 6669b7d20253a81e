"""EtherNet/IP + CIP decoder: encapsulation over TCP and UDP 44818, CIP explicit messaging, CIP I/O on UDP 2222."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import CipIoFlow, EnipFlow
from .parser import parse, parse_cip, parse_io, parse_path

NAME = "enip"
DEFAULT_PORTS = (44818,)
IO_PORTS = (2222,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=EnipFlow)
UDP_SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="udp", flow=EnipFlow)
IO_SPEC = DecoderSpec(name="cip_io", default_ports=IO_PORTS, transport="udp", flow=CipIoFlow)
# Registered under these keys (one line in sensors/decoders/__init__.py: `**ENIP_SPECS`).
SPECS = {"enip": SPEC, "enip_udp": UDP_SPEC, "cip_io": IO_SPEC}

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "UDP_SPEC", "IO_SPEC", "SPECS", "MAX_PENDING", "AnomalyCode", "EnipFlow", "CipIoFlow",
           "parse", "parse_cip", "parse_io", "parse_path"]
