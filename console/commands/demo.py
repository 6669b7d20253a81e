"""`qinling demo [--port N] [--host H]`: a fresh demo under var/demo/ — two enterprises, one user per role — served.

The bundled captures (pcaps/**/*.pcap) are replayed once per demo enterprise, each under its own
organization id, into a new SQLite store; the console database gets the enterprises and the users
admin, regulator, analyst, auditor, enterprise-a and enterprise-b, whose password is
$QINLING_DEMO_PASSWORD or a random one printed at start.

Event and alert ids are derived from the capture (file hash, frame), not from the organization, so
the same capture replayed for two enterprises yields the same ids and the second replay would
overwrite the first in the store. Until ids are organization-qualified upstream, the demo writes
through `TenantIds`, which prefixes each id (and the evidence ids an alert names) with the
organization id.
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
from typing import Any, Literal

import msgspec

from pipeline.schema import Asset, Event
from pipeline.store import Page, Query, Store

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = Path("var/demo")


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


class TenantIds(Store):
    """Writes through to `inner` with `organization:` in front of every event id and evidence id."""

    def __init__(self, inner: Store, organization: str) -> None:
        self.inner, self.prefix = inner, f"{organization}:"

    def _qualify(self, ev: Event) -> Event:
        info = ev.event
        if info.id and not info.id.startswith(self.prefix):
            info = msgspec.structs.replace(info, id=self.prefix + info.id)
        evidence = ev.evidence
        if evidence is not None and evidence.event_ids:
            evidence = msgspec.structs.replace(
                evidence, event_ids=[i if i.startswith(self.prefix) else self.prefix + i for i in evidence.event_ids])
        return msgspec.structs.replace(ev, event=info, evidence=evidence)

    def write(self, events: Sequence[Event]) -> None:
        self.inner.write([self._qualify(e) for e in events])

    def write_assets(self, assets: Sequence[Asset]) -> None:
        self.inner.write_assets(assets)

    def search(self, index: Literal["events", "alerts"], query: Query) -> Page[Event]:
        return self.inner.search(index, query)

    def search_assets(self, query: Query) -> Page[Asset]:
        return self.inner.search_assets(query)

    def get(self, index: Literal["events", "alerts"], doc_id: str) -> Event | None:
        return self.inner.get(index, doc_id)

    def get_many(self, index: Literal["events", "alerts"], doc_ids: Sequence[str]) -> list[Event]:
        return self.inner.get_many(index, doc_ids)

    def count_by(self, index: Any, field: str, query: Query, top: int = 10) -> list[tuple[Any, int]]:
        return self.inner.count_by(index, field, query, top)

    def histogram(self, index: Literal["events", "alerts"], query: Query, interval: Any) -> list[Any]:
        return self.inner.histogram(index, query, interval)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:  # the caller closes the real store once, after every enterprise
        self.inner.flush()


@dataclass
class Seeded:
    store_url: str
    console_db: str
    password: str
    alerts: dict[str, int] = field(default_factory=dict)  # organization id -> alerts
    seconds: float = 0.0


def captures() -> list[Path]:
    return sorted((ROOT / "pcaps").glob("**/*.pcap"))


def seed(root: Path, password: str, *, paths: Sequence[Path] | None = None, hasher: Any = None) -> Seeded:
    """Builds root/store.sqlite and root/console.sqlite from nothing (anything there before is removed)."""
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
        for ent in ENTERPRISES:
            settings = Settings(organization_id=ent.id, organization_name=ent.name, store=seeded.store_url)
            summary = replay(paths, settings, store=TenantIds(store, ent.id))
            seeded.alerts[ent.id] = summary.alerts
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
    seeded.seconds = time.monotonic() - started
    return seeded


def cmd_demo(args: argparse.Namespace) -> int:
    from console.web import serve
    from console.web.accounts import random_password

    password = os.environ.get("QINLING_DEMO_PASSWORD") or random_password()
    print(f"qinling demo: replaying {len(captures())} capture(s) for {len(ENTERPRISES)} enterprises into {args.dir}/ ...",
          file=sys.stderr, flush=True)
    seeded = seed(Path(args.dir), password)
    print(f"qinling demo: ready in {seeded.seconds:.1f} s", file=sys.stderr)
    for ent in ENTERPRISES:
        print(f"  {ent.id}  {ent.name}  {ent.city}  {ent.industry}: {seeded.alerts[ent.id]} alerts", file=sys.stderr)
    users = [u for u, _r, _d in STAFF] + [e.username for e in ENTERPRISES]
    shown = "(from $QINLING_DEMO_PASSWORD)" if os.environ.get("QINLING_DEMO_PASSWORD") else password
    print(f"  users: {', '.join(users)}   password: {shown}", file=sys.stderr)
    print(f"Console: http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    serve(seeded.store_url, host=args.host, port=args.port, language=args.language, console_db=seeded.console_db)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("demo", help="replay the bundled captures for two demo enterprises and serve the console")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=5000)
    d.add_argument("--dir", default=str(DEMO_DIR), help="where the demo store and console database go (rebuilt)")
    d.add_argument("--lang", dest="language", default="zh-CN", choices=["zh-CN", "en"])
    d.set_defaults(func=cmd_demo)
