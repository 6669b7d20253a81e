"""BACnet/IP constants (ASHRAE 135 and Annex J): BVLC functions, network messages, APDU types, services, enumerations."""

from __future__ import annotations

import enum
from typing import Final

from .vendors import VENDORS as _VENDORS

MAX_PENDING: Final = 500
MAX_LIST: Final = 256  # properties of one RPM/WPM kept in an event
MAX_VALUE: Final = 512  # characters of a rendered value
# Reassembly of segmented messages, per flow. A message may have up to 255 segments of up to 1476
# bytes; real segmented acks (object lists, trend logs) are a few kilobytes, so 64 KiB is generous.
MAX_SEGMENTED: Final = 16  # segmented messages being reassembled at once (oldest dropped past it)
MAX_REASSEMBLY: Final = 65536  # bytes of parameters of one message
SEGMENT_TIMEOUT_NS: Final = 60 * 10**9  # a message whose next segment is this late is dropped


class AnomalyCode(str, enum.Enum):
    INVALID_BVLC = "invalid_bvlc"  # not type 0x81, or length field disagrees with the datagram
    INVALID_NPDU = "invalid_npdu"
    INVALID_APDU = "invalid_apdu"  # truncated or malformed APDU / service parameters
    UNSOLICITED_RESPONSE = "unsolicited_response"
    FLOODED = "flooded"
    REASSEMBLY_FAILED = "reassembly_failed"  # a segmented message lost, out of order, too large or too slow


BVLC_FUNCTIONS: Final = {
    0x00: "bvlc_result", 0x01: "write_broadcast_distribution_table", 0x02: "read_broadcast_distribution_table",
    0x03: "read_broadcast_distribution_table_ack", 0x04: "forwarded_npdu", 0x05: "register_foreign_device",
    0x06: "read_foreign_device_table", 0x07: "read_foreign_device_table_ack", 0x08: "delete_foreign_device_table_entry",
    0x09: "distribute_broadcast_to_network", 0x0A: "original_unicast_npdu", 0x0B: "original_broadcast_npdu",
    0x0C: "secure_bvll",
}
BVLC_RESULTS: Final = {
    0x0000: "successful_completion", 0x0010: "write_broadcast_distribution_table_nak",
    0x0020: "read_broadcast_distribution_table_nak", 0x0030: "register_foreign_device_nak",
    0x0040: "read_foreign_device_table_nak", 0x0050: "delete_foreign_device_table_entry_nak",
    0x0060: "distribute_broadcast_to_network_nak",
}
NETWORK_MESSAGES: Final = {
    0x00: "who_is_router_to_network", 0x01: "i_am_router_to_network", 0x02: "i_could_be_router_to_network",
    0x03: "reject_message_to_network", 0x04: "router_busy_to_network", 0x05: "router_available_to_network",
    0x06: "initialize_routing_table", 0x07: "initialize_routing_table_ack", 0x08: "establish_connection_to_network",
    0x09: "disconnect_connection_to_network", 0x0A: "challenge_request", 0x0B: "security_payload",
    0x0C: "security_response", 0x0D: "request_key_update", 0x0E: "update_key_set", 0x0F: "update_distribution_key",
    0x10: "request_master_key", 0x11: "set_master_key", 0x12: "what_is_network_number", 0x13: "network_number_is",
}
APDU_TYPES: Final = {
    0: "confirmed_request", 1: "unconfirmed_request", 2: "simple_ack", 3: "complex_ack",
    4: "segment_ack", 5: "error", 6: "reject", 7: "abort",
}
CONFIRMED_SERVICES: Final = {
    0: "acknowledge_alarm", 1: "confirmed_cov_notification", 2: "confirmed_event_notification",
    3: "get_alarm_summary", 4: "get_enrollment_summary", 5: "subscribe_cov", 6: "atomic_read_file",
    7: "atomic_write_file", 8: "add_list_element", 9: "remove_list_element", 10: "create_object",
    11: "delete_object", 12: "read_property", 13: "read_property_conditional", 14: "read_property_multiple",
    15: "write_property", 16: "write_property_multiple", 17: "device_communication_control",
    18: "confirmed_private_transfer", 19: "confirmed_text_message", 20: "reinitialize_device", 21: "vt_open",
    22: "vt_close", 23: "vt_data", 24: "authenticate", 25: "request_key", 26: "read_range",
    27: "life_safety_operation", 28: "subscribe_cov_property", 29: "get_event_information",
    30: "subscribe_cov_property_multiple", 31: "confirmed_cov_notification_multiple",
    32: "confirmed_audit_notification", 33: "audit_log_query",
}
UNCONFIRMED_SERVICES: Final = {
    0: "i_am", 1: "i_have", 2: "unconfirmed_cov_notification", 3: "unconfirmed_event_notification",
    4: "unconfirmed_private_transfer", 5: "unconfirmed_text_message", 6: "time_synchronization", 7: "who_has",
    8: "who_is", 9: "utc_time_synchronization", 10: "write_group", 11: "unconfirmed_cov_notification_multiple",
    12: "unconfirmed_audit_notification", 13: "who_am_i", 14: "you_are",
}
_ACTIONS: Final = {
    "read_property": "read", "read_property_multiple": "read", "read_property_conditional": "read", "read_range": "read",
    "get_alarm_summary": "read_status", "get_enrollment_summary": "read_status", "get_event_information": "read_status",
    "write_property": "write", "write_property_multiple": "write", "add_list_element": "write",
    "remove_list_element": "write", "create_object": "write", "delete_object": "write", "write_group": "write",
    "acknowledge_alarm": "write", "life_safety_operation": "operate",
    "device_communication_control": "mode_change", "reinitialize_device": "restart",
    "who_is": "identify", "i_am": "identify", "who_has": "identify", "i_have": "identify",
    "who_am_i": "identify", "you_are": "identify",
    "atomic_write_file": "file_write", "atomic_read_file": "file_read",
    "time_synchronization": "time_sync", "utc_time_synchronization": "time_sync",
    "subscribe_cov": "subscribe", "subscribe_cov_property": "subscribe", "subscribe_cov_property_multiple": "subscribe",
    "confirmed_cov_notification": "publish", "unconfirmed_cov_notification": "publish",
    "confirmed_cov_notification_multiple": "publish", "unconfirmed_cov_notification_multiple": "publish",
    "confirmed_event_notification": "publish", "unconfirmed_event_notification": "publish",
    "confirmed_audit_notification": "publish", "unconfirmed_audit_notification": "publish",
    "confirmed_text_message": "publish", "unconfirmed_text_message": "publish",
    "authenticate": "login", "request_key": "login", "vt_open": "session", "vt_close": "session", "vt_data": "session",
}


