"""DNP3 decoder (IEEE 1815) over TCP and UDP: link frames with CRCs, transport reassembly, every
application function both ways, object headers and security-relevant object data, pairing."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import Dnp3Flow, Dnp3UdpFlow
from .parser import crc16, parse_application, parse_frame

NAME = "dnp3"
DEFAULT_PORTS = (20000,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=Dnp3Flow)
# Same dataset ("dnp3") on UDP; the registry needs a distinct key per transport.
SPEC_UDP = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="udp", flow=Dnp3UdpFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "SPEC_UDP", "MAX_PENDING", "AnomalyCode", "Dnp3Flow", "Dnp3UdpFlow", "crc16", "parse_application", "parse_frame"]
