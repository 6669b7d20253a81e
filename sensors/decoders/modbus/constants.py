"""Modbus/TCP code tables: function codes, sub-functions, exceptions, device-id objects, anomalies, actions."""

from __future__ import annotations

import enum
from typing import Final

from ..wire import name_of

MBAP_LEN: Final = 7  # transaction id, protocol id, length, unit id
MIN_LENGTH: Final = 2  # MBAP length counts unit id + function code at least
MAX_LENGTH: Final = 254  # spec: ADU <= 260 bytes, so MBAP length <= 254
# Real devices overshoot a little (Schneider UMAS block transfers declare 255): up to this length the
# ADU is still decoded, flagged `invalid_length`; beyond it the length is taken for garbage.
MAX_TOLERATED_LENGTH: Final = 300
MAX_PENDING: Final = 500
EXCEPTION_BIT: Final = 0x80

# Public function codes (Modbus Application Protocol v1.1b3, §6).
FUNCTION_NAMES: Final[dict[int, str]] = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
    5: "write_single_coil",
    6: "write_single_register",
    7: "read_exception_status",
    8: "diagnostics",
    11: "get_comm_event_counter",
    12: "get_comm_event_log",
    15: "write_multiple_coils",
    16: "write_multiple_registers",
    17: "report_server_id",
    20: "read_file_record",
    21: "write_file_record",
    22: "mask_write_register",
    23: "read_write_multiple_registers",
    24: "read_fifo_queue",
    43: "encapsulated_interface_transport",
}

# Ranges the spec leaves to vendors/users; traffic there is decoded, never dropped.
USER_DEFINED: Final = frozenset(range(65, 73)) | frozenset(range(100, 111))

FC_UMAS: Final = 90  # reserved in the spec; Schneider Electric Unity/UMAS rides on it

DIAGNOSTIC_NAMES: Final[dict[int, str]] = {
    0: "return_query_data",
    1: "restart_communications_option",
    2: "return_diagnostic_register",
    3: "change_ascii_input_delimiter",
    4: "force_listen_only_mode",
    10: "clear_counters_and_diagnostic_register",
    11: "return_bus_message_count",
    12: "return_bus_communication_error_count",
    13: "return_bus_exception_error_count",
    14: "return_server_message_count",
    15: "return_server_no_response_count",
    16: "return_server_nak_count",
    17: "return_server_busy_count",
    18: "return_bus_character_overrun_count",
    20: "clear_overrun_counter_and_flag",
}

MEI_CANOPEN: Final = 13
MEI_DEVICE_ID: Final = 14
MEI_NAMES: Final[dict[int, str]] = {
    MEI_CANOPEN: "canopen_general_reference",
    MEI_DEVICE_ID: "read_device_identification",
}

EXCEPTION_NAMES: Final[dict[int, str]] = {
    1: "illegal_function",
    2: "illegal_data_address",
    3: "illegal_data_value",
    4: "server_device_failure",
    5: "acknowledge",
    6: "server_device_busy",
    7: "negative_acknowledge",
    8: "memory_parity_error",
    10: "gateway_path_unavailable",
    11: "gateway_target_device_failed_to_respond",
}

# Read Device Identification object ids (0x00-0x06 standard; 0x80-0xFF private).
DEVICE_ID_OBJECTS: Final[dict[int, str]] = {
    0: "vendor_name",
    1: "product_code",
    2: "major_minor_revision",
    3: "vendor_url",
    4: "product_name",
    5: "model_name",
    6: "user_application_name",
}

