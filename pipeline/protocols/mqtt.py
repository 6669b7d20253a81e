"""MQTT 3.1, 3.1.1 and 5 fields (`mqtt.*`). Passwords and authentication data are never stored."""

from __future__ import annotations

from .base import Fields


class MqttTopic(Fields):
    """A topic filter of SUBSCRIBE/UNSUBSCRIBE."""

    topic: str
    qos: int | None = None  # requested maximum QoS (SUBSCRIBE)
    wildcard: bool = False  # contains `#` or `+`
    no_local: bool | None = None  # MQTT 5 subscription options
    retain_as_published: bool | None = None
    retain_handling: int | None = None


class Mqtt(Fields):
    message_type: int  # control packet type 1..15
    message_type_name: str  # connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback, ...
    protocol_version: int | None = None  # 3 (3.1), 4 (3.1.1), 5; from CONNECT, carried on the whole connection
    dup: bool | None = None  # fixed header flags
    qos: int | None = None
    retain: bool | None = None
    remaining_length: int | None = None
    packet_id: int | None = None  # packet (message) identifier
    # CONNECT
    protocol_name: str | None = None  # MQTT, MQIsdp
    clean_session: bool | None = None  # clean start in MQTT 5
    keepalive: int | None = None  # seconds
    client_id: str | None = None
    username_present: bool | None = None
    username: str | None = None
    password_present: bool | None = None  # the password itself is never stored
    will_flag: bool | None = None
    will_qos: int | None = None
    will_retain: bool | None = None
    will_topic: str | None = None
    will_message: str | None = None  # preview like `payload`
    will_properties: dict[str, int | str] | None = None
    # CONNACK and MQTT 5 reason codes
    session_present: bool | None = None
    reason_code: int | None = None  # CONNACK return code (3.x) / reason code (5)
    reason_name: str | None = None
    reason_codes: list[int] | None = None  # SUBACK granted QoS / return codes, MQTT 5 UNSUBACK reason codes
    # PUBLISH
    topic: str | None = None
    payload_length: int | None = None
    payload: str | None = None  # first 64 octets: UTF-8 text when it decodes, else hex (see payload_encoding)
    payload_encoding: str | None = None  # utf8 | hex
    payload_truncated: bool | None = None  # payload longer than the preview
    # SUBSCRIBE / UNSUBSCRIBE
    topics: list[MqttTopic] | None = None
    wildcard: str | None = None  # broadest wildcard among the filters: "#" (multi-level) or "+" (single-level)
    # MQTT 5
    properties: dict[str, int | str] | None = None  # by name; binary values as hex; authentication_data as its length
    user_properties: dict[str, str] | None = None
    request_frame: int | None = None  # on CONNACK/PUBACK/PUBREC/PUBCOMP/SUBACK/UNSUBACK/PINGRESP: frame of its request
