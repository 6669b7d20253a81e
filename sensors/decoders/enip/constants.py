"""EtherNet/IP and CIP code tables (ODVA CIP Vol. 1 and Vol. 2), action mapping and the anomaly enum."""

from __future__ import annotations

import enum
from typing import Final

from ..wire import name_of

ENCAP_HEADER_LEN: Final = 24
# Above this an encapsulation length is not believed (the spec allows 65511, real traffic stays far below).
MAX_ENCAP_LENGTH: Final = 65511
MAX_PENDING: Final = 500
MAX_DATA_HEX: Final = 256  # bytes of undecoded CIP/I/O data kept as hex in an event

# ---------------------------------------------------------------- encapsulation

COMMANDS: Final[dict[int, str]] = {
    0x0000: "nop",
    0x0001: "reserved_0x0001",
    0x0004: "list_services",
    0x0063: "list_identity",
    0x0064: "list_interfaces",
    0x0065: "register_session",
    0x0066: "unregister_session",
    0x006F: "send_rr_data",
    0x0070: "send_unit_data",
    0x0072: "indicate_status",
    0x0073: "cancel",
}
CMD_NOP: Final = 0x0000
CMD_LIST_SERVICES: Final = 0x0004
CMD_LIST_IDENTITY: Final = 0x0063
CMD_LIST_INTERFACES: Final = 0x0064
CMD_REGISTER_SESSION: Final = 0x0065
CMD_UNREGISTER_SESSION: Final = 0x0066
CMD_SEND_RR_DATA: Final = 0x006F
CMD_SEND_UNIT_DATA: Final = 0x0070
# Commands that never get a reply (spec 2-3): nothing is left pending for them.
NO_REPLY_COMMANDS: Final = frozenset({CMD_NOP, CMD_UNREGISTER_SESSION, CMD_SEND_UNIT_DATA, 0x0072, 0x0073})

ENCAP_STATUS: Final[dict[int, str]] = {
    0x0000: "success",
    0x0001: "invalid_command",
    0x0002: "insufficient_memory",
    0x0003: "incorrect_data",
    0x0064: "invalid_session_handle",
    0x0065: "invalid_length",
    0x0069: "unsupported_protocol_version",
    0x006A: "encapsulated_cip_service_not_allowed",
}

CPF_ITEMS: Final[dict[int, str]] = {
    0x0000: "null_address",
    0x000C: "cip_identity",
    0x0086: "cip_security_information",
    0x0087: "enip_capability",
    0x0088: "enip_usage",
    0x00A1: "connected_address",
    0x00B1: "connected_data",
    0x00B2: "unconnected_data",
    0x0100: "list_services_response",
    0x8000: "sockaddr_info_o_t",
    0x8001: "sockaddr_info_t_o",
    0x8002: "sequenced_address",
}
ITEM_IDENTITY: Final = 0x000C
ITEM_CONNECTED_ADDRESS: Final = 0x00A1
ITEM_CONNECTED_DATA: Final = 0x00B1
ITEM_UNCONNECTED_DATA: Final = 0x00B2
ITEM_LIST_SERVICES: Final = 0x0100
ITEM_SOCKADDR_O_T: Final = 0x8000
ITEM_SOCKADDR_T_O: Final = 0x8001
ITEM_SEQUENCED_ADDRESS: Final = 0x8002

# ---------------------------------------------------------------- CIP services

REPLY_BIT: Final = 0x80

# Common services (Vol. 1 Appendix A), the same for every class.
COMMON_SERVICES: Final[dict[int, str]] = {
    0x01: "get_attributes_all",
    0x02: "set_attributes_all",
    0x03: "get_attribute_list",
    0x04: "set_attribute_list",
    0x05: "reset",
    0x06: "start",
    0x07: "stop",
    0x08: "create",
    0x09: "delete",
    0x0A: "multiple_service_packet",
    0x0D: "apply_attributes",
    0x0E: "get_attribute_single",
    0x10: "set_attribute_single",
    0x11: "find_next_object_instance",
    0x14: "error_response",
    0x15: "restore",
    0x16: "save",
    0x17: "nop",
    0x18: "get_member",
    0x19: "set_member",
    0x1A: "insert_member",
    0x1B: "remove_member",
    0x1C: "group_sync",
}
SC_RESET: Final = 0x05
SC_MSP: Final = 0x0A

CLASS_IDENTITY: Final = 0x01
CLASS_MESSAGE_ROUTER: Final = 0x02
CLASS_CONNECTION_MANAGER: Final = 0x06
CLASS_FILE: Final = 0x37
CLASS_NVS: Final = 0xA1

