"""Every corpus DNP3 capture decodes without exception, and every event validates against the JSON Schema."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema

from pipeline import schema
from pipeline.protocols.dnp3 import Dnp3
from sensors.engine import decode_file

REPO = Path(__file__).resolve().parents[3]


def test_every_trace_decodes_and_validates(traces: list[tuple[str, Path]]) -> None:
    sch = schema.json_schema()
    validator = jsonschema.validators.validator_for(sch)(sch)
    seen = 0
    for name, path in traces:
        for e in decode_file(path):  # raises on an engine or decoder crash
            if e.event.dataset == "dnp3":
                assert e.anomaly is None or not (e.anomaly.message or "").startswith("decoder error"), (name, e.anomaly)
                validator.validate(schema.to_dict(e))
                seen += 1
    assert seen > 1000


def test_field_table_lists_every_field() -> None:
    doc = REPO / "docs" / "protocols" / "dnp3.md"
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# DNP3 event fields")
    documented = set(re.findall(r"^\| `dnp3\.([a-z_0-9]+)` \|", text, flags=re.M))
    assert documented == set(Dnp3.__struct_encode_fields__)
