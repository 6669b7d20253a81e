"""Network zones: configured CIDRs with a Purdue level, else one zone per private /24 and "internet".

Config (TOML or YAML), e.g.::

    [[zones]]
    name = "plant-control"      # shown on the map
    cidrs = ["10.10.1.0/24"]
    level = 1                   # Purdue level 0..5 (3.5 for a DMZ)
    kind = "ot"                 # ot | it | dmz (default: from the level: <=3 ot, 3.5 dmz, >=4 it)
"""

from __future__ import annotations

import functools
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import InventoryError

INTERNET = "internet"
KINDS = ("ot", "it", "dmz", "internet", "local", "unknown")


@dataclass(frozen=True)
class Zone:
    name: str
    cidrs: tuple[str, ...] = ()
    level: float | None = None  # Purdue level
    kind: str = "unknown"  # ot | it | dmz | internet | local | unknown (inferred from members later)
    configured: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cidrs": list(self.cidrs), "level": self.level, "kind": self.kind, "configured": self.configured}


def _kind_of_level(level: float | None) -> str:
    if level is None:
        return "unknown"
    if level == 3.5:
        return "dmz"
    return "ot" if level <= 3 else "it"


@dataclass
class ZoneMap:
    zones: list[Zone] = field(default_factory=list)
    default_prefix: int = 24

    def __post_init__(self) -> None:
        nets = []
        for z in self.zones:
            for c in z.cidrs:
                nets.append((ipaddress.ip_network(c, strict=False), z))
        # longest prefix first, so a /26 inside a configured /16 wins
        nets.sort(key=lambda nz: -nz[0].prefixlen)
        self._nets = nets
        self._zone_of = functools.lru_cache(maxsize=65536)(self._lookup)

    def zone_of(self, ip: str) -> Zone:
        return self._zone_of(ip)

    def _lookup(self, ip: str) -> Zone:
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return Zone("unknown")
        for net, z in self._nets:
            if a.version == net.version and a in net:
                return z
        if a.is_loopback or a.is_link_local:
            return Zone("local", kind="local")
        if a.is_private:
            prefix = self.default_prefix if a.version == 4 else 64
            net = ipaddress.ip_network(f"{a}/{prefix}", strict=False)
            return Zone(str(net), (str(net),))
        return Zone(INTERNET, kind="internet")

    @classmethod
    def from_mapping(cls, data: Any, where: str = "<zones>") -> ZoneMap:
        if not isinstance(data, dict):
            raise InventoryError(f"{where}: expected a table with a `zones` list")
        zones = []
        for i, z in enumerate(data.get("zones") or []):
            if not isinstance(z, dict) or not z.get("name") or not z.get("cidrs"):
                raise InventoryError(f"{where}: zones[{i}] needs `name` and `cidrs`")
            level = z.get("level")
            try:
                cidrs = tuple(str(ipaddress.ip_network(str(c), strict=False)) for c in z["cidrs"])
                level = float(level) if level is not None else None
            except ValueError as e:
                raise InventoryError(f"{where}: zones[{i}] ({z['name']}): {e}") from e
            kind = str(z.get("kind") or _kind_of_level(level))
            if kind not in KINDS:
                raise InventoryError(f"{where}: zones[{i}] ({z['name']}): kind {kind!r} is not one of {', '.join(KINDS)}")
            zones.append(Zone(str(z["name"]), cidrs, level, kind, True))
        return cls(zones, int(data.get("default_prefix", 24)))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ZoneMap:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise InventoryError(f"{p}: cannot read the zone file ({e.strerror or e})") from e
        try:
            if p.suffix in (".yml", ".yaml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = tomllib.loads(text)
        except Exception as e:  # noqa: BLE001 - both parsers' errors, reported with the file
            raise InventoryError(f"{p}: not valid {p.suffix.lstrip('.') or 'TOML'}: {e}") from e
        return cls.from_mapping(data, str(p))