def action_of(service_name: str | None) -> str:
    return _ACTIONS.get(service_name or "", "unknown")


OBJECT_TYPES: Final = dict(enumerate((
    "analog-input", "analog-output", "analog-value", "binary-input", "binary-output", "binary-value", "calendar",
    "command", "device", "event-enrollment", "file", "group", "loop", "multi-state-input", "multi-state-output",
    "notification-class", "program", "schedule", "averaging", "multi-state-value", "trend-log", "life-safety-point",
    "life-safety-zone", "accumulator", "pulse-converter", "event-log", "global-group", "trend-log-multiple",
    "load-control", "structured-view", "access-door", "timer", "access-credential", "access-point", "access-rights",
    "access-user", "access-zone", "credential-data-input", "network-security", "bitstring-value",
    "characterstring-value", "date-pattern-value", "date-value", "datetime-pattern-value", "datetime-value",
    "integer-value", "large-analog-value", "octetstring-value", "positive-integer-value", "time-pattern-value",
    "time-value", "notification-forwarder", "alert-enrollment", "channel", "lighting-output",
    "binary-lighting-output", "network-port", "elevator-group", "escalator", "lift", "staging", "audit-log",
    "audit-reporter", "color", "color-temperature",
)))

_PROPS = """0 acked-transitions|1 ack-required|2 action|3 action-text|4 active-text|5 active-vt-sessions|6 alarm-value
|7 alarm-values|8 all|9 all-writes-successful|10 apdu-segment-timeout|11 apdu-timeout|12 application-software-version
|13 archive|14 bias|15 change-of-state-count|16 change-of-state-time|17 notification-class
|19 controlled-variable-reference|20 controlled-variable-units|21 controlled-variable-value|22 cov-increment
|23 date-list|24 daylight-savings-status|25 deadband|26 derivative-constant|27 derivative-constant-units
|28 description|29 description-of-halt|30 device-address-binding|31 device-type|32 effective-period
|33 elapsed-active-time|34 error-limit|35 event-enable|36 event-state|37 event-type|38 exception-schedule
|39 fault-values|40 feedback-value|41 file-access-method|42 file-size|43 file-type|44 firmware-revision
|45 high-limit|46 inactive-text|47 in-process|48 instance-of|49 integral-constant|50 integral-constant-units
|52 limit-enable|53 list-of-group-members|54 list-of-object-property-references|56 local-date|57 local-time
|58 location|59 low-limit|60 manipulated-variable-reference|61 maximum-output|62 max-apdu-length-accepted
|63 max-info-frames|64 max-master|65 max-pres-value|66 minimum-off-time|67 minimum-on-time|68 minimum-output
|69 min-pres-value|70 model-name|71 modification-date|72 notify-type|73 number-of-apdu-retries|74 number-of-states
|75 object-identifier|76 object-list|77 object-name|78 object-property-reference|79 object-type|80 optional
|81 out-of-service|82 output-units|83 event-parameters|84 polarity|85 present-value|86 priority|87 priority-array
|88 priority-for-writing|89 process-identifier|90 program-change|91 program-location|92 program-state
|93 proportional-constant|94 proportional-constant-units|95 protocol-conformance-class|96 protocol-object-types-supported
|97 protocol-services-supported|98 protocol-version|99 read-only|100 reason-for-halt|102 recipient-list
|103 reliability|104 relinquish-default|105 required|106 resolution|107 segmentation-supported|108 setpoint
|109 setpoint-reference|110 state-text|111 status-flags|112 system-status|113 time-delay
|114 time-of-active-time-reset|115 time-of-state-count-reset|116 time-synchronization-recipients|117 units
|118 update-interval|119 utc-offset|120 vendor-identifier|121 vendor-name|122 vt-classes-supported
|123 weekly-schedule|124 attempted-samples|125 average-value|126 buffer-size|127 client-cov-increment
|128 cov-resubscription-interval|130 event-time-stamps|131 log-buffer|132 log-device-object-property|133 enable
|134 log-interval|135 maximum-value|136 minimum-value|137 notification-threshold|139 protocol-revision
|140 records-since-notification|141 record-count|142 start-time|143 stop-time|144 stop-when-full
|145 total-record-count|146 valid-samples|147 window-interval|148 window-samples|149 maximum-value-timestamp
|150 minimum-value-timestamp|151 variance-value|152 active-cov-subscriptions|153 backup-failure-timeout
|154 configuration-files|155 database-revision|156 direct-reading|157 last-restore-time|158 maintenance-required
|159 member-of|160 mode|161 operation-expected|162 setting|163 silenced|164 tracking-value|165 zone-members
|166 life-safety-alarm-values|167 max-segments-accepted|168 profile-name|169 auto-slave-discovery
|170 manual-slave-address-binding|171 slave-address-binding|172 slave-proxy-enable|173 last-notify-record
|174 schedule-default|175 accepted-modes|176 adjust-value|177 count|178 count-before-change|179 count-change-time
|180 cov-period|181 input-reference|182 limit-monitoring-interval|183 logging-object|184 logging-record
|185 prescale|186 pulse-rate|187 scale|188 scale-factor|189 update-time|190 value-before-change|191 value-set
|192 value-change-time|193 align-intervals|195 interval-offset|196 last-restart-reason|197 logging-type
|202 restart-notification-recipients|203 time-of-device-restart|204 time-synchronization-interval|205 trigger
|206 utc-time-synchronization-recipients|207 node-subtype|208 node-type|209 structured-object-list
|210 subordinate-annotations|211 subordinate-list|212 actual-shed-level|213 duty-window|214 expected-shed-level
|215 full-duty-baseline|218 requested-shed-level|219 shed-duration|220 shed-level-descriptions|221 shed-levels
|222 state-description|226 door-alarm-state|227 door-extended-pulse-time|228 door-members|229 door-open-too-long-time
|230 door-pulse-time|231 door-status|232 door-unlock-delay-time|233 lock-status|234 masked-alarm-values
|235 secured-status|244 absentee-limit|371 property-list|372 serial-number|373 blink-warn-enable
|377 egress-time|380 in-progress|381 instantaneous-power|382 lighting-command|383 lighting-command-default-priority
|387 tracking-value|390 bacnet-ip-global-address|399 bbmd-accept-fd-registrations
|400 bbmd-broadcast-distribution-table|401 bbmd-foreign-device-table|408 ip-address|425 network-number
|427 network-type|431 protocol-level|485 link-speed""".replace("\n", "")
PROPERTIES: Final = {int(k): v for k, _, v in (p.strip().partition(" ") for p in _PROPS.split("|"))}


