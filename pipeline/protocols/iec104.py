"""IEC 60870-5-104 fields (`iec104.*`): APCI (I/S/U frames) and ASDU with decoded information objects."""

from __future__ import annotations

from .base import Fields


class Iec104Time(Fields):
    """CP56Time2a (7 octets), CP24Time2a (3 octets: ms, minute) as sent; `iso` is local time as written."""

    ms: int  # milliseconds within the minute (0..59999)
    minute: int
    invalid: bool  # IV bit
    hour: int | None = None
    summer: bool | None = None  # SU bit
    day: int | None = None
    dow: int | None = None  # day of week, 1 = Monday, 0 = unused
    month: int | None = None
    year: int | None = None  # 0..99 (years since 2000)
    iso: str | None = None  # "2024-07-16T09:03:55.773" (CP56 only; not validated as a calendar date)


class Iec104Object(Fields):
    """One information object: its address and the element decoded per type id."""

    ioa: int  # information object address (3 octets)
    value: int | float | None = None  # SPI, DPI, VTI step, NVA (-1..1), SVA, IEEE float, BSI, BCR count, SCS/DCS/RCS
    value_name: str | None = None  # on/off/indeterminate (SPI, DPI, SCO, DCO), lower/higher (RCO)
    raw: int | None = None  # NVA as sent (int16), FBP/TSC test word
    quality: int | None = None  # quality octet as sent (SIQ, DIQ, QDS, QDP, SEP, BCR sequence octet)
    invalid: bool | None = None  # IV
    not_topical: bool | None = None  # NT
    substituted: bool | None = None  # SB
    blocked: bool | None = None  # BL
    overflow: bool | None = None  # OV (QDS) / CY carry (BCR)
    transient: bool | None = None  # VTI transient bit; BCR CA (counter adjusted) is `adjusted`
    adjusted: bool | None = None
    sequence: int | None = None  # BCR sequence number
    select: bool | None = None  # commands and set-points: S/E bit (True = select, False = execute)
    qualifier: int | None = None  # QU (commands), QL (set-points), QOI, QCC RQT, QRP, QPM KPA, QPA, COI, file qualifiers
    qualifier_name: str | None = None
    freeze: int | None = None  # QCC FRZ (0 read, 1 freeze, 2 freeze and reset, 3 reset)
    local_change: bool | None = None  # COI / QPM LPC bit
    not_operational: bool | None = None  # QPM POP bit
    time: Iec104Time | None = None  # time tag (CP24/CP56), clock synchronisation time
    elapsed_ms: int | None = None  # CP16 (protection events, delay acquisition)
    file_name: int | None = None  # NOF
    section: int | None = None  # NOS
    length: int | None = None  # LOF / LOS
    data: str | None = None  # hex of an element not decoded further (file segments, security types)


class Iec104(Fields):
    apci_type: str  # I | S | U
    apdu_length: int | None = None  # APCI length octet (control field + ASDU)
    send_seq: int | None = None  # I-format N(S)
    recv_seq: int | None = None  # I- and S-format N(R)
    u_function_code: int | None = None  # U-format first control octet (0x07 STARTDT act, ...)
    u_function_name: str | None = None  # startdt_act, startdt_con, stopdt_act, stopdt_con, testfr_act, testfr_con
    type_id: int | None = None  # ASDU type identification
    type_name: str | None = None  # M_SP_NA_1, C_SC_NA_1, ... (unknown_<n> otherwise)
    info_direction: str | None = None  # monitor | control | file: the standard's direction of the type id
    sq: bool | None = None  # variable structure qualifier SQ: objects are a sequence from one address
    num_objects: int | None = None  # number of objects/elements declared
    cot: int | None = None  # cause of transmission (6 bits)
    cot_name: str | None = None  # per_cyc, spont, act, actcon, inrogen, unknown_ioa, ...
    negative: bool | None = None  # P/N bit: negative confirmation
    test: bool | None = None  # T bit
    originator_address: int | None = None
    common_address: int | None = None  # ASDU (station) address, 2 octets
    ioa: int | None = None  # address of the first information object (commands carry one)
    select: bool | None = None  # commands/set-points: S/E of the first object
    objects: list[Iec104Object] | None = None
    data: str | None = None  # hex of ASDU bytes not decoded (unknown type, trailing bytes)
    request_frame: int | None = None  # on a confirmation/termination: frame of the activation it answers
