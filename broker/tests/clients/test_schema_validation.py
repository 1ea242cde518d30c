"""Broker-side schema validation (Confluent Server's `confluent.value.schema.validation`)
with a real registry process and confluent-kafka's AvroSerializer: serialized records are
accepted, a raw record and a record with an unregistered id are refused with INVALID_RECORD and
nothing is stored, and while the registry is down a new id is refused with a retriable error."""

from __future__ import annotations

import json
import struct
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from harness import metric_sum
from pyclients import ck_create_topic, ck_produce
from registryproc import RegistryProcess, https_registry_files

SCHEMA = json.dumps(
    {"type": "record", "name": "User", "namespace": "test", "fields": [{"name": "id", "type": "int"}]}
)
OTHER = json.dumps(
    {"type": "record", "name": "Other", "namespace": "test", "fields": [{"name": "n", "type": "string"}]}
)


@pytest.fixture
def validated(broker_factory, tmp_path, broker_kind):
    """A broker that knows the registry (`--schema-registry-url`; on the cluster kind the
    KafkaCluster's `spec.config` names it as an external registry), the registry on it, and a
    topic with value validation on."""
    if broker_kind == "tansu":
        pytest.skip("Tansu has no broker-side schema validation")
    registry = RegistryProcess("", tmp_path / "registry", f"_schemas-{uuid.uuid4().hex[:8]}")
    broker = broker_factory(schema_registry_url=registry.url)
    registry.bootstrap = broker.bootstrap
    registry.start()
    topic = f"validated-{uuid.uuid4().hex[:8]}"
    ck_create_topic(broker.bootstrap, topic, config={"confluent.value.schema.validation": "true"})
    yield broker, registry, topic
    registry.stop()
    print(registry.log_tail())


