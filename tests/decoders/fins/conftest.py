"""Fixtures for the FINS decoder tests: the FINS corpus traces decoded once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.schema import Event

FINS_TRACES: tuple[str, ...] = (
    "icsnpp-omron-fins/traces/omron.pcap",
    "icsnpp-omron-fins/traces/omron_fins_tcp_commands_responses.pcap",
    "icsnpp-omron-fins/traces/omron_test.pcap",
    "quickdraw-snort/traces/omron_test.pcap",
)

_DECODED: dict[str, list[Event]] = {}


@pytest.fixture(scope="session")
def decoded(corpus: Path) -> Callable[[str], list[Event]]:
    from sensors.engine import decode_file

    def get(rel: str) -> list[Event]:
        if rel not in _DECODED:
            path = corpus / rel
            if not path.is_file():
                pytest.skip(f"{path} not present")
            _DECODED[rel] = list(decode_file(path))
        return _DECODED[rel]

    return get
