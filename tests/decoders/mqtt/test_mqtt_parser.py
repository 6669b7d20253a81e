"""MQTT parser and flow on byte literals: every control packet, v3/v5, split/coalesced packets, anomalies, fuzz."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.protocols.mqtt import Mqtt
from sensors.decoders.base import Direction
from sensors.decoders.mqtt import MqttFlow, parse
from sensors.decoders.mqtt.constants import MAX_MESSAGE, TYPE_NAMES


def s(text: str) -> bytes:
    b = text.encode()
    return len(b).to_bytes(2, "big") + b


def pkt(first: int, body: bytes) -> bytes:
    n, rl = len(body), bytearray()
    while True:
        x, n = n & 0x7F, n >> 7
        rl.append(x | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(rl) + body


CONNECT_311 = pkt(0x10, s("MQTT") + bytes([
    0x04,        # level 4 = 3.1.1
    0xC2,        # username, password, clean session
    0x00, 0x3C,  # keepalive 60
]) + s("plc-7") + s("operator") + s("s3cr3t-pw"))  # fmt: skip
CONNECT_ANON_31 = pkt(0x10, s("MQIsdp") + bytes([0x03, 0x02, 0x00, 0x0A]) + s("sensor"))
CONNACK_OK = bytes([0x20, 0x02, 0x00, 0x00])
CONNACK_BAD_AUTH = bytes([0x20, 0x02, 0x00, 0x04])
PUBLISH_QOS1 = pkt(0x32, s("plant/line1/valve/cmd") + bytes([0x00, 0x07]) + b"OPEN")
PUBACK = bytes([0x40, 0x02, 0x00, 0x07])
SUBSCRIBE_ALL = pkt(0x82, bytes([0x00, 0x01]) + s("#") + bytes([0x00]) + s("plant/+/temp") + bytes([0x01]))
SUBACK = bytes([0x90, 0x04, 0x00, 0x01, 0x00, 0x01])
UNSUBSCRIBE = pkt(0xA2, bytes([0x00, 0x02]) + s("#"))
UNSUBACK = bytes([0xB0, 0x02, 0x00, 0x02])
PINGREQ, PINGRESP, DISCONNECT = bytes([0xC0, 0x00]), bytes([0xD0, 0x00]), bytes([0xE0, 0x00])


def p(data: bytes, version: int | None = None) -> Mqtt:
    r = parse(data, version)
    assert r.consumed == len(data) and isinstance(r.pdu, Mqtt), (r.anomaly, r.anomaly_message)
    assert r.anomaly is None, r.anomaly_message
    return r.pdu


def test_connect_311_keeps_username_never_password() -> None:
    m = p(CONNECT_311)
    assert (m.message_type_name, m.protocol_name, m.protocol_version, m.client_id, m.keepalive) == ("connect", "MQTT", 4, "plc-7", 60)
    assert (m.username_present, m.username, m.password_present, m.clean_session) == (True, "operator", True, True)
    assert b"s3cr3t" not in repr(m).encode()


def test_connect_31_anonymous() -> None:
    m = p(CONNECT_ANON_31)
    assert (m.protocol_name, m.protocol_version, m.username_present, m.password_present) == ("MQIsdp", 3, False, False)


def test_connect_v5_properties_and_will() -> None:
    body = s("MQTT") + bytes([0x05, 0x2E, 0x00, 0x1E, 0x03, 0x21, 0x00, 0x10]) + s("c1") + bytes([0x05, 0x18, 0, 0, 0, 9]) + s("status/c1") + s("offline")
    m = p(pkt(0x10, body))
    assert m.properties == {"receive_maximum": 16} and m.will_properties == {"will_delay_interval": 9}
    assert (m.will_flag, m.will_qos, m.will_retain, m.will_topic, m.will_message) == (True, 1, True, "status/c1", "offline")


def test_connack_codes() -> None:
    assert (p(CONNACK_OK).reason_name, p(CONNACK_BAD_AUTH).reason_name) == ("accepted", "bad_username_or_password")
    assert p(bytes([0x20, 0x03, 0x01, 0x86, 0x00]), 5).reason_name == "bad_user_name_or_password"


def test_publish() -> None:
    m = p(PUBLISH_QOS1)
    assert (m.topic, m.qos, m.packet_id, m.payload, m.payload_length, m.payload_encoding, m.payload_truncated) == ("plant/line1/valve/cmd", 1, 7, "OPEN", 4, "utf8", False)
    binary = p(pkt(0x30, s("t") + bytes(range(200))))
    assert binary.payload_encoding == "hex" and binary.payload == bytes(range(64)).hex() and binary.payload_truncated and binary.payload_length == 200


def test_subscribe_wildcards_and_acks() -> None:
    m = p(SUBSCRIBE_ALL)
    assert [(t.topic, t.qos, t.wildcard) for t in m.topics or []] == [("#", 0, True), ("plant/+/temp", 1, True)] and m.wildcard == "#"
    assert p(SUBACK).reason_codes == [0, 1]
    assert [t.topic for t in p(UNSUBSCRIBE).topics or []] == ["#"] and p(UNSUBACK).packet_id == 2


@pytest.mark.parametrize("data", [PINGREQ, PINGRESP, DISCONNECT, PUBACK, bytes([0x50, 2, 0, 1]), bytes([0x62, 2, 0, 1]), bytes([0x70, 2, 0, 1]), bytes([0xF0, 0x00])])
def test_every_other_type(data: bytes) -> None:
    m = p(data, 5)
    assert m.message_type_name == TYPE_NAMES[data[0] >> 4]


def test_anomalies() -> None:
    assert parse(bytes([0x00, 0x00])).anomaly == "unassigned_msg_type"
    assert parse(bytes([0x36, 0x03]) + s("t")[:3]).anomaly == "invalid_qos_level"
    assert parse(bytes([0x80, 0x02, 0x00, 0x01])).anomaly == "invalid_flags"
    assert parse(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])).anomaly == "invalid_length"
    assert parse(pkt(0x30, s("topic-longer-than-body")[:6])).anomaly == "malformed_traffic"
    assert parse(bytes([0xF0, 0x00]), 4).anomaly == "unassigned_msg_type"  # AUTH before MQTT 5


def test_oversized_publish_is_decoded_from_its_head_and_skipped(driver: Any) -> None:
    big = pkt(0x30, s("bulk") + b"x" * MAX_MESSAGE)
    ev = driver.client(CONNECT_311) + driver.broker(CONNACK_OK)
    ev = driver.client(big[:5000]) + driver.client(big[5000:]) + driver.client(PINGREQ)
    assert [e.mqtt.message_type_name for e in ev if e.anomaly is None] == ["publish", "pingreq"]
    assert [e.anomaly.code for e in ev if e.anomaly] == ["too_large"]
    assert ev[0].mqtt.topic == "bulk" and ev[0].mqtt.payload_length == MAX_MESSAGE and ev[0].mqtt.payload_truncated


def test_session_pairing_actions_and_outcomes(driver: Any) -> None:
    ev = driver.client(CONNECT_311) + driver.broker(CONNACK_BAD_AUTH)
    assert [e.event.action for e in ev] == ["login", "login"] and ev[1].event.outcome == "failure" and ev[1].mqtt.request_frame == 1
    ev = driver.client(CONNECT_311[:7]) + driver.client(CONNECT_311[7:] + PUBLISH_QOS1 + SUBSCRIBE_ALL)
    assert [e.anomaly.code if e.anomaly else e.event.action for e in ev] == ["login", "double_connect", "publish", "subscribe"]
    ev = driver.broker(CONNACK_OK + PUBACK + SUBACK) + driver.client(PINGREQ) + driver.broker(PINGRESP) + driver.client(DISCONNECT)
    assert [e.event.action for e in ev] == ["login", "publish", "subscribe", "keepalive", "keepalive", "disconnect"]
    assert [e.mqtt.request_frame for e in ev] == [4, 4, 4, None, 6, None]
    assert [e.event.outcome for e in ev] == ["success", "success", "success", None, "success", None]


def test_unsolicited_and_unintroduced(driver: Any) -> None:
    ev = driver.client(PUBLISH_QOS1) + driver.broker(CONNACK_OK) + driver.broker(SUBACK)
    assert [e.anomaly.code for e in ev if e.anomaly] == ["unintroduced_message", "missing_connect", "unintroduced_message", "missing_subscribe"]


def test_truncated_packet_reported_on_close(driver: Any) -> None:
    driver.client(CONNECT_311[:10])
    assert [e.anomaly.code for e in driver.close() if e.anomaly] == ["truncated_pdu"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, 3, 4, 5]))
def test_parse_never_raises(data: bytes, version: int | None) -> None:
    r = parse(data, version)
    assert r.consumed >= 0 and (r.consumed > 0 or r.needed > 0 or not data)


_VALID = [CONNECT_311, CONNECT_ANON_31, CONNACK_OK, PUBLISH_QOS1, PUBACK, SUBSCRIBE_ALL, SUBACK, UNSUBSCRIBE, PINGREQ, DISCONNECT]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.one_of(st.binary(max_size=40), st.sampled_from(_VALID)), st.integers(0, 40)), max_size=20))
def test_flow_never_raises_on_random_split_input(chunks: list[tuple[bool, bytes, int]]) -> None:
    from tests.decoders.mqtt.conftest import meta_at  # noqa: PLC0415

    flow = MqttFlow()
    for i, (to_server, data, cut) in enumerate(chunks, 1):
        d = Direction.TO_SERVER if to_server else Direction.TO_CLIENT
        for part in (data[:cut], data[cut:]):
            for e in flow.feed(memoryview(part), d, meta_at(i)):
                assert e.event.dataset == "mqtt" and (e.anomaly is None) == (e.event.action != "anomaly")
    flow.close(meta_at(len(chunks) + 1))
