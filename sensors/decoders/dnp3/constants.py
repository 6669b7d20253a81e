"""DNP3 code tables: link/application function codes, IIN bits, object groups and sizes, anomalies, actions."""

from __future__ import annotations

import enum
from typing import Final

from ..wire import name_of

START: Final = b"\x05\x64"
HEADER_LEN: Final = 10  # start(2) length(1) control(1) destination(2) source(2) crc(2)
MIN_LENGTH: Final = 5  # the length byte counts control, destination, source and user data
BLOCK: Final = 16  # user data is sent in blocks of 16 bytes, each followed by its CRC
MAX_PENDING: Final = 32  # requests awaiting a response per connection (a master waits for each)
# Reassembled application fragments longer than this are dropped: 63 transport segments of at
# most 255 bytes, the bound Suricata applies (its too_long_reassembly event).
MAX_FRAGMENT: Final = 63 * 255
MAX_OBJECT_HEADERS: Final = 256  # object headers decoded per fragment; the rest is flagged objects_truncated
MAX_POINTS: Final = 64  # decoded points per object header (CROBs, analog outputs, times, files, IIN)
BROADCAST: Final = frozenset({0xFFFD, 0xFFFE, 0xFFFF})

# Link layer control: DIR, PRM, FCB/ACD, FCV/DFC, function (IEEE 1815-2012 §9.2.4.1.3).
LINK_PRIMARY_NAMES: Final[dict[int, str]] = {
    0: "reset_link_states",
    1: "reset_user_process",
    2: "test_link_states",
    3: "confirmed_user_data",
    4: "unconfirmed_user_data",
    9: "request_link_status",
}
LINK_SECONDARY_NAMES: Final[dict[int, str]] = {
    0: "ack",
    1: "nack",
    11: "link_status",
    14: "not_functioning",
    15: "not_supported",
}
LINK_USER_DATA: Final = frozenset({3, 4})  # primary functions that carry transport segments

FUNCTION_NAMES: Final[dict[int, str]] = {
    0: "confirm",
    1: "read",
    2: "write",
    3: "select",
    4: "operate",
    5: "direct_operate",
    6: "direct_operate_nr",
    7: "immed_freeze",
    8: "immed_freeze_nr",
    9: "freeze_clear",
    10: "freeze_clear_nr",
    11: "freeze_at_time",
    12: "freeze_at_time_nr",
    13: "cold_restart",
    14: "warm_restart",
    15: "initialize_data",
    16: "initialize_application",
    17: "start_application",
    18: "stop_application",
    19: "save_configuration",
    20: "enable_unsolicited",
    21: "disable_unsolicited",
    22: "assign_class",
    23: "delay_measure",
    24: "record_current_time",
    25: "open_file",
    26: "close_file",
    27: "delete_file",
    28: "get_file_info",
    29: "authenticate_file",
    30: "abort_file",
    31: "activate_config",
    32: "authenticate_req",
    33: "authenticate_req_nr",
    129: "response",
    130: "unsolicited_response",
    131: "authenticate_resp",
}
FC_CONFIRM: Final = 0
FC_RESPONSE: Final = 129
FC_UNSOLICITED: Final = 130
FC_AUTH_RESPONSE: Final = 131
RESPONSES: Final = frozenset({FC_RESPONSE, FC_UNSOLICITED, FC_AUTH_RESPONSE})
# Requests the outstation never answers: pairing does not wait for them.
NO_RESPONSE: Final = frozenset({0, 6, 8, 10, 12, 33})
# Requests whose object headers carry no object data (only which points are meant).
HEADERS_ONLY: Final = frozenset({1, 7, 8, 9, 10, 20, 21, 22})

