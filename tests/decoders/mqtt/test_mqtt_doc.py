"""docs/protocols/mqtt.md lists every field of the `mqtt` struct and no other."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.protocols.mqtt import Mqtt

REPO = Path(__file__).resolve().parents[3]


def test_field_table_matches_the_struct() -> None:
    text = (REPO / "docs" / "protocols" / "mqtt.md").read_text(encoding="utf-8")
    assert text.startswith("# MQTT event fields")
    assert "| field | type | description |" in text
    documented = set(re.findall(r"^\| `mqtt\.([a-z_0-9]+)` \|", text, flags=re.M))
    assert documented == set(Mqtt.__struct_encode_fields__)
