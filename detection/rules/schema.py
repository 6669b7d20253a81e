"""JSON Schema of a rule file (structure only; meaning is checked by the classes in `checks`)."""

from __future__ import annotations

from typing import Any

from .model import LEVELS

_FIELDS: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]
}

RULE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Qinling detection rule",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "level", "match"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]*$"},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "level": {"enum": list(LEVELS)},
        "attack": {"type": "array", "items": {"type": "string", "pattern": r"^T\d{4}(\.\d{3})?$"}, "uniqueItems": True},
        "match": {
            "anyOf": [
                {"$ref": "#/$defs/match_map"},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/match_map"}},
            ]
        },
        "threshold": {
            "type": "object",
            "additionalProperties": False,
            "required": ["count", "window"],
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "window": {"type": "string"},
                "by": _FIELDS,
                "distinct": {"type": "string", "minLength": 1},
            },
        },
        "new_terms": {
            "type": "object",
            "additionalProperties": False,
            "required": ["fields", "learn"],
            "properties": {"fields": _FIELDS, "learn": {"type": "string"}},
        },
        "suppress": {
            "type": "object",
            "additionalProperties": False,
            "required": ["window"],
            "properties": {"window": {"type": "string"}, "by": _FIELDS},
        },
        "message": {"type": "string", "minLength": 1},
        "references": {"type": "array", "items": {"type": "string"}},
        "falsepositives": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {
        "match_map": {
            "type": "object",
            "minProperties": 1,
        }
    },
}