# Object-specific services (0x4B..0x63) mean different things per class.
CONNECTION_MANAGER_SERVICES: Final[dict[int, str]] = {
    0x4E: "forward_close",
    0x52: "unconnected_send",
    0x54: "forward_open",
    0x56: "get_connection_data",
    0x57: "search_connection_data",
    0x5A: "get_connection_owner",
    0x5B: "large_forward_open",
}
SC_FORWARD_CLOSE: Final = 0x4E
SC_UNCONNECTED_SEND: Final = 0x52
SC_FORWARD_OPEN: Final = 0x54
SC_LARGE_FORWARD_OPEN: Final = 0x5B

FILE_SERVICES: Final[dict[int, str]] = {
    0x4B: "initiate_upload",
    0x4C: "initiate_download",
    0x4D: "initiate_partial_read",
    0x4E: "initiate_partial_write",
    0x4F: "upload_transfer",
    0x50: "download_transfer",
    0x51: "clear_file",
}

# Rockwell Logix services on tag paths (symbolic segments, or instances of the symbol class 0x6B).
LOGIX_TAG_SERVICES: Final[dict[int, str]] = {
    0x4C: "read_tag",
    0x4D: "write_tag",
    0x4E: "read_modify_write_tag",
    0x52: "read_tag_fragmented",
    0x53: "write_tag_fragmented",
    0x55: "get_instance_attribute_list",
}
LOGIX_SYMBOL_CLASS: Final = 0x6B

GENERAL_STATUS: Final[dict[int, str]] = {
    0x00: "success",
    0x01: "connection_failure",
    0x02: "resource_unavailable",
    0x03: "invalid_parameter_value",
    0x04: "path_segment_error",
    0x05: "path_destination_unknown",
    0x06: "partial_transfer",
    0x07: "connection_lost",
    0x08: "service_not_supported",
    0x09: "invalid_attribute_value",
    0x0A: "attribute_list_error",
    0x0B: "already_in_requested_mode",
    0x0C: "object_state_conflict",
    0x0D: "object_already_exists",
    0x0E: "attribute_not_settable",
    0x0F: "privilege_violation",
    0x10: "device_state_conflict",
    0x11: "reply_data_too_large",
    0x12: "fragmentation_of_a_primitive_value",
    0x13: "not_enough_data",
    0x14: "attribute_not_supported",
    0x15: "too_much_data",
    0x16: "object_does_not_exist",
    0x17: "service_fragmentation_sequence_not_in_progress",
    0x18: "no_stored_attribute_data",
    0x19: "store_operation_failure",
    0x1A: "routing_failure_request_too_large",
    0x1B: "routing_failure_response_too_large",
    0x1C: "missing_attribute_list_entry_data",
    0x1D: "invalid_attribute_value_list",
    0x1E: "embedded_service_error",
    0x1F: "vendor_specific_error",
    0x20: "invalid_parameter",
    0x21: "write_once_value_already_written",
    0x22: "invalid_reply_received",
    0x23: "buffer_overflow",
    0x24: "invalid_message_format",
    0x25: "key_failure_in_path",
    0x26: "path_size_invalid",
    0x27: "unexpected_attribute_in_list",
    0x28: "invalid_member_id",
    0x29: "member_not_settable",
    0x2A: "group_2_only_server_general_failure",
    0x2B: "unknown_modbus_error",
    0x2C: "attribute_not_gettable",
}

# Connection Manager extended status (general status 0x01), the ones seen in practice.
CM_EXTENDED_STATUS: Final[dict[int, str]] = {
    0x0100: "connection_in_use_or_duplicate_forward_open",
    0x0103: "transport_class_and_trigger_combination_not_supported",
    0x0106: "ownership_conflict",
    0x0107: "target_connection_not_found",
    0x0108: "invalid_network_connection_parameter",
    0x0109: "invalid_connection_size",
    0x0110: "target_for_connection_not_configured",
    0x0111: "rpi_not_supported",
    0x0113: "out_of_connections",
    0x0114: "vendor_id_or_product_code_mismatch",
    0x0115: "product_type_mismatch",
    0x0116: "revision_mismatch",
    0x0117: "invalid_produced_or_consumed_application_path",
    0x0118: "invalid_or_inconsistent_configuration_application_path",
    0x0119: "non_listen_only_connection_not_opened",
    0x011A: "target_object_out_of_connections",
    0x0203: "connection_timed_out",
    0x0204: "unconnected_request_timed_out",
    0x0205: "parameter_error_in_unconnected_request",
    0x0206: "message_too_large_for_unconnected_send",
    0x0207: "unconnected_acknowledge_without_reply",
    0x0301: "no_buffer_memory_available",
    0x0302: "network_bandwidth_not_available",
    0x0303: "no_consumed_connection_id_filter_available",
    0x0311: "invalid_port",
    0x0312: "invalid_link_address",
    0x0315: "invalid_segment_in_connection_path",
    0x0316: "forward_close_connection_path_mismatch",
    0x031C: "miscellaneous",
}

