"""OPC UA binary fields (`opcua.*`): UA TCP transport header, secure channel, service messages."""

from __future__ import annotations

import datetime as dt

from .base import Fields


class OpcuaUserTokenPolicy(Fields):
    token_type: str  # Anonymous | UserName | Certificate | IssuedToken
    policy_id: str | None = None
    security_policy: str | None = None


class OpcuaEndpoint(Fields):
    url: str | None = None
    security_mode: str | None = None  # None | Sign | SignAndEncrypt
    security_policy: str | None = None  # short name: None, Basic256Sha256, ...
    security_policy_uri: str | None = None
    security_level: int | None = None
    user_token_types: list[str] | None = None
    application_uri: str | None = None  # the server's ApplicationDescription
    product_uri: str | None = None
    application_name: str | None = None


class OpcuaBuildInfo(Fields):
    """Server.ServerStatus.BuildInfo as a Read response returned it (only these identity nodes are decoded)."""

    manufacturer_name: str | None = None
    product_name: str | None = None
    product_uri: str | None = None
    software_version: str | None = None
    build_number: str | None = None
    build_date: dt.datetime | None = None


class OpcuaNode(Fields):
    node_id: str  # ns=<n>;i=<id> | s=<string> | g=<guid> | b=<base64>
    attribute_id: int | None = None
    attribute_name: str | None = None


class OpcuaCall(Fields):
    object_id: str
    method_id: str
    argument_count: int | None = None


class Opcua(Fields):
    message_type: str  # HEL ACK OPN MSG CLO ERR RHE
    chunk_type: str | None = None  # F final, C intermediate, A abort
    message_size: int | None = None  # bytes of the whole message (sum of its chunks)
    chunk_count: int | None = None  # when the message spanned more than one chunk
    # HEL / ACK / ERR / RHE
    protocol_version: int | None = None
    receive_buffer_size: int | None = None
    send_buffer_size: int | None = None
    max_message_size: int | None = None
    max_chunk_count: int | None = None
    endpoint_url: str | None = None
    server_uri: str | None = None
    error_code: int | None = None  # ERR message or aborted chunk
    error_name: str | None = None
    reason: str | None = None
    # secure channel
    secure_channel_id: int | None = None
    security_token_id: int | None = None
    security_policy_uri: str | None = None
    security_policy: str | None = None  # short name of the channel's policy
    sender_certificate_length: int | None = None
    receiver_thumbprint_present: bool | None = None
    sequence_number: int | None = None
    request_id: int | None = None
    encrypted: bool | None = None  # body not readable (SignAndEncrypt, or an asymmetric OPN)
    # OpenSecureChannel
    request_type: str | None = None  # issue | renew
    security_mode: str | None = None  # None | Sign | SignAndEncrypt
    requested_lifetime: int | None = None
    revised_lifetime: int | None = None
    # service
    service_type_id: int | None = None  # numeric ns=0 encoding id of the body
    type_id: str | None = None  # the encoding NodeId as text when not a ns=0 numeric id
    service_name: str | None = None  # e.g. ReadRequest, WriteResponse, ServiceFault
    service: str | None = None  # the service without Request/Response: Read, Write, ...
    is_response: bool | None = None
    request_handle: int | None = None
    request_timestamp: dt.datetime | None = None
    response_timestamp: dt.datetime | None = None
    timeout_hint: int | None = None
    auth_token_hash: str | None = None  # sha256 prefix of the session authentication token (never the token)
    status_code: int | None = None  # response header service result
    status_name: str | None = None
    # service details
    endpoints: list[OpcuaEndpoint] | None = None  # GetEndpoints response
    application_uri: str | None = None  # CreateSession request: the client's; FindServers response: the first server's
    product_uri: str | None = None
    application_name: str | None = None
    session_name: str | None = None
    session_id: str | None = None
    user_token_type: str | None = None  # ActivateSession: Anonymous | UserName | X509 | IssuedToken
    user_name: str | None = None  # UserName token: the name only, never the password
    nodes: list[OpcuaNode] | None = None  # Write / Read / Browse / AddNodes / DeleteNodes targets
    node_count: int | None = None
    calls: list[OpcuaCall] | None = None  # Call request
    result_codes: list[int] | None = None  # per-operation status codes of a response (first 64)
    request_frame: int | None = None  # on a response: frame of its request
    build_info: OpcuaBuildInfo | None = None  # Read response of the Server object's BuildInfo / ServerStatus nodes
    server_uris: list[str] | None = None  # Read response: Server.ServerArray (first 64)
    namespace_uris: list[str] | None = None  # Read response: Server.NamespaceArray (first 64)
