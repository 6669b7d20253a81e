"""`qinling assets PCAP...`: the inventory (and communication map) a capture yields, as JSON or a table.

`inventory_from_captures()` is what the console calls for an uploaded capture; the stored
inventory comes from replay (`AssetTracker` in `console/jobs.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import schema
from pipeline.schema import Asset


def inventory_from_captures(paths: Sequence[str | Path], *, organization_id: str | None = None, zones_file: str | None = None,
                            manuf: str | None = None, with_map: bool = True) -> tuple[list[Asset], dict[str, Any] | None]:
    """Decode captures (sensors.engine.decode_file) into the AssetTracker and, optionally, the communication map."""
    from detection.assets import AssetTracker
    from detection.commap import CommMap
    from detection.inventory.oui import load_oui
    from detection.zones import ZoneMap
    from sensors.engine import decode_file

    zones = ZoneMap.load(zones_file) if zones_file else ZoneMap()
    tracker = AssetTracker(organization_id, oui=load_oui(manuf), zones=zones)
    cmap = CommMap(zones, organization_id) if with_map else None
    for p in paths:
        for e in decode_file(p, organization_id=organization_id):
            tracker.observe(e)
            if cmap is not None:
                cmap.observe(e)
    assets = tracker.snapshot()
    return assets, (cmap.graph(assets) if cmap is not None else None)


def table(assets: Sequence[Asset]) -> str:
    head = f"{'ip':15} {'role':19} {'vendor':22} {'model / product':28} {'firmware':10} {'protocols':18} {'exposures'}"
    lines = [head]
    for a in assets:
        vendor = a.vendor or "-"
        if a.vendor_zh and a.vendor_zh != a.vendor:
            vendor = f"{vendor} ({a.vendor_zh})"
        model = a.model or a.product or "-"
        lines.append(f"{a.ip:15} {a.role or '-':19} {vendor[:22]:22} {model[:28]:28} {(a.firmware or '-')[:10]:10} "
                     f"{','.join(a.protocols)[:18]:18} {','.join(a.exposures) or '-'}")
    return "\n".join(lines)


def cmd_assets(args: argparse.Namespace) -> int:
    missing = [p for p in args.pcaps if not Path(p).is_file()]
    if missing:
        raise SystemExit("qinling: no such capture file: " + ", ".join(missing))
    from detection.exceptions import DetectionError

    try:
        assets, graph = inventory_from_captures(args.pcaps, organization_id=args.organization_id, zones_file=args.zones,
                                                manuf=args.manuf, with_map=args.map)
    except DetectionError as e:
        raise SystemExit(f"qinling: {e}") from e
    if args.format == "json":
        out: dict[str, Any] = {"assets": [schema.to_dict(a) for a in assets]}
        if graph is not None:
            out["commap"] = graph
        json.dump(out, sys.stdout, ensure_ascii=False, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        print(table(assets))
        if graph is not None:
            flagged = graph["summary"]["flagged"]
            print(f"\n{len(assets)} assets, {graph['summary']['edges']} edges in {graph['summary']['zones']} zone(s)"
                  + (", flagged: " + ", ".join(f"{k} {v}" for k, v in flagged.items()) if flagged else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = sub.add_parser("assets", help="inventory from captures: vendor/model/firmware with evidence, roles, communication map")
    a.add_argument("pcaps", nargs="+", metavar="PCAP")
    a.add_argument("--format", choices=["table", "json"], default="table")
    a.add_argument("--org", dest="organization_id", help="enterprise id for the assets")
    a.add_argument("--zones", help="zones file (TOML or YAML: [[zones]] name, cidrs, level, kind)")
    a.add_argument("--manuf", help="OUI table (default: $QINLING_MANUF or /usr/share/wireshark/manuf)")
    a.add_argument("--no-map", dest="map", action="store_false", help="skip the communication map")
    a.set_defaults(func=cmd_assets)
