"""DNP3 fields (`dnp3.*`): link layer, transport, application layer, object headers and decoded points."""

from __future__ import annotations

import datetime as dt

from .base import Fields


class Dnp3File(Fields):
    """Decoded g70 file-control object (command, status, transport, descriptor, authentication)."""

    name: str | None = None  # file name (g70v3 command, v7 descriptor, v8 specification string)
    user_name: str | None = None  # g70v2 authentication (the password is never kept)
    handle: int | None = None
    size: int | None = None
    mode: int | None = None  # g70v3: 0 null, 1 read, 2 write, 3 append
    mode_name: str | None = None
    permissions: int | None = None
    request_id: int | None = None
    max_block_size: int | None = None
    block_number: int | None = None  # g70v5/v6 (without the last-block bit)
    last_block: bool | None = None
    data_length: int | None = None  # g70v5: bytes of file data carried
    status_code: int | None = None  # g70v4/v6
    status_name: str | None = None
    created: dt.datetime | None = None
    file_type: int | None = None  # g70v7: 0 directory, 1 simple file


class Dnp3Point(Fields):
    """One decoded object instance (only for groups whose data matters for security; see docs)."""

    index: int | None = None  # point index (from the index prefix or the range)
    value: int | float | None = None  # analog output value, time delay, IIN bit, ...
    flags: int | None = None  # quality flags / analog output status byte
    time: dt.datetime | None = None  # g50/g51 absolute time (UTC)
    interval: int | None = None  # g50v2/v4 interval
    control_code: int | None = None  # g12 CROB control byte
    operation_type: int | None = None
    operation_name: str | None = None  # nul, pulse_on, pulse_off, latch_on, latch_off
    trip_close_code: int | None = None
    trip_close_name: str | None = None  # nul, close, trip
    clear: bool | None = None
    queue: bool | None = None
    count: int | None = None
    on_time: int | None = None  # ms
    off_time: int | None = None  # ms
    status_code: int | None = None  # command status (g12/g41) or authentication error code (g120v7)
    status_name: str | None = None
    octets: str | None = None  # hex of g110-113 strings; g0 attributes of other data types
    data_type: str | None = None  # g0 device attribute data type: vstr, uint, int, flt, ostr, bstr, time, uncd, u8bs8list, ...
    text: str | None = None  # g0 device attribute string (manufacturer, model, versions, serial, names)
    user: int | None = None  # g120 user number
    file: Dnp3File | None = None


class Dnp3Object(Fields):
    group: int
    variation: int
    name: str | None = None
    qualifier: int | None = None
    prefix_code: int | None = None
    range_code: int | None = None
    range_start: int | None = None
    range_stop: int | None = None
    count: int | None = None
    points: list[Dnp3Point] | None = None
    points_truncated: bool | None = None  # more points than decoded (MAX_POINTS)


class Dnp3(Fields):
    source: int  # link-layer source address
    destination: int  # link-layer destination address
    function_code: int | None = None  # application function code (None: link-only frame)
    function_name: str | None = None
    message_type: str | None = None  # request | response | unsolicited_response | link
    link_function_code: int | None = None
    link_function_name: str | None = None
    link_dir: bool | None = None  # DIR: sent by the master
    link_prm: bool | None = None  # PRM: primary (initiating) frame
    link_fcb: bool | None = None
    link_fcv: bool | None = None
    link_dfc: bool | None = None
    link_length: int | None = None
    transport_sequence: int | None = None  # of the fragment's first segment
    transport_segments: int | None = None  # link frames the fragment was reassembled from
    length: int | None = None  # application fragment bytes
    app_fir: bool | None = None
    app_fin: bool | None = None
    app_con: bool | None = None
    app_uns: bool | None = None
    sequence: int | None = None  # application sequence number (pairs a response with its request)
    iin: int | None = None  # internal indications, IIN1 << 8 | IIN2
    iin_names: list[str] | None = None
    objects: list[Dnp3Object] | None = None
    object_groups: list[int] | None = None  # distinct groups, in order (flat, for rules)
    object_types: list[str] | None = None  # distinct "g<group>v<variation>", in order
    objects_truncated: bool | None = None
    request_frame: int | None = None  # on a response: frame of its request
