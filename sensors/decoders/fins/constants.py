"""Omron FINS code tables (command codes, memory areas, end codes, FINS/TCP commands), anomaly codes, actions."""

from __future__ import annotations

import enum
from typing import Final

MAX_PENDING: Final = 256  # unanswered commands kept per flow for pairing
FINS_HEADER: Final = 10  # ICF RSV GCT DNA DA1 DA2 SNA SA1 SA2 SID
TCP_MAGIC: Final = b"FINS"
TCP_HEADER: Final = 16  # magic, length, command, error code
MAX_TCP_LENGTH: Final = 8192  # FINS frames are at most ~2 KB; a larger length is not FINS/TCP
MAX_ITEMS: Final = 32  # addresses kept on one event


class AnomalyCode(str, enum.Enum):
    INVALID_HEADER = "invalid_header"  # shorter than the 10-byte FINS header + command code
    INVALID_TCP_HEADER = "invalid_tcp_header"  # FINS/TCP without the FINS magic or with an absurd length
    INVALID_PDU = "invalid_pdu"  # command parameters shorter than the command needs
    UNSOLICITED_RESPONSE = "unsolicited_response"  # response with no pending command of that SID/code
    FLOODED = "flooded"  # more than MAX_PENDING commands without a response
    TCP_ERROR = "tcp_error"  # FINS/TCP error code != 0 (or Frame Send Error Notification)
    TRUNCATED_PDU = "truncated_pdu"  # capture gap or connection end inside a FINS/TCP frame
    NOT_FINS = "not_fins"  # several bad FINS/TCP headers in a row: decoding of the direction stopped


# (MRC << 8 | SRC) -> (name, event.action). Numbering and names as Omron's FINS commands reference
# (W227/W342) and Wireshark; CS/CJ program area commands are 0x0304..0x0308.
COMMANDS: Final[dict[int, tuple[str, str]]] = {
    0x0101: ("memory_area_read", "read"),
    0x0102: ("memory_area_write", "write"),
    0x0103: ("memory_area_fill", "write"),
    0x0104: ("multiple_memory_area_read", "read"),
    0x0105: ("memory_area_transfer", "write"),
    0x0201: ("parameter_area_read", "read"),
    0x0202: ("parameter_area_write", "write"),
    0x0203: ("parameter_area_clear", "write"),
    0x0220: ("data_link_table_read", "read"),
    0x0221: ("data_link_table_write", "write"),
    0x0304: ("program_area_protect", "write"),
    0x0305: ("program_area_protect_clear", "write"),
    0x0306: ("program_area_read", "program_upload"),
    0x0307: ("program_area_write", "program_download"),
    0x0308: ("program_area_clear", "program_delete"),
    0x0401: ("run", "mode_change"),
    0x0402: ("stop", "mode_change"),
    0x0403: ("reset", "restart"),
    0x0501: ("controller_data_read", "identify"),
    0x0502: ("connection_data_read", "identify"),
    0x0601: ("controller_status_read", "read_status"),
    0x0602: ("network_status_read", "read_status"),
    0x0603: ("data_link_status_read", "read_status"),
    0x0620: ("cycle_time_read", "read_status"),
    0x0701: ("clock_read", "read"),
    0x0702: ("clock_write", "time_sync"),
    0x0801: ("loop_back_test", "diagnostics"),
    0x0802: ("broadcast_test_results_read", "diagnostics"),
    0x0803: ("broadcast_test_data_send", "diagnostics"),
    0x0920: ("message_read", "read_status"),  # also message clear, FAL/FALS read (by parameter)
    0x0C01: ("access_right_acquire", "login"),
    0x0C02: ("access_right_forced_acquire", "login"),
    0x0C03: ("access_right_release", "login"),
    0x2101: ("error_clear", "write"),
    0x2102: ("error_log_read", "read_status"),
    0x2103: ("error_log_clear", "write"),
    0x2140: ("fins_write_access_log_read", "read_status"),
    0x2141: ("fins_write_access_log_clear", "write"),
    0x2201: ("file_name_read", "file_read"),
    0x2202: ("single_file_read", "file_read"),
    0x2203: ("single_file_write", "file_write"),
    0x2204: ("memory_card_format", "file_delete"),
    0x2205: ("file_delete", "file_delete"),
    0x2206: ("volume_label_create_delete", "file_write"),
    0x2207: ("file_copy", "file_write"),
    0x2208: ("file_name_change", "file_write"),
    0x2209: ("file_data_check", "file_read"),
    0x220A: ("memory_area_file_transfer", "file_write"),
    0x220B: ("parameter_area_file_transfer", "file_write"),
    0x220C: ("program_area_file_transfer", "program_download"),  # direction by parameter code, refined in the parser
    0x220F: ("file_memory_index_read", "file_read"),
    0x2210: ("file_memory_read", "file_read"),
    0x2211: ("file_memory_write", "file_write"),
    0x2215: ("create_delete_directory", "file_write"),
    0x2301: ("forced_set_reset", "force"),
    0x2302: ("forced_set_reset_cancel", "force"),
    0x230A: ("multiple_forced_status_read", "read"),
    0x2601: ("name_set", "write"),
    0x2602: ("name_delete", "write"),
    0x2603: ("name_read", "read"),
}

