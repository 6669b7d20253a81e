"""Small wire-format helpers every protocol decoder names codes and collects problems with."""

from __future__ import annotations

import enum
from collections.abc import Mapping


def name_of(table: Mapping[int, str], code: int, prefix: str = "unknown", hex_digits: int = 0) -> str:
    """The name of `code` in `table`, else `<prefix>_<code>`: decimal, or hex of `hex_digits` digits (`unknown_0x00b2`).

    Unknown codes keep a stable, searchable name rather than None, so rules and dashboards can match them.
    """
    name = table.get(code)
    if name:
        return name
    return f"{prefix}_0x{code:0{hex_digits}x}" if hex_digits else f"{prefix}_{code}"


class Body:
    """Fields of one message decoded so far, plus the first problem found (one anomaly per message)."""

    __slots__ = ("f", "code", "msg")

    def __init__(self) -> None:
        self.f: dict[str, object] = {}
        self.code: str | None = None
        self.msg: str | None = None

    def bad(self, code: enum.Enum, msg: str) -> None:
        if self.code is None:
            self.code, self.msg = str(code.value), msg
