"""Errors raised by the pipeline layer; one base class so callers can catch them together."""


class PipelineError(Exception):
    """Base of every pipeline error. Messages say what was wrong, where, and what to do."""


class BusError(PipelineError):
    """The bus could not deliver or fetch records (broker gone, topic missing, ...)."""


class StoreError(PipelineError):
    """The store could not write or query (database locked, node gone, bad query, ...)."""


class SettingsError(PipelineError):
    """A settings file or QINLING_* variable is invalid."""
