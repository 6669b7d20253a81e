"""Fields of a protocol only tshark dissects (`tshark.*`): its layer's fields by display-filter name, bounded."""

from __future__ import annotations

from typing import Annotated

import msgspec

from .base import Fields

MAX_FIELDS = 64  # fields kept per layer; the rest are dropped and `fields_truncated` is set
MAX_VALUE = 256  # characters kept per value (repeated fields are joined with "," first)

Value = Annotated[str, msgspec.Meta(max_length=MAX_VALUE)]


class Tshark(Fields):
    """One tshark layer (GOOSE, MMS, PROFINET, Omron FINS, ...): `event.dataset` is the same protocol name."""

    protocol: str  # tshark's layer name: goose, mms, pn_io, omron, synphasor, ...
    fields: Annotated[dict[str, Value], msgspec.Meta(max_length=MAX_FIELDS)] = {}  # "goose.gocbRef": "..."
    fields_truncated: bool | None = None  # the layer had more than MAX_FIELDS fields
