"""Every corpus S7 capture decodes without exception; every emitted event validates against the schema;
the field table in docs/protocols/s7comm.md lists exactly the struct's fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from pipeline import schema
from pipeline.protocols.s7comm import S7comm
from pipeline.schema import Event

from .conftest import REPO, S7_TRACES


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    s = schema.json_schema()
    cls = jsonschema.validators.validator_for(s)
    return cls(s)


@pytest.mark.parametrize("rel", S7_TRACES)
def test_corpus_trace_decodes_and_validates(rel: str, decoded: Callable[[str], list[Event]], validator: jsonschema.protocols.Validator) -> None:
    events = [e for e in decoded(rel) if e.event.dataset == "s7comm"]
    assert events, f"no S7comm events in {rel}"
    # Validation is slow: the first 200 events plus one of every other message shape.
    seen: set[tuple[object, ...]] = set()
    for i, e in enumerate(events):
        s = e.s7comm
        shape = (e.event.action, e.event.outcome, e.network.is_orig if e.network else None, s and (s.protocol, s.rosctr, s.function_code, s.function_group, s.subfunction_code, s.opcode, bool(s.items)))
        if i >= 200 and shape in seen:
            continue
        seen.add(shape)
        errors = list(validator.iter_errors(schema.to_dict(e)))
        assert not errors, (rel, e.evidence, errors[0].message)
    decoder_errors = [e.anomaly.message for e in events if e.anomaly is not None and (e.anomaly.message or "").startswith("decoder error")]
    assert not decoder_errors


def test_identity_from_szl(decoded: Callable[[str], list[Event]]) -> None:
    ids = [e.s7comm for e in decoded("icsnpp-s7comm/traces/s7ident.pcap") if e.s7comm is not None and (e.s7comm.module_order_number or e.s7comm.serial_number)]
    assert any(s.module_order_number == "6ES7 315-2EH14-0AB0" and s.firmware_version == "V3.2.6" for s in ids)
    assert any(s.system_name == "SNAP7-SERVER" and s.module_name == "CPU 315-2 PN/DP" and s.serial_number == "S C-C2UR28922012" for s in ids)


def test_field_table_matches_struct() -> None:
    text = (REPO / "docs" / "protocols" / "s7comm.md").read_text(encoding="utf-8")
    assert text.startswith("# S7comm event fields")
    documented = set(re.findall(r"^\| `s7comm\.([a-z_0-9]+)` \|", text, flags=re.M))
    assert documented == set(S7comm.__struct_encode_fields__)