# ---------------------------------------------------------------- objects

CLASS_NAMES: Final[dict[int, str]] = {
    0x01: "identity",
    0x02: "message_router",
    0x03: "devicenet",
    0x04: "assembly",
    0x05: "connection",
    0x06: "connection_manager",
    0x07: "register",
    0x08: "discrete_input_point",
    0x09: "discrete_output_point",
    0x0A: "analog_input_point",
    0x0B: "analog_output_point",
    0x0E: "presence_sensing",
    0x0F: "parameter",
    0x10: "parameter_group",
    0x12: "group",
    0x1D: "discrete_input_group",
    0x1E: "discrete_output_group",
    0x1F: "discrete_group",
    0x20: "analog_input_group",
    0x21: "analog_output_group",
    0x22: "analog_group",
    0x23: "position_sensor",
    0x24: "position_controller_supervisor",
    0x25: "position_controller",
    0x26: "block_sequencer",
    0x27: "command_block",
    0x28: "motor_data",
    0x29: "control_supervisor",
    0x2A: "ac_dc_drive",
    0x2B: "acknowledge_handler",
    0x2C: "overload",
    0x2D: "softstart",
    0x2E: "selection",
    0x30: "s_device_supervisor",
    0x31: "s_analog_sensor",
    0x32: "s_analog_actor",
    0x33: "s_single_stage_controller",
    0x34: "s_gas_calibration",
    0x35: "trip_point",
    0x37: "file",
    0x38: "s_partial_pressure",
    0x39: "safety_supervisor",
    0x3A: "safety_validator",
    0x3B: "safety_discrete_output_point",
    0x3C: "safety_discrete_output_group",
    0x3D: "safety_discrete_input_point",
    0x3E: "safety_discrete_input_group",
    0x3F: "safety_dual_channel_output",
    0x40: "s_sensor_calibration",
    0x41: "event_log",
    0x42: "motion_axis",
    0x43: "time_sync",
    0x44: "modbus",
    0x45: "originator_connection_list",
    0x46: "modbus_serial_link",
    0x47: "device_level_ring",
    0x48: "qos",
    0x4D: "target_connection_list",
    0x4E: "base_energy",
    0x4F: "electrical_energy",
    0x50: "non_electrical_energy",
    0x51: "base_switch",
    0x52: "snmp",
    0x53: "power_management",
    0x54: "rstp_bridge",
    0x55: "rstp_port",
    0x56: "parallel_redundancy_protocol",
    0x57: "prp_nodes_table",
    0x5D: "cip_security",
    0x5E: "ethernet_ip_security",
    0x5F: "certificate_management",
    0x67: "pccc",  # Rockwell: PCCC (DF1) commands tunnelled in CIP
    0x6B: "logix_symbol",  # Rockwell Logix: tags by instance
    0x6C: "logix_template",  # Rockwell Logix: structure definitions
    0x8B: "logix_wall_clock_time",  # Rockwell Logix controller clock
    0x8E: "logix_controller",  # Rockwell Logix: the target of controller Stop/Start (public PoCs, openics captures)
    0xA1: "non_volatile_storage",  # firmware update (ControlFLASH)
    0xF0: "controlnet",
    0xF1: "controlnet_keeper",
    0xF2: "controlnet_scheduling",
    0xF3: "connection_configuration",
    0xF4: "port",
    0xF5: "tcp_ip_interface",
    0xF6: "ethernet_link",
    0xF7: "componet_link",
    0xF8: "componet_repeater",
}

