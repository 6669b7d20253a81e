"""S7comm / S7comm-plus / COTP code tables, anomaly codes and the event.action of each operation."""

from __future__ import annotations

import enum
from typing import Final

from .. import wire

MAX_PENDING: Final = 256  # unanswered S7 requests kept per connection for pairing
MAX_REASSEMBLY: Final = 65536  # bytes of COTP DT fragments (EOT=0) buffered per direction
MAX_ITEM_DATA_HEX: Final = 64  # bytes of an item's value kept (as hex) on the event

TPKT_VERSION: Final = 3
TPKT_HEADER: Final = 4
S7_PROTOCOL_ID: Final = 0x32
S7PLUS_PROTOCOL_ID: Final = 0x72


class AnomalyCode(str, enum.Enum):
    INVALID_TPKT = "invalid_tpkt"  # version != 3 or length < 7: framing lost
    INVALID_COTP = "invalid_cotp"  # COTP length indicator beyond the TPKT, unknown TPDU code
    INVALID_PDU = "invalid_pdu"  # S7 header/parameter/data shorter than declared or inconsistent
    UNKNOWN_PROTOCOL = "unknown_protocol"  # DT payload that is neither S7comm nor S7comm-plus
    REASSEMBLY_OVERFLOW = "reassembly_overflow"  # COTP fragments beyond MAX_REASSEMBLY
    TRUNCATED_PDU = "truncated_pdu"  # capture gap or connection end inside a TPKT
    UNSOLICITED_RESPONSE = "unsolicited_response"  # Ack/Ack-Data with no job of that PDU reference
    FLOODED = "flooded"  # more than MAX_PENDING jobs without a response
    NOT_TPKT = "not_tpkt"  # several bad TPKT headers in a row: decoding of the direction stopped


COTP_TYPES: Final[dict[int, str]] = {  # high nibble of the TPDU code byte (CDT/credit is the low nibble)
    0xE: "CR Connection Request",
    0xD: "CC Connection Confirm",
    0x8: "DR Disconnect Request",
    0xC: "DC Disconnect Confirm",
    0xF: "DT Data",
    0x1: "ED Expedited Data",
    0x6: "AK Data Acknowledgement",
    0x2: "EA Expedited Data Acknowledgement",
    0x5: "RJ Reject",
    0x7: "ER TPDU Error",
}
COTP_ACTIONS: Final[dict[int, str]] = {0xE: "connect", 0xD: "connect", 0x8: "disconnect", 0xC: "disconnect"}

# COTP CR/CC parameter codes
COTP_PARAM_TPDU_SIZE: Final = 0xC0
COTP_PARAM_SRC_TSAP: Final = 0xC1
COTP_PARAM_DST_TSAP: Final = 0xC2

ROSCTR_NAMES: Final[dict[int, str]] = {
    1: "job",
    2: "ack",
    3: "ack_data",
    7: "userdata",
}

ERROR_CLASS_NAMES: Final[dict[int, str]] = {
    0x00: "no_error",
    0x81: "application_relationship_error",
    0x82: "object_definition_error",
    0x83: "no_resources_available",
    0x84: "error_on_service_processing",
    0x85: "error_on_supplies",
    0x87: "access_error",
}

FUNCTION_NAMES: Final[dict[int, str]] = {
    0x00: "cpu_services",
    0xF0: "setup_communication",
    0x04: "read_var",
    0x05: "write_var",
    0x1A: "request_download",
    0x1B: "download_block",
    0x1C: "download_ended",
    0x1D: "start_upload",
    0x1E: "upload",
    0x1F: "end_upload",
    0x28: "pi_service",
    0x29: "plc_stop",
}

FUNCTION_ACTIONS: Final[dict[int, str]] = {
    0xF0: "session",
    0x04: "read",
    0x05: "write",
    0x1A: "program_download",
    0x1B: "program_download",
    0x1C: "program_download",
    0x1D: "program_upload",
    0x1E: "program_upload",
    0x1F: "program_upload",
    0x29: "mode_change",
}

