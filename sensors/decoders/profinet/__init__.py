"""PROFINET decoders: DCP and alarms over RT (ethertype 0x8892, VLAN-tagged too), IO CM over DCE/RPC (UDP 34964)."""

from __future__ import annotations

from ..base import DecoderSpec
from ..ether import TRANSPORT
from .constants import ETHERTYPE, IO_CM_PORT
from .flow import ProfinetCmFlow, ProfinetRtDecoder
from .rpc import looks_like_pnio

NAME = "profinet"
DEFAULT_PORTS = (IO_CM_PORT,)
ETHERTYPES = (ETHERTYPE,)

# IO CM answers and the device's ApplicationReady callbacks use ephemeral ports: the probe finds them.
SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="udp", flow=ProfinetCmFlow, probe=looks_like_pnio)
RT_SPEC = DecoderSpec(name=NAME, default_ports=ETHERTYPES, transport=TRANSPORT, flow=ProfinetRtDecoder)

__all__ = ["NAME", "DEFAULT_PORTS", "ETHERTYPES", "SPEC", "RT_SPEC", "ProfinetCmFlow", "ProfinetRtDecoder", "looks_like_pnio"]
