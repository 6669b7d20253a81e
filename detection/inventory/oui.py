"""MAC → manufacturer, from Wireshark's `manuf` file (Debian package `libwireshark-data`)."""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import InventoryError

DEFAULT_MANUF = Path("/usr/share/wireshark/manuf")
ENV_VAR = "QINLING_MANUF"
# The parsed table is pickled here (keyed by the manuf file's path, size and mtime): unpickling takes
# ~30 ms where parsing the ~52,000 lines takes ~160 ms, at every start-up of a replay or worker.
CACHE_VERSION = 1
CACHE_ENV = "QINLING_OUI_CACHE"  # a folder, or "0"/"off" to parse every time
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "oui"

_Row = tuple[str, str, str]  # prefix, short, long: entries are built on lookup, not for all ~52,000


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

    def __init__(self, entries: dict[int, dict[int, _Row]], path: str) -> None:
        self._by_bits = entries  # prefix length in bits -> prefix value -> (prefix, short, long)
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
            row = self._by_bits[bits].get(value >> (48 - bits))
            if row is not None:
                return OuiEntry(*row)
        return None


def parse_manuf(text: str, path: str = "<manuf>") -> OuiTable:
    """`PREFIX[/BITS] <tab> SHORT [<tab> LONG]` lines; `#` comments. Well-known addresses (/48) are kept too."""
    by_bits: dict[int, dict[int, _Row]] = {}
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
        by_bits.setdefault(bits, {})[value] = (prefix, short, long)
    return OuiTable(by_bits, path)


def _cache_file(path: str) -> tuple[Path, str] | None:
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = f"qinling-oui {CACHE_VERSION} {sys.version_info[:2]} {os.path.abspath(path)} {st.st_size} {st.st_mtime_ns}"
    return Path(env) if env else CACHE_DIR, key


def _cache_read(where: tuple[Path, str]) -> OuiTable | None:
    folder, key = where
    try:
        with open(folder / f"{hashlib.sha256(key.encode()).hexdigest()}.pickle", "rb") as f:
            stored_key, by_bits, path = pickle.load(f)
    except Exception:  # noqa: BLE001 - absent, truncated, from another version: parse instead
        return None
    return OuiTable(by_bits, path) if stored_key == key and isinstance(by_bits, dict) else None


def _cache_write(where: tuple[Path, str], table: OuiTable) -> None:
    folder, key = where
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.pickle"):  # one manuf file in use: an older entry is stale
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as f:
                entry: Any = (key, table._by_bits, table.path)
                pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / f"{hashlib.sha256(key.encode()).hexdigest()}.pickle")
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # noqa: BLE001 - a read-only or full disk only costs the next start-up a parse
        pass


@functools.lru_cache(maxsize=4)
def _load(path: str) -> OuiTable:
    where = _cache_file(path)
    cached = _cache_read(where) if where is not None else None
    if cached is not None:
        return cached
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
    if where is not None:
        _cache_write(where, table)
    return table


def load_oui(path: str | os.PathLike[str] | None = None) -> OuiTable:
    """The OUI table (cached per path): `path`, else $QINLING_MANUF, else /usr/share/wireshark/manuf."""
    return _load(os.fspath(path or os.environ.get(ENV_VAR) or DEFAULT_MANUF))
