"""Per-enterprise sensor accounts on a SASL/SCRAM Kafka with ACLs.

Each enterprise's sensor gets a SCRAM-SHA-512 user `sensor.<org>` that may WRITE (and DESCRIBE)
exactly one topic, `ent.<org>.events`, and nothing else: it cannot read any topic (its own
included), join a consumer group, create topics or touch another enterprise's topic. The
province's detect and index workers run as a privileged account and consume every enterprise's
topic by pattern (`settings.kafka_events_pattern`, e.g. ``^ent\\..+\\.events$``).

    account = provision_sensor("127.0.0.1:9094", admin_security, "ent-a")
    print(account.settings_toml())   # what the enterprise puts in its sensor's settings file

Kafka calls stay behind this module and `pipeline.kafka_bus` (kafka-python 3).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import BusError

TOPIC_PREFIX = "ent."
USER_PREFIX = "sensor."
MECHANISM = "SCRAM-SHA-512"
# Kafka topic names allow [a-zA-Z0-9._-]; a dot would make one enterprise's topic a prefix-match of another's
_ORG = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# what a sensor may do on its own topic: produce, and read the topic's metadata to find partition leaders
SENSOR_OPERATIONS = ("WRITE", "DESCRIBE")
EVENTS_PATTERN = r"^ent\.[A-Za-z0-9_-]+\.events$"


def _kafka() -> Any:
    """kafka-python's admin API, imported when an account is touched (topic names need no Kafka client)."""
    try:
        from . import kafka_bus  # noqa: F401 - imports kafka-python with its deprecation warnings silenced
        import kafka.admin as admin
        import kafka.admin._users as users
        import kafka.errors as errors
    except ImportError as e:  # pragma: no cover - kafka-python is an install requirement
        raise BusError("Kafka ACLs need kafka-python: pip install 'kafka-python>=3,<4'") from e
    return admin, users, errors


_TOPIC_ORG = re.compile(r"^ent\.([A-Za-z0-9_-]{1,100})\.events$")


def topic_organization(topic: str) -> str | None:
    """The enterprise whose sensor account alone may write `topic` (None for the province's own topics).

    A worker reading enterprise topics must not trust an event's `organization.id` more than the
    topic it came from: a sensor could stamp another enterprise's id on events in its own topic."""
    m = _TOPIC_ORG.match(topic)
    return m.group(1) if m else None


def forged(topic: str, ev: Any) -> bool:
    """True when `ev` came from an enterprise's topic but names another organization (or none)."""
    org = topic_organization(topic)
    if org is None:
        return False
    return (ev.organization.id if ev.organization is not None else None) != org


def check_org(org: str) -> str:
    if not _ORG.fullmatch(org or ""):
        raise BusError(f"organization id {org!r} cannot name a Kafka topic: use 1-100 of A-Z a-z 0-9 _ -")
    return org


def sensor_topic_prefix(org: str) -> str:
    """The `kafka_topic_prefix` of `org`'s sensor: its events go to `<prefix>events`."""
    return f"{TOPIC_PREFIX}{check_org(org)}."


def sensor_topic(org: str) -> str:
    return sensor_topic_prefix(org) + "events"


def sensor_user(org: str) -> str:
    return USER_PREFIX + check_org(org)


@dataclass(frozen=True)
class SensorAccount:
    organization: str
    username: str
    password: str
    topic: str
    bootstrap: str

    def settings(self) -> dict[str, Any]:
        """The sensor's Qinling settings (docs/settings.md names)."""
        return {
            "organization_id": self.organization,
            "bus": f"kafka://{self.bootstrap}",
            "kafka_topic_prefix": sensor_topic_prefix(self.organization),
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_sasl_username": self.username,
            "kafka_sasl_password": self.password,
        }

    def settings_toml(self) -> str:
        return "".join(f'{k} = "{v}"\n' for k, v in self.settings().items())

    def environment(self) -> dict[str, str]:
        return {f"QINLING_{k.upper()}": str(v) for k, v in self.settings().items()}


