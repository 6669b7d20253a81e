"""MQTT 3.1/3.1.1/5 decoder: every control packet, split and coalesced packets, oversized-packet skipping, pairing."""

from __future__ import annotations

from ..base import DecoderSpec
from .constants import MAX_PENDING, AnomalyCode
from .flow import MqttFlow
from .parser import parse

NAME = "mqtt"
# 8883 is MQTT over TLS: not registered, the payload is opaque.
DEFAULT_PORTS = (1883,)

SPEC = DecoderSpec(name=NAME, default_ports=DEFAULT_PORTS, transport="tcp", flow=MqttFlow)

__all__ = ["NAME", "DEFAULT_PORTS", "SPEC", "MAX_PENDING", "AnomalyCode", "MqttFlow", "parse"]
