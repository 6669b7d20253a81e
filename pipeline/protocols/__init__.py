"""Protocol field structs, one module per protocol; `pipeline.schema.Event` nests each under its name.

Each module defines structs derived from `pipeline.protocols.base.Fields` (frozen, keyword-only,
unknown fields forbidden, defaults omitted when serialized), exactly like the envelope's.
"""
