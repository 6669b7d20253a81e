"""`qinling services up|down|status|...`: the local Kafka and Elasticsearch, as `python -m pipeline.services`."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    from pipeline.services.__main__ import add_arguments, run

    p = sub.add_parser("services", help="local Kafka and Elasticsearch from Maven Central jars (up, down, status, logs, ...)")
    add_arguments(p)
    p.set_defaults(func=lambda args: run(args))
