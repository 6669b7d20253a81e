"""Every event the Modbus decoder emits on the corpus validates against the generated JSON Schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from pipeline import schema
from sensors.engine import decode_file
from tests.decoders.conftest import MODBUS_TRACES


def test_modbus_events_validate(corpus: Path) -> None:
    sch = schema.json_schema()
    validator = jsonschema.validators.validator_for(sch)(sch)
    seen = 0
    for name in MODBUS_TRACES:
        path = corpus / name
        if not path.is_file() or path.stat().st_size > 300_000:
            continue
        for e in decode_file(path):
            if e.event.dataset == "modbus":
                validator.validate(schema.to_dict(e))
                seen += 1
    assert seen > 100
