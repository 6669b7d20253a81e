"""The shared wire helpers: code names with a stable fallback, first-problem bodies."""

from __future__ import annotations

import enum

from sensors.decoders.wire import Body, name_of


class Code(str, enum.Enum):
    A = "a_code"
    B = "b_code"


def test_name_of_falls_back_to_decimal_or_fixed_width_hex() -> None:
    table = {1: "read"}
    assert name_of(table, 1) == "read"
    assert name_of(table, 7) == "unknown_7"
    assert name_of(table, 0xB2, hex_digits=4) == "unknown_0x00b2"
    assert name_of(table, 0x4A, "reserved", hex_digits=2) == "reserved_0x4a"


def test_body_keeps_the_first_problem_only() -> None:
    b = Body()
    assert (b.code, b.msg) == (None, None)
    b.bad(Code.A, "first")
    b.bad(Code.B, "second")
    assert (b.code, b.msg, b.f) == ("a_code", "first", {})
