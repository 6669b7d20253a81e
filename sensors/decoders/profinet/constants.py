"""PROFINET constants: ethertype, RT frame ids, DCP services/options, DCE/RPC and PNIO IO CM codes."""

from __future__ import annotations

from typing import Final

ETHERTYPE: Final = 0x8892
IO_CM_PORT: Final = 34964
MAX_PENDING: Final = 500  # IO CM requests awaiting their response, per flow
MAX_BLOCKS: Final = 64  # DCP blocks / PNIO blocks decoded per frame

# RT frame ids (IEC 61158-6-10): DCP, alarms; cyclic data (0x0100-0xFBFF) and PTCP are not events.
FRAME_HELLO, FRAME_GET_SET, FRAME_IDENT_REQ, FRAME_IDENT_RES = 0xFEFC, 0xFEFD, 0xFEFE, 0xFEFF
DCP_FRAMES: Final = frozenset({FRAME_HELLO, FRAME_GET_SET, FRAME_IDENT_REQ, FRAME_IDENT_RES})
ALARM_FRAMES: Final = frozenset({0xFC01, 0xFE01})

DCP_SERVICES: Final = {3: "get", 4: "set", 5: "identify", 6: "hello"}
DCP_SERVICE_TYPES: Final = {0: "request", 1: "response", 5: "response_unsupported"}
GET, SET, IDENTIFY, HELLO = 3, 4, 5, 6

DCP_OPTIONS: Final = {
    (1, 1): "mac_address", (1, 2): "ip_parameter", (1, 3): "full_ip_suite",
    (2, 1): "type_of_station", (2, 2): "name_of_station", (2, 3): "device_id", (2, 4): "device_role",
    (2, 5): "device_options", (2, 6): "alias_name", (2, 7): "device_instance", (2, 8): "oem_device_id",
    (2, 9): "standard_gateway", (2, 10): "rsi_properties",
    (3, 12): "dhcp_host_name", (3, 61): "dhcp_client_id", (3, 255): "dhcp_control",
    (5, 1): "control_start", (5, 2): "control_stop", (5, 3): "control_signal", (5, 4): "control_response",
    (5, 5): "control_factory_reset", (5, 6): "control_reset_to_factory",
    (6, 1): "device_initiative", (0xFF, 0xFF): "all_selector",
}
CONTROLS: Final = {1: "start", 2: "stop", 3: "signal", 5: "factory_reset", 6: "reset_to_factory"}

# DCE/RPC connectionless (C706 chapter 12).
RPC_TYPES: Final = {0: "request", 1: "ping", 2: "response", 3: "fault", 4: "working", 5: "nocall", 6: "reject",
                    7: "ack", 8: "cl_cancel", 9: "fack", 10: "cancel_ack"}
REQUEST, RESPONSE, FAULT = 0, 2, 3
PNIO_UUID_TAIL: Final = "-6c97-11d1-8271-"  # DEA0000x-6C97-11D1-8271-...: object and interface UUIDs of PNIO
INTERFACES: Final = {
    "dea00001-6c97-11d1-8271-00a02442df7d": "device",
    "dea00002-6c97-11d1-8271-00a02442df7d": "controller",
    "dea00003-6c97-11d1-8271-00a02442df7d": "supervisor",
    "dea00004-6c97-11d1-8271-00a02442df7d": "parameter_server",
}
OPERATIONS: Final = {0: "connect", 1: "release", 2: "read", 3: "write", 4: "control", 5: "read_implicit"}
ACTIONS: Final = {"connect": "connect", "release": "release", "read": "read", "read_implicit": "read", "write": "write", "control": "control"}

BLOCK_TYPES: Final = {
    0x0008: "iod_write_req_header", 0x0009: "iod_read_req_header", 0x8008: "iod_write_res_header", 0x8009: "iod_read_res_header",
    0x0101: "ar_block_req", 0x8101: "ar_block_res", 0x0102: "iocr_block_req", 0x8102: "iocr_block_res",
    0x0103: "alarm_cr_block_req", 0x8103: "alarm_cr_block_res", 0x0104: "expected_submodule_block_req",
    0x8104: "module_diff_block", 0x0106: "mcr_block_req", 0x8106: "ar_server_block",
    0x0110: "iod_control_req_prm_end", 0x8110: "iod_control_res_prm_end",
    0x0111: "iod_control_req_plug_prm_end", 0x8111: "iod_control_res_plug_prm_end",
    0x0112: "iox_control_req_application_ready", 0x8112: "iox_control_res_application_ready",
    0x0113: "iox_control_req_plug_application_ready", 0x8113: "iox_control_res_plug_application_ready",
    0x0114: "release_block_req", 0x8114: "release_block_res",
    0x0116: "iox_control_req_ready_for_companion", 0x8116: "iox_control_res_ready_for_companion",
    0x0117: "iox_control_req_ready_for_rt_class_3", 0x8117: "iox_control_res_ready_for_rt_class_3",
    0x0118: "prm_begin_req", 0x8118: "prm_begin_res", 0x0119: "submodule_list_block",
    0x0200: "prm_server_block_req", 0x0300: "ar_rpc_block_req", 0x8300: "ar_rpc_block_res",
    0x0400: "multiple_block_header",
}
CONTROL_BLOCKS: Final = frozenset({0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0116, 0x0117, 0x0118,
                                   0x8110, 0x8111, 0x8112, 0x8113, 0x8114, 0x8116, 0x8117, 0x8118})
CONTROL_COMMANDS: Final = {0x0001: "prm_end", 0x0002: "application_ready", 0x0004: "release", 0x0008: "done",
                           0x0010: "ready_for_companion", 0x0020: "ready_for_rt_class_3", 0x0040: "prm_begin"}


class AnomalyCode:
    TRUNCATED = "truncated_pdu"
    INVALID_HEADER = "invalid_header"
    UNSOLICITED_RESPONSE = "unsolicited_response"
    FLOODED = "flooded"
