"""IEC 61850-8-1 GOOSE fields (`goose.*`): the Ethernet header, the goosePdu and the publisher's sequence state."""

from __future__ import annotations

from .base import Fields


class GooseValue(Fields):
    """One MMS Data element of allData; structures and arrays are followed by their members (flat, pre-order)."""

    index: str  # position: "3" = fourth data set member, "3.0" = first member of that structure
    type: str  # boolean, bit_string, integer, unsigned, float, octet_string, visible_string, utc_time, binary_time, bcd, mms_string, structure, array, unknown_<tag>
    value: bool | int | float | str | None = None  # bit strings and octet strings as hex, utc_time as ISO 8601
    count: int | None = None  # structure/array: number of members


class Goose(Fields):
    appid: int
    parse_status: str  # ok | partial | failed
    length: int | None = None  # APPID..end as declared in the header
    reserved1: int | None = None
    reserved2: int | None = None
    simulation_bit: bool | None = None  # Reserved1 bit 15 (Edition 2: the frame is simulated)
    gocb_ref: str | None = None
    time_allowed_to_live: int | None = None  # ms
    dat_set: str | None = None
    go_id: str | None = None
    t: str | None = None  # UtcTime of the last state change, ISO 8601 UTC
    t_quality: int | None = None  # UtcTime quality octet
    st_num: int | None = None
    sq_num: int | None = None
    simulation: bool | None = None  # the PDU's test (Edition 1) / simulation (Edition 2) flag
    conf_rev: int | None = None
    nds_com: bool | None = None  # needs commissioning
    num_dat_set_entries: int | None = None
    all_data: list[GooseValue] | None = None
    all_data_hash: str | None = None  # SHA-256 of the allData TLV (as ICSNPP logs it)
    security: str | None = None  # hex of the optional security field
    parse_error: str | None = None  # truncated_packet, malformed_asn1, missing_required_field, missing_all_data, unsupported_tlv
    sequence: str | None = None  # first, retransmission, state_change, st_jump, st_rollback, sq_gap, sq_rollback, same_st_data_changed, restart, publisher_changed
    previous_st_num: int | None = None
    previous_sq_num: int | None = None