# PI services (function 0x28): name -> (action, description)
PI_SERVICES: Final[dict[str, tuple[str, str]]] = {
    "P_PROGRAM": ("restart", "start the program (hot start, or cold start with parameter C)"),
    "_INSE": ("program_download", "activate (insert) downloaded blocks"),
    "_DELE": ("file_delete", "delete blocks"),
    "_GARB": ("write", "compress PLC memory"),
    "_MODU": ("write", "copy RAM to ROM"),
    "_EXEC": ("write", "execute"),
}

AREA_NAMES: Final[dict[int, str]] = {
    0x03: "system_info",  # S7-200
    0x05: "system_flags",  # S7-200
    0x06: "analog_inputs",  # S7-200
    0x07: "analog_outputs",  # S7-200
    0x1C: "counters_200",
    0x1D: "timers_200",
    0x1E: "iec_counters",
    0x1F: "iec_timers",
    0x80: "direct_peripheral",
    0x81: "inputs",
    0x82: "outputs",
    0x83: "flags",
    0x84: "db",
    0x85: "di",
    0x86: "local",
    0x87: "v",
}
# Readable address prefix per area
AREA_PREFIX: Final[dict[int, str]] = {0x80: "P", 0x81: "I", 0x82: "Q", 0x83: "M", 0x84: "DB", 0x85: "DI", 0x86: "L", 0x87: "V", 0x1C: "C", 0x1D: "T", 0x1E: "C", 0x1F: "T"}

SYNTAX_NAMES: Final[dict[int, str]] = {
    0x10: "s7any",
    0x13: "pbc_r_id",
    0x15: "alarm_lockfree",
    0x16: "alarm_ind",
    0x19: "alarm_ack",
    0x1A: "alarm_query_req",
    0x1C: "notify_ind",
    0x82: "nck",
    0x83: "nck_metric",
    0x84: "nck_inch",
    0xA2: "driveesany",
    0xB0: "dbread",
    0xB2: "1200sym",
}

TRANSPORT_SIZE_NAMES: Final[dict[int, str]] = {  # in item addresses
    0x01: "bit",
    0x02: "byte",
    0x03: "char",
    0x04: "word",
    0x05: "int",
    0x06: "dword",
    0x07: "dint",
    0x08: "real",
    0x09: "date",
    0x0A: "tod",
    0x0B: "time",
    0x0C: "s5time",
    0x0F: "dt",
    0x1C: "counter",
    0x1D: "timer",
    0x1E: "iec_timer",
    0x1F: "iec_counter",
    0x20: "hs_counter",
}

# Transport sizes of the data part whose length is given in bits (others: bytes)
DATA_SIZE_IN_BITS: Final = frozenset({0x03, 0x04, 0x05})
DATA_TRANSPORT_SIZE_NAMES: Final[dict[int, str]] = {
    0x00: "null",
    0x03: "bit",
    0x04: "byte_word_dword",
    0x05: "integer",
    0x06: "dinteger",
    0x07: "real",
    0x09: "octet_string",
}

RETURN_CODE_NAMES: Final[dict[int, str]] = {
    0x00: "reserved",
    0x01: "hardware_error",
    0x03: "access_not_allowed",
    0x05: "invalid_address",
    0x06: "data_type_not_supported",
    0x07: "data_type_inconsistent",
    0x0A: "object_does_not_exist",
    0xFF: "success",
}

BLOCK_TYPES: Final[dict[str, str]] = {
    "08": "OB",
    "0A": "DB",
    "0B": "SDB",
    "0C": "FC",
    "0D": "SFC",
    "0E": "FB",
    "0F": "SFB",
}
FILESYSTEMS: Final[dict[str, str]] = {"P": "passive", "A": "active", "B": "active_and_passive"}
# Block type codes of userdata block functions (ASCII pairs too, but as a 16-bit value)
BLOCK_TYPE_CODES: Final[dict[int, str]] = {0x3038: "OB", 0x3041: "DB", 0x3042: "SDB", 0x3043: "FC", 0x3044: "SFC", 0x3045: "FB", 0x3046: "SFB"}  # "08", "0A", ... as 16 bits

USERDATA_TYPES: Final[dict[int, str]] = {0x0: "push", 0x4: "request", 0x8: "response", 0x3: "nc_push", 0x1: "nc_request", 0x9: "nc_response"}

