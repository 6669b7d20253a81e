"""`qinling users add|list|passwd|disable|enable|token|enterprise`: console accounts from the command line.

Every change is written to the console's audit log with the actor `cli:<OS user>`. Passwords are read
from the terminal (twice), or one line from stdin with --password-stdin; they are never arguments,
so they stay out of shell history and `ps`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from console.web.accounts import ROLES, AccountError, ConsoleDB, default_path


def db_path(args: argparse.Namespace) -> str:
    """--db, else $QINLING_CONSOLE_DB, else beside the store the settings name."""
    if getattr(args, "db", None):
        return str(args.db)
    if os.environ.get("QINLING_CONSOLE_DB"):
        return os.environ["QINLING_CONSOLE_DB"]
    from pipeline.settings import load

    return default_path(load(getattr(args, "config", None)).store)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AccountError("no terminal to ask for the password: pipe it in with --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    try:
        with ConsoleDB(db_path(args)) as db:
            return int(_run(db, args))
    except AccountError as e:
        print(f"qinling users: {e}", file=sys.stderr)
        return 2


def _run(db: ConsoleDB, args: argparse.Namespace) -> int:
    actor = _actor()
    action = args.users_command
    if action == "list":
        users = db.users()
        print(f"{'username':<20} {'role':<11} {'enterprise':<16} {'status':<9} created")
        for u in users:
            print(f"{u.username:<20} {u.role:<11} {u.organization or '-':<16} "
                  f"{'disabled' if u.disabled else 'active':<9} {u.created_at}")
        return 0
    if action == "enterprise":
        ent = db.put_enterprise(args.id, args.name, args.city, args.industry)
        db.audit(actor, "enterprise.put", ent.id, detail=ent.to_dict())
        print(f"enterprise {ent.id}: {ent.name} ({ent.city}, {ent.industry})")
        return 0
    if action == "add":
        try:
            user = db.add_user(args.username, _password(args), args.role, args.org, args.name or "")
        except AccountError as e:
            db.audit(actor, "user.add", args.username, outcome="failure", detail={"reason": str(e)})
            raise
        db.audit(actor, "user.add", user.username, detail={"role": user.role, "organization": user.organization})
        print(f"added {user.username} ({user.role}{', ' + user.organization if user.organization else ''})")
        return 0
    if action == "passwd":
        user = db.set_password(args.username, _password(args))
        db.audit(actor, "user.passwd", user.username)
        print(f"password of {user.username} changed; their sessions are closed")
        return 0
    if action in ("disable", "enable"):
        user = db.set_disabled(args.username, action == "disable")
        db.audit(actor, f"user.{action}", user.username)
        print(f"{user.username} {action}d" + ("; their sessions and API tokens are revoked" if action == "disable" else ""))
        return 0
    if action == "token":
        token = db.create_token(args.username, args.label or "")
        db.audit(actor, "token.create", args.username, detail={"label": args.label or ""})
        print(token)
        print("send it as 'Authorization: Bearer <token>'; it is shown only this once", file=sys.stderr)
        return 0
    raise AssertionError(action)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    u = sub.add_parser("users", help="console accounts: add, list, passwd, disable, enable, token, enterprise")
    u.add_argument("--db", help="console database (default: $QINLING_CONSOLE_DB, else beside the SQLite store)")
    us = u.add_subparsers(dest="users_command", required=True)

    add = us.add_parser("add", help="add a user (password asked twice, or --password-stdin)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--org", help="the enterprise id an enterprise user is bound to")
    add.add_argument("--name", help="display name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")

    us.add_parser("list", help="list users")

    pw = us.add_parser("passwd", help="set a user's password (closes their sessions)")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")

    for name, what in (("disable", "disable a user (ends their sessions, revokes their tokens)"), ("enable", "enable a user")):
        p = us.add_parser(name, help=what)
        p.add_argument("username")

    tok = us.add_parser("token", help="create an API token for a user (printed once)")
    tok.add_argument("username")
    tok.add_argument("--label", help="what the token is for, e.g. 'soc-export script'")

    ent = us.add_parser("enterprise", help="add or update an enterprise (id, name, city, industry)")
    ent.add_argument("id", help="the organization.id its events carry")
    ent.add_argument("--name", required=True)
    ent.add_argument("--city", default="", help="prefecture-level city, e.g. 榆林市")
    ent.add_argument("--industry", default="", help="e.g. petrochemical, water, power, manufacturing")

    u.set_defaults(func=cmd_users)