RUN_MODES: Final[dict[int, str]] = {0x01: "debug", 0x02: "monitor", 0x04: "run"}

MEMORY_AREAS: Final[dict[int, str]] = {
    0x00: "cio_bit", 0x40: "cio_bit_forced", 0x80: "cio_word", 0xC0: "cio_word_forced",
    0x01: "timer_counter_flag", 0x41: "timer_counter_flag_forced", 0x81: "timer_counter_pv",
    0x82: "dm_word", 0x03: "transition_flag", 0x43: "transition_flag_forced", 0x04: "step_flag",
    0x44: "step_status", 0x84: "step_timer_pv", 0x05: "forced_status_bit", 0x85: "forced_status_word",
    **{0x90 + i: f"em_bank_{i:x}_word_cv" for i in range(8)}, 0x98: "em_current_bank_word",
    0x9C: "register", 0x1B: "action_flag", 0xDD: "interrupt_status",
    0x30: "cio_bit", 0x31: "wr_bit", 0x32: "hr_bit", 0x33: "ar_bit",
    0x70: "cio_bit_forced", 0x71: "wr_bit_forced", 0x72: "hr_bit_forced",
    0xB0: "cio_word", 0xB1: "wr_word", 0xB2: "hr_word", 0xB3: "ar_word",
    0xF0: "cio_word_forced", 0xF1: "wr_word_forced", 0xF2: "hr_word_forced",
    0x09: "timer_counter_flag", 0x49: "timer_counter_flag_forced", 0x89: "timer_counter_pv",
    0x02: "dm_bit", **{0x20 + i: f"em_bank_{i:x}_bit" for i in range(13)},
    **{0xA0 + i: f"em_bank_{i:x}_word" for i in range(13)}, 0xBC: "register",
    0x06: "task_flag_bit", 0x46: "task_flag_status", 0xDC: "index_register", 0x07: "clock_pulses_condition_flags",
}  # fmt: skip

PARAMETER_AREAS: Final[dict[int, str]] = {
    0x8000: "cpu_bus_unit_settings_cv", 0x8002: "cpu_bus_unit_settings", 0x8010: "pc_setup",
    0x8011: "peripheral_device_settings", 0x8012: "io_tables", 0x8013: "routing_tables",
}  # fmt: skip

TCP_COMMANDS: Final[dict[int, str]] = {
    0: "node_address_data_send_client",
    1: "node_address_data_send_server",
    2: "frame_send",
    3: "frame_send_error_notification",
    6: "connection_confirmation",
}
TCP_ERRORS: Final[dict[int, str]] = {
    0x00: "normal", 0x01: "header_not_fins", 0x02: "data_length_too_long", 0x03: "command_not_supported",
    0x20: "all_connections_in_use", 0x21: "node_already_connected", 0x22: "node_address_protected",
    0x23: "client_node_address_out_of_range", 0x24: "same_node_address_in_use", 0x25: "all_node_addresses_in_use",
}  # fmt: skip

