"""OPC UA binary constants: message types, service encoding ids, status codes, security policies."""

from __future__ import annotations

import enum
from typing import Final

MAX_PENDING: Final = 500
HEADER_LEN: Final = 8
# A UA TCP message larger than this is not believed (the spec lets peers negotiate up to 4 GiB,
# real stacks use 64 KiB .. 16 MiB chunks).
MAX_CHUNK: Final = 16 * 1024 * 1024
MAX_CHUNKS: Final = 4096  # chunks of one message kept before it is reported as flooded
MAX_LIST: Final = 64  # items of any decoded list kept in an event

MESSAGE_TYPES: Final = frozenset({"HEL", "ACK", "OPN", "MSG", "CLO", "ERR", "RHE"})
CHUNK_TYPES: Final = frozenset({"F", "C", "A"})


class AnomalyCode(str, enum.Enum):
    INVALID_HEADER = "invalid_header"  # unknown message type / chunk type, size out of range
    INVALID_PDU = "invalid_pdu"  # body shorter than its fields or inconsistent
    NOT_OPCUA = "not_opcua"  # several bad headers in a row: decoding stopped for that direction
    TRUNCATED_PDU = "truncated_pdu"  # capture lost bytes inside a message
    UNSOLICITED_RESPONSE = "unsolicited_response"
    FLOODED = "flooded"  # too many requests without a response / chunks without a final
    ABORTED = "aborted"  # a chunk with type A (sender aborted the message)


SECURITY_POLICIES: Final = {
    "http://opcfoundation.org/UA/SecurityPolicy#None": "None",
    "http://opcfoundation.org/UA/SecurityPolicy#Basic128Rsa15": "Basic128Rsa15",
    "http://opcfoundation.org/UA/SecurityPolicy#Basic256": "Basic256",
    "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256": "Basic256Sha256",
    "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep": "Aes128_Sha256_RsaOaep",
    "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss": "Aes256_Sha256_RsaPss",
}


def policy_name(uri: str | None) -> str | None:
    if uri is None:
        return None
    return SECURITY_POLICIES.get(uri) or uri.rpartition("#")[2] or uri


