"""Integration tests against real Kafka and Elasticsearch (`python -m pipeline.services up`).

Addresses come from `QINLING_TEST_KAFKA` / `QINLING_TEST_ES`, else from `.cache/services/run/env`
(written by `python -m pipeline.services up`). When a service is unreachable its tests are skipped,
unless `QINLING_REQUIRE_SERVICES=1` (set by `make test`): then they fail, so a broken service
set-up can never pass as green.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# an independent instance (`QINLING_SERVICES_DIR=... python -m pipeline.services up --kafka-port ...`) writes its own
ENV_FILE = Path(os.environ["QINLING_SERVICES_DIR"]) / "env" if os.environ.get("QINLING_SERVICES_DIR") else REPO / ".cache" / "services" / "run" / "env"


def _env_file() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = ENV_FILE.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.removeprefix("export ").split("=", 1)
            out[k.strip()] = v.strip().strip("'\"")
    return out


def _address(name: str) -> str | None:
    return os.environ.get(name) or _env_file().get(name)


def _unavailable(what: str) -> None:
    if os.environ.get("QINLING_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} (QINLING_REQUIRE_SERVICES=1); start them with `python -m pipeline.services up`", pytrace=False)
    pytest.skip(what)


def _port_open(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    addr = _address("QINLING_TEST_KAFKA")
    if not addr:
        _unavailable(f"no Kafka address: set QINLING_TEST_KAFKA or run `python -m pipeline.services up kafka` (writes {ENV_FILE})")
    assert addr
    if not _port_open(addr.split(",")[0]):
        _unavailable(f"Kafka at {addr} is unreachable")
    return addr


@pytest.fixture(scope="session")
def es_url() -> str:
    url = _address("QINLING_TEST_ES")
    if not url:
        _unavailable(f"no Elasticsearch URL: set QINLING_TEST_ES or run `python -m pipeline.services up elasticsearch` (writes {ENV_FILE})")
    assert url
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/_cluster/health?wait_for_status=yellow&timeout=10s", timeout=15) as r:
            status = json.loads(r.read()).get("status")
    except (OSError, ValueError) as e:
        _unavailable(f"Elasticsearch at {url} is unreachable ({e})")
    if status not in ("yellow", "green"):
        _unavailable(f"Elasticsearch at {url} is {status}")
    return url


@pytest.fixture
def unique() -> str:
    """A short unique name for topics, groups and index prefixes, so tests never see each other's data."""
    return "it-" + uuid.uuid4().hex[:10]
