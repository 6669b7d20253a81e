"""S7comm decoder: TPKT/COTP framing and reassembly, S7comm jobs/userdata both ways, S7comm-plus recognition."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import S7commFlow, action_of
from .parser import parse_cotp, parse_s7, parse_s7plus, parse_tpkt

NAME = "s7comm"
DEFAULT_PORTS = (102,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=S7commFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "MAX_PENDING", "AnomalyCode", "S7commFlow", "action_of", "parse_tpkt", "parse_cotp", "parse_s7", "parse_s7plus"]
