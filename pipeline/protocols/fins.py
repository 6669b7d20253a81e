"""Omron FINS fields (`fins.*`), over UDP 9600 and FINS/TCP 9600."""

from __future__ import annotations

from .base import Fields


class Fins(Fields):
    # ---- FINS/TCP (absent on UDP)
    tcp_command: int | None = None  # 0/1 node address data send, 2 frame send, 3 frame send error notification, 6 connection confirmation
    tcp_command_name: str | None = None
    tcp_length: int | None = None  # FINS/TCP length field (bytes after it)
    tcp_error_code: int | None = None
    tcp_error_name: str | None = None  # normal, header_not_fins, all_connections_in_use, ...
    client_node: int | None = None  # node address handshake
    server_node: int | None = None
    # ---- FINS header
    icf: int | None = None  # information control field
    gateway: bool | None = None  # ICF bit 7
    message_type: str | None = None  # command | response (ICF bit 6)
    response_required: bool | None = None  # ICF bit 0 clear
    gct: int | None = None  # gateway count
    dna: int | None = None  # destination network, node, unit
    da1: int | None = None
    da2: int | None = None
    sna: int | None = None  # source network, node, unit
    sa1: int | None = None
    sa2: int | None = None
    sid: int | None = None  # service id (pairs a response with its command)
    command_code: int | None = None  # MRC << 8 | SRC, e.g. 0x0101 memory area read
    command_name: str | None = None  # memory_area_read, run, stop, controller_data_read, file_delete, forced_set_reset, ...
    end_code: int | None = None  # response: MRES << 8 | SRES
    end_code_name: str | None = None  # normal_completion, wrong_plc_mode_run, incorrect_password, ...
    relay_error: bool | None = None  # end code bit 15
    # ---- parameters
    memory_area_code: int | None = None
    memory_area_name: str | None = None  # cio_word, dm_word, hr_bit, timer_counter_pv, ...
    memory_areas: list[str] | None = None  # multiple memory area read
    address: int | None = None  # beginning word (memory, parameter or program area)
    bit: int | None = None
    item_count: int | None = None  # elements / words / bytes / files / bits, by command
    destination_memory_area_name: str | None = None  # memory area transfer
    destination_address: int | None = None
    data_length: int | None = None  # bytes of data written (command) or read (response)
    parameter_area_code: int | None = None
    parameter_area_name: str | None = None  # pc_setup, io_tables, routing_tables, ...
    program_number: int | None = None
    run_mode: str | None = None  # run command: debug, monitor, run
    parameter: int | None = None  # command parameter byte/word (controller data read, file transfer, ...)
    clock: str | None = None  # clock read response / clock write command, ISO 8601
    disk_number: int | None = None
    file_name: str | None = None
    file_names: list[str] | None = None  # file delete (first 32)
    new_file_name: str | None = None  # file copy / name change
    set_reset: list[str] | None = None  # forced set/reset specifications: set, reset, forced_set, forced_reset, release
    # ---- response data
    controller_model: str | None = None  # controller data read (identity)
    controller_version: str | None = None
    status: int | None = None  # controller status read
    mode: int | None = None
    request_frame: int | None = None  # on a response: frame of its command