FUNCTION_GROUPS: Final[dict[int, str]] = {
    0x0: "mode_transition",
    0x1: "programmer_commands",
    0x2: "cyclic_data",
    0x3: "block_functions",
    0x4: "cpu_functions",
    0x5: "security",
    0x6: "pbc_bsend_brecv",
    0x7: "time_functions",
    0xF: "nc_programming",
}

SUBFUNCTIONS: Final[dict[int, dict[int, str]]] = {
    0x0: {  # mode transition: the sub-function is the new mode
        0x00: "stop",
        0x01: "warm_restart",
        0x02: "run",
        0x03: "hot_restart",
        0x04: "hold",
        0x06: "cold_restart",
        0x09: "run_r",
        0x0B: "link_up",
        0x0C: "update",
    },
    0x1: {
        0x01: "request_diag_data_type1",
        0x02: "vartab",
        0x0C: "erase",
        0x0E: "read_diag_data",
        0x0F: "remove_diag_data",
        0x10: "forces",
        0x13: "request_diag_data_type2",
    },
    0x2: {0x01: "memory", 0x04: "unsubscribe", 0x05: "memory2", 0x07: "memory3"},
    0x3: {0x01: "list_blocks", 0x02: "list_blocks_of_type", 0x03: "get_block_info"},
    0x4: {
        0x01: "read_szl",
        0x02: "message_service",
        0x03: "diagnostic_message",
        0x05: "alarm8_indication",
        0x06: "notify_indication",
        0x07: "alarm8_lock",
        0x08: "alarm8_unlock",
        0x09: "scan_indication",
        0x0B: "alarm_ack",
        0x0C: "alarm_ack_indication",
        0x0D: "alarm8_lock_indication",
        0x0E: "alarm8_unlock_indication",
        0x11: "alarm_sq_indication",
        0x12: "alarm_s_indication",
        0x13: "alarm_query",
        0x16: "notify8_indication",
    },
    0x5: {0x01: "plc_password", 0x02: "clean_session"},
    0x6: {0x01: "bsend_brecv"},
    0x7: {0x01: "read_clock", 0x02: "set_clock", 0x03: "read_clock_following", 0x04: "set_clock_2"},
}

USERDATA_ACTIONS: Final[dict[tuple[int, int], str]] = {
    (0x1, 0x02): "read",  # vartab: reads variables (writes go as write var jobs or forces)
    (0x1, 0x10): "write",  # forces
    (0x3, 0x01): "read_status",
    (0x3, 0x02): "read_status",
    (0x3, 0x03): "read_status",
    (0x4, 0x01): "identify",
    (0x4, 0x02): "subscribe",
    (0x4, 0x0B): "write",
    (0x4, 0x13): "read_status",
    (0x5, 0x01): "login",
    (0x5, 0x02): "disconnect",
    (0x6, 0x01): "write",
    (0x7, 0x01): "read",
    (0x7, 0x02): "time_sync",
    (0x7, 0x03): "read",
    (0x7, 0x04): "time_sync",
}
GROUP_ACTIONS: Final[dict[int, str]] = {
    0x0: "mode_change",
    0x1: "diagnostics",
    0x2: "subscribe",
    0x4: "publish",  # alarm/notify indications pushed by the CPU
}

USERDATA_ERROR_NAMES: Final[dict[int, str]] = {
    0x0000: "no_error",
    0x0110: "invalid_block_number",
    0x0111: "invalid_request_length",
    0x0112: "invalid_parameter",
    0x0113: "invalid_block_type",
    0x0114: "block_not_found",
    0x0115: "block_already_exists",
    0x0116: "block_write_protected",
    0x0117: "block_os_update_too_large",
    0x0118: "invalid_block_number_2",
    0x0119: "incorrect_password",
    0x011A: "pg_resource_error",
    0x011B: "pg_resource_error_2",
    0x011C: "protection_violation",
    0x8001: "service_not_permitted_in_mode",
    0x8101: "hardware_fault",
    0x8103: "object_access_not_allowed",
    0x8104: "context_not_supported",
    0x8105: "invalid_address",
    0x8106: "data_type_not_supported",
    0x8107: "data_type_inconsistent",
    0x810A: "object_does_not_exist",
    0x8500: "incorrect_pdu_size",
    0x8702: "invalid_address_2",
    0xD201: "block_name_syntax_error",
    0xD202: "function_parameter_syntax_error",
    0xD203: "block_type_syntax_error",
    0xD204: "no_linked_block_in_storage_medium",
    0xD205: "object_already_exists",
    0xD206: "object_already_exists_2",
    0xD207: "block_exists_in_eprom",
    0xD209: "block_does_not_exist",
    0xD20E: "no_block_does_not_exist",
    0xD210: "block_number_too_big",
    0xD241: "protection_level_too_low",
    0xD401: "information_function_unavailable",
    0xD602: "password_incorrect",  # "invalid password" on S7-300/400
    0xD604: "password_already_set",
    0xD605: "password_not_set",
    0xD801: "function_not_allowed_in_mode",
    0xDC01: "invalid_time_stamp",
}

