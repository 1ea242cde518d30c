"""The schema registry (tributary-schema-registry) with Confluent's own Python client: its
SchemaRegistryClient and Avro, JSON Schema and Protobuf serializers producing and consuming
through the broker; compatibility levels; deletes and their error codes; config and mode; and
every subject, version and id rebuilt from the `_schemas` topic alone after a restart.

Runs against every broker kind: the registry is a Kafka client given the broker's bootstrap
list, with a topic of its own per test (the cluster kind is shared by the session)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from harness import wait_until
from registryproc import RegistryProcess, https_registry_files

VND = "application/vnd.schemaregistry.v1+json"


@pytest.fixture
def registry(broker_factory, tmp_path):
    """A registry process against a broker of the kind under test; its log is printed at
    teardown (pytest shows it for failing tests)."""
    broker = broker_factory()
    proc = RegistryProcess(broker.bootstrap, tmp_path / "registry", f"_schemas-{uuid.uuid4().hex[:8]}")
    proc.broker = broker
    proc.start()
    yield proc
    proc.stop()
    print(proc.log_tail())


def api(registry: RegistryProcess, method: str, path: str, body=None, **params):
    r = requests.request(
        method,
        registry.url + path,
        params={k: ("true" if v is True else v) for k, v in params.items()},
        data=None if body is None else json.dumps(body),
        headers={"Content-Type": VND},
        timeout=30,
    )
    assert r.headers.get("Content-Type", "").startswith(VND) or path == "/metrics", r.headers
    return r.status_code, (r.json() if r.content and path != "/metrics" else r.text)


def error_code(result) -> int:
    status, body = result
    assert isinstance(body, dict) and "error_code" in body, result
    return body["error_code"]


def avro_record(*fields: str) -> str:
    fs = [json.loads(f) for f in fields]
    return json.dumps({"type": "record", "name": "User", "namespace": "test", "fields": fs})


ID = '{"name":"id","type":"int"}'
NAME = '{"name":"name","type":"string"}'
NAME_DEFAULT = '{"name":"name","type":"string","default":"anon"}'


def round_trip(bootstrap: str, topic: str, values: list[bytes]) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        producer.produce(topic, value=v)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got: list[bytes] = []

    def all_read() -> bool:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
        return len(got) >= len(values)

    try:
        wait_until(all_read, 60, f"{len(values)} records back from {topic}")
    finally:
        consumer.close()
    return got


def test_avro_records_round_trip_through_the_broker(registry, topic):
    client = SchemaRegistryClient({"url": registry.url})
    schema = avro_record(ID, NAME)
    ser = AvroSerializer(client, schema)
    de = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    users = [{"id": i, "name": f"user-{i}"} for i in range(5)]
    got = round_trip(registry.broker.bootstrap, topic, [ser(u, ctx) for u in users])
    assert [de(v, ctx) for v in got] == users
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.version == 1 and latest.schema_id >= 1
    assert json.loads(latest.schema.schema_str) == json.loads(schema)


@pytest.mark.same_on_cluster("JSON Schema serialization is the client's; the broker path is the Avro round trip's, which runs on the cluster")
def test_json_schema_records_round_trip_through_the_broker(registry, topic):
    client = SchemaRegistryClient({"url": registry.url})
    schema = json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Order",
            "type": "object",
            "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
            "required": ["id"],
        }
    )
    ser = JSONSerializer(schema, client)
    de = JSONDeserializer(None, schema_registry_client=client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    orders = [{"id": i, "item": f"thing-{i}"} for i in range(3)]
    got = round_trip(registry.broker.bootstrap, topic, [ser(o, ctx) for o in orders])
    assert [de(v, ctx) for v in got] == orders
    assert client.get_latest_version(f"{topic}-value").schema.schema_type == "JSON"


def protobuf_message_class():
    """A message class built at run time (no protoc): `message Reading { string sensor = 1;
    double value = 2; repeated string tags = 3; }` in its own file and pool."""
    fd = descriptor_pb2.FileDescriptorProto(name=f"reading_{uuid.uuid4().hex[:6]}.proto", package="test", syntax="proto3")
    msg = fd.message_type.add(name="Reading")
    T = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="sensor", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    msg.field.add(name="value", number=2, type=T.TYPE_DOUBLE, label=T.LABEL_OPTIONAL)
    msg.field.add(name="tags", number=3, type=T.TYPE_STRING, label=T.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.Reading"))


@pytest.mark.same_on_cluster("Protobuf serialization is the client's; the broker path is the Avro round trip's, which runs on the cluster")
def test_protobuf_records_round_trip_through_the_broker(registry, topic):
    client = SchemaRegistryClient({"url": registry.url})
    Reading = protobuf_message_class()
    ser = ProtobufSerializer(Reading, client, {"use.deprecated.format": False})
    de = ProtobufDeserializer(Reading, {"use.deprecated.format": False})
    ctx = SerializationContext(topic, MessageField.VALUE)
    readings = [Reading(sensor=f"s{i}", value=i / 2, tags=["a", str(i)]) for i in range(3)]
    got = round_trip(registry.broker.bootstrap, topic, [ser(r, ctx) for r in readings])
    assert [de(v, ctx) for v in got] == readings
    registered = client.get_latest_version(f"{topic}-value")
    assert registered.schema.schema_type == "PROTOBUF"
    assert api(registry, "GET", "/schemas/types") == (200, ["JSON", "PROTOBUF", "AVRO"])


@pytest.mark.same_on_cluster("the registry's compatibility rules, decided by the registry process")
def test_incompatible_avro_change_is_refused_under_backward_and_accepted_under_none(registry):
    client = SchemaRegistryClient({"url": registry.url})
    subject = "users-value"
    v1 = client.register_schema(subject, Schema(avro_record(ID), "AVRO"))
    assert api(registry, "GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(avro_record(ID, NAME), "AVRO"))
    assert refused.value.http_status_code == 409 and refused.value.error_code == 409
    status, verdict = api(
        registry, "POST", f"/compatibility/subjects/{subject}/versions/latest", {"schema": avro_record(ID, NAME)}, verbose=True
    )
    assert status == 200 and verdict["is_compatible"] is False and verdict["messages"], verdict
    # A default makes it backward compatible.
    v2 = client.register_schema(subject, Schema(avro_record(ID, NAME_DEFAULT), "AVRO"))
    assert v2 > v1
    assert client.set_compatibility(subject, "NONE")["compatibility"] == "NONE"
    v3 = client.register_schema(subject, Schema(avro_record('{"name":"id","type":"string"}'), "AVRO"))
    assert v3 > v2
    assert client.get_versions(subject) == [1, 2, 3]


# Issue 40: `array` used as a type name, where Avro wants "type": {"type": "array", "items": "string"}.
ARRAY_AS_NAME = '{"name":"key","type":"array","items":"string"}'


@pytest.mark.same_on_cluster("the registry's schema validation, decided by the registry process")
def test_invalid_avro_is_refused_with_42201_as_confluent_does(registry):
    client = SchemaRegistryClient({"url": registry.url})
    subject = "invalid-value"
    client.register_schema(subject, Schema(avro_record(ID), "AVRO"))
    invalid = Schema(avro_record(ID, ARRAY_AS_NAME), "AVRO")
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, invalid)
    assert (refused.value.http_status_code, refused.value.error_code) == (422, 42201), refused.value
    assert refused.value.error_message.startswith("Invalid schema of type AVRO, details:"), refused.value
    assert '"array" is not a defined name' in refused.value.error_message, refused.value
    with pytest.raises(SchemaRegistryError) as looked_up:
        client.lookup_schema(subject, invalid)
    assert (looked_up.value.http_status_code, looked_up.value.error_code) == (422, 42201), looked_up.value
    with pytest.raises(SchemaRegistryError) as checked:
        client.test_compatibility(subject, invalid)
    assert (checked.value.http_status_code, checked.value.error_code) == (422, 42201), checked.value
    # Asked verbosely, the check answers incompatible with the reason, as Confluent's does.
    assert client.test_compatibility(subject, invalid, verbose=True) is False
    assert client.get_versions(subject) == [1]


@pytest.mark.same_on_cluster("the registry's compatibility rules, decided by the registry process")
def test_forward_and_full_levels(registry):
    client = SchemaRegistryClient({"url": registry.url})
    client.set_compatibility("fwd", "FORWARD")
    client.register_schema("fwd", Schema(avro_record(ID, NAME), "AVRO"))
    # Removing a field without a default: old readers cannot read new data.
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("fwd", Schema(avro_record(ID), "AVRO"))
    assert refused.value.error_code == 409
    # Adding a field: old readers ignore it.
    client.register_schema("fwd", Schema(avro_record(ID, NAME, '{"name":"age","type":"int"}'), "AVRO"))

    client.set_compatibility("full", "FULL")
    client.register_schema("full", Schema(avro_record(ID), "AVRO"))
    with pytest.raises(SchemaRegistryError):
        client.register_schema("full", Schema(avro_record(ID, NAME), "AVRO"))
    client.register_schema("full", Schema(avro_record(ID, NAME_DEFAULT), "AVRO"))
    assert client.get_versions("full") == [1, 2]
    assert client.test_compatibility("full", Schema(avro_record(ID), "AVRO")) is True
    # Against the latest (id, name with a default): name as an int reads neither way.
    assert client.test_compatibility("full", Schema(avro_record(ID, '{"name":"name","type":"int"}'), "AVRO")) is False


@pytest.mark.same_on_cluster("the registry's REST error codes, decided by the registry process")
def test_deletes_and_their_error_codes(registry):
    client = SchemaRegistryClient({"url": registry.url})
    s = "del-value"
    id1 = client.register_schema(s, Schema(avro_record(ID), "AVRO"))
    client.register_schema(s, Schema(avro_record(ID, NAME_DEFAULT), "AVRO"))
    assert error_code(api(registry, "GET", "/subjects/nope/versions")) == 40401
    assert error_code(api(registry, "GET", f"/subjects/{s}/versions/9")) == 40402
    assert error_code(api(registry, "GET", f"/subjects/{s}/versions/0")) == 42202
    assert error_code(api(registry, "GET", "/schemas/ids/9999")) == 40403
    # Hard delete only after a soft delete.
    assert error_code(api(registry, "DELETE", f"/subjects/{s}/versions/1", permanent=True)) == 40407
    assert api(registry, "DELETE", f"/subjects/{s}/versions/1") == (200, 1)
    assert error_code(api(registry, "DELETE", f"/subjects/{s}/versions/1")) == 40406
    assert api(registry, "GET", f"/subjects/{s}/versions") == (200, [2])
    assert api(registry, "GET", f"/subjects/{s}/versions", deleted=True) == (200, [1, 2])
    assert error_code(api(registry, "GET", f"/subjects/{s}/versions/1")) == 40402
    assert api(registry, "GET", f"/subjects/{s}/versions/1", deleted=True)[1]["id"] == id1
    assert api(registry, "DELETE", f"/subjects/{s}/versions/1", permanent=True) == (200, 1)
    assert error_code(api(registry, "DELETE", f"/subjects/{s}", permanent=True)) == 40405
    assert api(registry, "DELETE", f"/subjects/{s}") == (200, [2])
    assert error_code(api(registry, "DELETE", f"/subjects/{s}")) == 40404
    assert s not in client.get_subjects()
    assert api(registry, "GET", "/subjects", deleted=True)[1] == [s]
    assert api(registry, "DELETE", f"/subjects/{s}", permanent=True) == (200, [2])
    assert error_code(api(registry, "GET", f"/subjects/{s}/versions", deleted=True)) == 40401
    assert error_code(api(registry, "GET", f"/schemas/ids/{id1}")) == 40403
    # The hard-deleted id is never handed out again.
    id3 = client.register_schema(s, Schema(avro_record(ID, '{"name":"z","type":"long"}'), "AVRO"))
    assert id3 > id1 + 1
    assert api(registry, "GET", f"/subjects/{s}/versions") == (200, [1])


@pytest.mark.same_on_cluster("the registry's REST endpoints, decided by the registry process")
def test_config_and_mode_endpoints(registry):
    client = SchemaRegistryClient({"url": registry.url})
    assert error_code(api(registry, "PUT", "/config", {"compatibility": "SIDEWAYS"})) == 42203
    assert api(registry, "PUT", "/config", {"compatibility": "FULL_TRANSITIVE"}) == (200, {"compatibility": "FULL_TRANSITIVE"})
    assert api(registry, "GET", "/config") == (200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert error_code(api(registry, "GET", "/config/s")) == 40408
    assert api(registry, "GET", "/config/s", defaultToGlobal=True) == (200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert api(registry, "PUT", "/config/s", {"compatibility": "NONE"})[0] == 200
    assert api(registry, "GET", "/config/s") == (200, {"compatibilityLevel": "NONE"})
    assert api(registry, "DELETE", "/config/s") == (200, {"compatibilityLevel": "NONE"})
    assert api(registry, "DELETE", "/config") == (200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert api(registry, "GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})

    assert api(registry, "GET", "/mode") == (200, {"mode": "READWRITE"})
    assert error_code(api(registry, "PUT", "/mode", {"mode": "SIDEWAYS"})) == 42204
    assert api(registry, "PUT", "/mode", {"mode": "READONLY"}) == (200, {"mode": "READONLY"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("ro", Schema(avro_record(ID), "AVRO"))
    assert refused.value.error_code == 42205
    assert api(registry, "PUT", "/mode", {"mode": "IMPORT"}) == (200, {"mode": "IMPORT"})
    status, body = api(registry, "POST", "/subjects/imported/versions", {"schema": avro_record(ID), "id": 100, "version": 7})
    assert (status, body) == (200, {"id": 100}), body
    assert api(registry, "GET", "/subjects/imported/versions/7")[1]["id"] == 100
    assert api(registry, "PUT", "/mode", {"mode": "READWRITE"})[0] == 200
    # An explicit id outside IMPORT mode is refused.
    assert error_code(api(registry, "POST", "/subjects/other/versions", {"schema": avro_record(ID), "id": 5})) == 42205
    # New ids continue above the imported one.
    assert client.register_schema("after-import", Schema(avro_record(ID, NAME), "AVRO")) == 101
    # A non-empty registry refuses IMPORT unless forced.
    assert error_code(api(registry, "PUT", "/mode", {"mode": "IMPORT"})) == 42205


@pytest.mark.same_on_cluster("the registry's REST details, decided by the registry process")
def test_rest_details_clients_rely_on(registry):
    assert api(registry, "GET", "/") == (200, {})
    assert api(registry, "GET", "/associations/subjects/x")[0] == 404
    assert error_code(api(registry, "POST", "/subjects/bad/versions", {"schema": "{not avro"})) == 42201
    assert error_code(api(registry, "POST", "/subjects/bad/versions", {"schema": '{"type":"record"}'})) == 42201
    # Null metadata and ruleSet, as the newest clients send them.
    status, body = api(
        registry, "POST", "/subjects/s/versions", {"schema": '"string"', "metadata": None, "ruleSet": None}, normalize=True
    )
    assert status == 200, body
    sid = body["id"]
    assert api(registry, "POST", "/subjects/s/versions", {"schema": ' "string" '}) == (200, {"id": sid})
    assert api(registry, "POST", "/subjects/s", {"schema": '"string"'})[1]["version"] == 1
    assert error_code(api(registry, "POST", "/subjects/s", {"schema": '"int"'})) == 40403
    assert api(registry, "GET", f"/schemas/ids/{sid}/subjects") == (200, ["s"])
    assert api(registry, "GET", f"/schemas/ids/{sid}/versions") == (200, [{"subject": "s", "version": 1}])
    # An Avro reference to another subject's named type.
    inner = json.dumps({"type": "record", "name": "Inner", "namespace": "ref", "fields": [{"name": "a", "type": "int"}]})
    outer = json.dumps({"type": "record", "name": "Outer", "namespace": "ref", "fields": [{"name": "i", "type": "ref.Inner"}]})
    inner_id = api(registry, "POST", "/subjects/inner/versions", {"schema": inner})[1]["id"]
    status, body = api(
        registry,
        "POST",
        "/subjects/outer/versions",
        {"schema": outer, "references": [{"name": "ref.Inner", "subject": "inner", "version": 1}]},
    )
    assert status == 200, body
    assert api(registry, "GET", "/subjects/inner/versions/1/referencedby") == (200, [body["id"]])
    assert api(registry, "GET", f"/schemas/ids/{body['id']}")[1]["references"] == [
        {"name": "ref.Inner", "subject": "inner", "version": 1}
    ]
    assert error_code(api(registry, "DELETE", "/subjects/inner/versions/1")) == 42206
    assert inner_id != body["id"]
    status, metrics = api(registry, "GET", "/metrics")
    assert status == 200
    assert 'tributary_schema_registry_requests_total{endpoint="/subjects/{subject}/versions",method="POST",status="200"}' in metrics
    assert "tributary_schema_registry_subjects 3" in metrics


def test_restart_rebuilds_every_subject_version_and_id_from_the_topic(registry):
    client = SchemaRegistryClient({"url": registry.url})
    ids = []
    for n in range(4):
        subject = f"restart-{n}"
        ids.append(client.register_schema(subject, Schema(avro_record(ID), "AVRO")))
        ids.append(client.register_schema(subject, Schema(avro_record(ID, f'{{"name":"f{n}","type":"int","default":0}}'), "AVRO")))
    client.register_schema("restart-json", Schema('{"type":"object"}', "JSON"))
    client.set_compatibility("restart-0", "FULL")
    api(registry, "DELETE", "/subjects/restart-3/versions/2")
    distinct = sorted(set(ids))
    assert distinct == sorted(distinct) and len(distinct) == 5, ids  # one shared id for avro_record(ID)
    assert ids[1::2] == sorted(ids[1::2]), "ids increase with each new schema"

    def snapshot():
        out = {}
        for subject in api(registry, "GET", "/subjects", deleted=True)[1]:
            versions = api(registry, "GET", f"/subjects/{subject}/versions", deleted=True)[1]
            out[subject] = [api(registry, "GET", f"/subjects/{subject}/versions/{v}", deleted=True)[1] for v in versions]
        out["live"] = api(registry, "GET", "/subjects")[1]
        out["config"] = api(registry, "GET", "/config/restart-0")[1]
        return out

    before = snapshot()
    registry.restart()
    assert snapshot() == before
    # And the next id is still above every one handed out.
    new_id = SchemaRegistryClient({"url": registry.url}).register_schema(
        "restart-new", Schema(avro_record(ID, '{"name":"q","type":"int","default":1}'), "AVRO")
    )
    assert new_id > max(ids)


@pytest.mark.same_on_cluster("the registry's compatibility rules, decided by the registry process")
def test_json_schema_and_protobuf_changes_follow_confluents_rules(registry):
    client = SchemaRegistryClient({"url": registry.url})

    def obj(props: dict, **extra) -> Schema:
        return Schema(json.dumps({"type": "object", "properties": props, "additionalProperties": False, **extra}), "JSON")

    client.register_schema("js", obj({"name": {"type": "string", "maxLength": 10}}))
    # A bound relaxed and an optional property added to a closed content model: backward compatible.
    client.register_schema("js", obj({"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}}))
    narrowed = obj({"name": {"type": "string", "maxLength": 5}, "age": {"type": "integer"}})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("js", narrowed)
    assert refused.value.http_status_code == 409
    status, verdict = api(
        registry,
        "POST",
        "/compatibility/subjects/js/versions/latest",
        {"schema": narrowed.schema_str, "schemaType": "JSON"},
        verbose=True,
    )
    assert status == 200 and verdict["is_compatible"] is False
    assert any("MAX_LENGTH_DECREASED" in m for m in verdict["messages"]), verdict
    # A sum type may gain a branch.
    client.register_schema("js", obj({"name": {"type": "string", "maxLength": 20}, "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}))
    assert client.get_versions("js") == [1, 2, 3]

    pb_id = client.register_schema("pb", Schema('syntax = "proto3"; message M { int32 a = 1; }', "PROTOBUF"))
    # int32 to int64 is wire compatible; a field added is compatible.
    client.register_schema("pb", Schema('syntax = "proto3"; message M { int64 a = 1; string b = 2; }', "PROTOBUF"))
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("pb", Schema('syntax = "proto3"; message M { oneof o { int64 a = 1; string b = 2; } }', "PROTOBUF"))
    assert refused.value.http_status_code == 409
    # The subject parameter of GET /schemas/ids/{id}: the id must be registered under it.
    assert api(registry, "GET", f"/schemas/ids/{pb_id}", subject="pb")[0] == 200
    assert error_code(api(registry, "GET", f"/schemas/ids/{pb_id}", subject="js")) == 40403
    # normalize: the same schema in another layout gets the same id.
    reformatted = 'syntax = "proto3";\n// the first version again\nmessage M {\n  int32 a = 1;\n}\n'
    status, body = api(
        registry, "POST", "/subjects/pb/versions", {"schema": reformatted, "schemaType": "PROTOBUF"}, normalize=True
    )
    assert (status, body) == (200, {"id": pb_id})
    status, again = api(
        registry, "POST", "/subjects/pb2/versions", {"schema": 'syntax="proto3"; /* again */ message M { int32 a=1; }', "schemaType": "PROTOBUF"}, normalize=True
    )
    assert (status, again) == (200, body)


def test_https_registry_with_basic_auth_against_scram_credentials(broker_factory, tmp_path, topic):
    """Confluent's client over TLS (`ssl.ca.location`) with `basic.auth.user.info` against a
    registry that checks the password against the SCRAM credential document."""
    flags, ca = https_registry_files(tmp_path, {"alice": "alice-secret"})
    broker = broker_factory()
    registry = RegistryProcess(broker.bootstrap, tmp_path / "registry", f"_schemas-{uuid.uuid4().hex[:8]}", flags, ca=ca)
    registry.start()
    try:
        assert registry.url.startswith("https://")
        conf = {"url": registry.url, "ssl.ca.location": str(ca)}
        client = SchemaRegistryClient({**conf, "basic.auth.user.info": "alice:alice-secret"})
        schema_id = client.register_schema(f"{topic}-value", Schema(avro_record(ID, NAME), "AVRO"))
        assert client.get_schema(schema_id).schema_str.startswith("{")
        ser = AvroSerializer(client, avro_record(ID, NAME))
        ctx = SerializationContext(topic, MessageField.VALUE)
        got = round_trip(broker.bootstrap, topic, [ser({"id": 1, "name": "a"}, ctx)])
        de = AvroDeserializer(client)
        assert [de(v, ctx) for v in got] == [{"id": 1, "name": "a"}]

        for user_info in ("alice:wrong", "mallory:alice-secret"):
            with pytest.raises(SchemaRegistryError) as refused:
                SchemaRegistryClient({**conf, "basic.auth.user.info": user_info}).get_subjects()
            assert (refused.value.http_status_code, refused.value.error_code) == (401, 40101)
        with pytest.raises(SchemaRegistryError) as anonymous:
            SchemaRegistryClient(conf).get_subjects()
        assert anonymous.value.error_code == 40101
    finally:
        registry.stop()
        print(registry.log_tail())


@pytest.mark.single_broker("the broker's SASL_SSL and mTLS listeners come from one broker's properties file")
@pytest.mark.parametrize("listener", ["scram512", "mtls"])
def test_registry_stores_schemas_through_a_secured_listener(tmp_path, monkeypatch, listener):
    """The registry's own Kafka clients over SASL_SSL with SCRAM-SHA-512 and over mutual TLS,
    as the operator runs it against a cluster whose listeners authenticate clients."""
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    from test_security import SCRAM_PASSWORD, start_secure_broker

    secure = start_secure_broker(tmp_path / "secure")
    try:
        admin = AdminClient({"bootstrap.servers": secure.plaintext})
        upsert = UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), SCRAM_PASSWORD.encode())
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(10)
        conf = secure.ck(listener)
        # fmt: off
        flags = ["--kafka-ca", str(secure.pki.ca)]
        if listener == "scram512":
            flags += ["--kafka-security-protocol", "SASL_SSL", "--kafka-sasl-mechanism", "SCRAM-SHA-512",
                      "--kafka-sasl-username", "alice"]
            monkeypatch.setenv("TRIBUTARY_REGISTRY_KAFKA_SASL_PASSWORD", SCRAM_PASSWORD)
        else:
            flags += ["--kafka-security-protocol", "SSL", "--kafka-cert", str(secure.pki.client_cert),
                      "--kafka-key", str(secure.pki.client_key)]
        # fmt: on
        registry = RegistryProcess(conf["bootstrap.servers"], tmp_path / "registry", "_schemas", tuple(flags))
        registry.start()
        try:
            client = SchemaRegistryClient({"url": registry.url})
            schema_id = client.register_schema("secured-value", Schema(avro_record(ID), "AVRO"))
            # Rebuilt from the topic alone, read back over the same secured listener.
            registry.restart()
            assert SchemaRegistryClient({"url": registry.url}).get_schema(schema_id).schema_str.startswith("{")
        finally:
            registry.stop()
            print(registry.log_tail())
    finally:
        secure.broker.stop()
