"""`qinling vulns import DIR` (CSAF 2.0 advisories → compact index) and `qinling vulns match PCAP...` (findings)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_INDEX = Path("var") / "vulns" / "csaf-index.json"


def cmd_import(args: argparse.Namespace) -> int:
    from detection.exceptions import DetectionError
    from detection.vulns.csaf import load_dir, load_kev

    started = time.perf_counter()
    try:
        index = load_dir(args.dir, load_kev(args.kev))
        index.save(args.index)
    except DetectionError as e:
        raise SystemExit(f"qinling: {e}") from e
    st = index.stats()
    print(f"{st['advisories']} advisories, {st['products']} products ({st['unparsed_versions']} with unreadable versions), "
          f"{st['cves']} CVEs, {st['vendors']} vendors → {args.index} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    for e in index.errors:
        print(f"warning: {e}", file=sys.stderr)
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from console.commands.assets import inventory_from_captures
    from detection.exceptions import DetectionError
    from detection.vulns.csaf import Index
    from detection.vulns.match import match_inventory

    try:
        index = Index.load(args.index)
        assets, _ = inventory_from_captures(args.pcaps, organization_id=args.organization_id, with_map=False)
    except DetectionError as e:
        raise SystemExit(f"qinling: {e}") from e
    findings = match_inventory(assets, index, include_possible=args.possible)
    if args.format == "json":
        json.dump([f.to_dict() for f in findings], sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"{'ip':15} {'status':8} {'match':6} {'cvss':>4}  {'advisory':16} product (firmware; range)")
        for f in findings:
            print(f"{f.ip:15} {f.status:8} {f.match:6} {f.max_cvss or 0:>4}  {f.advisory_id:16} {f.product[:50]} ({f.firmware}; {f.version_range})")
        print(f"{len(findings)} finding(s) on {len({f.asset_id for f in findings})} asset(s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    v = sub.add_parser("vulns", help="vulnerability advisories (CSAF 2.0): import, match against captures")
    vs = v.add_subparsers(dest="vulns_command", required=True)
    i = vs.add_parser("import", help="index a directory of CSAF 2.0 advisories")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--index", default=str(DEFAULT_INDEX), help=f"index file to write (default: {DEFAULT_INDEX})")
    i.add_argument("--kev", help="known-exploited CVEs: CISA KEV JSON or one CVE id per line")
    i.set_defaults(func=cmd_import)
    m = vs.add_parser("match", help="findings for the devices a capture shows")
    m.add_argument("pcaps", nargs="+", metavar="PCAP")
    m.add_argument("--index", default=str(DEFAULT_INDEX))
    m.add_argument("--org", dest="organization_id")
    m.add_argument("--possible", action="store_true", help="also list matches whose firmware is unknown or not comparable")
    m.add_argument("--format", choices=["table", "json"], default="table")
    m.set_defaults(func=cmd_match)
