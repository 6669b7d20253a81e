"""IEC 60870-5-104 fields (`iec104.*`): APCI and ASDU."""

from __future__ import annotations

from .base import Fields


class Iec104(Fields):
    apci_type: str  # I | S | U
    type_id: int | None = None  # ASDU type identification
    type_name: str | None = None
    cot: int | None = None  # cause of transmission
    cot_name: str | None = None
    common_address: int | None = None
