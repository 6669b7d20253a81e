"""docs/protocols/opcua.md lists every field of the `opcua` struct, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.schema import Event

REPO = Path(__file__).resolve().parents[3]


def test_field_table_matches_schema() -> None:
    text = (REPO / "docs" / "protocols" / "opcua.md").read_text(encoding="utf-8")
    assert text.startswith("# ") and "| field | type | description |" in text
    documented = set(re.findall(r"^\| `opcua\.([a-z_0-9]+)` \|", text, flags=re.M))
    tp = Event.__annotations__["opcua"]
    from pipeline.protocols.opcua import Opcua

    assert "Opcua" in str(tp)
    assert documented == set(Opcua.__struct_encode_fields__)