def stored(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return high - low
    finally:
        consumer.close()


def avro_bytes(registry: RegistryProcess, topic: str, value: dict, schema: str = SCHEMA) -> bytes:
    serializer = AvroSerializer(SchemaRegistryClient({"url": registry.url}), schema)
    return serializer(value, SerializationContext(topic, MessageField.VALUE))


NO_RETRY = {"retries": 0, "enable.idempotence": False, "message.timeout.ms": 20000}


def test_serialized_records_are_accepted_and_raw_or_unregistered_ones_refused(validated):
    broker, registry, topic = validated
    good = avro_bytes(registry, topic, {"id": 1})
    reports = ck_produce(broker.bootstrap, topic, [{"value": good}, {"key": b"k", "value": good}])
    assert [r.error for r in reports] == [None, None]
    assert stored(broker.bootstrap, topic) == 2

    # A raw record, an id nobody registered, and an id registered under another subject.
    other = avro_bytes(registry, f"{topic}-elsewhere", {"n": "x"}, OTHER)
    for bad in [b"plain text", b"\x00" + struct.pack(">i", 999_999) + b"\x02", other]:
        [report] = ck_produce(broker.bootstrap, topic, [{"value": good}, {"value": bad}][1:], config=NO_RETRY)
        assert report.error is not None and report.error.code() == KafkaError.INVALID_RECORD, (bad, report)
    # A batch with a good and a bad record is refused whole.
    reports = ck_produce(
        broker.bootstrap, topic, [{"value": good}, {"value": b"raw"}], config={**NO_RETRY, "linger.ms": 200}
    )
    assert all(r.error is not None and r.error.code() == KafkaError.INVALID_RECORD for r in reports), reports
    assert stored(broker.bootstrap, topic) == 2, "nothing of a refused batch is stored"
    # A null value (a tombstone) is not validated, as in Confluent Server.
    [tombstone] = ck_produce(broker.bootstrap, topic, [{"key": b"k"}], config=NO_RETRY)
    assert tombstone.error is None
    refused = f'tributary_schema_validation_refused_records_total{{reason="no_wire_format",topic="{topic}"}}'
    assert metric_sum(broker, refused) >= 2
    assert metric_sum(broker, 'tributary_schema_validation_registry_lookups_total{outcome="unknown"}') >= 1
    assert metric_sum(broker, "tributary_schema_validation_cache_hits_total") >= 1


def test_an_unreachable_registry_refuses_new_ids_with_a_retriable_error(validated):
    broker, registry, topic = validated
    fresh = avro_bytes(registry, topic, {"id": 2})
    registry.stop()
    [report] = ck_produce(broker.bootstrap, topic, [{"value": fresh}], config=NO_RETRY)
    assert report.error is not None, report
    assert report.error.code() == KafkaError.REQUEST_TIMED_OUT, report.error
    assert stored(broker.bootstrap, topic) == 0
    # A producer that retries gets the record in once the registry is back.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 60000, "retry.backoff.ms": 200})
    outcome = []
    producer.produce(topic, value=fresh, on_delivery=lambda err, msg: outcome.append(err))
    producer.poll(2)
    assert outcome == [], "still retrying while the registry is down"
    registry.start()
    assert producer.flush(60) == 0
    assert outcome == [None], outcome
    assert stored(broker.bootstrap, topic) == 1


@pytest.mark.single_broker("the registry's address and credentials are one standalone broker's properties")
@pytest.mark.parametrize("authentication", ["basic", "tls"])
def test_a_registry_over_https_is_asked_with_the_brokers_credentials(broker_factory, tmp_path, authentication):
    """Confluent Server's settings for an https:// registry: the broker trusts the registry's
    CA (`confluent.ssl.truststore.*`) and presents its `confluent.basic.auth.user.info` (basic)
    or its client certificate, chain and key in files of their own
    (`confluent.ssl.keystore.location`, `confluent.ssl.keystore.key.location`: a Kubernetes TLS
    Secret's layout). With a wrong password, or no certificate, every lookup fails, so records
    with registered ids are refused with a retriable error and nothing is stored."""
    pki = tmp_path / "pki"
    flags, ca = https_registry_files(pki, {"broker": "broker-secret", "alice": "alice-secret"}, authentication)
    registry = RegistryProcess("", tmp_path / "registry", f"_schemas-{uuid.uuid4().hex[:8]}", flags, ca=ca)
    if authentication == "basic":
        good_credentials = "confluent.basic.auth.credentials.source=USER_INFO\nconfluent.basic.auth.user.info=broker:broker-secret\n"
        wrong_credentials = "confluent.basic.auth.credentials.source=USER_INFO\nconfluent.basic.auth.user.info=broker:wrong\n"
        client_credentials = {"basic.auth.user.info": "alice:alice-secret"}
    else:
        good_credentials = (f"confluent.ssl.keystore.location={pki / 'client.crt'}\n"
                            f"confluent.ssl.keystore.key.location={pki / 'client.key'}\n")
        wrong_credentials = ""
        client_credentials = {"ssl.certificate.location": str(pki / "client.crt"),
                              "ssl.key.location": str(pki / "client.key")}

    def broker_with(name: str, credentials: str):
        props = tmp_path / f"broker-{name}.properties"
        props.write_text(
            f"confluent.schema.registry.url={registry.url}\n"
            "confluent.ssl.truststore.type=PEM\n"
            f"confluent.ssl.truststore.location={ca}\n" + credentials
        )
        return broker_factory(config=str(props))

    broker = broker_with("good", good_credentials)
    registry.bootstrap = broker.bootstrap
    registry.start()
    try:
        topic = f"validated-{uuid.uuid4().hex[:8]}"
        ck_create_topic(broker.bootstrap, topic, config={"confluent.value.schema.validation": "true"})
        client = SchemaRegistryClient({"url": registry.url, "ssl.ca.location": str(ca), **client_credentials})
        good = AvroSerializer(client, SCHEMA)({"id": 1}, SerializationContext(topic, MessageField.VALUE))
        reports = ck_produce(broker.bootstrap, topic, [{"value": good}], config=NO_RETRY)
        assert [r.error for r in reports] == [None]
        [raw] = ck_produce(broker.bootstrap, topic, [{"value": b"raw"}], config=NO_RETRY)
        assert raw.error is not None and raw.error.code() == KafkaError.INVALID_RECORD, raw
        assert stored(broker.bootstrap, topic) == 1

        wrong = broker_with("wrong", wrong_credentials)
        ck_create_topic(wrong.bootstrap, topic, config={"confluent.value.schema.validation": "true"})
        [refused] = ck_produce(wrong.bootstrap, topic, [{"value": good}], config=NO_RETRY)
        # The error Kafka clients retry, as while the registry is unreachable.
        assert refused.error is not None and refused.error.code() == KafkaError.REQUEST_TIMED_OUT, refused
        assert stored(wrong.bootstrap, topic) == 0
        assert metric_sum(wrong, 'tributary_schema_validation_registry_lookups_total{outcome="error"}') >= 1
    finally:
        registry.stop()
        print(registry.log_tail())


def shop_messages():
    """`shop.v1.Order` with a nested `Line`, built at run time (no generated code): the
    serializer writes Line's message indexes, [0, 0], after the schema id."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="shop_order.proto", package="shop.v1", syntax="proto3")
    order = file.message_type.add(name="Order")
    order.field.add(name="id", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    line = order.nested_type.add(name="Line")
    line.field.add(name="n", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.v1.Order.Line"))


@pytest.mark.same_on_cluster("the partition leader judges a batch's records alone")
def test_protobuf_records_are_checked_under_the_message_their_indexes_name(validated):
    from confluent_kafka.schema_registry import record_subject_name_strategy
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

    broker, registry, _ = validated
    topic = f"by-record-{uuid.uuid4().hex[:8]}"
    ck_create_topic(broker.bootstrap, topic, config={
        "confluent.value.schema.validation": "true",
        "confluent.value.subject.name.strategy": "RecordNameStrategy",
    })
    line = shop_messages()
    serializer = ProtobufSerializer(line, SchemaRegistryClient({"url": registry.url}), {
        "use.deprecated.format": False,
        "subject.name.strategy": record_subject_name_strategy,
    })
    good = serializer(line(n=7), SerializationContext(topic, MessageField.VALUE))
    assert good[5:8] == b"\x04\x00\x00", "Line's indexes: a count of 2, then 0 and 0"
    [report] = ck_produce(broker.bootstrap, topic, [{"value": good}], config=NO_RETRY)
    assert report.error is None, report
    # The same id claiming the file's first message (`Order`: a count of 0), whose subject
    # nobody registered, and a message the file does not have ([5]).
    as_order = good[:5] + b"\x00" + good[8:]
    missing = good[:5] + b"\x02\x0a" + good[8:]
    for bad, reason in [(as_order, "wrong_subject"), (missing, "unknown_message")]:
        [report] = ck_produce(broker.bootstrap, topic, [{"value": bad}], config=NO_RETRY)
        assert report.error is not None and report.error.code() == KafkaError.INVALID_RECORD, (reason, report)
        refused = f'tributary_schema_validation_refused_records_total{{reason="{reason}",topic="{topic}"}}'
        assert metric_sum(broker, refused) == 1, reason
    # In one batch each Protobuf record is judged by its own indexes, not by its id's first.
    reports = ck_produce(broker.bootstrap, topic, [{"value": good}, {"value": missing}],
                         config={**NO_RETRY, "linger.ms": 200})
    assert all(r.error is not None and r.error.code() == KafkaError.INVALID_RECORD for r in reports), reports
    assert stored(broker.bootstrap, topic) == 1
