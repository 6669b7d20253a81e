"""docs/protocols/bacnet.md lists every field of the `bacnet` struct, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.schema import Event

REPO = Path(__file__).resolve().parents[3]


def test_field_table_matches_schema() -> None:
    text = (REPO / "docs" / "protocols" / "bacnet.md").read_text(encoding="utf-8")
    assert text.startswith("# ") and "| field | type | description |" in text
    documented = set(re.findall(r"^\| `bacnet\.([a-z_0-9]+)` \|", text, flags=re.M))
    tp = Event.__annotations__["bacnet"]
    from pipeline.protocols.bacnet import Bacnet

    assert "Bacnet" in str(tp)
    assert documented == set(Bacnet.__struct_encode_fields__)
