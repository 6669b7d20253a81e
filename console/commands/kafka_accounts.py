"""`qinling kafka-accounts add|remove|show ORG`: per-enterprise sensor accounts on a SASL/SCRAM Kafka.

Run with the province's privileged Kafka settings (`bus`, `kafka_security_protocol`,
`kafka_sasl_*` of a super user or of a user allowed to alter SCRAM credentials and ACLs). `add`
prints the settings file the enterprise's sensor needs (its password appears only there).
"""

from __future__ import annotations

import argparse
import sys


def _admin(args: argparse.Namespace) -> tuple[str, dict[str, object]]:
    from pipeline.settings import load

    settings = load(getattr(args, "config", None), bus=args.bus)
    if not settings.uses_kafka:
        raise SystemExit("qinling: kafka-accounts needs a Kafka bus: --bus kafka://HOST:PORT or `bus` in the settings")
    if not settings.kafka_security_protocol.upper().startswith("SASL"):
        raise SystemExit("qinling: kafka-accounts needs a SASL connection (kafka_security_protocol = SASL_PLAINTEXT or SASL_SSL) "
                         "with an administrator's kafka_sasl_username / kafka_sasl_password")
    return settings.kafka_servers, settings.kafka_security()


def cmd_add(args: argparse.Namespace) -> int:
    from pipeline.exceptions import BusError
    from pipeline.kafka_acl import provision_sensor

    bootstrap, security = _admin(args)
    password = None
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().strip() or None
    try:
        account = provision_sensor(bootstrap, security, args.org, password=password, partitions=args.partitions)
    except BusError as e:
        raise SystemExit(f"qinling: {e}") from e
    print(f"# settings of {args.org}'s sensor: may write {account.topic} only, read nothing", file=sys.stderr)
    sys.stdout.write(account.settings_toml())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from pipeline.exceptions import BusError
    from pipeline.kafka_acl import revoke_sensor

    bootstrap, security = _admin(args)
    try:
        n = revoke_sensor(bootstrap, security, args.org)
    except BusError as e:
        raise SystemExit(f"qinling: {e}") from e
    print(f"{args.org}: {n} ACL(s) and the SCRAM credential removed; the topic and its events stay", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipeline.exceptions import BusError
    from pipeline.kafka_acl import sensor_acls, sensor_user

    bootstrap, security = _admin(args)
    try:
        acls = sensor_acls(bootstrap, security, args.org)
    except BusError as e:
        raise SystemExit(f"qinling: {e}") from e
    print(f"{sensor_user(args.org)}:")
    for op, perm, topic in acls:
        print(f"  {perm:5} {op:9} topic {topic}")
    if not acls:
        print("  (no ACLs: the account can do nothing)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    k = sub.add_parser("kafka-accounts", help="per-enterprise sensor accounts on a SASL/SCRAM Kafka with ACLs")
    ks = k.add_subparsers(dest="kafka_accounts_command", required=True)
    for name, func, text in (("add", cmd_add, "create or update ORG's sensor account, topic and ACLs; prints its settings"),
                             ("remove", cmd_remove, "delete ORG's sensor ACLs and credential"),
                             ("show", cmd_show, "list the ACLs ORG's sensor holds")):
        p = ks.add_parser(name, help=text)
        p.add_argument("org", metavar="ORG", help="enterprise id (A-Z a-z 0-9 _ -)")
        p.add_argument("--bus", help="kafka://HOST:PORT (default: settings)")
        p.add_argument("--config", help="settings TOML file (default: $QINLING_CONFIG)")
        if name == "add":
            p.add_argument("--password-file", help="read the new password from this file (default: a random one)")
            p.add_argument("--partitions", type=int, default=6, help="partitions of the topic if it is created")
        p.set_defaults(func=func)