def property_name(p: int) -> str:
    """Standard name; 512 and above are proprietary (vendor-specific) by the standard."""
    return PROPERTIES.get(p) or (f"vendor-specific-{p}" if p >= 512 else str(p))

ERROR_CLASSES: Final = dict(enumerate(("device", "object", "property", "resources", "security", "services", "vt", "communication")))
ERROR_CODES: Final = {
    0: "other", 1: "authentication-failed", 2: "configuration-in-progress", 3: "device-busy",
    4: "dynamic-creation-not-supported", 5: "file-access-denied", 6: "incompatible-security-levels",
    7: "inconsistent-parameters", 8: "inconsistent-selection-criterion", 9: "invalid-data-type",
    10: "invalid-file-access-method", 11: "invalid-file-start-position", 12: "invalid-operator-name",
    13: "invalid-parameter-data-type", 14: "invalid-time-stamp", 15: "key-generation-error",
    16: "missing-required-parameter", 17: "no-objects-of-specified-type", 18: "no-space-for-object",
    19: "no-space-to-add-list-element", 20: "no-space-to-write-property", 21: "no-vt-sessions-available",
    22: "property-is-not-a-list", 23: "object-deletion-not-permitted", 24: "object-identifier-already-exists",
    25: "operational-problem", 26: "password-failure", 27: "read-access-denied", 28: "security-not-supported",
    29: "service-request-denied", 30: "timeout", 31: "unknown-object", 32: "unknown-property",
    33: "removed", 34: "unknown-vt-class", 35: "unknown-vt-session", 36: "unsupported-object-type",
    37: "value-out-of-range", 38: "vt-session-already-closed", 39: "vt-session-termination-failure",
    40: "write-access-denied", 41: "character-set-not-supported", 42: "invalid-array-index",
    43: "cov-subscription-failed", 44: "not-cov-property", 45: "optional-functionality-not-supported",
    46: "invalid-configuration-data", 47: "datatype-not-supported", 48: "duplicate-name",
    49: "duplicate-object-id", 50: "property-is-not-an-array", 73: "abort-buffer-overflow",
    74: "abort-invalid-apdu-in-this-state", 75: "abort-preempted-by-higher-priority-task",
    76: "abort-segmentation-not-supported", 77: "abort-proprietary", 78: "abort-other",
    79: "invalid-tag", 80: "network-down", 81: "reject-buffer-overflow", 82: "reject-inconsistent-parameters",
    83: "reject-invalid-parameter-data-type", 84: "reject-invalid-tag", 85: "reject-missing-required-parameter",
    86: "reject-parameter-out-of-range", 87: "reject-too-many-arguments", 88: "reject-undefined-enumeration",
    89: "reject-unrecognized-service", 90: "reject-proprietary", 91: "reject-other", 92: "unknown-device",
    93: "unknown-route", 94: "value-not-initialized", 95: "invalid-event-state", 96: "no-alarm-configured",
    97: "log-buffer-full", 98: "logged-value-purged", 99: "no-property-specified", 100: "not-configured-for-triggered-logging",
    101: "unknown-subscription", 115: "communication-disabled", 123: "list-element-not-found",
}
REJECT_REASONS: Final = dict(enumerate((
    "other", "buffer-overflow", "inconsistent-parameters", "invalid-parameter-data-type", "invalid-tag",
    "missing-required-parameter", "parameter-out-of-range", "too-many-arguments", "undefined-enumeration",
    "unrecognized-service", "invalid-data-encoding",
)))
ABORT_REASONS: Final = dict(enumerate((
    "other", "buffer-overflow", "invalid-apdu-in-this-state", "preempted-by-higher-priority-task",
    "segmentation-not-supported", "security-error", "insufficient-security", "window-size-out-of-range",
    "application-exceeded-reply-time", "out-of-resources", "tsm-timeout", "apdu-too-long",
)))
SEGMENTATION: Final = dict(enumerate(("segmented-both", "segmented-transmit", "segmented-receive", "no-segmentation")))
ENABLE_DISABLE: Final = dict(enumerate(("enable", "disable", "disable-initiation")))
REINITIALIZE_STATES: Final = dict(enumerate((
    "coldstart", "warmstart", "startbackup", "endbackup", "startrestore", "endrestore", "abortrestore", "activate-changes",
)))
MAX_APDU: Final = {0: 50, 1: 128, 2: 206, 3: 480, 4: 1024, 5: 1476}
MAX_SEGMENTS: Final = {0: None, 1: 2, 2: 4, 3: 8, 4: 16, 5: 32, 6: 64, 7: 65}  # 0 unspecified, 7 "more than 64"
# The ASHRAE vendor identifier list (vendors.py, generated from an MIT-licensed copy).
VENDORS: Final = _VENDORS
