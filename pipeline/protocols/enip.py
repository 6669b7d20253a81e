"""EtherNet/IP encapsulation (`enip.*`) and CIP (`cip.*`) fields."""

from __future__ import annotations

from .base import Fields


class Enip(Fields):
    command: int
    command_name: str
    session_handle: int | None = None
    status: int | None = None


class Cip(Fields):
    service: int
    service_name: str
    is_response: bool | None = None
    status: int | None = None
