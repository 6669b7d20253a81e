"""DNP3 fields (`dnp3.*`): link layer, transport, application layer, object headers."""

from __future__ import annotations

from .base import Fields


class Dnp3Object(Fields):
    group: int
    variation: int
    qualifier: int | None = None
    range_start: int | None = None
    range_stop: int | None = None
    count: int | None = None
    name: str | None = None


class Dnp3(Fields):
    source: int  # link-layer source address
    destination: int  # link-layer destination address
    function_code: int | None = None  # application function code (None: link-only frame)
    function_name: str | None = None
    message_type: str | None = None  # request | response | unsolicited_response | link
    objects: list[Dnp3Object] | None = None
