"""The base every schema struct derives from (envelope and protocol fields alike)."""

import msgspec


class Fields(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Immutable, compact, strict on decode."""
