"""MMS (ISO 9506) and its OSI upper layers (ISO 8327 session, ISO 8823 presentation, ACSE): code tables and actions."""

from __future__ import annotations

import enum
from typing import Final

MAX_PENDING: Final = 256  # unanswered confirmed requests kept per connection for pairing
MAX_NAMES: Final = 32  # object names / identifiers kept on one event


class AnomalyCode(str, enum.Enum):
    INVALID_SPDU = "invalid_spdu"  # session header shorter than its length indicator, unknown SPDU
    INVALID_PPDU = "invalid_ppdu"  # presentation / ACSE wrapping that is not BER of the expected shape
    INVALID_PDU = "invalid_pdu"  # MMS PDU that is not BER, or a PDU type tag outside 0..13
    UNSOLICITED_RESPONSE = "unsolicited_response"  # response / error with no pending request of its invoke id
    FLOODED = "flooded"  # more than MAX_PENDING requests without a response


# MMSpdu CHOICE: context tag -> ASN.1 name (as ISO 9506-2, Wireshark and the ICSNPP parser spell them)
PDU_TYPES: Final[dict[int, str]] = {
    0: "confirmed-RequestPDU",
    1: "confirmed-ResponsePDU",
    2: "confirmed-ErrorPDU",
    3: "unconfirmed-PDU",
    4: "rejectPDU",
    5: "cancel-RequestPDU",
    6: "cancel-ResponsePDU",
    7: "cancel-ErrorPDU",
    8: "initiate-RequestPDU",
    9: "initiate-ResponsePDU",
    10: "initiate-ErrorPDU",
    11: "conclude-RequestPDU",
    12: "conclude-ResponsePDU",
    13: "conclude-ErrorPDU",
}
REQUESTS: Final = frozenset({0, 5, 8, 11})
# response/error type -> the request type it answers
ANSWERS: Final[dict[int, int]] = {1: 0, 2: 0, 6: 5, 7: 5, 9: 8, 10: 8, 12: 11, 13: 11}

# ConfirmedServiceRequest / ConfirmedServiceResponse CHOICE tags
SERVICES: Final[dict[int, str]] = {
    0: "status", 1: "getNameList", 2: "identify", 3: "rename", 4: "read", 5: "write",
    6: "getVariableAccessAttributes", 7: "defineNamedVariable", 8: "defineScatteredAccess",
    9: "getScatteredAccessAttributes", 10: "deleteVariableAccess", 11: "defineNamedVariableList",
    12: "getNamedVariableListAttributes", 13: "deleteNamedVariableList", 14: "defineNamedType",
    15: "getNamedTypeAttributes", 16: "deleteNamedType", 17: "input", 18: "output", 19: "takeControl",
    20: "relinquishControl", 21: "defineSemaphore", 22: "deleteSemaphore", 23: "reportSemaphoreStatus",
    24: "reportPoolSemaphoreStatus", 25: "reportSemaphoreEntryStatus", 26: "initiateDownloadSequence",
    27: "downloadSegment", 28: "terminateDownloadSequence", 29: "initiateUploadSequence", 30: "uploadSegment",
    31: "terminateUploadSequence", 32: "requestDomainDownload", 33: "requestDomainUpload",
    34: "loadDomainContent", 35: "storeDomainContent", 36: "deleteDomain", 37: "getDomainAttributes",
    38: "createProgramInvocation", 39: "deleteProgramInvocation", 40: "start", 41: "stop", 42: "resume",
    43: "reset", 44: "kill", 45: "getProgramInvocationAttributes", 46: "obtainFile",
    47: "defineEventCondition", 48: "deleteEventCondition", 49: "getEventConditionAttributes",
    50: "reportEventConditionStatus", 51: "alterEventConditionMonitoring", 52: "triggerEvent",
    53: "defineEventAction", 54: "deleteEventAction", 55: "getEventActionAttributes",
    56: "reportEventActionStatus", 57: "defineEventEnrollment", 58: "deleteEventEnrollment",
    59: "alterEventEnrollment", 60: "reportEventEnrollmentStatus", 61: "getEventEnrollmentAttributes",
    62: "acknowledgeEventNotification", 63: "getAlarmSummary", 64: "getAlarmEnrollmentSummary",
    65: "readJournal", 66: "writeJournal", 67: "initializeJournal", 68: "reportJournalStatus",
    69: "createJournal", 70: "deleteJournal", 71: "getCapabilityList", 72: "fileOpen", 73: "fileRead",
    74: "fileClose", 75: "fileRename", 76: "fileDelete", 77: "fileDirectory", 78: "additionalService",
    80: "getDataExchangeAttributes", 81: "exchangeData", 82: "defineAccessControlList",
    83: "getAccessControlListAttributes", 84: "reportAccessControlledObjects", 85: "deleteAccessControlList",
    86: "changeAccessControl",
}
# ConfirmedServiceResponse spells two alternatives its own way (ISO 9506-2 ASN.1, as Wireshark and ICSNPP)
RESPONSE_SERVICES: Final[dict[int, str]] = {**SERVICES, 32: "requestDomainDownLoad", 56: "reportActionStatus"}
UNCONFIRMED_SERVICES: Final[dict[int, str]] = {0: "informationReport", 1: "unsolicitedStatus", 2: "eventNotification"}

