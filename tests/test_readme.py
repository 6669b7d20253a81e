"""The README's protocol tables stay in sync with the schema."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec

from pipeline import schema

REPO = Path(__file__).resolve().parents[1]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_modbus_table_lists_every_schema_field_and_no_other() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `modbus\.([a-z_]+)` \|", text, flags=re.M))
    fields = {enc for enc in schema.Modbus.__struct_encode_fields__}
    assert documented == fields, f"missing: {fields - documented}, stale: {documented - fields}"
