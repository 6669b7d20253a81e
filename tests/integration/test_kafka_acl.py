"""Kafka with SASL/SCRAM and ACLs: an enterprise's sensor writes its own topic and nothing else.

A broker of its own (pipeline.services.secure_kafka, the same Maven Central jars as the plain one)
with SCRAM-SHA-512 on the client listener, `StandardAuthorizer` and no access without an ACL.
Sensor accounts are made with `qinling kafka-accounts add` / pipeline.kafka_acl; the sensor is the
real CLI (`qinling replay --bus kafka --no-workers`) on a testbed capture; the province's detect
worker consumes every enterprise topic by pattern as the super user.
"""

from __future__ import annotations

import gc
import io
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.jobs import detect_worker, replay
from pipeline import schema
from pipeline.bus import EmbeddedBus
from pipeline.exceptions import BusError
from pipeline.kafka_acl import EVENTS_PATTERN, SensorAccount, provision_sensor, revoke_sensor, sensor_acls, sensor_topic
from pipeline.services.secure_kafka import SecureKafka, client_security
from pipeline.settings import Settings

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "pcaps" / "modbus" / "modbus_plant_attack.pcap"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _collect_kafka_python_sockets() -> Iterator[None]:
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    with SecureKafka(tmp_path_factory.mktemp("sasl-kafka"), port=_free_port(), controller_port=_free_port()) as b:
        yield b


@pytest.fixture(scope="module")
def accounts(broker: SecureKafka) -> dict[str, SensorAccount]:
    return {org: provision_sensor(broker.bootstrap, broker.admin_security(), org, partitions=2) for org in ("ent-a", "ent-b")}


