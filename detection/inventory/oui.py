"""MAC → manufacturer, from Wireshark's `manuf` file (Debian package `libwireshark-data`)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import InventoryError

DEFAULT_MANUF = Path("/usr/share/wireshark/manuf")
ENV_VAR = "QINLING_MANUF"


@dataclass(frozen=True)
class OuiEntry:
    prefix: str  # "00:1C:47" or "70:B3:D5:F2:60:00/36"
    short: str
    long: str

    @property
    def name(self) -> str:
        return (self.long or self.short).strip().rstrip(",").strip()


class OuiTable:
    """Longest-prefix lookup over the /24, /28 and /36 (any /n) blocks of the manuf file."""

    def __init__(self, entries: dict[int, dict[int, OuiEntry]], path: str) -> None:
        self._by_bits = entries  # prefix length in bits -> prefix value -> entry
        self._lengths = sorted(entries, reverse=True)
        self.path = path

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_bits.values())

    def lookup(self, mac: str | None) -> OuiEntry | None:
        if not mac:
            return None
        hexdigits = "".join(ch for ch in mac if ch not in ":-.").lower()
        if len(hexdigits) != 12:
            return None
        try:
            value = int(hexdigits, 16)
        except ValueError:
            return None
        if value == 0 or value >> 40 & 1:  # all-zero (pcap placeholder) or multicast/group address
            return None
        for bits in self._lengths:
            e = self._by_bits[bits].get(value >> (48 - bits))
            if e is not None:
                return e
        return None


def parse_manuf(text: str, path: str = "<manuf>") -> OuiTable:
    """`PREFIX[/BITS] <tab> SHORT [<tab> LONG]` lines; `#` comments. Well-known addresses (/48) are kept too."""
    by_bits: dict[int, dict[int, OuiEntry]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip() if not line.startswith("#") else ""
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            parts = line.split(None, 2)
            if len(parts) < 2:
                continue
        prefix, short = parts[0].strip(), parts[1].strip()
        long = parts[2].strip() if len(parts) > 2 else ""
        spec, _, bits_s = prefix.partition("/")
        digits = spec.replace(":", "").replace("-", "").replace(".", "")
        try:
            bits = int(bits_s) if bits_s else len(digits) * 4
            value = int(digits, 16) >> (len(digits) * 4 - bits)
        except ValueError:
            continue
        by_bits.setdefault(bits, {})[value] = OuiEntry(prefix, short, long)
    return OuiTable(by_bits, path)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> OuiTable:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InventoryError(
            f"{path}: cannot read the OUI table ({e.strerror or e}); install Wireshark's data files "
            f"(`apt-get install libwireshark-data`, or `make deps`) or point ${ENV_VAR} at a manuf file"
        ) from e
    table = parse_manuf(text, path)
    if not len(table):
        raise InventoryError(f"{path}: no OUI entries found; is this Wireshark's manuf file?")
    return table


def load_oui(path: str | os.PathLike[str] | None = None) -> OuiTable:
    """The OUI table (cached per path): `path`, else $QINLING_MANUF, else /usr/share/wireshark/manuf."""
    return _load(os.fspath(path or os.environ.get(ENV_VAR) or DEFAULT_MANUF))
