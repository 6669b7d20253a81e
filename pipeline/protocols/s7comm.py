"""S7comm fields (`s7comm.*`) over TPKT/COTP; COTP connection PDUs and S7comm-plus are recognised under the same name."""

from __future__ import annotations

from .base import Fields


class S7Item(Fields):
    """One variable of a read/write var job (address from the request, return code from the response)."""

    syntax_id: int | None = None  # 0x10 S7ANY; others (DBREAD, NCK, 1200SYM) keep only this and `data`
    syntax_name: str | None = None
    transport_size: int | None = None
    transport_size_name: str | None = None  # bit, byte, word, int, dword, real, counter, timer, ...
    length: int | None = None  # number of elements of transport_size
    db_number: int | None = None
    area: int | None = None
    area_name: str | None = None  # inputs, outputs, flags, db, di, local, counters/timers, ...
    byte_address: int | None = None
    bit_address: int | None = None
    address: str | None = None  # readable: "DB1.DBX 0.0 BYTE 8", "M 16.0 BYTE 4", "Q 0.3 BIT 1"
    return_code: int | None = None  # response (write: per item; read: per item with its data)
    return_code_name: str | None = None
    data_length: int | None = None  # bytes of value (read response, write request)
    data: str | None = None  # hex of the value, first 64 bytes


class S7comm(Fields):
    protocol: str  # "s7comm", "s7comm-plus" or "cotp" (connection PDUs)
    # ---- COTP (CR/CC/DR/DC/ER, on `protocol: cotp` events)
    cotp_pdu_code: int | None = None  # 0x0e CR, 0x0d CC, 0x08 DR, 0x0c DC, 0x07 ER, ...
    cotp_pdu_name: str | None = None
    src_ref: int | None = None
    dst_ref: int | None = None
    cotp_class: int | None = None
    src_tsap: str | None = None  # hex
    dst_tsap: str | None = None  # hex
    rack: int | None = None  # from the S7 remote TSAP (the PLC's): byte 2 = rack*32 + slot
    slot: int | None = None
    connection_type: int | None = None  # first TSAP byte: 1 PG, 2 OP, 3 S7 basic
    tpdu_size: int | None = None
    disconnect_reason: int | None = None
    # ---- S7comm header
    rosctr: int | None = None  # 1 job, 2 ack, 3 ack_data, 7 userdata
    rosctr_name: str | None = None
    pdu_reference: int | None = None
    parameter_length: int | None = None
    data_length: int | None = None
    error_class: int | None = None  # ack/ack_data header
    error_class_name: str | None = None
    error_code: int | None = None
    # ---- job / ack_data function
    function_code: int | None = None
    function_name: str | None = None
    item_count: int | None = None
    items: list[S7Item] | None = None
    areas: list[str] | None = None  # distinct area names of the items, for rules (inputs, outputs, flags, db, ...)
    max_amq_calling: int | None = None  # setup communication
    max_amq_called: int | None = None
    pdu_size: int | None = None
    function_status: int | None = None  # block transfer: bit 0 = more data follows
    session_id: int | None = None  # block transfer upload/download id
    filename: str | None = None  # e.g. "_0800001P"
    block_type: str | None = None  # OB, DB, SDB, FC, SFC, FB, SFB
    block_number: int | None = None
    block_name: str | None = None  # "OB1", "DB10"
    destination_filesystem: str | None = None  # passive, active, active_and_passive
    block_length: int | None = None  # upload/download: announced length (load memory)
    mc7_length: int | None = None
    transfer_length: int | None = None  # bytes carried by this download block / upload response
    pi_service: str | None = None  # P_PROGRAM, _INSE, _DELE, _MODU, _GARB, ...
    pi_parameters: list[str] | None = None  # PI parameter block: block file names or "C" (cold start)
    start_mode: str | None = None  # P_PROGRAM: "hot" or "cold"
    # ---- userdata
    userdata_type: str | None = None  # request, response, push
    function_group: int | None = None
    function_group_name: str | None = None  # mode_transition, programmer_commands, cpu_functions, security, ...
    subfunction_code: int | None = None
    subfunction_name: str | None = None  # read_szl, plc_password, set_clock, list_blocks, ...
    sequence_number: int | None = None  # userdata sequence / S7comm-plus sequence number
    data_unit_reference: int | None = None
    last_data_unit: bool | None = None
    userdata_error_code: int | None = None
    userdata_error_name: str | None = None
    return_code: int | None = None  # userdata data part return code (0xff success)
    return_code_name: str | None = None
    szl_id: int | None = None
    szl_id_name: str | None = None
    szl_index: int | None = None
    time: str | None = None  # time functions: the clock value (ISO 8601, PLC local time)
    # ---- device identity (SZL 0x0011 / 0x001C responses)
    module_order_number: str | None = None  # MLFB, e.g. "6ES7 315-2EH14-0AB0"
    firmware_version: str | None = None  # e.g. "V3.2.6"
    hardware_version: str | None = None
    system_name: str | None = None  # automation system name
    module_name: str | None = None
    plant_name: str | None = None  # plant designation
    module_type_name: str | None = None
    serial_number: str | None = None
    copyright: str | None = None
    # ---- S7comm-plus
    version: int | None = None
    opcode: int | None = None  # 0x31 request, 0x32 response, 0x33 notification
    opcode_name: str | None = None
    s7plus_session_id: int | None = None
    integrity: bool | None = None  # integrity part (digest) present (protocol V2/V3)
    fragment: bool | None = None  # S7comm-plus: first fragment of a message spread over several PDUs
    # ---- pairing
    request_frame: int | None = None  # on a response: frame of its request
