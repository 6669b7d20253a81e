"""One frozen settings object per process: defaults, then a TOML file, then QINLING_* variables.

Every key is documented in `docs/settings.md` (kept in sync by a test). Secrets are never logged.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .exceptions import SettingsError

SECRET_KEYS = frozenset({"secret_key", "kafka_sasl_password", "es_api_key", "es_password"})
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_USERINFO = re.compile(r"(?<=://)[^/@]*@")


@dataclass(frozen=True)
class Settings:
    bus: str = "embedded"  # embedded | kafka://HOST:PORT[,HOST:PORT] | kafka (servers from kafka_bootstrap)
    kafka_bootstrap: str = "127.0.0.1:9092"  # used when bus is plain "kafka"
    kafka_partitions: int = 6  # partitions of topics Qinling creates (existing topics keep theirs)
    kafka_replication_factor: int = 1
    kafka_topic_prefix: str = ""  # "" -> topics events, alerts; "plant7-" -> plant7-events, plant7-alerts
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    kafka_sasl_mechanism: str = ""  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""  # PEM bundle that signed the brokers' certificates
    kafka_session_timeout_ms: int = 10000  # a dead worker's partitions move after this long
    kafka_heartbeat_interval_ms: int = 1000
    kafka_events_pattern: str = ""  # also consume every topic matching this regex, e.g. ^ent\..+\.events$ (enterprise sensors' topics)
    detect_group: str = "detect"
    index_group: str = "index"
    detect_rewind: int = 10000  # records per partition re-read (state only) when a detector takes a partition over
    store: str = "sqlite:///var/qinling.sqlite"  # sqlite:///PATH | http://HOST:9200
    es_index_prefix: str = "qinling"
    es_api_key: str = ""  # base64 "id:key" as Kibana shows it
    es_username: str = ""  # basic auth (with es_password)
    es_password: str = ""
    es_ca_certs: str = ""  # PEM bundle for https:// clusters with a private CA
    organization_id: str = "demo"  # the enterprise this sensor or replay belongs to
    organization_name: str = ""
    observer_id: str = "sensor-1"  # this sensor
    spool_dir: str = "var/spool"  # live sensor on Kafka: events wait here (per observer) while the broker is away
    spool_max_bytes: int = 1 << 30  # bound of that spool; over it the newest events are dropped and counted
    replay_decode_process: str = "auto"  # auto | on | off: replay decodes in a process of its own (auto: 2+ CPUs and 16 MiB+ of captures)
    dead_letter_dir: str = "var/dead-letter"  # records a stage will never store are kept here with the reason
    rules_dir: str = ""  # empty: the rules/ folder beside the installed packages
    lists_file: str = ""  # named lists ($engineering_stations, ...); empty: rules/lists.yml
    language: str = "zh-CN"  # zh-CN | en
    page_size: int = 50
    secret_key: str = "dev-only-change-me"

    def __post_init__(self) -> None:
        if self.bus not in ("embedded", "kafka") and not self.bus.startswith("kafka://"):
            raise SettingsError(f"setting bus: {self.bus!r}: use embedded or kafka://HOST:PORT[,HOST:PORT]")
        if self.bus.startswith("kafka://") and not self.bus.removeprefix("kafka://").strip(" ,"):
            raise SettingsError(f"setting bus: {self.bus!r} names no broker: use kafka://HOST:PORT[,HOST:PORT]")
        if self.kafka_security_protocol.upper() not in KAFKA_SECURITY_PROTOCOLS:
            raise SettingsError(
                f"setting kafka_security_protocol: {self.kafka_security_protocol!r}: use one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}"
            )
        if self.kafka_sasl_mechanism.upper() not in KAFKA_SASL_MECHANISMS:
            raise SettingsError(
                f"setting kafka_sasl_mechanism: {self.kafka_sasl_mechanism!r}: use one of {', '.join(m for m in KAFKA_SASL_MECHANISMS if m)}"
            )
        if self.replay_decode_process not in ("auto", "on", "off"):
            raise SettingsError(f"setting replay_decode_process: {self.replay_decode_process!r}: use auto, on or off")
        if self.kafka_partitions < 1:
            raise SettingsError(f"setting kafka_partitions: {self.kafka_partitions} must be >= 1")
        if bool(self.es_username) != bool(self.es_password):
            raise SettingsError("settings es_username and es_password: set both (basic auth) or neither")
        if self.kafka_events_pattern:
            if not self.kafka_events_pattern.startswith("^"):
                raise SettingsError(f"setting kafka_events_pattern: {self.kafka_events_pattern!r} must start with ^ (a regular expression over topic names)")
            try:
                re.compile(self.kafka_events_pattern)
            except re.error as e:
                raise SettingsError(f"setting kafka_events_pattern: {self.kafka_events_pattern!r} is not a regular expression: {e}") from e

    def events_topics(self) -> list[str]:
        """What the detect and index workers consume as events: the events topic, and the pattern if set."""
        return [self.topic("events"), *([self.kafka_events_pattern] if self.kafka_events_pattern else [])]

    @property
    def uses_kafka(self) -> bool:
        return self.bus != "embedded"

    @property
    def kafka_servers(self) -> str:
        """Bootstrap servers, comma-separated: from a kafka:// bus URL, else `kafka_bootstrap`."""
        if self.bus.startswith("kafka://"):
            return ",".join(x.strip() for x in self.bus.removeprefix("kafka://").split(",") if x.strip())
        return self.kafka_bootstrap

    def kafka_security(self) -> dict[str, Any]:
        """kafka-python client options for TLS / SASL (empty on PLAINTEXT)."""
        out: dict[str, Any] = {}
        proto = self.kafka_security_protocol.upper()
        if proto != "PLAINTEXT":
            out["security_protocol"] = proto
        if proto.startswith("SASL"):
            out["sasl_mechanism"] = self.kafka_sasl_mechanism.upper() or "PLAIN"
            out["sasl_plain_username"] = self.kafka_sasl_username
            out["sasl_plain_password"] = self.kafka_sasl_password
        if self.kafka_ssl_cafile and proto.endswith("SSL"):
            out["ssl_cafile"] = self.kafka_ssl_cafile
        return out

    def topic(self, name: str) -> str:
        return self.kafka_topic_prefix + name

    def redacted(self) -> dict[str, Any]:
        """Every setting, with secrets (and passwords inside URLs) replaced by ***: safe to log."""
        out: dict[str, Any] = {}
        for k, v in dataclasses.asdict(self).items():
            if k in SECRET_KEYS:
                out[k] = "***" if v else ""
            elif isinstance(v, str) and "://" in v:
                out[k] = _USERINFO.sub("***@", v)
            else:
                out[k] = v
        return out

    def __repr__(self) -> str:  # a Settings printed by accident (tracebacks, debug logs) shows no secret
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.redacted().items()) + ")"


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    try:
        if typ in (int, "int"):
            return int(raw)
        if typ in (bool, "bool"):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        return str(raw)
    except ValueError as e:
        raise SettingsError(f"setting {name}: {raw!r} is not a valid {typ}") from e


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults < TOML file (`path` or $QINLING_CONFIG) < QINLING_<KEY> variables < overrides."""
    env = os.environ if env is None else env
    known = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = path or env.get("QINLING_CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise SettingsError(f"{p}: settings file not found") from e
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"{p}: not valid TOML: {e}") from e
        section = data.get("qinling", data)
        for k, v in section.items():
            if k not in known:
                raise SettingsError(f"{p}: unknown setting {k!r}; known: {', '.join(sorted(known))}")
            values[k] = _coerce(k, v, known[k])
    for k, typ in known.items():
        var = f"QINLING_{k.upper()}"
        if var in env:
            values[k] = _coerce(var, env[var], typ)
    for k, v in overrides.items():
        if k not in known:
            raise SettingsError(f"unknown setting {k!r}")
        if v is not None:
            values[k] = v
    return Settings(**values)