_READ = ("status", "getNameList", "read", "getVariableAccessAttributes", "getScatteredAccessAttributes",
         "getNamedVariableListAttributes", "getNamedTypeAttributes", "input", "reportSemaphoreStatus",
         "reportPoolSemaphoreStatus", "reportSemaphoreEntryStatus", "getDomainAttributes",
         "getProgramInvocationAttributes", "getEventConditionAttributes", "reportEventConditionStatus",
         "getEventActionAttributes", "reportEventActionStatus", "reportEventEnrollmentStatus",
         "getEventEnrollmentAttributes", "reportActionStatus", "getAlarmSummary", "getAlarmEnrollmentSummary", "readJournal",
         "reportJournalStatus", "getCapabilityList", "getDataExchangeAttributes", "getAccessControlListAttributes",
         "reportAccessControlledObjects")  # fmt: skip
_WRITE = ("rename", "write", "defineNamedVariable", "defineScatteredAccess", "deleteVariableAccess",
          "defineNamedVariableList", "deleteNamedVariableList", "defineNamedType", "deleteNamedType", "output",
          "defineSemaphore", "deleteSemaphore", "createProgramInvocation",
          "defineEventCondition", "deleteEventCondition", "alterEventConditionMonitoring", "triggerEvent",
          "defineEventAction", "deleteEventAction", "defineEventEnrollment", "deleteEventEnrollment",
          "alterEventEnrollment", "acknowledgeEventNotification", "writeJournal", "initializeJournal",
          "createJournal", "deleteJournal", "exchangeData", "defineAccessControlList", "deleteAccessControlList",
          "changeAccessControl")  # fmt: skip
SERVICE_ACTIONS: Final[dict[str, str]] = {
    **{s: "read" for s in _READ},
    **{s: "write" for s in _WRITE},
    "identify": "identify",
    "takeControl": "operate",
    "relinquishControl": "operate",
    "initiateDownloadSequence": "program_download",
    "downloadSegment": "program_download",
    "terminateDownloadSequence": "program_download",
    "requestDomainDownload": "program_download",
    "requestDomainDownLoad": "program_download",
    "loadDomainContent": "program_download",
    "initiateUploadSequence": "program_upload",
    "uploadSegment": "program_upload",
    "terminateUploadSequence": "program_upload",
    "requestDomainUpload": "program_upload",
    "storeDomainContent": "program_upload",
    "deleteDomain": "program_delete",
    "deleteProgramInvocation": "program_delete",
    "start": "mode_change",
    "stop": "mode_change",
    "resume": "mode_change",
    "reset": "mode_change",
    "kill": "mode_change",
    "obtainFile": "file_write",  # the server fetches a file onto itself
    "fileOpen": "file_read",
    "fileRead": "file_read",
    "fileClose": "file_read",
    "fileDirectory": "file_read",
    "fileRename": "file_write",
    "fileDelete": "file_delete",
    "additionalService": "unknown",
    "informationReport": "report",
    "unsolicitedStatus": "report",
    "eventNotification": "report",
}
PDU_ACTIONS: Final[dict[int, str]] = {
    3: "report", 4: "reject", 5: "cancel", 6: "cancel", 7: "cancel",
    8: "session", 9: "session", 10: "session", 11: "disconnect", 12: "disconnect", 13: "disconnect",
}  # fmt: skip

