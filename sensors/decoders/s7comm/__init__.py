"""S7comm decoder: TPKT/COTP framing and reassembly, S7comm jobs/userdata both ways, S7comm-plus recognition, MMS dispatch."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import S7commFlow, action_of
from .parser import parse_cotp, parse_s7, parse_s7plus, parse_tpkt

NAME = "s7comm"
DEFAULT_PORTS = (102,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=S7commFlow)
# MMS shares the ISO transport (TPKT/COTP on 102): the same flow dispatches each COTP DT payload to
# S7comm, S7comm-plus or MMS by its first byte, so `--port mms=N` gets the dispatching flow too.
# A connection's COTP set-up is held until that first payload, then emitted under the dataset it
# carries (mms for MMS, s7comm otherwise): see S7commFlow._cotp_event.
SPEC_MMS = DecoderSpec(name="mms", default_ports=DEFAULT_PORTS, transport="tcp", flow=S7commFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "SPEC_MMS", "MAX_PENDING", "AnomalyCode", "S7commFlow", "action_of", "parse_tpkt", "parse_cotp", "parse_s7", "parse_s7plus"]