# Rockwell Logix classes the programming software creates/deletes instances of when it downloads a
# project (programs, routines, tasks, tags, ...). Seen in the Digital Bond openics EIP-SoftwareDownload
# capture: Create (0x08) on 0x68, 0x69, 0x6D, 0x70, 0x72, 0x7E, 0xAC; absent from the upload capture.
LOGIX_PROGRAM_CLASSES: Final = frozenset(range(0x68, 0x100)) - {0x6B, 0x6C, 0x8B, 0x8E, 0xA1, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8}
# Rockwell Logix class whose 0x4F/0x50 services move program (routine) blocks: 0x4F reads a block
# (upload: 19 in EIP-SoftwareUpload), 0x50 writes one (download: 8 in EIP-SoftwareDownload, none in
# the upload capture). A heuristic from public captures, not from a Rockwell specification.
LOGIX_CODE_CLASS: Final = 0x6A
LOGIX_READ_BLOCK: Final = 0x4F
LOGIX_WRITE_BLOCK: Final = 0x50

VENDORS: Final[dict[int, str]] = {
    1: "Rockwell Automation/Allen-Bradley",
    2: "Namco Controls Corp.",
    3: "Honeywell Inc.",
    4: "Parker Hannifin Corp.",
    5: "Rockwell Automation/Reliance Elec.",
    7: "SMC Corporation",
    8: "Molex Incorporated",
    12: "Banner Engineering Corp.",
    26: "Festo Corporation",
    40: "WAGO Corporation",
    44: "Yaskawa America, Inc.",
    46: "ABB, Inc.",
    47: "Omron Corporation",
    48: "TURCK",
    57: "Pepperl+Fuchs",
    68: "Eaton Electrical",
    82: "Mitsubishi Electric Automation, Inc.",
    83: "OPTO 22",
    90: "HMS Networks",
    108: "Beckhoff Automation",
    109: "National Instruments",
    145: "Siemens Energy & Automation/Drives",
    161: "Mitsubishi Electric Corporation",
    243: "Schneider Electric",
    250: "Yokogawa Electric Corporation",
    255: "Bosch Rexroth",
    283: "Hilscher GmbH",
    309: "ProSoft Technology",
    315: "SEW Eurodrive GmbH",
    345: "Endress + Hauser",
    356: "FANUC Robotics America",
    367: "Keyence Corporation",
}

DEVICE_TYPES: Final[dict[int, str]] = {
    0x00: "Generic Device",
    0x02: "AC Drive",
    0x03: "Motor Overload",
    0x04: "Limit Switch",
    0x05: "Inductive Proximity Switch",
    0x06: "Photoelectric Sensor",
    0x07: "General Purpose Discrete I/O",
    0x09: "Resolver",
    0x0C: "Communications Adapter",
    0x0E: "Programmable Logic Controller",
    0x10: "Position Controller",
    0x13: "DC Drive",
    0x15: "Contactor",
    0x16: "Motor Starter",
    0x17: "Soft Start",
    0x18: "Human-Machine Interface",
    0x1A: "Mass Flow Controller",
    0x1B: "Pneumatic Valve",
    0x1C: "Vacuum Pressure Gauge",
    0x1D: "Process Control Value",
    0x1E: "Residual Gas Analyzer",
    0x1F: "DC Power Generator",
    0x20: "RF Power Generator",
    0x21: "Turbomolecular Vacuum Pump",
    0x22: "Encoder",
    0x23: "Safety Discrete I/O Device",
    0x24: "Fluid Flow Controller",
    0x25: "CIP Motion Drive",
    0x26: "CompoNet Repeater",
    0x27: "Mass Flow Controller Enhanced",
    0x28: "CIP Modbus Device",
    0x29: "CIP Modbus Translator",
    0x2A: "Safety Analog I/O Device",
    0x2B: "Generic Device (keyable)",
    0x2C: "Managed Switch",
}

DEVICE_STATES: Final[dict[int, str]] = {
    0: "nonexistent",
    1: "device_self_testing",
    2: "standby",
    3: "operational",
    4: "major_recoverable_fault",
    5: "major_unrecoverable_fault",
    255: "default",
}


class AnomalyCode(str, enum.Enum):
    """Every anomaly the EtherNet/IP decoder reports (`anomaly.code`); rules match these strings."""

    INVALID_LENGTH = "invalid_length"  # encapsulation length implausible, or body shorter than a field needs
    UNKNOWN_COMMAND = "unknown_command"  # encapsulation command not defined by the spec
    INVALID_CPF = "invalid_cpf"  # common packet format items do not fit their length
    INVALID_CIP = "invalid_cip"  # CIP message router request/response does not fit (path size, embedded offsets)
    INVALID_PATH = "invalid_path"  # unknown or truncated EPATH segment
    ERROR_STATUS = "error_status"  # encapsulation status != 0 on a request (where it must be 0)
    UNSOLICITED_RESPONSE = "unsolicited_response"  # reply with no pending request
    FLOODED = "flooded"  # more than MAX_PENDING unanswered requests; oldest dropped
    TRUNCATED_PDU = "truncated_pdu"  # bytes lost or connection ended inside a message
    NOT_ENIP = "not_enip"  # too many bad headers in a row: decoding of that direction stopped
    DECODER_ERROR = "decoder_error"  # an internal error, reported rather than raised


