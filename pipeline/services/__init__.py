"""Real Kafka and Elasticsearch for development and integration tests, fetched from Maven Central.

No Docker, no tarballs from vendor sites: `mvn` resolves the artifacts into `<repo>/.cache/services/`
once (the second `up` works offline), then the JVMs run from there, listening on 127.0.0.1 only.

    python -m pipeline.services up [kafka] [elasticsearch]   # fetch if needed, start, wait until ready
    python -m pipeline.services status | wait | logs [svc] | down [svc] | fetch
    python -m pipeline.services kill | restart | pause | resume SVC

`up` writes `.cache/services/run/env` (shell syntax, `source`-able) with the addresses:

    QINLING_TEST_KAFKA=127.0.0.1:9092
    QINLING_TEST_ES=http://127.0.0.1:9200

Faults for integration tests: `kill SVC` (SIGKILL), `restart SVC` (same ports, data kept),
`pause SVC` / `resume SVC` (SIGSTOP / SIGCONT). A second, independent instance for tests that
kill services: `QINLING_SERVICES_DIR=/tmp/x up --kafka-port ... --controller-port ... --es-port ...`
(see `manager`).

`down` stops only the processes whose pid files `up` wrote (and checks the pid still is that JVM).
"""

from __future__ import annotations

from .manager import (
    ELASTICSEARCH,
    KAFKA,
    SERVICES,
    ServiceError,
    Settings,
    down,
    fetch,
    kill,
    logs,
    pause,
    restart,
    resume,
    signal_service,
    status,
    up,
    wait,
)

__all__ = [
    "ELASTICSEARCH",
    "KAFKA",
    "SERVICES",
    "ServiceError",
    "Settings",
    "down",
    "fetch",
    "kill",
    "logs",
    "pause",
    "restart",
    "resume",
    "signal_service",
    "status",
    "up",
    "wait",
]
