"""One frozen settings object per process: defaults, then a TOML file, then QINLING_* variables.

Every key is documented in `docs/settings.md` (kept in sync by a test). Secrets are never logged.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .exceptions import SettingsError

SECRET_KEYS = frozenset({"secret_key"})


@dataclass(frozen=True)
class Settings:
    bus: str = "embedded"  # embedded | kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    store: str = "sqlite:///var/qinling.sqlite"  # sqlite:///PATH | http://HOST:9200
    organization_id: str = "demo"  # the enterprise this sensor or replay belongs to
    organization_name: str = ""
    observer_id: str = "sensor-1"  # this sensor
    rules_dir: str = ""  # empty: the rules/ folder beside the installed packages
    lists_file: str = ""  # named lists ($engineering_stations, ...); empty: rules/lists.yml
    language: str = "zh-CN"  # zh-CN | en
    page_size: int = 50
    secret_key: str = "dev-only-change-me"

    def redacted(self) -> dict[str, Any]:
        return {k: ("***" if k in SECRET_KEYS else v) for k, v in dataclasses.asdict(self).items()}


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
