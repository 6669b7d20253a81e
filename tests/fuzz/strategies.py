"""Hypothesis strategies that mutate real inputs: truncation, bit flips, byte overwrites, splices, insertions."""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_size: int = 600) -> bytes:
    """One of `seeds` (or random bytes when there are none) with up to 4 mutations applied."""
    if not seeds or draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=max_size))
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(("flip", "set", "cut", "insert", "splice", "delete")))
        n = len(data)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            i = draw(st.integers(0, n - 1))
            data[i] = draw(st.sampled_from((0x00, 0xFF, 0x7F, 0x80, 0x01, draw(st.integers(0, 255)))))
        elif op == "cut":
            data = data[: draw(st.integers(0, n))]
        elif op == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 16))]
        elif op == "splice" and seeds:
            other = draw(st.sampled_from(list(seeds)))
            data = data[: draw(st.integers(0, n))] + other[draw(st.integers(0, len(other))) :]
    return bytes(data)


def budget(examples: int) -> settings:
    """Settings for one fuzz test: `examples` inputs (times $QINLING_FUZZ_SCALE for a longer run), no deadline.

    QINLING_FUZZ_NO_SHRINK=1 reports a failure as found, without minimizing it (for a quick look).
    """
    scale = float(os.environ.get("QINLING_FUZZ_SCALE") or 1)
    phases = [p for p in Phase if p is not Phase.shrink or not os.environ.get("QINLING_FUZZ_NO_SHRINK")]
    return settings(max_examples=max(1, int(examples * scale)), deadline=None, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
