"""The capture reader (sensors/pcapfile.py) and everything behind it, fed random bytes and truncated or
bit-flipped real captures (pcap and pcapng): a clear CaptureFileError naming the file, or a full decode in
which no decoder raises; never another exception."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import targets
from tests.fuzz.strategies import budget, mutated

SEEDS = [b for _name, b in targets.capture_seeds()]
MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b")


@budget(120)
@given(st.binary(max_size=400))
def test_random_bytes(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    targets.capture(data, str(tmp_path_factory.getbasetemp()))


@budget(150)
@given(st.sampled_from(MAGICS), st.binary(max_size=400))
def test_random_bytes_behind_a_capture_magic(tmp_path_factory, magic: bytes, rest: bytes) -> None:  # type: ignore[no-untyped-def]
    targets.capture(magic + rest, str(tmp_path_factory.getbasetemp()))


@budget(400)
@given(mutated(SEEDS, max_size=2000))
def test_mutated_real_captures(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    targets.capture(data, str(tmp_path_factory.getbasetemp()))


@budget(200)
@given(st.sampled_from(SEEDS), st.data())
def test_truncated_real_captures(tmp_path_factory, seed: bytes, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    """Every cut point is a clean rejection (empty or header cut) or a decode of the complete records before it."""
    cut = data.draw(st.integers(0, len(seed)))
    header = 48 if seed[:4] == b"\x0a\x0d\x0d\x0a" else 24  # pcapng: section header + interface block
    result = targets.capture(seed[:cut], str(tmp_path_factory.getbasetemp()))
    if cut == 0:
        assert result == "rejected"
    elif cut >= header:
        assert result == "decoded"


@budget(100)
@given(st.sampled_from(SEEDS), st.data())
def test_hostile_record_headers(tmp_path_factory, seed: bytes, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    """Record/block length fields set to extremes (0, huge, past the end) in a real capture."""
    buf = bytearray(seed)
    offset = 24 if buf[:4] != b"\x0a\x0d\x0d\x0a" else data.draw(st.integers(0, max(0, len(buf) - 4)))
    value = data.draw(st.sampled_from((0, 1, 0xFFFF, 0x40000, 0x7FFFFFFF, 0xFFFFFFFF, len(buf))))
    field = data.draw(st.integers(0, 3)) * 4
    at = min(offset + field, len(buf) - 4)
    struct.pack_into("<I", buf, at, value)
    targets.capture(bytes(buf), str(tmp_path_factory.getbasetemp()))


def test_every_seed_decodes(tmp_path: Path) -> None:
    assert len(SEEDS) >= 2
    for seed in SEEDS:
        assert targets.capture(seed, str(tmp_path)) == "decoded"


# ---------------------------------------------------------------- regressions found by fuzzing


def test_pcapng_timestamp_past_year_9999_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    # Found by test_hostile_record_headers: a pcapng block with a 64-bit timestamp past 9999-12-31 made
    # datetime.fromtimestamp raise ValueError out of decode_file when the flow ended.
    from sensors.engine import DecodeReport, decode_file

    records = [r for r in targets._records(targets.PCAPS / "modbus" / "modbus_plant_attack.pcap", 12)]
    records[5] = (records[5][0], 9.3e12, records[5][2], records[5][3])  # year ~296,000
    path = tmp_path / "far-future.pcapng"
    path.write_bytes(targets.pcapng_bytes(records))
    report = DecodeReport()
    events = list(decode_file(path, report=report))
    assert report.packets == 12 and events and report.decoder_errors == 0
    assert any("frame 6: timestamp" in w and "year 9999" in w for w in report.warnings), report.warnings
    assert all(e.timestamp.year < 9999 for e in events)
