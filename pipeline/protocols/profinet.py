"""PROFINET fields (`profinet.*`): DCP (ethertype 0x8892), RT alarms, and IO CM (DCE/RPC over UDP 34964)."""

from __future__ import annotations

from .base import Fields


class ProfinetDcpBlock(Fields):
    """One DCP block: option/suboption with its name and, where decoded, its value."""

    option: int
    suboption: int
    name: str  # ip_parameter, name_of_station, device_id, control_factory_reset, all_selector, ... (option_<o>_<s> otherwise)
    length: int | None = None
    qualifier: int | None = None  # Set: BlockQualifier (bit 0: permanent); responses: BlockInfo
    value: str | None = None  # station name, "ip/netmask/gateway", "vendor:device" as hex ids, hex otherwise
    error: int | None = None  # control response: BlockError (0 = ok)


class Profinet(Fields):
    service: str  # dcp | rt_alarm | io_cm
    frame_id: int | None = None  # RT frame id (DCP 0xFEFC-0xFEFF, alarms 0xFC01/0xFE01)
    # --- DCP
    dcp_service_id: int | None = None
    dcp_service_name: str | None = None  # get, set, identify, hello
    dcp_service_type: int | None = None
    dcp_service_type_name: str | None = None  # request, response, response_unsupported
    xid: int | None = None
    response_delay: int | None = None
    dcp_blocks: list[ProfinetDcpBlock] | None = None
    station_name: str | None = None  # DCP NameOfStation; IO CM: CMInitiatorStationName of an ARBlockReq
    ip: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    vendor_id: int | None = None  # DCP DeviceID block; IO CM: from the object UUID
    device_id: int | None = None
    instance: int | None = None  # IO CM object UUID instance
    type_of_station: str | None = None  # DCP DeviceVendorValue
    device_role: int | None = None
    control: str | None = None  # DCP Set control: start, stop, signal, factory_reset, reset_to_factory
    permanent: bool | None = None  # DCP Set: BlockQualifier bit 0 (stored across power cycles)
    # --- RT alarms
    rta_pdu_type: int | None = None  # 1 data, 2 nack, 3 ack, 4 err
    alarm_type: int | None = None  # data PDUs: AlarmType of the AlarmNotification (1 diagnosis, 2 process, 3 pull, 4 plug, ...)
    # --- IO CM (DCE/RPC connectionless)
    rpc_packet_type: int | None = None
    rpc_packet_type_name: str | None = None  # request, response, fault, ping, working, nocall, reject, ack, fack, cl_cancel, cancel_ack
    little_endian: bool | None = None
    object_uuid: str | None = None
    interface_uuid: str | None = None
    interface_name: str | None = None  # device, controller, supervisor, parameter_server
    activity_uuid: str | None = None
    server_boot_time: int | None = None
    sequence_number: int | None = None
    operation_number: int | None = None  # opnum
    operation_name: str | None = None  # connect, release, read, write, control, read_implicit
    fragment_number: int | None = None
    fragment: bool | None = None
    last_fragment: bool | None = None
    body_length: int | None = None
    pnio_status: str | None = None  # response: ErrorCode/ErrorDecode/ErrorCode1/ErrorCode2 as 8 hex digits (00000000 = ok)
    block_types: list[str] | None = None  # PNIO blocks of the body (ar_block_req, iod_write_req_header, iod_control_req, ...)
    ar_uuid: str | None = None
    ar_type: int | None = None
    session_key: int | None = None
    cm_initiator_mac: str | None = None
    control_command: str | None = None  # prm_end, application_ready, release, ready_for_companion, ready_for_rt_class_3, prm_begin (comma-joined)
    api: int | None = None
    slot: int | None = None
    subslot: int | None = None
    index: int | None = None  # record index of a read/write
    record_data_length: int | None = None
    request_frame: int | None = None  # on a response: frame of its request
