"""IEC 61850-8-1 GOOSE decoder (ethertype 0x88B8, plain or VLAN-tagged): goosePdu, allData, stNum/sqNum sequence."""

from __future__ import annotations

from ..base import DecoderSpec
from ..ether import TRANSPORT
from .constants import ETHERTYPE
from .flow import GooseDecoder, classify
from .parser import parse

NAME = "goose"
ETHERTYPES = (ETHERTYPE,)

SPEC = DecoderSpec(name=NAME, default_ports=ETHERTYPES, transport=TRANSPORT, flow=GooseDecoder)

__all__ = ["NAME", "ETHERTYPES", "SPEC", "GooseDecoder", "classify", "parse"]