# Schneider UMAS sub-codes (third PDU byte of FC 90 requests), from public reverse-engineering notes.
# Schneider calls PC->PLC transfer "upload" (0x30-0x32) and PLC->PC "download" (0x33-0x35):
# the reverse of ATT&CK, whose Program Download (T0843) is the transfer *to* the PLC.
UMAS_NAMES: Final[dict[int, str]] = {
    0x01: "init_comm",
    0x02: "read_id",
    0x03: "read_project_info",
    0x04: "read_plc_info",
    0x06: "read_card_info",
    0x0A: "repeat",
    0x10: "take_plc_reservation",
    0x11: "release_plc_reservation",
    0x12: "keep_alive",
    0x20: "read_memory_block",
    0x22: "read_variables",
    0x23: "write_variables",
    0x24: "read_coils_registers",
    0x25: "write_coils_registers",
    0x30: "initialize_upload",
    0x31: "upload_block",
    0x32: "end_strategy_upload",
    0x33: "initialize_download",
    0x34: "download_block",
    0x35: "end_strategy_download",
    0x39: "read_eth_master_data",
    0x40: "start_plc",
    0x41: "stop_plc",
    0x50: "monitor_plc",
    0x58: "check_plc",
    0x70: "read_io_object",
    0x71: "write_io_object",
    0x73: "get_status_module",
}
_UMAS_ACTIONS: Final[dict[int, str]] = {
    0x02: "identify",
    0x03: "identify",
    0x04: "identify",
    0x06: "identify",
    0x20: "read",
    0x22: "read",
    0x24: "read",
    0x70: "read",
    0x23: "write",
    0x25: "write",
    0x71: "write",
    0x30: "program_download",
    0x31: "program_download",
    0x32: "program_download",
    0x33: "program_upload",
    0x34: "program_upload",
    0x35: "program_upload",
    0x40: "mode_change",
    0x41: "mode_change",
}


class AnomalyCode(str, enum.Enum):
    """Every anomaly the Modbus decoder reports (`anomaly.code`); rules match these strings."""

    INVALID_PROTOCOL_ID = "invalid_protocol_id"  # MBAP protocol id != 0
    INVALID_LENGTH = "invalid_length"  # MBAP length < 2 or > 254
    INVALID_FUNCTION_CODE = "invalid_function_code"  # request with code 0 or >= 128
    INVALID_PDU = "invalid_pdu"  # body does not fit its function's layout (short, byte count mismatch)
    INVALID_VALUE = "invalid_value"  # field outside what the spec allows (coil value, quantity range)
    INVALID_EXCEPTION_CODE = "invalid_exception_code"  # exception code not defined by the spec
    VALUE_MISMATCH = "value_mismatch"  # response does not fit its request (function code, quantity)
    UNSOLICITED_RESPONSE = "unsolicited_response"  # response with no pending request
    FLOODED = "flooded"  # more than MAX_PENDING unanswered requests; oldest dropped
    TRUNCATED_PDU = "truncated_pdu"  # connection ended with a partial ADU buffered
    NOT_MODBUS = "not_modbus"  # too many bad headers in a row: decoding of that direction stopped


def function_name(fc: int) -> str:
    name = FUNCTION_NAMES.get(fc)
    if name is not None:
        return name
    if fc in USER_DEFINED:
        return f"user_defined_{fc}"
    return f"unknown_{fc}"


def exception_name(code: int) -> str:
    return name_of(EXCEPTION_NAMES, code)


def subfunction_name(fc: int, sub: int) -> str:
    if fc == 8:
        if 11 <= sub <= 18 or sub in DIAGNOSTIC_NAMES:
            return name_of(DIAGNOSTIC_NAMES, sub)
        return f"unknown_{sub}"
    if fc == 43:
        return name_of(MEI_NAMES, sub)
    if fc == FC_UMAS:
        return name_of(UMAS_NAMES, sub)
    return f"unknown_{sub}"


# Protocol-independent event.action per function code. FC 23 is "write": it changes the device,
# and a rule watching writes must not miss it because it also reads. FC 7/11/12 read the
# device's own status and counters, not process data: "read_status".
_FC_ACTIONS: Final[dict[int, str]] = {
    1: "read",
    2: "read",
    3: "read",
    4: "read",
    20: "read",
    24: "read",
    5: "write",
    6: "write",
    15: "write",
    16: "write",
    21: "write",
    22: "write",
    23: "write",
    7: "read_status",
    11: "read_status",
    12: "read_status",
    17: "identify",
}


def action_of(fc: int, sub: int | None) -> str:
    """event.action of a request with function code `fc` (exception bit cleared) and sub-function."""
    act = _FC_ACTIONS.get(fc)
    if act is not None:
        return act
    if fc == 8:
        if sub == 1:
            return "restart"
        if sub == 4:
            return "mode_change"
        if sub in (10, 20):
            return "clear_counters"
        return "diagnostics"
    if fc == 43:
        return "identify" if sub == MEI_DEVICE_ID else "unknown"
    if fc == FC_UMAS and sub is not None:
        return _UMAS_ACTIONS.get(sub, "unknown")
    return "unknown"
