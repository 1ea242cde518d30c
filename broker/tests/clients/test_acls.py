"""The authorizer with real clients: the Java Admin client's ACL calls (createAcls, describeAcls,
deleteAcls, authorized operations), and confluent-kafka (librdkafka) and the Java client
refused or served as Kafka's StandardAuthorizer would: no WRITE, no produce; no READ, no
consume; no DESCRIBE, the topic is not listed; group and transactional-id ACLs; super users;
ACLs kept across a restart."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from harness import BrokerProcess, free_port, wait_until

pytestmark = [
    pytest.mark.peer_gap("the peer broker has no authorizer"),
    pytest.mark.single_broker("SASL principals and super users from one broker's properties file; a "
                              "cluster's ACLs are KafkaUser.spec.authorization, run with real clients by "
                              "the e2e scenario `security`"),
]

USERS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}


class Secured:
    """A broker with an authorizer, `User:admin` its super user, and PLAIN users on a
    SASL_PLAINTEXT listener."""

    def __init__(self, broker: BrokerProcess, sasl_port: int) -> None:
        self.broker = broker
        self.bootstrap = f"127.0.0.1:{sasl_port}"

    def ck(self, user: str, **extra: object) -> dict:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": USERS[user], **extra}

    def java_props(self, user: str) -> list[str]:
        jaas = (f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                f'username="{user}" password="{USERS[user]}";')
        return ["--prop", "security.protocol=SASL_PLAINTEXT", "--prop", "sasl.mechanism=PLAIN",
                "--prop", f"sasl.jaas.config={jaas}"]

    def java_admin(self, java, user: str, op: str, *args: str) -> dict:
        out = java.run("admin", op, "--bootstrap", self.bootstrap, *self.java_props(user), *args)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def grant(self, java, principal: str, resource_type: str, name: str, operation: str,
              pattern: str = "LITERAL", permission: str = "ALLOW") -> None:
        line = self.java_admin(java, "admin", "create-acl", "--resource-type", resource_type, "--name", name,
                               "--pattern", pattern, "--principal", principal, "--operation", operation,
                               "--permission", permission)
        assert line["event"] == "acl-created", line


def start(workdir: Path) -> Secured:
    plain, sasl = free_port(), free_port()
    users = " ".join(f'user_{u}="{p}"' for u, p in USERS.items())
    config = {
        "listeners": f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "listener-security-protocol-map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "inter-broker-listener-name": "PLAINTEXT",
        "security": {
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
        },
    }
    path = workdir / "broker.yaml"
    path.write_text(json.dumps(config, indent=1))
    broker = BrokerProcess("tributary", workdir / "broker", settings={"config": path}, port=plain)
    broker.start()
    return Secured(broker, sasl)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    s = start(tmp_path_factory.mktemp("acls"))
    yield s
    s.broker.stop()


def create_topic(s: Secured, topic: str) -> None:
    admin = AdminClient(s.ck("admin"))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                        operation_timeout=20)[topic].result(20)


def produce(s: Secured, user: str, topic: str, n: int = 3) -> list:
    producer = Producer(s.ck(user, **{"message.timeout.ms": 10000}))
    reports = []
    for i in range(n):
        producer.produce(topic, value=f"v{i}".encode(), on_delivery=lambda err, msg: reports.append(err))
    producer.flush(20)
    return reports


def consume(s: Secured, user: str, topic: str, group: str, want: int, timeout: float = 20.0):
    """(values read, the first error) from a group consumer reading `topic` from the start."""
    consumer = Consumer(s.ck(user, **{"group.id": group, "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    values, error = [], None
    try:
        def step():
            nonlocal error
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                error = msg.error()
            elif msg is not None:
                values.append(msg.value())
            return len(values) >= want or error is not None
        wait_until(step, timeout, f"{user} to read {want} records or fail", interval=0)
    finally:
        consumer.close()
    return values, error


def test_the_java_admin_client_creates_describes_and_deletes_acls_and_only_a_super_user_may(secured, java):
    topic = f"acl-admin-{uuid.uuid4().hex[:6]}"
    secured.grant(java, "User:alice", "TOPIC", topic, "READ")
    secured.grant(java, "User:alice", "TOPIC", f"{topic}-", "WRITE", pattern="PREFIXED")
    secured.grant(java, "User:alice", "TOPIC", f"{topic}-", "WRITE", pattern="PREFIXED")  # idempotent

    mine = secured.java_admin(java, "admin", "describe-acls", "--principal", "User:alice", "--name", topic)
    assert [(a["name"], a["pattern"], a["operation"]) for a in mine["acls"]] == [(topic, "LITERAL", "READ")]
    matching = secured.java_admin(java, "admin", "describe-acls", "--resource-type", "TOPIC",
                                  "--name", f"{topic}-eu", "--pattern", "MATCH")
    assert [(a["name"], a["pattern"]) for a in matching["acls"]] == [(f"{topic}-", "PREFIXED")]

    refused = secured.java_admin(java, "alice", "describe-acls")
    assert refused["event"] == "error" and refused["error"] == "ClusterAuthorizationException", refused
    refused = secured.java_admin(java, "bob", "create-acl", "--resource-type", "TOPIC", "--name", topic,
                                 "--principal", "User:bob", "--operation", "ALL")
    assert refused["event"] == "error" and refused["error"] == "ClusterAuthorizationException", refused
    invalid = secured.java_admin(java, "admin", "create-acl", "--resource-type", "CLUSTER", "--name", "other",
                                 "--principal", "User:bob", "--operation", "ALTER")
    assert invalid["event"] == "error" and invalid["error"] == "InvalidRequestException", invalid

    deleted = secured.java_admin(java, "admin", "delete-acls", "--name", f"{topic}-", "--pattern", "PREFIXED")
    assert [(a["name"], a["operation"]) for a in deleted["acls"]] == [(f"{topic}-", "WRITE")]
    left = secured.java_admin(java, "admin", "describe-acls", "--principal", "User:alice")
    assert [a["name"] for a in left["acls"] if a["name"].startswith(topic)] == [topic]


def test_without_write_a_principal_cannot_produce_and_without_read_cannot_consume(secured, java):
    topic = f"acl-data-{uuid.uuid4().hex[:6]}"
    create_topic(secured, topic)
    secured.grant(java, "User:alice", "TOPIC", topic, "WRITE")
    secured.grant(java, "User:bob", "TOPIC", topic, "READ")
    secured.grant(java, "User:bob", "GROUP", "readers", "READ")

    assert produce(secured, "alice", topic) == [None, None, None]
    refused = produce(secured, "bob", topic, n=1)
    assert refused[0] is not None and refused[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused

    values, error = consume(secured, "bob", topic, "readers", want=3)
    assert error is None and values == [b"v0", b"v1", b"v2"]
    # alice may write but not read, and has no group.
    values, error = consume(secured, "alice", topic, "readers", want=1)
    assert values == [] and error is not None
    assert error.code() in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED), error
    # bob reads, but not in a group he has no ACL for.
    values, error = consume(secured, "bob", topic, "others", want=1)
    assert values == [] and error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, error


def test_a_topic_a_principal_may_not_describe_is_hidden_and_authorized_operations_follow_the_acls(secured, java):
    seen, hidden = f"acl-seen-{uuid.uuid4().hex[:6]}", f"acl-hidden-{uuid.uuid4().hex[:6]}"
    create_topic(secured, seen)
    create_topic(secured, hidden)
    secured.grant(java, "User:bob", "TOPIC", seen, "READ")

    bob_sees = set(AdminClient(secured.ck("bob")).list_topics(timeout=10).topics)
    admin_sees = set(AdminClient(secured.ck("admin")).list_topics(timeout=10).topics)
    assert seen in bob_sees and hidden not in bob_sees
    assert {seen, hidden} <= admin_sees
    named = AdminClient(secured.ck("bob")).list_topics(topic=hidden, timeout=10).topics[hidden]
    assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    ops = secured.java_admin(java, "bob", "describe-topic-operations", "--topic", seen)
    assert ops["operations"] == ["DESCRIBE", "READ"], ops
    ops = secured.java_admin(java, "admin", "describe-topic-operations", "--topic", seen)
    assert len(ops["operations"]) == 8, ops
    refused = secured.java_admin(java, "bob", "describe-topic-operations", "--topic", hidden)
    assert refused["event"] == "error" and refused["error"] == "TopicAuthorizationException", refused


def test_a_regex_subscription_resolves_only_to_topics_the_principal_may_describe(secured, java):
    """KIP-848: the broker resolves the expression, to topics the member may DESCRIBE only."""
    prefix = f"acl-rx-{uuid.uuid4().hex[:6]}"
    allowed, hidden = f"{prefix}-allowed", f"{prefix}-hidden"
    for topic in (allowed, hidden):
        create_topic(secured, topic)
        assert produce(secured, "admin", topic) == [None, None, None]
    secured.grant(java, "User:bob", "TOPIC", allowed, "READ")
    secured.grant(java, "User:bob", "GROUP", f"{prefix}-g", "READ")

    consumer = Consumer(secured.ck("bob", **{"group.id": f"{prefix}-g", "group.protocol": "consumer",
                                             "auto.offset.reset": "earliest"}))
    consumer.subscribe([f"^{prefix}-.*"])
    read: list[tuple[str, bytes]] = []
    try:
        def step():
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                read.append((msg.topic(), msg.value()))
            return len(read) >= 3
        wait_until(step, 30, "bob to read the topic he may describe", interval=0)
        time.sleep(2)  # a record of the hidden topic would arrive now
        consumer.poll(0.5)
        assert {t for t, _ in read} == {allowed}, read
        # What the broker assigned (the client drops what it cannot name; the admin sees all).
        admin = AdminClient(secured.ck("admin"))  # kept alive until the result is in
        group = admin.describe_consumer_groups([f"{prefix}-g"])[f"{prefix}-g"].result(20)
        assigned = {tp.topic for m in group.members for tp in m.assignment.topic_partitions}
        assert assigned == {allowed}, group
    finally:
        consumer.close()


def test_a_transactional_producer_needs_write_on_its_transactional_id(secured, java):
    topic = f"acl-txn-{uuid.uuid4().hex[:6]}"
    create_topic(secured, topic)
    secured.grant(java, "User:alice", "TOPIC", topic, "WRITE")
    args = ["txn", "--bootstrap", secured.bootstrap, *secured.java_props("alice"), "--topic", topic,
            "--transactional-id", "alice-tx", "--count", "2"]
    refused = json.loads(java.run(*args).stdout.strip().splitlines()[-1])
    assert refused["event"] == "error" and refused["error"] == "TransactionalIdAuthorizationException", refused

    secured.grant(java, "User:alice", "TRANSACTIONAL_ID", "alice-", "WRITE", pattern="PREFIXED")
    done = json.loads(java.run(*args).stdout.strip().splitlines()[-1])
    assert done["event"] == "done", done


def test_acls_survive_a_restart(tmp_path, java):
    s = start(tmp_path)
    try:
        s.grant(java, "User:carol", "GROUP", "kept", "READ")
        s.broker.stop()
        s.broker.start()
        kept = s.java_admin(java, "admin", "describe-acls", "--principal", "User:carol")
        assert [(a["resourceType"], a["name"]) for a in kept["acls"]] == [("GROUP", "kept")]
    finally:
        s.broker.stop()
