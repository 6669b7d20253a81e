"""`qinling demo [--port N] [--host H]`: a fresh demo under var/demo/ — two enterprises, one user per role — served.

The bundled captures (pcaps/<protocol>/*.pcap) are the testbed's plants; each demo enterprise runs a
plausible set of them (PLANTS: the petrochemical site PROFINET, S7, Modbus, OPC UA and Omron FINS, the water utility
IEC 104, DNP3, EtherNet/IP, BACnet, MQTT and its substation's GOOSE and MMS), replayed under its own organization id into a new
SQLite store. The testbed plants all use 10.10.1.x, so within one enterprise each plant after the first is
replayed on its own subnet (10.11.x.y, 10.12.x.y, ...: the sensor's address remap), and every asset is one
device with one identity; the console database gets the enterprises and the users
admin, regulator, analyst, auditor, enterprise-a and enterprise-b, whose password is
$QINLING_DEMO_PASSWORD or a random one printed at start.
Event and alert ids include the organization, so the two enterprises' copies never collide.

When the shared CSAF advisories are present (../shared/data/csaf-ics beside the repository, or
``--csaf DIR``), they are imported into <dir>/csaf-index.json and the console serves its 漏洞 findings
from that index; without them the demo starts all the same, with no findings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = Path("var/demo")
CSAF_DIR = ROOT.parent / "shared" / "data" / "csaf-ics"


@dataclass(frozen=True)
class DemoEnterprise:
    id: str
    name: str
    city: str
    industry: str
    username: str


ENTERPRISES = (
    DemoEnterprise("ent-a", "某石化有限公司", "榆林市", "petrochemical", "enterprise-a"),
    DemoEnterprise("ent-b", "某水务集团有限公司", "宝鸡市", "water", "enterprise-b"),
)
STAFF = (("admin", "admin", "系统管理员"), ("regulator", "regulator", "省工信厅监管人员"),
         ("analyst", "analyst", "安全分析员"), ("auditor", "auditor", "安全审计员"))


@dataclass
class Seeded:
    store_url: str
    console_db: str
    password: str
    alerts: dict[str, int] = field(default_factory=dict)  # organization id -> alerts
    seconds: float = 0.0
    csaf_index: str | None = None  # None: no advisories were found to import
    advisories: int = 0
    findings: dict[str, int] = field(default_factory=dict)  # organization id -> "affected" findings


#: enterprise id -> the testbed plants (pcaps/<protocol>/) it runs, the first on the recorded 10.10 subnet; a
#: plant directory not named here goes to the enterprise with the fewest plants. PROFINET comes first: its
#: DCP answers carry their IPv4 address in the payload, which the remap does not rewrite.
PLANTS: dict[str, tuple[str, ...]] = {
    "ent-a": ("profinet", "s7comm", "modbus", "opcua", "fins"),
    "ent-b": ("iec104", "dnp3", "enip", "bacnet", "mqtt", "goose", "mms"),
}
TESTBED_PREFIX = "10.10"  # the /16 every testbed plant uses


def captures() -> list[Path]:
    return sorted((ROOT / "pcaps").glob("**/*.pcap"))


def plan(paths: Sequence[Path]) -> dict[str, list[tuple[Path, dict[str, str] | None]]]:
    """enterprise id -> its captures, each with the address remap it is replayed with (None: as recorded).
    Captures of one plant directory share a subnet; the n-th plant of an enterprise moves 10.10 to 10.(10+n).
    An enterprise none of whose plants is among `paths` (a seed from a few captures) replays all of them."""
    by_dir: dict[str, list[Path]] = {}
    for p in sorted(paths):
        by_dir.setdefault(p.parent.name, []).append(p)
    owner = {d: ent for ent, dirs in PLANTS.items() for d in dirs}
    plants: dict[str, list[str]] = {e.id: [] for e in ENTERPRISES}
    for d in sorted(by_dir, key=lambda d: (d not in owner, d)):
        ent = owner.get(d) if owner.get(d) in plants else min(plants, key=lambda e: (len(plants[e]), e))
        plants[ent].append(d)
    out: dict[str, list[tuple[Path, dict[str, str] | None]]] = {}
    for ent, dirs in plants.items():
        if not dirs:
            dirs.extend(sorted(by_dir))
        dirs.sort(key=lambda d: PLANTS.get(ent, ()).index(d) if d in PLANTS.get(ent, ()) else len(PLANTS.get(ent, ())))
        out[ent] = [(p, {TESTBED_PREFIX: f"10.{10 + n}"} if n else None) for n, d in enumerate(dirs) for p in by_dir[d]]
    return out


def seed_csaf(seeded: Seeded, root: Path, csaf_dir: Path | None) -> None:
    """Imports the CSAF advisories into root/csaf-index.json and counts each enterprise's findings."""
    from detection.vulns.csaf import load_dir
    from detection.vulns.match import match_inventory
    from pipeline.store import Query
    from pipeline.store.sqlite import SQLiteStore

    if csaf_dir is None or not csaf_dir.is_dir():
        return
    index = load_dir(csaf_dir)
    path = root / "csaf-index.json"
    index.save(path)
    seeded.csaf_index, seeded.advisories = str(path), int(index.stats()["advisories"])
    with SQLiteStore(root / "store.sqlite") as store:
        for ent in ENTERPRISES:
            assets = store.search_assets(Query(organization=ent.id, sort="last_seen", size=5000)).items
            seeded.findings[ent.id] = sum(1 for f in match_inventory(assets, index) if f.status == "affected")


