"""Minimal BER reading for GOOSE and MMS Data: tag, length, value, bounded; errors are values, never exceptions."""

from __future__ import annotations

from collections.abc import Iterator


class BerError(ValueError):
    """The bytes are not well-formed BER (`truncated` when they stop inside a TLV)."""

    def __init__(self, message: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def tlv(data: bytes, off: int, end: int) -> tuple[int, int, int]:
    """(tag byte, value start, value end) of the TLV at `off`; raises BerError."""
    if off >= end:
        raise BerError("TLV expected at end of data", truncated=True)
    tag = data[off]
    off += 1
    if tag & 0x1F == 0x1F:  # high tag number: GOOSE and MMS Data never use them
        raise BerError(f"multi-byte tag {tag:#04x} at offset {off - 1}")
    if off >= end:
        raise BerError(f"length of tag {tag:#04x} missing", truncated=True)
    ln = data[off]
    off += 1
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4:
            raise BerError(f"unsupported length form {ln:#04x} for tag {tag:#04x}")
        if off + n > end:
            raise BerError(f"length of tag {tag:#04x} cut", truncated=True)
        ln = int.from_bytes(data[off : off + n], "big")
        off += n
    if off + ln > end:
        raise BerError(f"tag {tag:#04x} declares {ln} bytes, {end - off} left", truncated=True)
    return tag, off, off + ln


def items(data: bytes, off: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Every TLV from `off` to `end`."""
    while off < end:
        tag, vs, ve = tlv(data, off, end)
        yield tag, vs, ve
        off = ve


MAX_INT_OCTETS = 8  # longer INTEGERs do not fit a 64-bit field downstream (Elasticsearch long): malformed here


def uint(data: bytes, vs: int, ve: int) -> int:
    if ve - vs > MAX_INT_OCTETS:
        raise BerError(f"integer of {ve - vs} octets")
    n = int.from_bytes(data[vs:ve], "big") if ve > vs else 0
    if n >= 1 << 63:
        raise BerError(f"unsigned integer {n} does not fit 63 bits")
    return n


def sint(data: bytes, vs: int, ve: int) -> int:
    if ve - vs > MAX_INT_OCTETS:
        raise BerError(f"integer of {ve - vs} octets")
    return int.from_bytes(data[vs:ve], "big", signed=True) if ve > vs else 0