SZL_NAMES: Final[dict[int, str]] = {
    0x0000: "list_of_all_szl_ids",
    0x0011: "module_identification",
    0x0012: "cpu_characteristics",
    0x0013: "user_memory_areas",
    0x0014: "system_areas",
    0x0015: "block_types",
    0x0016: "priority_classes",
    0x0017: "list_of_permitted_sdbs",
    0x0018: "rack_slot_table",
    0x0019: "module_led_status",
    0x001C: "component_identification",
    0x0022: "interrupt_status",
    0x0025: "process_image_partitions",
    0x0031: "communication_capability_parameters",
    0x0032: "communication_status_data",
    0x0033: "diagnostic_s7_connections",
    0x0037: "ethernet_details",
    0x0071: "h_cpu_group_information",
    0x0074: "module_led_status_2",
    0x0075: "dp_master_system_switching",
    0x0090: "dp_master_system_information",
    0x0091: "module_status_information",
    0x0092: "rack_station_status",
    0x0094: "rack_station_status_2",
    0x0095: "extended_dp_master_system_information",
    0x0096: "module_status_information_2",
    0x00A0: "diagnostic_buffer",
    0x00B1: "module_diagnostic_info_record0",
    0x00B2: "module_diagnostic_info_record1_geo",
    0x00B3: "module_diagnostic_info_record1_log",
    0x00B4: "diagnostic_data_dp_slave",
    0x0124: "last_mode_transition",
    0x0131: "communication_capability_parameters",
    0x0132: "communication_status_data",
    0x0424: "modes",
}

S7PLUS_OPCODES: Final[dict[int, str]] = {0x31: "request", 0x32: "response", 0x33: "notification", 0x02: "response2"}

S7PLUS_FUNCTIONS: Final[dict[int, str]] = {
    0x04B1: "error",
    0x04BB: "explore",
    0x04CA: "createobject",
    0x04D4: "deleteobject",
    0x04F2: "setvariable",
    0x04FC: "getvariable",
    0x0506: "addlink",
    0x051A: "removelink",
    0x0524: "getlink",
    0x0542: "setmultivariables",
    0x054C: "getmultivariables",
    0x0556: "beginsequence",
    0x0560: "endsequence",
    0x056B: "invoke",
    0x057C: "setvarsubstreamed",
    0x0586: "getvarsubstreamed",
    0x0590: "getvariablesaddress",
    0x059A: "abort",
}

S7PLUS_ACTIONS: Final[dict[int, str]] = {
    0x04BB: "read_status",  # explore: browse the object tree
    0x04CA: "session",  # createobject: first one creates the session
    0x04D4: "disconnect",  # deleteobject: ends the session (or deletes objects)
    0x04F2: "write",
    0x04FC: "read",
    0x0506: "subscribe",
    0x051A: "subscribe",
    0x0524: "read",
    0x0542: "write",
    0x054C: "read",
    0x0556: "write",  # begin of a sequence (program download uses sequences)
    0x0560: "write",
    0x056B: "write",  # invoke: run a method (e.g. change operating state)
    0x057C: "write",
    0x0586: "read",
    0x0590: "read",
}


def name_of(table: dict[int, str], code: int | None, prefix: str = "unknown") -> str | None:
    return None if code is None else wire.name_of(table, code, prefix, hex_digits=2)