# Action of each request function (event.action). Responses take their request's action.
ACTIONS: Final[dict[int, str]] = {
    0: "session",  # application confirm: acknowledges a fragment, no operation
    1: "read",
    2: "write",
    3: "select",
    4: "operate",
    5: "operate",
    6: "operate",
    7: "operate",  # freezes copy counters/analogs into frozen points on command
    8: "operate",
    9: "clear_counters",  # freeze-and-clear resets the running counters
    10: "clear_counters",
    11: "operate",
    12: "operate",
    13: "restart",
    14: "restart",
    15: "restart",  # re-initialises the data base to its start-up values
    16: "mode_change",
    17: "mode_change",
    18: "mode_change",
    19: "write",  # commits the running configuration
    20: "subscribe",  # switches unsolicited reporting of event classes on
    21: "subscribe",  # ... and off
    22: "write",  # assigns points to event classes (configuration)
    23: "time_sync",  # first half of the non-LAN time synchronisation procedure
    24: "time_sync",
    25: "file_read",  # refined by the open mode of the g70v3 file command (write/append)
    26: "file_read",  # close/abort take the action their open had, when seen
    27: "file_delete",
    28: "file_read",
    29: "login",
    30: "file_read",
    31: "program_download",  # activates configuration files written to the device
    32: "login",
    33: "login",
    131: "login",
    130: "read_status",
}

# Internal indications, IIN1 bits 0-7 then IIN2 bits 0-7 (Suricata's names).
IIN_NAMES: Final[tuple[str, ...]] = (
    "all_stations",
    "class_1_events",
    "class_2_events",
    "class_3_events",
    "need_time",
    "local_control",
    "device_trouble",
    "device_restart",
    "no_func_code_support",
    "object_unknown",
    "parameter_error",
    "event_buffer_overflow",
    "already_executing",
    "config_corrupt",
    "reserved_2",
    "reserved_1",
)
IIN_FAILURE: Final = 0x0007  # IIN2 no_func_code_support | object_unknown | parameter_error

GROUP_NAMES: Final[dict[int, str]] = {
    0: "device_attributes",
    1: "binary_input",
    2: "binary_input_event",
    3: "double_bit_binary_input",
    4: "double_bit_binary_input_event",
    10: "binary_output",
    11: "binary_output_event",
    12: "binary_output_command",
    13: "binary_output_command_event",
    20: "counter",
    21: "frozen_counter",
    22: "counter_event",
    23: "frozen_counter_event",
    30: "analog_input",
    31: "frozen_analog_input",
    32: "analog_input_event",
    33: "frozen_analog_input_event",
    34: "analog_input_deadband",
    40: "analog_output_status",
    41: "analog_output_block",
    42: "analog_output_event",
    43: "analog_output_command_event",
    50: "time_and_date",
    51: "time_and_date_cto",
    52: "time_delay",
    60: "class_data",
    70: "file_control",
    80: "internal_indications",
    81: "device_storage",
    82: "device_profile",
    83: "data_set_registration",
    85: "data_set_prototype",
    86: "data_set_descriptor",
    87: "data_set_present_value",
    88: "data_set_snapshot",
    90: "application_identifier",
    91: "activate_configuration_status",
    100: "floating_point",
    101: "bcd",
    102: "unsigned_integer",
    110: "octet_string",
    111: "octet_string_event",
    112: "virtual_terminal_output",
    113: "virtual_terminal_event",
    120: "authentication",
    121: "security_statistic",
    122: "security_statistic_event",
}
VARIATION_NAMES: Final[dict[tuple[int, int], str]] = {
    (12, 1): "control_relay_output_block",
    (12, 2): "pattern_control_block",
    (12, 3): "pattern_mask",
    (50, 1): "time_and_date",
    (50, 2): "time_and_date_with_interval",
    (50, 3): "time_and_date_last_recorded",
    (50, 4): "indexed_time_and_date",
    (52, 1): "time_delay_coarse",
    (52, 2): "time_delay_fine",
    (60, 1): "class_0_data",
    (60, 2): "class_1_data",
    (60, 3): "class_2_data",
    (60, 4): "class_3_data",
    (70, 1): "file_identifier",
    (70, 2): "file_authentication",
    (70, 3): "file_command",
    (70, 4): "file_command_status",
    (70, 5): "file_transport",
    (70, 6): "file_transport_status",
    (70, 7): "file_descriptor",
    (70, 8): "file_specification_string",
    (120, 1): "auth_challenge",
    (120, 2): "auth_reply",
    (120, 3): "auth_aggressive_mode_request",
    (120, 4): "auth_session_key_status_request",
    (120, 5): "auth_session_key_status",
    (120, 6): "auth_session_key_change",
    (120, 7): "auth_error",
    (120, 8): "auth_user_certificate",
    (120, 9): "auth_mac",
    (120, 10): "auth_user_status_change",
    (120, 11): "auth_update_key_change_request",
    (120, 12): "auth_update_key_change_reply",
    (120, 13): "auth_update_key_change",
    (120, 14): "auth_update_key_change_signature",
    (120, 15): "auth_update_key_change_confirmation",
}


