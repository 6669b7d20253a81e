"""docs/protocols/enip.md and cip.md list every field of the Enip and Cip structs, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.protocols.enip import Cip, Enip

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("proto", "struct"), [("enip", Enip), ("cip", Cip)])
def test_field_table_matches_struct(proto: str, struct: type) -> None:
    doc = REPO / "docs" / "protocols" / f"{proto}.md"
    text = doc.read_text(encoding="utf-8")
    assert re.search(r"^# .+ event fields$", text, flags=re.M)
    documented = set(re.findall(rf"^\| `{proto}\.([a-z_0-9]+)` \|", text, flags=re.M))
    fields = set(struct.__struct_encode_fields__)  # type: ignore[attr-defined]
    assert documented == fields, f"{doc}: missing {sorted(fields - documented)}, stale {sorted(documented - fields)}"
