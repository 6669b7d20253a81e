"""ATT&CK for ICS technique names: the shared technique table when present, else a small built-in one."""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

# `shared/` sits beside the repository (CI clones main with shared/ next to it).
SHARED_TABLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "attack-ics" / "techniques.csv"
ENV_VAR = "QINLING_ATTACK_TECHNIQUES"

# The techniques the bundled rule packs use (ATT&CK for ICS v18), so a checkout without shared/
# still validates and names them. © The MITRE Corporation; names reproduced with permission.
BUILTIN: dict[str, str] = {
    "T0801": "Monitor Process State",
    "T0814": "Denial of Service",
    "T0816": "Device Restart/Shutdown",
    "T0831": "Manipulation of Control",
    "T0836": "Modify Parameter",
    "T0843": "Program Download",
    "T0846": "Remote System Discovery",
    "T0848": "Rogue Master",
    "T0855": "Unauthorized Command Message",
    "T0861": "Point & Tag Identification",
    "T0866": "Exploitation of Remote Services",
    "T0872": "Indicator Removal on Host",
    "T0883": "Internet Accessible Device",
    "T0888": "Remote System Information Discovery",
}


def table_path() -> Path | None:
    """The technique table in use: $QINLING_ATTACK_TECHNIQUES, else shared/, else None (built-in)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return SHARED_TABLE if SHARED_TABLE.is_file() else None


@functools.cache
def _read(path: Path | None) -> dict[str, str]:
    if path is None:
        return dict(BUILTIN)
    with path.open(encoding="utf-8", newline="") as f:
        return {row["id"].strip(): row["name"].strip() for row in csv.DictReader(f) if row.get("id")}


def techniques(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Technique id -> name. Reads `path`, or the table `table_path()` finds."""
    return dict(_read(Path(path) if path is not None else table_path()))
