"""Fault tests: they kill, pause and restart Kafka and Elasticsearch, so they run only against services
`python -m pipeline.services up` started (the shared ones in `make test`, or an independent instance:

    export QINLING_SERVICES_DIR=/tmp/faults-svc
    python -m pipeline.services up --kafka-port 19092 --controller-port 19093 --es-port 19200
    set -a; . $QINLING_SERVICES_DIR/env; set +a
    python -m pytest -m faults tests/faults
)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import es_url, kafka_bootstrap, unique  # noqa: F401 - fixtures

__all__ = ["es_url", "kafka_bootstrap", "unique"]


@pytest.fixture
def services(kafka_bootstrap: str, es_url: str) -> Any:  # noqa: F811
    """pipeline.services, after checking that it started the Kafka and Elasticsearch under test."""
    from pipeline import services as svc

    st = svc.status()
    if st["kafka"]["address"] != kafka_bootstrap or not st["kafka"]["pid"] or st["elasticsearch"]["address"] != es_url.rstrip("/"):
        pytest.skip("fault tests kill and restart services: they need the ones `python -m pipeline.services up` started "
                    "(set QINLING_SERVICES_DIR for an independent instance)")
    return svc
