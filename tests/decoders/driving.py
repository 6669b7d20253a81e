"""Feeding one decoder flow numbered frames, as the engine does: shared by the decoder tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.schema import Event
from sensors.decoders.base import Direction, FrameMeta


class FlowDriver:
    """Frame n is sent n ms after T0 unless told otherwise; `close()` ends the connection a frame later."""

    def __init__(self, flow: Any, meta_at: Callable[[int, int], FrameMeta]) -> None:
        self.flow, self.meta_at = flow, meta_at
        self.frame = 0

    def send(self, data: bytes, direction: Direction, ms: int | None = None) -> list[Event]:
        self.frame += 1
        return self.flow.feed(memoryview(data), direction, self.meta_at(self.frame, self.frame if ms is None else ms))  # type: ignore[no-any-return]

    def to_server(self, data: bytes, ms: int | None = None) -> list[Event]:
        return self.send(data, Direction.TO_SERVER, ms)

    def to_client(self, data: bytes, ms: int | None = None) -> list[Event]:
        return self.send(data, Direction.TO_CLIENT, ms)

    def close(self) -> list[Event]:
        return self.flow.close(self.meta_at(self.frame + 1, self.frame + 1))  # type: ignore[no-any-return]
