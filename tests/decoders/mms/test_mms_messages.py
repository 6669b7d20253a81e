"""MMS messages decoded from bytes and from corpus captures: carriers, services, names, identity, pairing, actions."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.schema import Event
from sensors.decoders.mms import parse_mms, parse_session

from .conftest import Driver, cotp_dt



def _read_request(domain: bytes, item: bytes, invoke: int = 0) -> bytes:
    name = b"\xa1" + bytes([len(domain) + len(item) + 4]) + b"\x1a" + bytes([len(domain)]) + domain + b"\x1a" + bytes([len(item)]) + item
    var = b"\x30" + bytes([len(name) + 2]) + b"\xa0" + bytes([len(name)]) + name
    lov = b"\xa0" + bytes([len(var)]) + var
    spec = b"\xa1" + bytes([len(lov)]) + lov
    svc = b"\xa4" + bytes([len(spec)]) + spec
    body = b"\x02\x01" + bytes([invoke]) + svc
    return b"\xa0" + bytes([len(body)]) + body


def _dt(mms: bytes) -> bytes:
    pdv = b"\x02\x01\x03\xa0" + bytes([len(mms)]) + mms
    fed = b"\x30" + bytes([len(pdv)]) + pdv
    return b"\x01\x00\x01\x00\x61" + bytes([len(fed)]) + fed


def test_read_request_names_domain_and_item() -> None:
    p = parse_mms(_read_request(b"AA1E1Q01FP2LD0", b"LLN0$BR$rcb_B02", 7))
    assert p.anomaly is None
    f = p.f
    assert (f["pdu_type"], f["invoke_id"], f["service"]) == ("confirmed-RequestPDU", 7, "read")
    assert (f["domain_id"], f["item_id"], f["object_names"]) == ("AA1E1Q01FP2LD0", "LLN0$BR$rcb_B02", ["AA1E1Q01FP2LD0/LLN0$BR$rcb_B02"])


def test_session_data_transfer_carries_the_mms_pdu() -> None:
    u = parse_session(_dt(_read_request(b"LD0", b"XCBR1$ST$Pos")))
    assert u.spdu == "DT" and u.anomaly is None and len(u.mms) == 1
    assert parse_mms(u.mms[0]).f["item_id"] == "XCBR1$ST$Pos"


def test_request_and_response_are_paired(driver: Driver) -> None:
    req = driver.req(cotp_dt(_dt(_read_request(b"LD0", b"MMXU1$MX$TotW", 5))))
    # confirmed-ResponsePDU invoke 5, read: listOfAccessResult [1] { floating-point [7] }, one failure [0] object-non-existent
    results = bytes.fromhex("8705080000000080010a")  # floating-point [7] 0.0; failure [0] 10 object-non-existent
    resp_pdu = bytes.fromhex("a111020105a40ca10a") + results
    resp = driver.resp(cotp_dt(_dt(resp_pdu)))
    (r,) = [e for e in req if e.event.dataset == "mms"]
    assert r.event.action == "read" and r.mms is not None and r.mms.session_spdu == "DT"
    events = [e for e in resp if e.event.dataset == "mms" and e.anomaly is None]
    assert len(events) == 1, resp
    a = events[0]
    assert a.mms is not None and a.mms.request_frame == 1 and a.event.action == "read"
    assert (a.mms.success_count, a.mms.failure_count, a.mms.data_access_error) == (1, 1, "object-non-existent")
    assert a.mms.domain_id == "LD0" and a.mms.item_id == "MMXU1$MX$TotW"  # carried from the request
    assert a.mms.data is not None and [(d.type, d.value, d.error) for d in a.mms.data] == [
        ("floating-point", 0.0, None), ("failure", None, "object-non-existent")]
    assert a.source is not None and a.source.ip == "10.0.0.2"


def test_unanswered_response_is_unsolicited(driver: Driver) -> None:
    events = driver.resp(cotp_dt(_dt(bytes.fromhex("a1070201099f290100"))))  # confirmed-ResponsePDU invoke 9, stop
    codes = [e.anomaly.code for e in events if e.anomaly is not None]
    assert codes == ["unsolicited_response"]
    assert [e.event.action for e in events if e.anomaly is None] == ["mode_change"]


def test_piccolo_identify_gives_vendor_model_revision(decoded: Callable[[str], list[Event]]) -> None:
    events = [e for e in decoded("iti-ics-security-tools/IEC61850/piccolo.pcap") if e.event.dataset == "mms"]
    assert [(e.evidence.frame if e.evidence else None, e.mms.pdu_type if e.mms else None) for e in events] == [
        (1, "initiate-RequestPDU"), (2, "initiate-ResponsePDU"), (3, "confirmed-RequestPDU"), (4, "confirmed-ResponsePDU"), (5, "confirmed-RequestPDU"),
    ]  # fmt: skip
    first, accept, ident = events[0], events[1], events[3]
    assert first.mms is not None and (first.mms.session_spdu, first.mms.acse, first.event.action) == ("CN", "aarq", "session")
    assert accept.mms is not None and (accept.mms.session_spdu, accept.mms.acse, accept.mms.acse_result) == ("AC", "aare", "accepted")
    assert ident.mms is not None and ident.event.action == "identify" and ident.mms.request_frame == 3
    assert (ident.mms.vendor_name, ident.mms.model_name, ident.mms.revision) == ("INFO TECH", "S61850 for PC", "0.0.1")


def test_program_invocation_control_is_mode_change(decoded: Callable[[str], list[Event]]) -> None:
    for name, service in (("mms-startRequest", "start"), ("mms-stopRequest", "stop"), ("mms-resetRequest", "reset"), ("mms-killRequest", "kill"), ("mms-resumeRequest", "resume")):
        events = [e for e in decoded(f"iti-ics-security-tools/IEC61850/MMS_-_Specific_Commands/{name}.pcap") if e.event.dataset == "mms" and e.mms and e.mms.service == service]
        assert events, name
        assert all(e.event.action == "mode_change" for e in events)
        assert events[0].mms is not None and events[0].mms.program_invocation, name


def test_port_102_still_decodes_s7comm(decoded: Callable[[str], list[Event]]) -> None:
    # The dispatch by first byte leaves S7comm on the same port to the S7comm decoder.
    events = decoded("icsnpp-s7comm/traces/snap7.pcap")
    assert any(e.event.dataset == "s7comm" and e.s7comm and e.s7comm.protocol == "s7comm" for e in events)
    assert not any(e.event.dataset == "mms" for e in events)


def test_identify_answer_feeds_the_asset_inventory(decoded: Callable[[str], list[Event]]) -> None:
    from detection.inventory.identity import claims

    got = {(c.attr, c.value, c.path, c.side) for e in decoded("iti-ics-security-tools/IEC61850/piccolo.pcap") for c in claims(e)}
    assert {("vendor", "INFO TECH", "mms.vendor_name", "source"), ("model", "S61850 for PC", "mms.model_name", "source"), ("firmware", "0.0.1", "mms.revision", "source")} <= got


def test_association_names_the_applications(decoded: Callable[[str], list[Event]]) -> None:
    # AP titles and AE qualifiers as tshark's acse dissector shows them for piccolo.pcap frames 1-2.
    aarq, aare = [e.mms for e in decoded("iti-ics-security-tools/IEC61850/piccolo.pcap")[:4] if e.mms is not None and e.mms.acse in ("aarq", "aare")]
    assert aarq is not None and aare is not None
    assert (aarq.application_context, aarq.calling_ap_title, aarq.called_ap_title, aarq.calling_ae_qualifier) == ("1.0.9506.2.3", "1.1.1.999", "1.1.1.999.1", 12)
    assert aarq.authenticated is False and aarq.authentication_mechanism is None  # an unauthenticated association
    assert (aare.responding_ap_title, aare.acse_result) == ("1.1.1.999.1", "accepted")


def test_write_request_carries_the_values_written() -> None:
    # write: spec listOfVariable {LD0/PTOC1$SP$StrVal$setMag$f}, listOfData [0] { floating-point 124.9 }
    read = _read_request(b"LD0", b"PTOC1$SP$StrVal$setMag$f", 9)
    spec = read[read.index(b"\xa0", 5):]  # the listOfVariable [0] inside the read's specification
    data = b"\xa0\x07\x87\x05\x08" + bytes.fromhex("42f9cccd")  # [7] exponent width 8, IEEE single 124.9
    svc = b"\xa5" + bytes([len(spec) + len(data)]) + spec + data
    body = b"\x02\x01\x09" + svc
    f = parse_mms(b"\xa0" + bytes([len(body)]) + body).f
    assert (f["service"], f["item_id"], f["data_count"]) == ("write", "PTOC1$SP$StrVal$setMag$f", 1)
    assert f["data"] == [{"type": "floating-point", "value": 124.9}]


def test_read_response_simple_values() -> None:
    results = bytes.fromhex(
        "84020640"  # bit-string, 6 unused bits, 01: Dbpos off (1)
        "830101"  # boolean true
        "8501fe"  # integer -2
        "860200c8"  # unsigned 200
        "8709" + "0b" + "4059000000000000"  # floating-point, double 100.0
        "8a03414243"  # visible-string: a type, no value
        "a2038301" "00"  # structure { boolean false }: a type only
    )
    lar = b"\xa1" + bytes([len(results)]) + results
    svc = b"\xa4" + bytes([len(lar)]) + lar
    body = b"\x02\x01\x05" + svc
    f = parse_mms(b"\xa1" + bytes([len(body)]) + body).f
    assert f["success_count"] == 7 and f["failure_count"] == 0
    assert f["data"] == [
        {"type": "bit-string", "bits": 2, "value": 1}, {"type": "boolean", "value": 1}, {"type": "integer", "value": -2},
        {"type": "unsigned", "value": 200}, {"type": "floating-point", "value": 100.0}, {"type": "visible-string"},
        {"type": "structure"},
    ]
