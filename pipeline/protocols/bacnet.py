"""BACnet/IP fields (`bacnet.*`): BVLC, NPDU, APDU and the parameters of the key services."""

from __future__ import annotations

from .base import Fields


class BacnetProperty(Fields):
    object_type: int | None = None
    object_type_name: str | None = None
    instance_number: int | None = None
    property_id: int | None = None
    property_name: str | None = None
    array_index: int | None = None
    value: str | None = None  # application-tagged value(s) rendered as text, ";"-separated
    value_count: int | None = None  # elements of value when more than one (counted before value is cut)
    priority: int | None = None  # write priority 1..16


class Bacnet(Fields):
    bvlc_function: int
    bvlc_function_name: str | None = None
    bvlc_length: int | None = None
    bvlc_result_code: int | None = None  # BVLC-Result
    bvlc_result_name: str | None = None
    originating_address: str | None = None  # Forwarded-NPDU: "ip:port" of the original sender
    # NPDU
    npdu_version: int | None = None
    npdu_control: int | None = None
    expecting_reply: bool | None = None
    network_priority: int | None = None
    dnet: int | None = None
    dadr: str | None = None  # hex
    snet: int | None = None
    sadr: str | None = None
    hop_count: int | None = None
    network_message_type: int | None = None
    network_message_name: str | None = None
    networks: list[int] | None = None  # network numbers of router messages
    # APDU
    apdu_type: int | None = None
    apdu_type_name: str | None = None
    message_type: str | None = None  # request | response
    invoke_id: int | None = None
    segmented: bool | None = None
    more_follows: bool | None = None
    segmented_response_accepted: bool | None = None
    max_segments: int | None = None
    max_apdu: int | None = None
    sequence_number: int | None = None
    window_size: int | None = None
    segment_count: int | None = None  # final segment of a reassembled message: its number of segments
    negative_ack: bool | None = None  # segment ack
    service: int | None = None  # service choice
    service_name: str | None = None  # read_property, who_is, ...
    # the first object/property addressed (all of them in `properties`)
    object_type: int | None = None
    object_type_name: str | None = None
    instance_number: int | None = None
    property_id: int | None = None
    property_name: str | None = None
    array_index: int | None = None
    value: str | None = None
    value_count: int | None = None
    priority: int | None = None
    properties: list[BacnetProperty] | None = None
    property_count: int | None = None
    # discovery
    low_limit: int | None = None  # Who-Is / Who-Has range
    high_limit: int | None = None
    device_instance: int | None = None  # I-Am / I-Have device
    max_apdu_accepted: int | None = None
    segmentation_supported: str | None = None
    vendor_id: int | None = None
    vendor_name: str | None = None
    object_name: str | None = None  # Who-Has / I-Have
    # device control
    time_duration: int | None = None  # DeviceCommunicationControl minutes
    enable_disable: str | None = None  # enable | disable | disable-initiation
    reinitialize_state: str | None = None  # coldstart, warmstart, ...
    password_present: bool | None = None  # never the password itself
    # files
    file_start: int | None = None  # atomic read/write file: start position or record
    file_length: int | None = None  # octets (or records) requested / written / returned
    end_of_file: bool | None = None
    # time synchronization
    time: str | None = None
    # results
    error_class: int | None = None
    error_class_name: str | None = None
    error_code: int | None = None
    error_code_name: str | None = None
    reject_reason: int | None = None
    reject_reason_name: str | None = None
    abort_reason: int | None = None
    abort_reason_name: str | None = None
    from_server: bool | None = None  # segment ack / abort sent by the server
    request_frame: int | None = None  # on a response: frame of its request
