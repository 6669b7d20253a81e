"""Errors raised by the detection layer; one base class so callers can catch them together."""

from __future__ import annotations

import os
from collections.abc import Sequence


class DetectionError(Exception):
    """Base of every detection error. Messages say what was wrong, where, and what to do."""


class RuleError(DetectionError):
    """One problem in a rule or lists file, located as `path:line` (1-based; 0 when the whole file)."""

    def __init__(self, path: str | os.PathLike[str], line: int, message: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def __repr__(self) -> str:
        return f"RuleError({self.path!r}, {self.line}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuleError):
            return NotImplemented
        return (self.path, self.line, self.message) == (other.path, other.line, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.line, self.message))

    def sort_key(self) -> tuple[str, int, str]:
        return (self.path, self.line, self.message)


class RuleLoadError(DetectionError):
    """Rules could not be loaded; `errors` holds every problem found, not only the first."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(str(e) for e in self.errors)
        super().__init__(f"{len(self.errors)} problem(s) in the rules; fix them and run `qinling rules lint`:\n{lines}")


class EngineError(DetectionError):
    """The engine was given rules it cannot compile (e.g. a `$list` that is not defined)."""


class InventoryError(DetectionError):
    """Reference data the inventory needs is missing or unreadable (the OUI table, a zone file)."""


class VulnDataError(DetectionError):
    """An advisory file or the vulnerability index could not be read; the message names the file."""
