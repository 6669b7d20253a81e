"""MQTT code tables: control packet types, return/reason codes, MQTT 5 properties, anomalies, actions."""

from __future__ import annotations

import enum
from typing import Final

from ..wire import name_of

MAX_MESSAGE: Final = 1 << 20  # larger messages are decoded from their first octets, the rest skipped
PAYLOAD_PREVIEW: Final = 64
MAX_PENDING: Final = 500

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

TYPE_NAMES: Final[dict[int, str]] = {
    1: "connect", 2: "connack", 3: "publish", 4: "puback", 5: "pubrec", 6: "pubrel", 7: "pubcomp",
    8: "subscribe", 9: "suback", 10: "unsubscribe", 11: "unsuback", 12: "pingreq", 13: "pingresp",
    14: "disconnect", 15: "auth",
}  # fmt: skip

# Packets whose fixed-header flags are fixed by the spec (everything but PUBLISH): 0b0010 or 0.
FIXED_FLAGS: Final = {t: (2 if t in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) else 0) for t in TYPE_NAMES if t != PUBLISH}

# Response type -> the request type it answers (pairing by packet id, or by order for CONNECT/PINGREQ).
ANSWERS: Final = {CONNACK: CONNECT, PUBACK: PUBLISH, PUBREC: PUBLISH, PUBREL: PUBREC, PUBCOMP: PUBREL, SUBACK: SUBSCRIBE, UNSUBACK: UNSUBSCRIBE, PINGRESP: PINGREQ}

CONNACK_V3: Final = {
    0: "accepted", 1: "unacceptable_protocol_version", 2: "identifier_rejected", 3: "server_unavailable",
    4: "bad_username_or_password", 5: "not_authorized",
}  # fmt: skip

REASONS_V5: Final = {
    0x00: "success", 0x01: "granted_qos_1", 0x02: "granted_qos_2", 0x04: "disconnect_with_will_message",
    0x10: "no_matching_subscribers", 0x11: "no_subscription_existed", 0x18: "continue_authentication",
    0x19: "re_authenticate", 0x80: "unspecified_error", 0x81: "malformed_packet", 0x82: "protocol_error",
    0x83: "implementation_specific_error", 0x84: "unsupported_protocol_version", 0x85: "client_identifier_not_valid",
    0x86: "bad_user_name_or_password", 0x87: "not_authorized", 0x88: "server_unavailable", 0x89: "server_busy",
    0x8A: "banned", 0x8B: "server_shutting_down", 0x8C: "bad_authentication_method", 0x8D: "keep_alive_timeout",
    0x8E: "session_taken_over", 0x8F: "topic_filter_invalid", 0x90: "topic_name_invalid",
    0x91: "packet_identifier_in_use", 0x92: "packet_identifier_not_found", 0x93: "receive_maximum_exceeded",
    0x94: "topic_alias_invalid", 0x95: "packet_too_large", 0x96: "message_rate_too_high", 0x97: "quota_exceeded",
    0x98: "administrative_action", 0x99: "payload_format_invalid", 0x9A: "retain_not_supported",
    0x9B: "qos_not_supported", 0x9C: "use_another_server", 0x9D: "server_moved",
    0x9E: "shared_subscriptions_not_supported", 0x9F: "connection_rate_exceeded", 0xA0: "maximum_connect_time",
    0xA1: "subscription_identifiers_not_supported", 0xA2: "wildcard_subscriptions_not_supported",
}  # fmt: skip

# MQTT 5 property id -> (name, kind). kinds: byte, u16, u32, varint, utf8, binary, pair.
PROPERTIES: Final[dict[int, tuple[str, str]]] = {
    0x01: ("payload_format_indicator", "byte"), 0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "utf8"), 0x08: ("response_topic", "utf8"), 0x09: ("correlation_data", "binary"),
    0x0B: ("subscription_identifier", "varint"), 0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "utf8"), 0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "utf8"), 0x16: ("authentication_data", "binary"),
    0x17: ("request_problem_information", "byte"), 0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"), 0x1A: ("response_information", "utf8"),
    0x1C: ("server_reference", "utf8"), 0x1F: ("reason_string", "utf8"), 0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"), 0x23: ("topic_alias", "u16"), 0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"), 0x26: ("user_property", "pair"), 0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"), 0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}  # fmt: skip
SECRET_PROPERTIES: Final = frozenset({0x16})  # authentication data: only its length is kept


class AnomalyCode(str, enum.Enum):
    """Every anomaly the MQTT decoder reports (`anomaly.code`); rules match these strings.

    Where Suricata's MQTT parser has the same event, the code is its name (rules/mqtt-events.rules).
    """

    INVALID_LENGTH = "invalid_length"  # remaining length varint longer than 4 octets
    UNASSIGNED_MSG_TYPE = "unassigned_msg_type"  # type 0, or AUTH (15) before MQTT 5
    INVALID_FLAGS = "invalid_flags"  # fixed-header flags not the ones the spec fixes for that type
    INVALID_QOS_LEVEL = "invalid_qos_level"  # QoS 3 in PUBLISH, will or a subscription
    MALFORMED_TRAFFIC = "malformed_traffic"  # body does not fit the remaining length; bad MQTT 5 property list
    TOO_LARGE = "too_large"  # message over MAX_MESSAGE octets: decoded from its start, rest skipped
    MISSING_CONNECT = "missing_connect"  # CONNACK with no CONNECT before it
    MISSING_PUBLISH = "missing_publish"  # PUBACK/PUBREC/PUBCOMP with no pending PUBLISH/PUBREL
    MISSING_SUBSCRIBE = "missing_subscribe"  # SUBACK with no pending SUBSCRIBE
    MISSING_UNSUBSCRIBE = "missing_unsubscribe"  # UNSUBACK with no pending UNSUBSCRIBE
    DOUBLE_CONNECT = "double_connect"  # a second CONNECT on the same connection
    UNINTRODUCED_MESSAGE = "unintroduced_message"  # another packet before CONNECT/CONNACK completed
    FLOODED = "flooded"  # more than MAX_PENDING requests without acknowledgement
    TRUNCATED_PDU = "truncated_pdu"  # bytes lost or the connection ended inside a packet
    NOT_MQTT = "not_mqtt"  # too many bad packets in a row: decoding of that direction stopped


def reason_name(mtype: int, code: int, version: int | None) -> str:
    if mtype == CONNACK and (version or 4) < 5:
        return name_of(CONNACK_V3, code)
    if mtype == SUBACK and (version or 4) < 5:
        return {0: "granted_qos_0", 1: "granted_qos_1", 2: "granted_qos_2", 0x80: "failure"}.get(code, f"unknown_{code}")
    if code == 0:
        return {SUBACK: "granted_qos_0", DISCONNECT: "normal_disconnection"}.get(mtype, "success")
    return name_of(REASONS_V5, code)


ACTIONS: Final = {
    CONNECT: "connect", CONNACK: "connect", PUBLISH: "publish", PUBACK: "publish", PUBREC: "publish",
    PUBREL: "publish", PUBCOMP: "publish", SUBSCRIBE: "subscribe", SUBACK: "subscribe",
    UNSUBSCRIBE: "unsubscribe", UNSUBACK: "unsubscribe", PINGREQ: "keepalive", PINGRESP: "keepalive",
    DISCONNECT: "disconnect", AUTH: "login",
}  # fmt: skip