def object_name(group: int, variation: int) -> str:
    name = VARIATION_NAMES.get((group, variation))
    if name is not None:
        return name
    base = GROUP_NAMES.get(group)
    return f"{base}_v{variation}" if base is not None else f"unknown_g{group}v{variation}"


# Object sizes in bytes per point for fixed-size variations (IEEE 1815-2012 Annex A). Negative:
# bits per point of packed variations. Variations missing here have no fixed size: unless a size
# prefix gives it, the rest of the fragment cannot be parsed (objects_truncated).
def _sizes() -> dict[tuple[int, int], int]:
    s: dict[tuple[int, int], int] = {
        (1, 1): -1, (1, 2): 1,
        (2, 1): 1, (2, 2): 7, (2, 3): 3,
        (3, 1): -2, (3, 2): 1,
        (4, 1): 1, (4, 2): 7, (4, 3): 3,
        (10, 1): -1, (10, 2): 1,
        (11, 1): 1, (11, 2): 7,
        (12, 1): 11, (12, 2): 11, (12, 3): -1,
        (13, 1): 1, (13, 2): 7,
        (20, 1): 5, (20, 2): 3, (20, 3): 5, (20, 4): 3, (20, 5): 4, (20, 6): 2, (20, 7): 4, (20, 8): 2,
        (21, 1): 5, (21, 2): 3, (21, 3): 5, (21, 4): 3, (21, 5): 11, (21, 6): 9, (21, 7): 11, (21, 8): 9,
        (21, 9): 4, (21, 10): 2, (21, 11): 4, (21, 12): 2,
        (30, 1): 5, (30, 2): 3, (30, 3): 4, (30, 4): 2, (30, 5): 5, (30, 6): 9,
        (31, 1): 5, (31, 2): 3, (31, 3): 11, (31, 4): 9, (31, 5): 4, (31, 6): 2, (31, 7): 5, (31, 8): 9,
        (34, 1): 2, (34, 2): 4, (34, 3): 4,
        (40, 1): 5, (40, 2): 3, (40, 3): 5, (40, 4): 9,
        (41, 1): 5, (41, 2): 3, (41, 3): 5, (41, 4): 9,
        (50, 1): 6, (50, 2): 10, (50, 3): 6, (50, 4): 11,
        (51, 1): 6, (51, 2): 6,
        (52, 1): 2, (52, 2): 2,
        (80, 1): -1,
        (102, 1): 1,
        (120, 3): 6, (120, 4): 2,
        (121, 1): 7, (122, 1): 7, (122, 2): 13,
    }
    for g in (22, 23):
        s.update({(g, 1): 5, (g, 2): 3, (g, 3): 5, (g, 4): 3, (g, 5): 11, (g, 6): 9, (g, 7): 11, (g, 8): 9})
    for g in (32, 33, 42, 43):
        s.update({(g, 1): 5, (g, 2): 3, (g, 3): 11, (g, 4): 9, (g, 5): 5, (g, 6): 9, (g, 7): 11, (g, 8): 15})
    return s


OBJECT_SIZES: Final[dict[tuple[int, int], int]] = _sizes()
STRING_GROUPS: Final = frozenset({110, 111, 112, 113})  # the variation is the string length

# Qualifier prefix codes: bytes of index prefix (1-3) or of object size prefix (4-6).
PREFIX_INDEX: Final[dict[int, int]] = {1: 1, 2: 2, 3: 4}
PREFIX_SIZE: Final[dict[int, int]] = {4: 1, 5: 2, 6: 4}
# Range codes: (bytes, kind) with kind "range" (start/stop), "count", "none".
RANGE_CODES: Final[dict[int, tuple[int, str]]] = {
    0: (1, "range"), 1: (2, "range"), 2: (4, "range"),
    3: (1, "range"), 4: (2, "range"), 5: (4, "range"),  # virtual addresses
    6: (0, "none"),
    7: (1, "count"), 8: (2, "count"), 9: (4, "count"),
    11: (1, "count"),  # free format
}  # fmt: skip