def command_name(cmd: int) -> str:
    return name_of(COMMANDS, cmd, hex_digits=4)


def encap_status_name(st: int) -> str:
    return name_of(ENCAP_STATUS, st, hex_digits=8)


def item_name(t: int) -> str:
    return name_of(CPF_ITEMS, t, hex_digits=4)


def class_name(c: int | None) -> str | None:
    if c is None:
        return None
    name = CLASS_NAMES.get(c)
    if name:
        return name
    return f"vendor_specific_0x{c:02x}" if 0x64 <= c <= 0xC7 or 0x300 <= c <= 0x4FF else f"unknown_0x{c:02x}"


def general_status_name(st: int) -> str:
    return GENERAL_STATUS.get(st) or (f"vendor_specific_0x{st:02x}" if st >= 0xD0 else f"unknown_0x{st:02x}")


def service_name(sc: int, class_id: int | None, symbolic: bool) -> str:
    """The service name, resolving object-specific codes (0x4B..0x63) by the class addressed."""
    sc &= 0x7F
    if sc < 0x4B:
        return name_of(COMMON_SERVICES, sc, "reserved", hex_digits=2)
    if class_id == CLASS_CONNECTION_MANAGER and sc in CONNECTION_MANAGER_SERVICES:
        return CONNECTION_MANAGER_SERVICES[sc]
    if class_id == CLASS_FILE and sc in FILE_SERVICES:
        return FILE_SERVICES[sc]
    if (symbolic or class_id == LOGIX_SYMBOL_CLASS) and sc in LOGIX_TAG_SERVICES:
        return LOGIX_TAG_SERVICES[sc]
    return f"object_specific_0x{sc:02x}"


_READ_NAMES: Final = frozenset({
    "get_attributes_all", "get_attribute_list", "get_attribute_single", "find_next_object_instance", "get_member",
    "read_tag", "read_tag_fragmented", "get_instance_attribute_list", "get_connection_owner", "get_connection_data",
    "search_connection_data", "initiate_partial_read",
})
_WRITE_NAMES: Final = frozenset({
    "set_attributes_all", "set_attribute_list", "set_attribute_single", "apply_attributes", "restore", "save",
    "set_member", "insert_member", "remove_member", "create", "delete", "write_tag", "write_tag_fragmented",
    "initiate_partial_write", "clear_file",
})


def action_of(sc: int, name: str, class_id: int | None) -> str | None:
    """The protocol-independent action of a CIP request (see docs/protocols/cip.md for the heuristics)."""
    sc &= 0x7F
    if class_id == CLASS_NVS and sc >= 0x4B:
        return "firmware_update"
    if class_id == CLASS_FILE:
        if name in ("initiate_upload", "upload_transfer"):
            return "program_upload"
        if name in ("initiate_download", "download_transfer"):
            return "program_download"
    if class_id == LOGIX_CODE_CLASS and sc == LOGIX_READ_BLOCK:
        return "program_upload"
    if class_id == LOGIX_CODE_CLASS and sc == LOGIX_WRITE_BLOCK:
        return "program_download"
    if name in ("create", "delete") and class_id in LOGIX_PROGRAM_CLASSES:
        return "program_download"
    if name == "reset":
        return "restart"
    if name in ("start", "stop"):
        return "mode_change"
    if name in ("forward_open", "large_forward_open"):
        return "session"
    if name == "forward_close":
        return "disconnect"
    if name == "nop":
        return "keepalive"
    if name in ("multiple_service_packet", "unconnected_send"):
        return None  # containers: each embedded request carries its own action
    if name in _READ_NAMES:
        return "identify" if class_id == CLASS_IDENTITY else "read"
    if name in _WRITE_NAMES:
        return "time_sync" if class_id == 0x8B else "write"
    if name == "read_modify_write_tag":
        return "read_write"
    return "unknown"


COMMAND_ACTIONS: Final[dict[int, str]] = {
    CMD_NOP: "keepalive",
    CMD_LIST_SERVICES: "identify",
    CMD_LIST_IDENTITY: "identify",
    CMD_LIST_INTERFACES: "identify",
    CMD_REGISTER_SESSION: "session",
    CMD_UNREGISTER_SESSION: "disconnect",
}