def _read_all(broker: SecureKafka, topic: str, timeout: float = 15.0) -> list[bytes]:
    """Every record of `topic`, read as the super user without a consumer group."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, **broker.admin_security())
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        ends = c.end_offsets(parts)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while any(c.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(r.value for r in recs)
        return out
    finally:
        c.close()


def _sensor_replay(account: SensorAccount, *extra: str, org: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **account.environment()}
    if org is not None:
        env["QINLING_ORGANIZATION_ID"] = org
    return subprocess.run([sys.executable, "-m", "console", "replay", str(CAPTURE), "--no-workers", "--no-progress", "--no-store", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def _embedded_alert_ids(org: str) -> list[str]:
    buf = io.BytesIO()
    replay([CAPTURE], Settings(organization_id=org), out=buf, bus=EmbeddedBus())
    return sorted(schema.decode_event(x).event.id or "" for x in buf.getvalue().splitlines())


def test_sensor_account_holds_write_and_describe_on_its_own_topic_only(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    assert sensor_acls(broker.bootstrap, broker.admin_security(), "ent-a") == [
        ("DESCRIBE", "ALLOW", "ent.ent-a.events"), ("WRITE", "ALLOW", "ent.ent-a.events")]
    assert accounts["ent-a"].topic == sensor_topic("ent-a") == "ent.ent-a.events"


def test_sensor_publishes_its_capture_and_the_province_worker_detects_it(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    done = _sensor_replay(accounts["ent-a"])
    assert done.returncode == 0, done.stderr
    events = [schema.decode_event(v) for v in _read_all(broker, "ent.ent-a.events")]
    assert events and {e.organization.id for e in events if e.organization} == {"ent-a"}
    assert all(e.organization is not None for e in events)

    # the province: super user, its own topics, plus every enterprise topic by pattern
    province = Settings(bus=f"kafka://{broker.bootstrap}", organization_id="province", kafka_topic_prefix="province-",
                        kafka_events_pattern=EVENTS_PATTERN, kafka_partitions=2, kafka_security_protocol="SASL_PLAINTEXT",
                        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="admin", kafka_sasl_password=broker.admin_password)
    from console.jobs import open_bus

    bus = open_bus(province, client_id="province-detect")
    want = _embedded_alert_ids("ent-a")
    got: list[str] = []
    worker = detect_worker(province, bus, rewind=0, on_alerts=lambda alerts: got.extend(a.event.id or "" for a in alerts))
    stop = threading.Event()
    deadline = time.monotonic() + 120
    try:
        worker.run(stop, until=lambda w: w.stats.records >= len(events) or time.monotonic() > deadline)
    finally:
        stop.set()
        worker.consumer.close()
        bus.close()
    assert worker.stats.records == len(events)
    assert sorted(got) == want and want


def test_sensor_cannot_write_another_enterprises_topic(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    from pipeline.kafka_bus import KafkaBus

    a = accounts["ent-a"]
    before = len(_read_all(broker, "ent.ent-b.events"))
    bus = KafkaBus(broker.bootstrap, partitions=2, topics=[a.topic], security=client_security(a.username, a.password))
    try:
        p = bus.producer()
        p.send("ent.ent-b.events", b"{}", key=b"x")
        with pytest.raises(BusError, match="may not write there.*(TopicAuthorizationFailed|TOPIC_AUTHORIZATION_FAILED)"):
            p.flush()
    finally:
        bus.close()
    assert len(_read_all(broker, "ent.ent-b.events")) == before


def test_sensor_reads_nothing_not_even_its_own_topic(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import TopicAuthorizationFailedError

    from pipeline.kafka_bus import KafkaBus

    a = accounts["ent-a"]
    bus = KafkaBus(broker.bootstrap, partitions=2, topics=[a.topic], security=client_security(a.username, a.password))
    try:
        with pytest.raises(BusError, match="GroupAuthorizationFailed"):
            c = bus.consumer([a.topic], group="snoop")
            c.poll(10, timeout=10.0)
    finally:
        bus.close()
    admin_bus = KafkaBus(broker.bootstrap, partitions=2, topics=[a.topic, "ent.ent-b.events"], security=broker.admin_security())
    try:  # both topics hold records the sensor could read if it were allowed to
        p = admin_bus.producer()
        for topic in (a.topic, "ent.ent-b.events"):
            p.send(topic, b"{}", key=b"seed")
        p.flush()
    finally:
        admin_bus.close()
    for topic in (a.topic, "ent.ent-b.events"):  # without a group: the topic ACL refuses the fetch
        raw = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, **client_security(a.username, a.password))
        refused = False
        try:
            tp = TopicPartition(topic, 0)
            raw.assign([tp])
            raw.seek(tp, 0)
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                try:
                    assert not raw.poll(timeout_ms=500), f"the sensor read records of {topic}"
                except TopicAuthorizationFailedError:
                    refused = True
                    break
        finally:
            raw.close()
        assert len(_read_all(broker, topic)) >= 1
        # own topic: fetch refused outright; another enterprise's: not even its metadata is disclosed
        assert refused or topic != a.topic


def test_sensor_can_neither_create_topics_nor_see_other_enterprises(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    from kafka.admin import KafkaAdminClient

    from pipeline.kafka_bus import KafkaBus

    a = accounts["ent-a"]
    with pytest.raises(BusError, match="could not create topics"):
        KafkaBus(broker.bootstrap, partitions=1, topics=["ent.ent-a.alerts"], security=client_security(a.username, a.password))
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, **client_security(a.username, a.password))
    try:
        assert set(admin.list_topics()) == {a.topic}
    finally:
        admin.close()


def test_forged_organization_on_an_enterprise_topic_is_refused_by_the_province(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    """ent-a's sensor stamps ent-b's id on events in its own topic: the province worker drops them."""
    done = _sensor_replay(accounts["ent-a"], org="ent-b")
    assert done.returncode == 0, done.stderr
    from console.jobs import open_bus
    from pipeline.kafka_bus import KafkaBus

    a = accounts["ent-a"]
    sensor = KafkaBus(broker.bootstrap, partitions=2, topics=[a.topic], security=client_security(a.username, a.password))
    try:  # and bytes that are no event at all: skipped and counted, detection goes on
        p = sensor.producer()
        p.send(a.topic, b"\x00not an event", key=b"junk")
        p.flush()
    finally:
        sensor.close()

    province = Settings(bus=f"kafka://{broker.bootstrap}", organization_id="province", kafka_topic_prefix="forge-",
                        kafka_events_pattern=r"^ent\.ent-a\.events$", detect_group="forge-detect", kafka_partitions=2,
                        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="admin", kafka_sasl_password=broker.admin_password)
    total = len(_read_all(broker, a.topic))
    bus = open_bus(province, client_id="forge-detect")
    got: list[str] = []
    worker = detect_worker(province, bus, rewind=0, on_alerts=lambda alerts: got.extend(a.event.id or "" for a in alerts))
    stop = threading.Event()
    deadline = time.monotonic() + 120
    try:
        worker.run(stop, until=lambda w: w.stats.records + w.stats.forged + w.stats.malformed >= total or time.monotonic() > deadline)
    finally:
        stop.set()
        worker.consumer.close()
        bus.close()
    assert worker.stats.forged > 0 and worker.stats.malformed >= 1
    assert worker.stats.records + worker.stats.forged + worker.stats.malformed == total
    assert not any(i.startswith("ent-b/") for i in got), "alerts were raised for the forged organization"


def test_wrong_password_is_a_clear_error(broker: SecureKafka, accounts: dict[str, SensorAccount]) -> None:
    a = accounts["ent-a"]
    bad = SensorAccount(a.organization, a.username, "not-the-password", a.topic, a.bootstrap)
    done = _sensor_replay(bad)
    assert done.returncode != 0
    assert "did not accept SCRAM-SHA-512 login as 'sensor.ent-a'" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_adds_shows_and_removes_an_account(broker: SecureKafka, accounts: dict[str, SensorAccount], tmp_path: Path) -> None:
    env = {**os.environ, "QINLING_BUS": f"kafka://{broker.bootstrap}", "QINLING_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "QINLING_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "QINLING_KAFKA_SASL_USERNAME": "admin",
           "QINLING_KAFKA_SASL_PASSWORD": broker.admin_password}
    pw = tmp_path / "pw"
    pw.write_text("c-secret-123\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console", "kafka-accounts", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)

    added = cli("add", "ent-c", "--password-file", str(pw), "--partitions", "1")
    assert added.returncode == 0, added.stderr
    assert 'kafka_topic_prefix = "ent.ent-c."' in added.stdout and 'kafka_sasl_password = "c-secret-123"' in added.stdout
    shown = cli("show", "ent-c")
    assert "WRITE" in shown.stdout and "DESCRIBE" in shown.stdout and "ent.ent-c.events" in shown.stdout
    account = SensorAccount("ent-c", "sensor.ent-c", "c-secret-123", "ent.ent-c.events", broker.bootstrap)
    assert _sensor_replay(account).returncode == 0
    assert cli("remove", "ent-c").returncode == 0
    assert sensor_acls(broker.bootstrap, broker.admin_security(), "ent-c") == []
    after = _sensor_replay(account)
    assert after.returncode != 0 and "Traceback" not in after.stderr
    bad = cli("add", "../evil")
    assert bad.returncode != 0 and "cannot name a Kafka topic" in bad.stderr


def test_revoked_account_is_refused(broker: SecureKafka) -> None:
    d = provision_sensor(broker.bootstrap, broker.admin_security(), "ent-d", partitions=1)
    assert revoke_sensor(broker.bootstrap, broker.admin_security(), "ent-d") == 2
    done = _sensor_replay(d)
    assert done.returncode != 0 and "did not accept SCRAM-SHA-512 login" in done.stderr


@pytest.mark.elasticsearch
def test_province_indexer_stores_only_the_enterprises_own_events(broker: SecureKafka, accounts: dict[str, SensorAccount],
                                                               es_url: str, unique: str) -> None:
    """The index stage screens enterprise topics like the detect stage: forged and junk records are counted, not stored,
    and do not stall it (they are committed with their batch)."""
    import msgspec

    from console.jobs import open_bus, open_store_for
    from pipeline.indexer import run_indexer
    from pipeline.kafka_bus import KafkaBus
    from pipeline.schema import Organization
    from pipeline.store import Query

    a = accounts["ent-a"]
    def own() -> list[schema.Event]:
        return [e for e in map(_try_decode, _read_all(broker, a.topic)) if e is not None and e.organization and e.organization.id == "ent-a"]

    if not own():
        assert _sensor_replay(a).returncode == 0
    genuine = own()[0]
    fake = msgspec.structs.replace(genuine, organization=Organization(id="ent-b"))
    sensor = KafkaBus(broker.bootstrap, partitions=2, topics=[a.topic], security=client_security(a.username, a.password))
    try:
        p = sensor.producer()
        p.send(a.topic, schema.encode(fake), key=b"forged")
        p.send(a.topic, b"\xff\xfe junk", key=b"junk")
        p.flush()
    finally:
        sensor.close()
    values = _read_all(broker, a.topic)
    trusted = {e.event.id for e in (_try_decode(v) for v in values) if e is not None and e.organization and e.organization.id == "ent-a"}

    province = Settings(bus=f"kafka://{broker.bootstrap}", store=es_url, es_index_prefix=unique, organization_id="province",
                        kafka_topic_prefix=f"{unique}-", kafka_events_pattern=r"^ent\.ent-a\.events$", index_group=f"{unique}-index",
                        kafka_partitions=2, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="admin", kafka_sasl_password=broker.admin_password)
    store = open_store_for(province)
    bus = open_bus(province, client_id="acl-index")
    consumer = bus.consumer(province.events_topics(), group=province.index_group)
    stop = threading.Event()
    deadline = time.monotonic() + 120
    try:
        stats = run_indexer(consumer, store, stop=stop, until=lambda st: st.records >= len(values) or time.monotonic() > deadline)
        store.flush()
        stored = store.search("events", Query(size=10_000)).items
    finally:
        consumer.close()
        bus.close()
        store.drop()  # type: ignore[attr-defined]
        store.close()
    assert stats.records == len(values)
    assert stats.malformed >= 1 and stats.forged >= 1
    assert {e.event.id for e in stored} == trusted
    assert {e.organization.id for e in stored if e.organization} == {"ent-a"}


def _try_decode(value: bytes) -> schema.Event | None:
    try:
        return schema.decode_event(value)
    except ValueError:
        return None