# g0 device attribute data type codes (IEEE 1815-2012 table 11-13; the names Wireshark's DNP3 dissector uses).
ATTRIBUTE_TYPES: Final[dict[int, str]] = {
    0: "none", 1: "vstr", 2: "uint", 3: "int", 4: "flt", 5: "ostr", 6: "bstr", 7: "time", 8: "uncd",
    254: "u8bs8list", 255: "u8bs8exlist",
}
CROB_OPERATIONS: Final[dict[int, str]] = {0: "nul", 1: "pulse_on", 2: "pulse_off", 3: "latch_on", 4: "latch_off"}
CROB_TRIP_CLOSE: Final[dict[int, str]] = {0: "nul", 1: "close", 2: "trip", 3: "reserved"}
COMMAND_STATUS: Final[dict[int, str]] = {
    0: "success", 1: "timeout", 2: "no_select", 3: "format_error", 4: "not_supported", 5: "already_active",
    6: "hardware_error", 7: "local", 8: "too_many_objs", 9: "not_authorized", 10: "automation_inhibit",
    11: "processing_limited", 12: "out_of_range", 13: "downstream_local", 14: "already_complete",
    15: "blocked", 16: "canceled", 17: "blocked_other_master", 18: "downstream_fail", 126: "non_participating",
    127: "undefined",
}  # fmt: skip
FILE_MODES: Final[dict[int, str]] = {0: "null", 1: "read", 2: "write", 3: "append"}
FILE_STATUS: Final[dict[int, str]] = {
    0: "success", 1: "permission_denied", 2: "invalid_mode", 3: "file_not_found", 4: "file_locked",
    5: "too_many_open", 6: "invalid_handle", 7: "write_block_size", 8: "comm_lost", 9: "cannot_abort",
    16: "not_opened", 17: "handle_expired", 18: "buffer_overrun", 19: "fatal", 20: "block_seq", 255: "undefined",
}  # fmt: skip
AUTH_ERRORS: Final[dict[int, str]] = {
    1: "authentication_failed", 2: "unexpected_response", 3: "no_response", 4: "aggressive_mode_not_supported",
    5: "mac_algorithm_not_supported", 6: "key_wrap_algorithm_not_supported", 7: "authorization_failed",
    8: "update_key_change_method_not_permitted", 9: "invalid_signature", 10: "invalid_certification_data",
    11: "unknown_user", 12: "max_session_key_status_requests_exceeded",
}  # fmt: skip


class AnomalyCode(str, enum.Enum):
    """The fixed set of `anomaly.code` values the DNP3 decoder emits."""

    BAD_CRC = "bad_crc"  # header or data block CRC wrong: the frame is dropped (addresses still reported)
    INVALID_START = "invalid_start"  # bytes that are not a 0x0564 link frame (skipped to the next start)
    INVALID_LENGTH = "invalid_length"  # link length below 5
    NOT_DNP3 = "not_dnp3"  # too many bad frames in a row: decoding of the direction stopped
    TRANSPORT_SEQUENCE = "transport_sequence_error"  # segment out of order or a fragment left incomplete
    FRAGMENT_TOO_LONG = "fragment_too_long"  # reassembly exceeded MAX_FRAGMENT
    INVALID_PDU = "invalid_pdu"  # application header too short, or a decoder error
    UNKNOWN_FUNCTION = "unknown_function"  # application function code not in the standard
    OBJECTS_TRUNCATED = "objects_truncated"  # object data ended early or had no known size
    UNMATCHED_RESPONSE = "unmatched_response"  # solicited response with no pending request
    FLOODED = "flooded"  # more than MAX_PENDING requests without a response
    TRUNCATED_PDU = "truncated_pdu"  # capture gap or connection end cut a frame


def function_name(fc: int) -> str:
    return name_of(FUNCTION_NAMES, fc)


def link_function_name(prm: bool, fc: int) -> str:
    table = LINK_PRIMARY_NAMES if prm else LINK_SECONDARY_NAMES
    return table.get(fc, f"{'primary' if prm else 'secondary'}_unknown_{fc}")


def iin_names(iin: int) -> list[str]:
    """Names of the set bits of IIN (IIN1 in the high byte, as Zeek and Wireshark show it)."""
    bits = ((iin >> 8) & 0xFF) | ((iin & 0xFF) << 8)
    return [IIN_NAMES[i] for i in range(16) if bits >> i & 1]


def action_of(fc: int) -> str:
    return ACTIONS.get(fc, "unknown")
