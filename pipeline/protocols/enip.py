"""EtherNet/IP encapsulation (`enip.*`) and CIP (`cip.*`) fields."""

from __future__ import annotations

from typing import Literal

from .base import Fields


class EnipIdentity(Fields):
    """A CIP identity item (ListIdentity reply): what the asset inventory learns about a device."""

    encapsulation_version: int | None = None
    socket_address: str | None = None
    socket_port: int | None = None
    vendor_id: int | None = None
    vendor_name: str | None = None
    device_type: int | None = None
    device_type_name: str | None = None
    product_code: int | None = None
    revision: str | None = None  # "major.minor"
    status: int | None = None
    serial_number: str | None = None  # "0x" + 8 hex digits, as ICSNPP writes it
    product_name: str | None = None
    state: int | None = None
    state_name: str | None = None


class Enip(Fields):
    command_code: int | None = None  # None for CIP I/O (UDP 2222), which has no encapsulation header
    command_name: str | None = None
    message_type: Literal["request", "response"] | None = None
    length: int | None = None
    session_handle: int | None = None
    status_code: int | None = None
    status_name: str | None = None
    sender_context: str | None = None  # 16 hex digits
    options: int | None = None
    interface_handle: int | None = None  # SendRRData / SendUnitData
    timeout: int | None = None
    cpf_items: list[str] | None = None  # common packet format item type names, in order
    connection_id: int | None = None  # connected or sequenced address item
    sequence_number: int | None = None  # sequenced address item (CIP I/O)
    protocol_version: int | None = None  # RegisterSession, ListServices
    option_flags: int | None = None  # RegisterSession
    services: list[str] | None = None  # ListServices reply: service names
    capability_flags: int | None = None  # ListServices reply, first service
    identity: EnipIdentity | None = None  # ListIdentity reply
    sockaddr: str | None = None  # sockaddr info item(s): "ip:port"
    io_data_length: int | None = None  # CIP I/O: connected data length
    io_data: str | None = None  # CIP I/O: connected data, hex (first 256 bytes)
    request_frame: int | None = None  # on a reply: frame of its request


class Cip(Fields):
    service_code: int  # without the reply bit
    service_name: str
    message_type: Literal["request", "response"]
    sequence_count: int | None = None  # connected (class 3) transport sequence count
    class_id: int | None = None
    class_name: str | None = None
    instance_id: int | None = None
    attribute_id: int | None = None
    member_id: int | None = None
    connection_point: int | None = None
    tag: str | None = None  # ANSI extended symbolic segments joined with "."
    path: str | None = None  # the request path, readable
    status_code: int | None = None  # general status
    status_name: str | None = None
    extended_status: int | None = None  # first additional status word
    extended_status_name: str | None = None
    embedded_in: str | None = None  # multiple_service_packet / unconnected_send: this service was carried in one
    index: int | None = None  # position inside a multiple_service_packet (0-based)
    service_count: int | None = None  # multiple_service_packet: number of embedded services
    route_path: str | None = None  # unconnected_send: "port 1 link 0", ...
    o_t_connection_id: int | None = None  # forward_open / reply
    t_o_connection_id: int | None = None
    connection_serial: int | None = None
    originator_vendor_id: int | None = None
    originator_serial: int | None = None
    o_t_rpi: int | None = None  # microseconds
    t_o_rpi: int | None = None
    transport_class: int | None = None
    data_type: int | None = None  # Logix tag services: CIP data type code
    element_count: int | None = None
    data_length: int | None = None  # bytes of request/reply data after the path / status
    data: str | None = None  # that data, hex (first 256 bytes)
    request_frame: int | None = None  # on a reply: frame of its request