# ServiceError.errorClass CHOICE tags
ERROR_CLASSES: Final[dict[int, str]] = {
    0: "vmd-state", 1: "application-reference", 2: "definition", 3: "resource", 4: "service",
    5: "service-preempt", 6: "time-resolution", 7: "access", 8: "initiate", 9: "conclude", 10: "cancel",
    11: "file", 12: "others",
}  # fmt: skip
# RejectPDU.rejectReason CHOICE tags
REJECT_REASONS: Final[dict[int, str]] = {
    1: "confirmed-requestPDU", 2: "confirmed-responsePDU", 3: "confirmed-errorPDU",
    4: "unconfirmedPDU", 5: "pdu-error", 6: "cancel-requestPDU", 7: "cancel-responsePDU", 8: "cancel-errorPDU",
    9: "conclude-requestPDU", 10: "conclude-responsePDU", 11: "conclude-errorPDU",
}  # fmt: skip
OBJECT_CLASSES: Final[dict[int, str]] = {
    0: "namedVariable", 1: "scatteredAccess", 2: "namedVariableList", 3: "namedType", 4: "semaphore",
    5: "eventCondition", 6: "eventAction", 7: "eventEnrollment", 8: "journal", 9: "domain",
    10: "programInvocation", 11: "operatorStation", 12: "dataExchange", 13: "accessControlList",
}  # fmt: skip
# Data CHOICE (ISO 9506-2 / IEC 61850-8-1): context tag -> name
DATA_TYPES: Final[dict[int, str]] = {
    1: "array", 2: "structure", 3: "boolean", 4: "bit-string", 5: "integer", 6: "unsigned", 7: "floating-point",
    9: "octet-string", 10: "visible-string", 11: "generalized-time", 12: "binary-time", 13: "bcd", 14: "boolean-array",
    15: "object-id", 16: "mms-string", 17: "utc-time",
}
DATA_ACCESS_ERRORS: Final[dict[int, str]] = {
    0: "object-invalidated", 1: "hardware-fault", 2: "temporarily-unavailable", 3: "object-access-denied",
    4: "object-undefined", 5: "invalid-address", 6: "type-unsupported", 7: "type-inconsistent",
    8: "object-attribute-inconsistent", 9: "object-access-unsupported", 10: "object-non-existent",
    11: "object-value-invalid",
}  # fmt: skip

# ISO 8327 session SPDU identifiers (SI) -> abbreviation
SPDU_TYPES: Final[dict[int, str]] = {
    0x01: "DT",  # data transfer (GIVE TOKENS shares the code: a category 0 SPDU before it)
    0x02: "PT",  # please tokens
    0x05: "EX",  # expedited
    0x07: "PR",  # prepare
    0x08: "NF",  # not finished
    0x09: "FN",  # finish
    0x0A: "DN",  # disconnect
    0x0C: "RF",  # refuse
    0x0D: "CN",  # connect
    0x0E: "AC",  # accept
    0x0F: "CDO",  # connect data overflow
    0x10: "OA",  # overflow accept
    0x15: "GTC",  # give tokens confirm
    0x16: "GTA",  # give tokens ack
    0x19: "AB",  # abort
    0x1A: "AA",  # abort accept
    0x21: "TD",  # typed data
    0x22: "RS",  # resynchronize
    0x29: "MAP",  # major sync point
    0x2A: "MAA",  # major sync ack
}
SPDU_ACTIONS: Final[dict[str, str]] = {"CN": "connect", "AC": "connect", "RF": "connect", "FN": "disconnect", "DN": "disconnect", "AB": "disconnect", "AA": "disconnect", "NF": "disconnect"}
SESSION_USER_DATA: Final = (0xC1, 0xC2)  # PGI 193 user data, 194 extended user data

# ACSE APDUs ([APPLICATION n] tags)
ACSE_APDUS: Final[dict[int, str]] = {0: "aarq", 1: "aare", 2: "rlrq", 3: "rlre", 4: "abrt"}
ACSE_ACTIONS: Final[dict[str, str]] = {"aarq": "connect", "aare": "connect", "rlrq": "disconnect", "rlre": "disconnect", "abrt": "disconnect"}
AARE_RESULTS: Final[dict[int, str]] = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
