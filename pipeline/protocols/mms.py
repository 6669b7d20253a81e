"""MMS (ISO 9506, IEC 61850 / ICCP client-server) fields (`mms.*`), with the OSI session/ACSE layer that carried them."""

from __future__ import annotations

from .base import Fields


class MmsData(Fields):
    """One MMS Data value (a write request's listOfData, a read response's or report's access results), in order."""

    type: str  # boolean, bit-string, integer, unsigned, floating-point, octet-string, visible-string, utc-time, structure, array, ... ; "failure" for a failed access result
    value: int | float | None = None  # simple types: boolean 0/1, bit-string as an unsigned integer (first bit most significant), integer, unsigned, floating-point
    bits: int | None = None  # bit-string: number of bits
    error: str | None = None  # failure: the DataAccessError (object-access-denied, ...)


class Mms(Fields):
    # ---- ISO transport (COTP CR/CC/DR/DC/ER of an MMS connection, action connect/disconnect, no MMS PDU)
    cotp_pdu_code: int | None = None  # 0x0e CR, 0x0d CC, 0x08 DR, 0x0c DC, 0x07 ER
    cotp_pdu_name: str | None = None
    src_ref: int | None = None
    dst_ref: int | None = None
    cotp_class: int | None = None
    src_tsap: str | None = None  # hex
    dst_tsap: str | None = None  # hex
    tpdu_size: int | None = None
    disconnect_reason: int | None = None
    # ---- carriers
    session_spdu: str | None = None  # ISO 8327 SPDU: CN, AC, DT, FN, DN, AB, RF, ... (absent: MMS straight on COTP)
    acse: str | None = None  # ACSE APDU: aarq, aare, rlrq, rlre, abrt
    acse_result: str | None = None  # AARE result: accepted, rejected-permanent, rejected-transient
    application_context: str | None = None  # AARQ/AARE application context name (OID; 1.0.9506.2.3 = MMS)
    calling_ap_title: str | None = None  # AARQ calling AP title (OID): the client application
    calling_ae_qualifier: int | None = None
    called_ap_title: str | None = None  # AARQ called AP title (OID): the server application
    called_ae_qualifier: int | None = None
    responding_ap_title: str | None = None  # AARE responding AP title (OID)
    responding_ae_qualifier: int | None = None
    authentication_mechanism: str | None = None  # AARQ mechanism name (OID; 2.2.3.1 = password)
    authenticated: bool | None = None  # AARQ carries a calling authentication value (never stored)
    # ---- the MMS PDU
    pdu_type_code: int | None = None  # MMSpdu CHOICE tag 0..13 (absent on session/ACSE-only messages)
    pdu_type: str | None = None  # confirmed-RequestPDU, confirmed-ResponsePDU, confirmed-ErrorPDU, unconfirmed-PDU, rejectPDU, initiate-RequestPDU, ...
    invoke_id: int | None = None  # confirmed request/response/error, cancel, reject (original invoke id)
    modifiers: int | None = None  # number of request modifiers (attach to event condition / semaphore)
    service_code: int | None = None  # confirmed service CHOICE tag, or unconfirmed service tag
    service: str | None = None  # read, write, getNameList, identify, start, stop, fileDelete, informationReport, ...
    # ---- object names
    domain_id: str | None = None  # first domain-specific name's domain (logical device in IEC 61850), or the domain a service names
    item_id: str | None = None  # first named item (e.g. LLN0$BR$rcb_B02)
    object_names: list[str] | None = None  # names the PDU refers to: "domain/item" or a VMD-specific name (first 32)
    object_count: int | None = None  # how many names/identifiers in all
    variable_list_name: str | None = None  # named variable list (IEC 61850 data set)
    addressed: bool | None = None  # a variable given by address rather than name
    data_count: int | None = None  # write request: values written
    data: list[MmsData] | None = None  # write request: the values written; read response, information report: the access results (first 32, in order)
    success_count: int | None = None  # read/write response, information report: results that succeeded
    failure_count: int | None = None  # ... and failed
    data_access_error: str | None = None  # the first failure: object-access-denied, object-non-existent, ...
    # ---- getNameList
    object_class: str | None = None  # namedVariable, namedVariableList, domain, programInvocation, ...
    object_scope: str | None = None  # vmd, domain, aa
    continue_after: str | None = None
    identifiers: list[str] | None = None  # response: names listed (first 32)
    more_follows: bool | None = None
    # ---- identify (asset identity)
    vendor_name: str | None = None
    model_name: str | None = None
    revision: str | None = None
    # ---- programs, domains, files
    program_invocation: str | None = None  # start/stop/resume/reset/kill/create/delete program invocation
    file_name: str | None = None  # file services, domain download/upload file
    new_file_name: str | None = None  # fileRename / obtainFile destination
    new_name: str | None = None  # rename
    state_machine_id: int | None = None  # upload state machine / file read state machine id
    # ---- errors and rejects
    error_class: str | None = None  # ServiceError class: access, definition, service, file, ...
    error_code: int | None = None
    additional_code: int | None = None
    reject_pdu: str | None = None  # reject reason: the kind of PDU rejected (confirmed-requestPDU, pdu-error, ...)
    reject_code: int | None = None
    # ---- initiate
    local_detail: int | None = None  # max MMS PDU size proposed/negotiated
    max_serv_outstanding_calling: int | None = None
    max_serv_outstanding_called: int | None = None
    data_structure_nesting_level: int | None = None
    version: int | None = None  # MMS version number
    parameter_cbb: str | None = None  # hex bit string
    services_supported: str | None = None  # hex bit string
    request_frame: int | None = None  # on an answer: frame of its request