def _admin(bootstrap: str, security: Mapping[str, Any]) -> Any:
    admin, _users, errors = _kafka()
    try:
        return admin.KafkaAdminClient(bootstrap_servers=bootstrap, client_id="qinling-acl", request_timeout_ms=15000, **security)
    except errors.KafkaError as e:
        raise BusError(f"could not open a Kafka admin session at {bootstrap} as {security.get('sasl_plain_username', '?')!r}: {e}") from e


def _acls(org: str) -> list[Any]:
    a, _users, _errors = _kafka()
    principal = f"User:{sensor_user(org)}"
    pattern = a.ResourcePattern(a.ResourceType.TOPIC, sensor_topic(org), a.ACLResourcePatternType.LITERAL)
    return [a.ACL(principal, "*", a.ACLOperation[op], a.ACLPermissionType.ALLOW, pattern) for op in SENSOR_OPERATIONS]


def _filter(org: str) -> Any:
    a, _users, _errors = _kafka()
    return a.ACLFilter(f"User:{sensor_user(org)}", None, a.ACLOperation.ANY, a.ACLPermissionType.ANY,
                       a.ResourcePatternFilter(a.ResourceType.ANY, None, a.ACLResourcePatternType.ANY))


def provision_sensor(bootstrap: str, admin_security: Mapping[str, Any], org: str, *, password: str | None = None,
                     partitions: int = 6, replication_factor: int = 1) -> SensorAccount:
    """Create (or update) `org`'s sensor account, its topic and its ACLs. Idempotent; a new password replaces the old."""
    topic, user = sensor_topic(org), sensor_user(org)
    password = password or secrets.token_urlsafe(24)
    a, users, errors = _kafka()
    admin = _admin(bootstrap, admin_security)
    try:
        if topic not in set(admin.list_topics()):
            try:
                admin.create_topics([a.NewTopic(name=topic, num_partitions=partitions, replication_factor=replication_factor)], timeout_ms=30000)
            except errors.TopicAlreadyExistsError:
                pass
        errors = admin.alter_user_scram_credentials([users.UserScramCredentialUpsertion(user, users.ScramMechanism.SCRAM_SHA_512, password)])
        if errors.get(user):
            raise BusError(f"could not set the SCRAM credential of {user!r}: {errors[user]}")
        result = admin.create_acls(_acls(org))
        if result["failed"]:
            raise BusError(f"could not create the ACLs of {user!r}: {result['failed']}")
    except errors.KafkaError as e:
        raise BusError(f"could not provision the sensor account of {org!r} on {bootstrap}: {e}") from e
    finally:
        admin.close()
    return SensorAccount(org, user, password, topic, bootstrap)


def revoke_sensor(bootstrap: str, admin_security: Mapping[str, Any], org: str) -> int:
    """Delete `org`'s sensor ACLs and SCRAM credential (the topic and its events stay). Returns ACLs removed."""
    user = sensor_user(org)
    _a, users, errors = _kafka()
    admin = _admin(bootstrap, admin_security)
    try:
        removed = sum(len(matched) for _f, matched, _err in admin.delete_acls([_filter(org)]))
        admin.alter_user_scram_credentials([users.UserScramCredentialDeletion(user, users.ScramMechanism.SCRAM_SHA_512)])
        return removed
    except errors.KafkaError as e:
        raise BusError(f"could not revoke the sensor account of {org!r} on {bootstrap}: {e}") from e
    finally:
        admin.close()


def sensor_acls(bootstrap: str, admin_security: Mapping[str, Any], org: str) -> list[tuple[str, str, str]]:
    """(operation, permission, topic) of every ACL `org`'s sensor holds, sorted."""
    _a, _users, errors = _kafka()
    admin = _admin(bootstrap, admin_security)
    try:
        acls, _err = admin.describe_acls(_filter(org))
        return sorted((x.operation.name, x.permission_type.name, x.resource_pattern.resource_name) for x in acls)
    except errors.KafkaError as e:
        raise BusError(f"could not list the ACLs of {org!r} on {bootstrap}: {e}") from e
    finally:
        admin.close()
