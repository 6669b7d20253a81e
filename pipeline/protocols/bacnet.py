"""BACnet/IP fields (`bacnet.*`): BVLC, NPDU, APDU."""

from __future__ import annotations

from .base import Fields


class Bacnet(Fields):
    bvlc_function: int
    bvlc_function_name: str | None = None
    apdu_type: int | None = None
    apdu_type_name: str | None = None
    service: int | None = None
    service_name: str | None = None
