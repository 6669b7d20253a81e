"""`qinling rules lint`: every problem of rule and lists files at once, as `path:line: message`."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from ..exceptions import RuleError
from .loader import DEFAULT_LISTS, PathArg, check_rules


def lint(
    paths: PathArg | Iterable[PathArg] | None = None,
    *,
    site_lists: PathArg | None = None,
    default_lists: PathArg | None = DEFAULT_LISTS,
) -> list[RuleError]:
    """All problems in the rule files under `paths` (default: the bundled rules/), sorted by file and line."""
    _, errors = check_rules(paths, site_lists=site_lists, default_lists=default_lists)
    return errors


def format_errors(errors: Iterable[RuleError]) -> str:
    return "".join(f"{e}\n" for e in errors)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Print problems (`path:line: message`), return 0 when there are none, else 1."""
    args = sys.argv[1:] if argv is None else argv
    stream = out if out is not None else sys.stdout
    errors = lint(args or None)
    stream.write(format_errors(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
