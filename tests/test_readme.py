"""The README opens with the two commands; each protocol's field table stays in sync with the schema."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec
import pytest

from pipeline import schema

REPO = Path(__file__).resolve().parents[1]
ENVELOPE = {"@timestamp", "event", "message", "source", "destination", "network", "observer", "organization",
            "evidence", "related", "rule", "threat", "anomaly", "labels"}


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def _protocol_fields() -> dict[str, type]:
    hints = typing.get_type_hints(schema.Event)
    out = {}
    for name, enc in zip(schema.Event.__struct_fields__, schema.Event.__struct_encode_fields__):
        if enc in ENVELOPE:
            continue
        (tp,) = [a for a in typing.get_args(hints[name]) if a is not type(None)]
        out[enc] = tp
    return out


def test_every_protocol_struct_is_nested_in_the_event() -> None:
    assert {"modbus", "dnp3", "s7comm", "iec104", "enip", "cip", "opcua", "bacnet", "mqtt"} <= set(_protocol_fields())


@pytest.mark.parametrize("proto", sorted(_protocol_fields()))
def test_protocol_table_lists_every_schema_field_and_no_other(proto: str) -> None:
    doc = REPO / "docs" / "protocols" / f"{proto}.md"
    text = doc.read_text(encoding="utf-8")
    documented = set(re.findall(rf"^\| `{proto}\.([a-z_0-9]+)` \|", text, flags=re.M))
    tp = _protocol_fields()[proto]
    assert issubclass(tp, msgspec.Struct)
    fields = set(tp.__struct_encode_fields__)
    assert documented == fields, f"{doc}: missing {sorted(fields - documented)}, stale {sorted(documented - fields)}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"docs/protocols/{proto}.md" in readme
