"""Errors raised by the pipeline layer; one base class so callers can catch them together."""


class PipelineError(Exception):
    """Base of every pipeline error. Messages say what was wrong, where, and what to do."""


class BusError(PipelineError):
    """The bus could not deliver or fetch records (broker gone, topic missing, ...)."""


class StoreError(PipelineError):
    """The store could not write or query (database locked, node gone, bad query, ...)."""


class QueryError(StoreError):
    """The query itself is wrong (unknown field, bad page, bad value): the caller must change it.

    Distinct from other StoreErrors so a web console can answer 400 rather than 503.
    """


class SettingsError(PipelineError):
    """A settings file or QINLING_* variable is invalid."""
