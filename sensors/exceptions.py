"""Errors raised by the sensor layer; one base class so callers can catch them together."""

from __future__ import annotations


class SensorError(Exception):
    """Base of every sensor error. Messages say what was wrong, where, and what to do."""


class CaptureFileError(SensorError):
    """A capture file cannot be read: missing, unreadable, or not pcap/pcapng."""

    def __init__(self, path: str, problem: str, hint: str) -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        super().__init__(f"{path}: {problem}. {hint}")


class CaptureInterfaceError(SensorError):
    """A live interface cannot be sniffed: unknown name, no permission, or a bad BPF filter."""


class TsharkError(SensorError):
    """The tshark engine cannot run: tshark missing or failing before it read the capture."""

    def __init__(self, problem: str, hint: str) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem}. {hint}")
