"""ARP decoder (ethertype 0x0806, plain or VLAN-tagged): requests, replies, announcements, probes; replies matched to requests."""

from __future__ import annotations

from ..base import DecoderSpec
from ..ether import TRANSPORT
from .flow import ArpDecoder
from .parser import parse

NAME = "arp"
ETHERTYPE = 0x0806
ETHERTYPES = (ETHERTYPE,)

SPEC = DecoderSpec(name=NAME, default_ports=ETHERTYPES, transport=TRANSPORT, flow=ArpDecoder)

__all__ = ["NAME", "ETHERTYPE", "ETHERTYPES", "SPEC", "ArpDecoder", "parse"]