def seed(root: Path, password: str, *, paths: Sequence[Path] | None = None, hasher: Any = None,
         csaf_dir: Path | None = None) -> Seeded:
    """Builds root/store.sqlite and root/console.sqlite from nothing (anything there before is removed);
    with `csaf_dir`, also root/csaf-index.json (see seed_csaf)."""
    from console.jobs import replay
    from console.web.accounts import ConsoleDB
    from pipeline.settings import Settings
    from pipeline.store.sqlite import SQLiteStore

    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    store_path, console_path = root / "store.sqlite", root / "console.sqlite"
    paths = list(paths if paths is not None else captures())
    if not paths:
        raise SystemExit(f"qinling demo: no captures under {ROOT / 'pcaps'}")
    seeded = Seeded(f"sqlite:///{store_path}", str(console_path), password)
    store = SQLiteStore(store_path)
    try:
        for ent, assigned in plan(paths).items():
            info = next(e for e in ENTERPRISES if e.id == ent)
            settings = Settings(organization_id=ent, organization_name=info.name, store=seeded.store_url)
            summary = replay([p for p, _ in assigned], settings, store=store,
                             remap={str(p): m for p, m in assigned if m})
            seeded.alerts[ent] = summary.alerts
        store.flush()
    finally:
        store.close()
    with ConsoleDB(console_path, hasher=hasher) as db:
        for ent in ENTERPRISES:
            db.put_enterprise(ent.id, ent.name, ent.city, ent.industry)
        for username, role, display in STAFF:
            db.add_user(username, password, role, display_name=display)
        for ent in ENTERPRISES:
            db.add_user(ent.username, password, "enterprise", ent.id, display_name=ent.name)
        db.audit("cli:demo", "demo.seed", str(root), detail={"alerts": seeded.alerts})
    seed_csaf(seeded, root, csaf_dir)
    seeded.seconds = time.monotonic() - started
    return seeded


def cmd_demo(args: argparse.Namespace) -> int:
    from console.web import serve
    from console.web.accounts import random_password

    password = os.environ.get("QINLING_DEMO_PASSWORD") or random_password()
    print(f"qinling demo: replaying {len(captures())} capture(s) for {len(ENTERPRISES)} enterprises into {args.dir}/ ...",
          file=sys.stderr, flush=True)
    csaf_dir = Path(args.csaf) if args.csaf else None
    seeded = seed(Path(args.dir), password, csaf_dir=csaf_dir)
    print(f"qinling demo: ready in {seeded.seconds:.1f} s", file=sys.stderr)
    for ent in ENTERPRISES:
        found = f", {seeded.findings[ent.id]} vulnerability findings" if seeded.csaf_index else ""
        print(f"  {ent.id}  {ent.name}  {ent.city}  {ent.industry}: {seeded.alerts[ent.id]} alerts{found}", file=sys.stderr)
    if seeded.csaf_index:
        print(f"  CSAF: {seeded.advisories} advisories from {csaf_dir} -> {seeded.csaf_index}", file=sys.stderr)
    else:
        print(f"  CSAF: no advisories at {csaf_dir or '(none given)'}: no vulnerability findings", file=sys.stderr)
    users = [u for u, _r, _d in STAFF] + [e.username for e in ENTERPRISES]
    shown = "(from $QINLING_DEMO_PASSWORD)" if os.environ.get("QINLING_DEMO_PASSWORD") else password
    print(f"  users: {', '.join(users)}   password: {shown}", file=sys.stderr)
    print(f"Console: http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    serve(seeded.store_url, host=args.host, port=args.port, language=args.language, console_db=seeded.console_db,
          csaf_index=seeded.csaf_index)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("demo", help="replay the bundled captures for two demo enterprises and serve the console")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=5000)
    d.add_argument("--dir", default=str(DEMO_DIR), help="where the demo store and console database go (rebuilt)")
    d.add_argument("--lang", dest="language", default="zh-CN", choices=["zh-CN", "en"])
    d.add_argument("--csaf", default=str(CSAF_DIR) if CSAF_DIR.is_dir() else None, metavar="DIR",
                   help=f"CSAF 2.0 advisories to match the demo's inventory against (default: {CSAF_DIR}, when present)")
    d.set_defaults(func=cmd_demo)