# Main response codes (MRES, bit 7 = relay error, masked) -> class name
END_CODE_MAIN: Final[dict[int, str]] = {
    0x00: "normal_completion", 0x01: "local_node_error", 0x02: "destination_node_error",
    0x03: "controller_error", 0x04: "service_unsupported", 0x05: "routing_table_error",
    0x10: "command_format_error", 0x11: "parameter_error", 0x20: "read_not_possible",
    0x21: "write_not_possible", 0x22: "not_executable_in_current_mode", 0x23: "no_such_device",
    0x24: "cannot_start_stop", 0x25: "unit_error", 0x26: "command_error", 0x30: "access_right_error",
    0x40: "abort",
}  # fmt: skip
END_CODES: Final[dict[int, str]] = {
    0x0000: "normal_completion", 0x0001: "service_canceled", 0x0101: "local_node_not_in_network",
    0x0102: "token_timeout", 0x0103: "retries_failed", 0x0104: "too_many_send_frames",
    0x0105: "node_address_range_error", 0x0106: "node_address_duplication",
    0x0201: "destination_node_not_in_network", 0x0202: "unit_missing", 0x0203: "third_node_missing",
    0x0204: "destination_node_busy", 0x0205: "response_timeout", 0x0301: "communications_controller_error",
    0x0302: "cpu_unit_error", 0x0303: "controller_error", 0x0304: "unit_number_error",
    0x0401: "undefined_command", 0x0402: "not_supported_by_model_version", 0x0501: "destination_address_setting_error",
    0x0502: "no_routing_tables", 0x0503: "routing_table_error", 0x0504: "too_many_relays",
    0x1001: "command_too_long", 0x1002: "command_too_short", 0x1003: "elements_data_dont_match",
    0x1004: "command_format_error", 0x1005: "header_error", 0x1101: "area_classification_missing",
    0x1102: "access_size_error", 0x1103: "address_range_error", 0x1104: "address_range_exceeded",
    0x1106: "program_missing", 0x1109: "relational_error", 0x110A: "duplicate_data_access",
    0x110B: "response_too_long", 0x110C: "parameter_error", 0x2002: "protected", 0x2003: "table_missing",
    0x2004: "data_missing", 0x2005: "program_missing", 0x2006: "file_missing", 0x2007: "data_mismatch",
    0x2101: "read_only", 0x2102: "protected_cannot_write", 0x2103: "cannot_register",
    0x2105: "program_missing", 0x2106: "file_missing", 0x2107: "file_name_already_exists",
    0x2108: "cannot_change", 0x2201: "not_possible_during_execution", 0x2202: "not_possible_while_running",
    0x2203: "wrong_plc_mode_program", 0x2204: "wrong_plc_mode_debug", 0x2205: "wrong_plc_mode_monitor",
    0x2206: "wrong_plc_mode_run", 0x2207: "specified_node_not_polling_node", 0x2208: "step_cannot_be_executed",
    0x2301: "file_device_missing", 0x2302: "memory_missing", 0x2303: "clock_missing",
    0x2401: "table_missing", 0x2502: "memory_error", 0x2503: "io_setting_error", 0x2504: "too_many_io_points",
    0x2505: "cpu_bus_error", 0x2506: "io_duplication", 0x2507: "io_bus_error", 0x2509: "sysmac_bus2_error",
    0x250A: "cpu_bus_unit_error", 0x250D: "sysmac_bus_number_duplication", 0x250F: "memory_error",
    0x2510: "sysmac_bus_terminator_missing", 0x2601: "no_protection", 0x2602: "incorrect_password",
    0x2604: "protected", 0x2605: "service_already_executing", 0x2606: "service_stopped",
    0x2607: "no_execution_right", 0x2608: "settings_not_complete", 0x2609: "necessary_items_not_set",
    0x260A: "number_already_defined", 0x260B: "error_will_not_clear", 0x3001: "no_access_right",
    0x4001: "service_aborted",
}  # fmt: skip
