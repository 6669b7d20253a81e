"""Every emitted event and alert validates against the JSON Schema generated from pipeline/schema.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from console.jobs import replay
from pipeline import schema
from pipeline.bus import EmbeddedBus
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def _validator() -> jsonschema.protocols.Validator:
    sch = schema.json_schema()
    cls = jsonschema.validators.validator_for(sch)
    cls.check_schema(sch)
    return cls(sch)


def test_schema_forbids_unknown_fields_everywhere() -> None:
    sch = schema.json_schema()
    objects = [d for d in sch["$defs"].values() if d.get("type") == "object"]
    assert objects and all(d.get("additionalProperties") is False for d in objects)


def test_unknown_field_is_rejected_on_decode_and_by_the_schema() -> None:
    good = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"kind": "event", "dataset": "modbus"}}
    schema.decode_event(json.dumps(good))
    bad = {**good, "event": {**good["event"], "severty": 3}}
    with pytest.raises(Exception):
        schema.decode_event(json.dumps(bad))
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(bad)


def test_every_field_path_is_reachable_by_getter() -> None:
    for path in schema.known_fields():
        schema.getter(path)
    with pytest.raises(KeyError):
        schema.getter("modbus.no_such_field")


def test_emitted_events_and_alerts_validate() -> None:
    captures = sorted((REPO / "pcaps").glob("**/*.pcap*"))
    if not captures:
        pytest.skip("no bundled captures")
    alerts, events = io.BytesIO(), io.BytesIO()
    replay(captures, Settings(organization_id="test"), out=alerts, events_out=events, bus=EmbeddedBus())
    v = _validator()
    lines = [l for l in (events.getvalue() + alerts.getvalue()).splitlines() if l]
    kinds = set()
    for line in lines:
        doc = json.loads(line)
        v.validate(doc)
        kinds.add((doc["event"]["kind"], doc["event"]["dataset"]))
    assert {("event", "modbus"), ("event", "flow"), ("alert", "qinling.alert")} <= kinds
