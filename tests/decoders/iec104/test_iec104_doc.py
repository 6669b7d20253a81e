"""docs/protocols/iec104.md lists every field of the `iec104` struct and no other."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.protocols.iec104 import Iec104

REPO = Path(__file__).resolve().parents[3]


def test_field_table_matches_the_struct() -> None:
    text = (REPO / "docs" / "protocols" / "iec104.md").read_text(encoding="utf-8")
    assert text.startswith("# IEC 104 event fields")
    assert "| field | type | description |" in text
    documented = set(re.findall(r"^\| `iec104\.([a-z_0-9]+)` \|", text, flags=re.M))
    assert documented == set(Iec104.__struct_encode_fields__)
