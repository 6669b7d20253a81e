"""Every decoder of the sensor registry, fed random and mutated real payloads in random segments: nothing raises.

The registry is iterated, so a decoder registered later is fuzzed without touching this file.
Seeds are the payloads the bundled captures carry on the decoder's ports (tests/fuzz/targets.py).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.decoders import REGISTRY
from sensors.decoders.base import Direction
from tests.fuzz import targets
from tests.fuzz.strategies import budget, mutated

KEYS = sorted(REGISTRY)
directions = st.sampled_from([Direction.TO_SERVER, Direction.TO_CLIENT])


@pytest.mark.parametrize("key", KEYS)
@budget(120)
@given(data=st.data())
def test_random_segments(key: str, data: st.DataObject) -> None:
    chunks = data.draw(st.lists(st.tuples(st.binary(max_size=300), directions), max_size=8))
    targets.decoder(key, chunks)


@pytest.mark.parametrize("key", KEYS)
@budget(250)
@given(data=st.data())
def test_mutated_real_payloads(key: str, data: st.DataObject) -> None:
    seeds = targets.payload_seeds()[key]
    chunks = []
    for _ in range(data.draw(st.integers(1, 6))):
        payload = data.draw(mutated(seeds))
        direction = data.draw(directions)
        if REGISTRY[key].transport == "tcp" and payload:  # a stream arrives in arbitrary segments
            step = data.draw(st.integers(1, len(payload)))
            chunks += [(payload[i : i + step], direction) for i in range(0, len(payload), step)]
        else:
            chunks.append((payload, direction))
    targets.decoder(key, chunks)


@pytest.mark.parametrize("key", KEYS)
def test_real_payloads_decode_cleanly(key: str) -> None:
    """The unmutated seeds go through too (each alone, both directions): the baseline the mutations start from."""
    for payload in targets.payload_seeds()[key]:
        for direction in Direction:
            targets.decoder(key, [(payload, direction)])


def test_every_decoder_with_bundled_captures_has_real_seeds() -> None:
    """Seeds make the mutations reach past the header checks: a protocol with captures under pcaps/ must get some."""
    seeds = targets.payload_seeds()
    bundled = {p.name for p in targets.PCAPS.iterdir() if p.is_dir()}
    missing = sorted(k for k in KEYS if REGISTRY[k].name in bundled and not seeds[k] and k == REGISTRY[k].name)
    assert not missing, missing
