"""MQTT 3.1.1 and 5 fields (`mqtt.*`)."""

from __future__ import annotations

from .base import Fields


class Mqtt(Fields):
    message_type: int  # control packet type 1..15
    message_type_name: str
    protocol_version: int | None = None