SECURITY_MODES: Final = {0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"}
REQUEST_TYPES: Final = {0: "issue", 1: "renew"}
USER_TOKEN_TYPES: Final = {0: "Anonymous", 1: "UserName", 2: "Certificate", 3: "IssuedToken"}
# Encoding ids (DefaultBinary) of the user identity tokens in ActivateSession.
IDENTITY_TOKENS: Final = {319: "Anonymous", 321: "Anonymous", 322: "UserName", 324: "UserName", 325: "X509", 327: "X509", 938: "IssuedToken", 940: "IssuedToken"}

# Service -> (request encoding id, response encoding id), ns=0 DefaultBinary (Part 6 NodeIds.csv).
_SERVICES: Final = {
    "TestStack": (410, 413),
    "TestStackEx": (416, 419),
    "FindServers": (422, 425),
    "GetEndpoints": (428, 431),
    "RegisterServer": (437, 440),
    "OpenSecureChannel": (446, 449),
    "CloseSecureChannel": (452, 455),
    "CreateSession": (461, 464),
    "ActivateSession": (467, 470),
    "CloseSession": (473, 476),
    "Cancel": (479, 482),
    "AddNodes": (488, 491),
    "AddReferences": (494, 497),
    "DeleteNodes": (500, 503),
    "DeleteReferences": (506, 509),
    "Browse": (527, 530),
    "BrowseNext": (533, 536),
    "TranslateBrowsePathsToNodeIds": (554, 557),
    "RegisterNodes": (560, 563),
    "UnregisterNodes": (566, 569),
    "QueryFirst": (615, 618),
    "QueryNext": (621, 624),
    "Read": (631, 634),
    "HistoryRead": (664, 667),
    "Write": (673, 676),
    "HistoryUpdate": (700, 703),
    "Call": (712, 715),
    "CreateMonitoredItems": (751, 754),
    "ModifyMonitoredItems": (763, 766),
    "SetMonitoringMode": (769, 772),
    "SetTriggering": (775, 778),
    "DeleteMonitoredItems": (781, 784),
    "CreateSubscription": (787, 790),
    "ModifySubscription": (793, 796),
    "SetPublishingMode": (799, 802),
    "Publish": (826, 829),
    "Republish": (832, 835),
    "TransferSubscriptions": (841, 844),
    "DeleteSubscriptions": (847, 850),
    "FindServersOnNetwork": (12208, 12209),
    "RegisterServer2": (12211, 12212),
}
SERVICE_FAULT: Final = 397

# encoding id -> (service, is_response)
SERVICE_IDS: Final[dict[int, tuple[str, bool]]] = {SERVICE_FAULT: ("ServiceFault", True)}
for _name, (_req, _resp) in _SERVICES.items():
    SERVICE_IDS[_req] = (_name, False)
    SERVICE_IDS[_resp] = (_name, True)


def service_of(type_id: int | None) -> tuple[str | None, str | None, bool | None]:
    """(service, message name, is_response) of a numeric ns=0 encoding id."""
    if type_id is None or type_id not in SERVICE_IDS:
        return None, None, None
    svc, resp = SERVICE_IDS[type_id]
    if svc == "ServiceFault":
        return svc, svc, True
    return svc, svc + ("Response" if resp else "Request"), resp


_ACTIONS: Final = {
    "Read": "read", "Browse": "read", "BrowseNext": "read", "TranslateBrowsePathsToNodeIds": "read",
    "HistoryRead": "read", "QueryFirst": "read", "QueryNext": "read", "RegisterNodes": "read", "UnregisterNodes": "read",
    "Write": "write", "HistoryUpdate": "write", "AddNodes": "write", "DeleteNodes": "write",
    "AddReferences": "write", "DeleteReferences": "write",
    "Call": "operate",
    "CreateSession": "session", "CloseSession": "session", "ActivateSession": "login", "Cancel": "session",
    "GetEndpoints": "identify", "FindServers": "identify", "FindServersOnNetwork": "identify",
    "RegisterServer": "identify", "RegisterServer2": "identify",
    "CreateSubscription": "subscribe", "ModifySubscription": "subscribe", "DeleteSubscriptions": "subscribe",
    "SetPublishingMode": "subscribe", "TransferSubscriptions": "subscribe", "CreateMonitoredItems": "subscribe",
    "ModifyMonitoredItems": "subscribe", "SetMonitoringMode": "subscribe", "SetTriggering": "subscribe",
    "DeleteMonitoredItems": "subscribe", "Republish": "subscribe",
    "Publish": "publish",
    "OpenSecureChannel": "connect", "CloseSecureChannel": "disconnect",
    "TestStack": "diagnostics", "TestStackEx": "diagnostics",
}
_MESSAGE_ACTIONS: Final = {"HEL": "connect", "ACK": "connect", "RHE": "connect", "OPN": "connect", "CLO": "disconnect", "ERR": "unknown"}


def action_of(message_type: str, service: str | None) -> str:
    if service is not None and service in _ACTIONS:
        return _ACTIONS[service]
    return _MESSAGE_ACTIONS.get(message_type, "unknown")


ATTRIBUTES: Final = {
    1: "NodeId", 2: "NodeClass", 3: "BrowseName", 4: "DisplayName", 5: "Description", 6: "WriteMask",
    7: "UserWriteMask", 8: "IsAbstract", 9: "Symmetric", 10: "InverseName", 11: "ContainsNoLoops",
    12: "EventNotifier", 13: "Value", 14: "DataType", 15: "ValueRank", 16: "ArrayDimensions",
    17: "AccessLevel", 18: "UserAccessLevel", 19: "MinimumSamplingInterval", 20: "Historizing",
    21: "Executable", 22: "UserExecutable", 23: "DataTypeDefinition", 24: "RolePermissions",
    25: "UserRolePermissions", 26: "AccessRestrictions", 27: "AccessLevelEx",
}

# Status codes (Part 6 StatusCode.csv), the upper 16 bits; the lower bits are info flags.
STATUS_CODES: Final = {
    0x00000000: "Good",
    0x80010000: "BadUnexpectedError", 0x80020000: "BadInternalError", 0x80030000: "BadOutOfMemory",
    0x80040000: "BadResourceUnavailable", 0x80050000: "BadCommunicationError", 0x80060000: "BadEncodingError",
    0x80070000: "BadDecodingError", 0x80080000: "BadEncodingLimitsExceeded", 0x80B80000: "BadRequestTooLarge",
    0x80B90000: "BadResponseTooLarge", 0x80090000: "BadUnknownResponse", 0x800A0000: "BadTimeout",
    0x800B0000: "BadServiceUnsupported", 0x800C0000: "BadShutdown", 0x800D0000: "BadServerNotConnected",
    0x800E0000: "BadServerHalted", 0x800F0000: "BadNothingToDo", 0x80100000: "BadTooManyOperations",
    0x80DB0000: "BadTooManyMonitoredItems", 0x80110000: "BadDataTypeIdUnknown",
    0x80120000: "BadCertificateInvalid", 0x80130000: "BadSecurityChecksFailed",
    0x81140000: "BadCertificatePolicyCheckFailed", 0x80140000: "BadCertificateTimeInvalid",
    0x80150000: "BadCertificateIssuerTimeInvalid", 0x80160000: "BadCertificateHostNameInvalid",
    0x80170000: "BadCertificateUriInvalid", 0x80180000: "BadCertificateUseNotAllowed",
    0x80190000: "BadCertificateIssuerUseNotAllowed", 0x801A0000: "BadCertificateUntrusted",
    0x801B0000: "BadCertificateRevocationUnknown", 0x801C0000: "BadCertificateIssuerRevocationUnknown",
    0x801D0000: "BadCertificateRevoked", 0x801E0000: "BadCertificateIssuerRevoked",
    0x810D0000: "BadCertificateChainIncomplete", 0x801F0000: "BadUserAccessDenied",
    0x80200000: "BadIdentityTokenInvalid", 0x80210000: "BadIdentityTokenRejected",
    0x80220000: "BadSecureChannelIdInvalid", 0x80230000: "BadInvalidTimestamp", 0x80240000: "BadNonceInvalid",
    0x80250000: "BadSessionIdInvalid", 0x80260000: "BadSessionClosed", 0x80270000: "BadSessionNotActivated",
    0x80280000: "BadSubscriptionIdInvalid", 0x802A0000: "BadRequestHeaderInvalid",
    0x802B0000: "BadTimestampsToReturnInvalid", 0x802C0000: "BadRequestCancelledByClient",
    0x80E50000: "BadTooManyArguments", 0x81450000: "BadLicenseExpired", 0x81460000: "BadLicenseLimitsExceeded",
    0x81470000: "BadLicenseNotAvailable", 0x002D0000: "GoodSubscriptionTransferred",
    0x002E0000: "GoodCompletesAsynchronously", 0x002F0000: "GoodOverload", 0x00300000: "GoodClamped",
    0x80310000: "BadNoCommunication", 0x80320000: "BadWaitingForInitialData", 0x80330000: "BadNodeIdInvalid",
    0x80340000: "BadNodeIdUnknown", 0x80350000: "BadAttributeIdInvalid", 0x80360000: "BadIndexRangeInvalid",
    0x80370000: "BadIndexRangeNoData", 0x80380000: "BadDataEncodingInvalid",
    0x80390000: "BadDataEncodingUnsupported", 0x803A0000: "BadNotReadable", 0x803B0000: "BadNotWritable",
    0x803C0000: "BadOutOfRange", 0x803D0000: "BadNotSupported", 0x803E0000: "BadNotFound",
    0x803F0000: "BadObjectDeleted", 0x80400000: "BadNotImplemented", 0x80410000: "BadMonitoringModeInvalid",
    0x80420000: "BadMonitoredItemIdInvalid", 0x80430000: "BadMonitoredItemFilterInvalid",
    0x80440000: "BadMonitoredItemFilterUnsupported", 0x80450000: "BadFilterNotAllowed",
    0x80460000: "BadStructureMissing", 0x80470000: "BadEventFilterInvalid", 0x80480000: "BadContentFilterInvalid",
    0x804A0000: "BadContinuationPointInvalid", 0x804B0000: "BadNoContinuationPoints",
    0x804C0000: "BadReferenceTypeIdInvalid", 0x804D0000: "BadBrowseDirectionInvalid",
    0x804E0000: "BadNodeNotInView", 0x804F0000: "BadServerUriInvalid", 0x80500000: "BadServerNameMissing",
    0x80510000: "BadDiscoveryUrlMissing", 0x80520000: "BadSempahoreFileMissing",
    0x80530000: "BadRequestTypeInvalid", 0x80540000: "BadSecurityModeRejected",
    0x80550000: "BadSecurityPolicyRejected", 0x80560000: "BadTooManySessions",
    0x80570000: "BadUserSignatureInvalid", 0x80580000: "BadApplicationSignatureInvalid",
    0x80590000: "BadNoValidCertificates", 0x805A0000: "BadRequestCancelledByRequest",
    0x805B0000: "BadParentNodeIdInvalid", 0x805C0000: "BadReferenceNotAllowed",
    0x805D0000: "BadNodeIdRejected", 0x805E0000: "BadNodeIdExists", 0x805F0000: "BadNodeClassInvalid",
    0x80600000: "BadBrowseNameInvalid", 0x80610000: "BadBrowseNameDuplicated",
    0x80620000: "BadNodeAttributesInvalid", 0x80630000: "BadTypeDefinitionInvalid",
    0x80640000: "BadSourceNodeIdInvalid", 0x80650000: "BadTargetNodeIdInvalid",
    0x80660000: "BadDuplicateReferenceNotAllowed", 0x80670000: "BadInvalidSelfReference",
    0x80680000: "BadReferenceLocalOnly", 0x80690000: "BadNoDeleteRights",
    0x806B0000: "BadServerIndexInvalid", 0x806C0000: "BadViewIdUnknown",
    0x806D0000: "BadTooManyMatches", 0x806E0000: "BadQueryTooComplex", 0x806F0000: "BadNoMatch",
    0x80700000: "BadMaxAgeInvalid", 0x80710000: "BadHistoryOperationInvalid",
    0x80720000: "BadHistoryOperationUnsupported", 0x80730000: "BadWriteNotSupported",
    0x80740000: "BadTypeMismatch", 0x80750000: "BadMethodInvalid", 0x80760000: "BadArgumentsMissing",
    0x80770000: "BadTooManySubscriptions", 0x80780000: "BadTooManyPublishRequests",
    0x80790000: "BadNoSubscription", 0x807A0000: "BadSequenceNumberUnknown",
    0x807B0000: "BadMessageNotAvailable", 0x807C0000: "BadInsufficientClientProfile",
    0x807D0000: "BadTcpServerTooBusy", 0x807E0000: "BadTcpMessageTypeInvalid",
    0x807F0000: "BadTcpSecureChannelUnknown", 0x80800000: "BadTcpMessageTooLarge",
    0x80810000: "BadTcpNotEnoughResources", 0x80820000: "BadTcpInternalError",
    0x80830000: "BadTcpEndpointUrlInvalid", 0x80840000: "BadRequestInterrupted",
    0x80850000: "BadRequestTimeout", 0x80860000: "BadSecureChannelClosed",
    0x80870000: "BadSecureChannelTokenUnknown", 0x80880000: "BadSequenceNumberInvalid",
    0x80BE0000: "BadProtocolVersionUnsupported", 0x80890000: "BadConfigurationError",
    0x808A0000: "BadNotConnected", 0x808B0000: "BadDeviceFailure", 0x808C0000: "BadSensorFailure",
    0x808D0000: "BadOutOfService", 0x808E0000: "BadDeadbandFilterInvalid",
    0x80AB0000: "BadInvalidArgument", 0x80AC0000: "BadConnectionRejected", 0x80AD0000: "BadDisconnect",
    0x80AE0000: "BadConnectionClosed", 0x80AF0000: "BadInvalidState", 0x80B00000: "BadEndOfStream",
    0x80B10000: "BadNoDataAvailable", 0x80B20000: "BadWaitingForResponse",
    0x80B30000: "BadOperationAbandoned", 0x80B40000: "BadExpectedStreamToBlock",
    0x80B50000: "BadWouldBlock", 0x80B60000: "BadSyntaxError", 0x80B70000: "BadMaxConnectionsReached",
    0x80E40000: "BadRequestNotAllowed", 0x00A70000: "GoodEntryInserted", 0x00A80000: "GoodEntryReplaced",
    0x40000000: "Uncertain", 0x80000000: "Bad",
}


def status_name(code: int | None) -> str | None:
    if code is None:
        return None
    name = STATUS_CODES.get(code & 0xFFFF0000)
    if name is not None:
        return name
    sev = code >> 30
    return ("Good", "Uncertain", "Bad", "Bad")[sev] + f"_0x{code:08X}"


#: ns=0 nodes of the standard Server object whose Value (attribute 13) is the server's identity, not process
#: data: a Read response's DataValue is decoded only for these, into `opcua.build_info`.
IDENTITY_NODES: Final = {
    "i=2254": "server_uris",  # Server.ServerArray
    "i=2255": "namespace_uris",  # Server.NamespaceArray
    "i=2256": "server_status",  # ServerStatusDataType (its buildInfo member)
    "i=2260": "build_info",  # BuildInfo structure
    "i=2262": "product_uri",
    "i=2263": "manufacturer_name",
    "i=2261": "product_name",
    "i=2264": "software_version",
    "i=2265": "build_number",
    "i=2266": "build_date",
}
BUILD_INFO_ENCODING: Final = 340  # BuildInfo_Encoding_DefaultBinary
SERVER_STATUS_ENCODING: Final = 864  # ServerStatusDataType_Encoding_DefaultBinary
ATTRIBUTE_VALUE: Final = 13


def identity_reads(nodes: list | None) -> dict[int, str] | None:  # type: ignore[type-arg]
    """Read request operations (index -> IDENTITY_NODES key) that read an identity node's Value; None if none."""
    out: dict[int, str] | None = None
    for i, n in enumerate(nodes or ()):
        key = IDENTITY_NODES.get(n.node_id)
        if key is not None and n.attribute_id == ATTRIBUTE_VALUE:
            if out is None:
                out = {}
            out[i] = key
    return out
