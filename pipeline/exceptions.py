"""Errors raised by the pipeline layer; one base class so callers can catch them together."""


class PipelineError(Exception):
    """Base of every pipeline error. Messages say what was wrong, where, and what to do."""


class BusError(PipelineError):
    """The bus could not deliver or fetch records (broker gone, topic missing, ...)."""


class StoreError(PipelineError):
    """The store could not write or query (database locked, node gone, bad query, ...)."""


class RejectedError(StoreError):
    """Some records of a write will never be accepted (not an encoded event, refused by the mapping).

    The others were written (durably) before this was raised. `rejected` maps each refused record's
    position in the batch to the reason; `alerts` counts the alerts among those written. A caller
    sets the refused records aside (pipeline.deadletter) instead of retrying them forever.
    """

    def __init__(self, message: str, rejected: dict[int, str], alerts: int = 0) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.alerts = alerts


class QueryError(StoreError):
    """The query itself is wrong (unknown field, bad page, bad value): the caller must change it.

    Distinct from other StoreErrors so a web console can answer 400 rather than 503.
    """


class SettingsError(PipelineError):
    """A settings file or QINLING_* variable is invalid."""
