"""OPC UA binary fields (`opcua.*`)."""

from __future__ import annotations

from .base import Fields


class Opcua(Fields):
    message_type: str  # HEL ACK OPN MSG CLO ERR RHE
    service_type_id: int | None = None
    service_name: str | None = None
