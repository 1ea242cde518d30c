"""Topic administration through three real admin clients: the Java Admin (CreateTopics incl.
validate_only, Metadata, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
CreatePartitions, DeleteTopics, DescribeCluster, DescribeLogDirs, AlterReplicaLogDirs,
AlterPartitionReassignments, ElectLeaders), confluent-kafka's
AdminClient (also dynamic broker configs) and kafka-python's KafkaAdminClient; client quotas
through the Java Admin, enforced on confluent-kafka clients."""

import json
import socket
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigSource,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

import kafkawire
from harness import metric_sum, wait_until
from pyclients import ck_admin, ck_create_topic, ck_produce

# The topic configs the broker honours and must report (issue 2).
TOPIC_CONFIGS = [
    "retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "max.message.bytes",
    "cleanup.policy", "min.insync.replicas", "message.timestamp.type", "compression.type",
]
INVALID_NAMES = ["bad name", "slash/topic", "..", "a" * 250, "caf\u00e9"]


def admin(java, broker, *args):
    return java.run("admin", *args, "--bootstrap", broker.bootstrap)


def java_topics(java, broker) -> set:
    return set(admin(java, broker, "list-topics").one("topics")["topics"])


# ---------------------------------------------------------------------------------------------
# Java Admin
# ---------------------------------------------------------------------------------------------


@pytest.mark.peer_gap("Tansu 0.6 creates the topic on a validate_only CreateTopics")
def test_java_create_validate_only_creates_nothing(broker, topic, java):
    out = admin(java, broker, "create-topic", "--topic", topic, "--partitions", "3", "--validate-only")
    assert out.events("error") == [], out.describe()
    assert out.one("created")["validateOnly"] is True
    assert topic not in java_topics(java, broker)


@pytest.mark.peer_gap("Tansu 0.6 accepts a validate_only request for an invalid topic name")
@pytest.mark.same_on_cluster('the topic name is validated by the receiving broker before anything reaches the controller')
def test_java_create_validate_only_still_validates(broker, java):
    out = admin(java, broker, "create-topic", "--topic", "bad name!", "--validate-only")
    assert out.one("error")["error"] == "InvalidTopicException", out.describe()


def test_java_create_list_describe_and_delete_a_topic(broker, topic, java):
    created = admin(java, broker, "create-topic", "--topic", topic, "--partitions", "3")
    assert created.one("created")["numPartitions"] == 3
    assert topic in java_topics(java, broker)

    desc = admin(java, broker, "describe-topics", "--topic", topic).one("topic")
    assert desc["topic"] == topic and desc["internal"] is False
    assert desc["topicId"] not in ("AAAAAAAAAAAAAAAAAAAAAA", "null"), "Metadata v10+ must carry a real topic id"
    assert [p["partition"] for p in desc["partitions"]] == [0, 1, 2]
    for p in desc["partitions"]:
        # The default replication factor: every broker (one standalone, three on a cluster), all
        # in sync from the start.
        assert p["leader"] in p["replicas"] and len(p["replicas"]) == len(broker.addresses)
        assert sorted(p["isr"]) == sorted(p["replicas"])

    again = admin(java, broker, "create-topic", "--topic", topic, "--partitions", "3")
    assert again.one("error")["error"] == "TopicExistsException"

    admin(java, broker, "delete-topic", "--topic", topic).one("deleted")
    wait_until(lambda: topic not in java_topics(java, broker), 20, f"{topic} to disappear from listings")
    gone = admin(java, broker, "describe-topics", "--topic", topic)
    assert gone.one("error")["error"] == "UnknownTopicOrPartitionException"


def describe_topic_partitions_requests(broker) -> float:
    """DescribeTopicPartitions requests every broker has answered, from their /metrics."""
    return metric_sum(broker, 'kafka_network_requestmetrics_requests_total{request="DescribeTopicPartitions"}')


@pytest.mark.peer_gap("Tansu 0.6 does not serve DescribeTopicPartitions")
def test_java_describes_topics_page_by_page(broker, topic, java):
    # KIP-966: the Java admin describes topics with DescribeTopicPartitions, following the
    # broker's cursor from page to page; two partitions a page splits both topics.
    other = f"{topic}-b"
    for name, partitions in ((topic, 7), (other, 3)):
        admin(java, broker, "create-topic", "--topic", name, "--partitions", str(partitions)).one("created")
    before = describe_topic_partitions_requests(broker)
    out = admin(java, broker, "describe-topics", "--topic", topic, "--topic", other, "--page-limit", "2")
    described = {t["topic"]: t for t in out.events("topic")}
    assert sorted(described) == sorted([topic, other]), out.describe()
    assert [p["partition"] for p in described[topic]["partitions"]] == list(range(7))
    assert [p["partition"] for p in described[other]["partitions"]] == list(range(3))
    for t in described.values():
        assert all(p["leader"] in p["replicas"] for p in t["partitions"]), t
    # Ten partitions, two a page: five pages.
    assert describe_topic_partitions_requests(broker) - before >= 5


def test_java_delete_unknown_topic_is_an_error(broker, topic, java):
    out = admin(java, broker, "delete-topic", "--topic", topic)
    assert out.one("error")["error"] == "UnknownTopicOrPartitionException"


@pytest.mark.peer_gap("Tansu 0.6 creates topics with invalid names")
# The cluster runs the first name only (CLUSTER PASS in conftest.py): the others are the same validation.
@pytest.mark.parametrize("name", [INVALID_NAMES[0], *(pytest.param(n, marks=pytest.mark.same_on_cluster(
    'topic name validation by the receiving broker; the cluster runs the first name, whose error comes back the same way')) for n in INVALID_NAMES[1:])], ids=["space", "slash", "dotdot", "too-long", "non-ascii"])
def test_java_create_rejects_invalid_topic_names(broker, java, name):
    out = admin(java, broker, "create-topic", "--topic", name, "--partitions", "1")
    assert out.one("error")["error"] == "InvalidTopicException", out.describe()
    assert name not in java_topics(java, broker)


@pytest.mark.peer_gap("Tansu 0.6 reports no topic configs")
def test_java_describe_configs_reports_topic_overrides_and_defaults(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "1",
          "--config", "retention.ms=123456", "--config", "cleanup.policy=compact").one("created")
    out = admin(java, broker, "describe-configs", "--topic", topic).one("configs")
    configs, sources = out["configs"], out["sources"]
    for name in TOPIC_CONFIGS:
        assert name in configs, f"{name} missing from DescribeConfigs"
    assert configs["retention.ms"] == "123456" and sources["retention.ms"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["cleanup.policy"] == "compact" and sources["cleanup.policy"] == "DYNAMIC_TOPIC_CONFIG"
    assert sources["segment.bytes"] != "DYNAMIC_TOPIC_CONFIG"
    assert int(configs["segment.bytes"]) > 0
    assert configs["compression.type"] == "producer"


@pytest.mark.peer_gap("Tansu 0.6 does not implement (Incremental)AlterConfigs")
def test_java_incremental_alter_configs_sets_and_deletes(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "1").one("created")
    before = admin(java, broker, "describe-configs", "--topic", topic).one("configs")["configs"]
    admin(java, broker, "alter-configs", "--topic", topic, "--set", "retention.ms=3600000",
          "--set", "max.message.bytes=2048").one("altered")
    out = admin(java, broker, "describe-configs", "--topic", topic).one("configs")
    assert out["configs"]["retention.ms"] == "3600000"
    assert out["configs"]["max.message.bytes"] == "2048"
    assert out["sources"]["retention.ms"] == "DYNAMIC_TOPIC_CONFIG"

    admin(java, broker, "alter-configs", "--topic", topic, "--delete", "retention.ms").one("altered")
    out = admin(java, broker, "describe-configs", "--topic", topic).one("configs")
    assert out["configs"]["retention.ms"] == before["retention.ms"]
    assert out["sources"]["retention.ms"] != "DYNAMIC_TOPIC_CONFIG"
    assert out["configs"]["max.message.bytes"] == "2048"

    bad = admin(java, broker, "alter-configs", "--topic", topic, "--set", "retention.ms=not-a-number")
    assert bad.one("error")["error"] in ("InvalidConfigurationException", "InvalidRequestException")


def low_watermark(bootstrap: str, topic: str) -> int:
    """The log start offset of partition 0, asked afresh."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks", "enable.auto.commit": False})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[0]
    finally:
        consumer.close()


@pytest.mark.peer_gap("an empty cleanup.policy is Kafka 4 behaviour (KIP-1161)")
@pytest.mark.single_broker("runs retention every 200 ms (log.retention.check.interval.ms), which a "
                           "KafkaCluster's spec.config does not carry; the KafkaTopic validation "
                           "of an empty policy is crds/src/config.rs's unit tests")
def test_java_subtracting_the_last_cleanup_policy_keeps_every_segment(broker_factory, topic, java):
    broker = broker_factory(log_retention_check_interval_ms=200)
    kept, control = topic, f"{topic}-control"
    # Segments roll after 100 ms and expire 1 s after their newest record; a control topic
    # with the default policy shows when retention has run.
    for name in (kept, control):
        admin(java, broker, "create-topic", "--topic", name, "--partitions", "1",
              "--config", "retention.ms=1000", "--config", "segment.ms=100").one("created")

    out = admin(java, broker, "alter-configs", "--topic", kept, "--subtract", "cleanup.policy=delete")
    assert out.events("error") == [], out.describe()
    described = admin(java, broker, "describe-configs", "--topic", kept).one("configs")
    assert described["configs"]["cleanup.policy"] == ""
    assert described["sources"]["cleanup.policy"] == "DYNAMIC_TOPIC_CONFIG"
    # Kafka still refuses unknown policies and empty items.
    for value in ("shred", "delete,"):
        bad = admin(java, broker, "alter-configs", "--topic", kept, "--set", f"cleanup.policy={value}")
        assert bad.one("error")["error"] == "InvalidConfigurationException", bad.describe()

    old = int(time.time() * 1000) - 3_600_000
    records = "".join(json.dumps({"value": f"r{i}", "partition": 0, "timestamp": old + i}) + "\n"
                      for i in range(5))
    for name in (kept, control):
        produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", name, "--stdin", stdin=records)
        assert produced.one("done")["acked"] == 5, produced.describe()

    wait_until(lambda: low_watermark(broker.bootstrap, control) == 5, 30,
               "retention to delete the control topic's expired segment")
    assert low_watermark(broker.bootstrap, kept) == 0, "a segment past retention.ms was deleted"
    got = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", kept, "--max", "5").events("record")
    assert [(r["offset"], r["value"]) for r in got] == [(i, f"r{i}") for i in range(5)]


@pytest.mark.peer_gap("Tansu 0.6 does not implement AlterConfigs")
def test_java_legacy_alter_configs_replaces_the_whole_set(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "1",
          "--config", "retention.ms=123456").one("created")
    admin(java, broker, "alter-configs", "--legacy", "--topic", topic, "--set", "segment.ms=600000").one("altered")
    out = admin(java, broker, "describe-configs", "--topic", topic).one("configs")
    assert out["configs"]["segment.ms"] == "600000"
    assert out["sources"]["segment.ms"] == "DYNAMIC_TOPIC_CONFIG"
    # AlterConfigs is not incremental: the earlier override is gone.
    assert out["sources"]["retention.ms"] != "DYNAMIC_TOPIC_CONFIG"


@pytest.mark.peer_gap("Tansu 0.6 does not implement CreatePartitions")
def test_java_create_partitions_grows_and_refuses_to_shrink(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "2").one("created")
    admin(java, broker, "create-partitions", "--topic", topic, "--count", "5").one("partitions-created")
    desc = admin(java, broker, "describe-topics", "--topic", topic).one("topic")
    assert [p["partition"] for p in desc["partitions"]] == [0, 1, 2, 3, 4]
    shrink = admin(java, broker, "create-partitions", "--topic", topic, "--count", "3")
    assert shrink.one("error")["error"] == "InvalidPartitionsException"
    # The new partitions take writes.
    produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "1",
                        "--partition", "4")
    assert produced.one("ack")["partition"] == 4


def test_java_describe_cluster_names_every_broker(broker, java):
    out = admin(java, broker, "describe-cluster").one("cluster")
    assert out["clusterId"]
    assert sorted((n["host"], n["port"]) for n in out["nodes"]) == sorted(broker.addresses)
    assert out["controller"] in {n["id"] for n in out["nodes"]}


@pytest.mark.peer_gap("Tansu 0.6 does not implement DescribeLogDirs")
def test_java_describe_log_dirs_lists_partitions_with_sizes(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "2").one("created")
    java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "20",
             "--partition", "0", "--value-size", "100").one("done")
    dirs = admin(java, broker, "describe-log-dirs").events("logdir")
    assert dirs, "no log dirs described"
    replicas = {}
    for d in dirs:
        assert d["error"] is None
        replicas.update(d["replicas"])
    assert f"{topic}-0" in replicas and f"{topic}-1" in replicas
    assert replicas[f"{topic}-0"] >= 20 * 100
    assert replicas[f"{topic}-1"] == 0


@pytest.mark.same_on_cluster("each broker answers ListConfigResources from its own view of the configs")
def test_java_lists_client_metrics_resources_which_this_broker_has_none_of(broker, java):
    """The Java Admin's listClientMetricsResources (KIP-1000) sends ListConfigResources v0
    (renamed by KIP-1142): answered, with no client metrics subscriptions, rather than refused
    as an API the broker does not advertise."""
    out = admin(java, broker, "list-client-metrics-resources")
    assert out.events("error") == [], out.describe()
    assert out.one("client-metrics-resources")["names"] == []


@pytest.mark.peer_gap("Tansu 0.6 has no SCRAM credentials")
def test_java_scram_credentials_are_stored_described_and_deleted(broker, java):
    def scram(op, *args):
        return admin(java, broker, op, *args)

    for user, mechanism, iterations in (("alice", "SCRAM-SHA-256", "8192"),
                                        ("alice", "SCRAM-SHA-512", "4096"),
                                        ("bob", "SCRAM-SHA-256", "16384")):
        out = scram("alter-scram", "--user", user, "--mechanism", mechanism,
                    "--iterations", iterations, "--password", f"{user}-secret")
        assert out.events("error") == [], out.describe()
    few = scram("alter-scram", "--user", "carol", "--mechanism", "SCRAM-SHA-256",
                "--iterations", "1000", "--password", "x")
    assert few.one("error")["error"] == "UnacceptableCredentialException"
    gone = scram("alter-scram", "--user", "nobody", "--mechanism", "SCRAM-SHA-256", "--drop")
    assert gone.one("error")["error"] == "ResourceNotFoundException"

    everyone = {"alice": {"SCRAM-SHA-256": 8192, "SCRAM-SHA-512": 4096}, "bob": {"SCRAM-SHA-256": 16384}}
    assert scram("describe-scram").one("scram")["users"] == everyone
    assert scram("describe-scram", "--user", "bob").one("scram")["users"] == {"bob": everyone["bob"]}
    # RESOURCE_NOT_FOUND: not a SCRAM user, which the Admin client reports as no credentials.
    assert scram("describe-scram", "--user", "carol").one("scram")["users"] == {"carol": {}}
    broker.restart()
    assert scram("describe-scram").one("scram")["users"] == everyone, "credentials survive a restart"
    for stored in broker.scram_storage():
        assert "alice-secret" not in stored, "only salted keys are stored"
    scram("alter-scram", "--user", "bob", "--mechanism", "SCRAM-SHA-256", "--drop")
    assert scram("describe-scram").one("scram")["users"] == {"alice": everyone["alice"]}


@pytest.mark.peer_gap("Tansu 0.6 does not implement partition reassignments or elections")
def test_java_reassignments_to_the_same_replicas_and_elections_are_no_ops(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "1").one("created")

    def reassign(*args):
        return admin(java, broker, "reassign", "--topic", topic, *args)

    replicas = admin(java, broker, "describe-topics", "--topic", topic).one("topic")["partitions"][0]["replicas"]
    current = ",".join(map(str, replicas))
    stay = reassign("--replicas", current)
    assert stay.one("reassigned")["inProgress"] == 0, stay.describe()
    no_such_broker = str(len(broker.addresses))
    refused = reassign("--replicas", f"{current},{no_such_broker}").one("error")["error"]
    assert refused == "InvalidReplicaAssignmentException"
    assert reassign().one("error")["error"] == "NoReassignmentInProgressException"
    missing = reassign("--partition", "4", "--replicas", current).one("error")["error"]
    assert missing == "UnknownTopicOrPartitionException"
    elected = admin(java, broker, "elect-leaders", "--topic", topic).one("elected")
    assert elected["error"] == "ElectionNotNeededException"


@pytest.mark.peer_gap("Tansu 0.6 does not implement AlterReplicaLogDirs")
@pytest.mark.same_on_cluster('AlterReplicaLogDirs is answered by the broker holding the replica, alone')
def test_java_alter_replica_log_dirs_accepts_only_the_one_log_dir(broker, topic, java):
    admin(java, broker, "create-topic", "--topic", topic, "--partitions", "1").one("created")
    # Broker 0's one log directory (a replica of every partition on a single broker or at RF 3).
    path = next(d["path"] for d in admin(java, broker, "describe-log-dirs").events("logdir") if d["broker"] == 0)

    def move(partition: int, to: str):
        return admin(java, broker, "alter-replica-log-dirs", "--topic", topic,
                     "--partition", str(partition), "--dir", to)

    moved = move(0, path)
    assert moved.events("error") == [], moved.describe()
    assert move(0, path + "-elsewhere").one("error")["error"] == "LogDirNotFoundException"
    assert move(5, path).one("error")["error"] == "ReplicaNotAvailableException"


# ---------------------------------------------------------------------------------------------
# confluent-kafka AdminClient
# ---------------------------------------------------------------------------------------------


@pytest.mark.peer_gap("Tansu 0.6 creates the topic on a validate_only CreateTopics")
def test_confluent_admin_create_validate_only_list_and_delete(broker, topic):
    client = ck_admin(broker.bootstrap)
    client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=-1)],
                         validate_only=True)[topic].result(20)
    assert topic not in client.list_topics(timeout=10).topics
    client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=-1)])[topic].result(20)
    md = client.list_topics(timeout=10)
    assert sorted(md.topics[topic].partitions) == [0, 1]
    client.delete_topics([topic], operation_timeout=20)[topic].result(20)
    wait_until(lambda: topic not in client.list_topics(timeout=10).topics, 20, "topic deletion")


@pytest.mark.peer_gap("Tansu 0.6 creates topics with invalid names")
@pytest.mark.same_on_cluster('the topic name is validated by the receiving broker before anything reaches the controller')
def test_confluent_admin_rejects_invalid_topic_name(broker):
    client = ck_admin(broker.bootstrap)
    with pytest.raises(KafkaException) as e:
        client.create_topics([NewTopic("no spaces allowed", 1, 1)])["no spaces allowed"].result(20)
    assert e.value.args[0].code() == KafkaError.TOPIC_EXCEPTION


@pytest.mark.peer_gap("Tansu 0.6 implements neither DescribeConfigs content nor IncrementalAlterConfigs")
def test_confluent_admin_describe_and_incrementally_alter_configs(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "86400000"})
    client = ck_admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = client.describe_configs([res])[res].result(20)
    assert configs["retention.ms"].value == "86400000"
    for name in TOPIC_CONFIGS:
        assert name in configs
    alter = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([alter])[alter].result(20)
    configs = client.describe_configs([res])[res].result(20)
    assert configs["retention.bytes"].value == "1048576"
    assert configs["retention.ms"].value == "86400000"


@pytest.mark.peer_gap("Tansu 0.6 implements neither DescribeConfigs content nor IncrementalAlterConfigs")
def test_dynamic_broker_configs_change_topic_defaults_and_persist(broker, topic, java):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    # Every broker (the empty resource name, which confluent-kafka does not accept): Java.
    admin(java, broker, "alter-configs", "--broker", "", "--set", "log.retention.ms=7200000")
    client = ck_admin(broker.bootstrap)
    # Per broker, on each of them: a topic's DescribeConfigs is answered with the broker-level
    # values of whichever broker the client asks, which on a cluster need not be broker 0.
    for broker_id in range(len(broker.addresses)):
        this_broker = ConfigResource(ResourceType.BROKER, str(broker_id), incremental_configs=[
            ConfigEntry("log.segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)])
        client.incremental_alter_configs([this_broker])[this_broker].result(20)
    static = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as refused:
        client.incremental_alter_configs([static])[static].result(20)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST

    def topic_defaults():
        res = ConfigResource(ResourceType.TOPIC, topic)
        fresh = ck_admin(broker.bootstrap)
        configs = fresh.describe_configs([res])[res].result(20)
        return {k: (configs[k].value, configs[k].source) for k in ("retention.ms", "segment.bytes")}

    want = {
        "retention.ms": ("7200000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        "segment.bytes": ("1048576", ConfigSource.DYNAMIC_BROKER_CONFIG.value),
    }
    assert topic_defaults() == want
    broker.restart()
    assert topic_defaults() == want, "dynamic broker configs survive a restart"
    res = ConfigResource(ResourceType.BROKER, "0")
    fresh = ck_admin(broker.bootstrap)
    described = fresh.describe_configs([res])[res].result(20)
    assert described["log.retention.ms"].value == "7200000"
    assert described["log.segment.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value


@pytest.mark.peer_gap("Tansu 0.6 does not implement CreatePartitions")
def test_confluent_admin_create_partitions(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    client = ck_admin(broker.bootstrap)
    client.create_partitions([NewPartitions(topic, 3)])[topic].result(20)

    def leaders_seen_by_each_broker() -> list[dict[int, int]]:
        # Each broker learns of the new partitions on its own, as Kafka's brokers learn them
        # from the metadata log: a fresh producer may ask any of them.
        seen = []
        for host, port in broker.addresses:
            with kafkawire.Connection(f"{host}:{port}") as conn:
                response = conn.request(kafkawire.metadata_request_v4(1, [topic], False))
            seen.append(kafkawire.parse_metadata_v4(response)[2][0].leaders)
        return seen

    wait_until(lambda: all(len(leaders) == 3 and min(leaders.values()) >= 0
                           for leaders in leaders_seen_by_each_broker()), 30,
               "3 partitions with leaders in every broker's metadata")
    reports = ck_produce(broker.bootstrap, topic, [{"value": b"p2", "partition": 2}])
    assert reports[0].error is None and reports[0].partition == 2


def test_confluent_admin_describe_cluster(broker):
    client = ck_admin(broker.bootstrap)  # must outlive the future
    desc = client.describe_cluster(request_timeout=20).result(20)
    assert desc.cluster_id
    assert sorted((n.host, n.port) for n in desc.nodes) == sorted(broker.addresses)
    assert desc.controller is not None and desc.controller.id in {n.id for n in desc.nodes}


# ---------------------------------------------------------------------------------------------
# kafka-python KafkaAdminClient
# ---------------------------------------------------------------------------------------------


@pytest.mark.peer_gap("Tansu 0.6 creates the topic on a validate_only CreateTopics")
def test_kafka_python_admin_topic_lifecycle(broker, topic):
    from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic

    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        client.create_topics([KpNewTopic(topic, 2, 1)], validate_only=True)
        assert topic not in client.list_topics()
        client.create_topics([KpNewTopic(topic, 2, 1, topic_configs={"retention.ms": "7200000"})])
        assert topic in client.list_topics()
        described = client.describe_topics([topic])
        assert len(described) == 1 and described[0]["error_code"] == 0
        assert sorted(p["partition_index"] for p in described[0]["partitions"]) == [0, 1]
        client.delete_topics([topic])
        wait_until(lambda: topic not in client.list_topics(), 20, "topic deletion")
    finally:
        client.close()


@pytest.mark.peer_gap("Tansu 0.6 reports no topic configs")
def test_kafka_python_admin_describe_configs(broker, topic):
    from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType, KafkaAdminClient

    ck_create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "7200000"})
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        # kafka-python 3: {resource type: {name: {config: {value, config_source, ...}}}}
        described = client.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        entries = {k: v["value"] for k, v in described["topic"][topic].items()}
        sources = {k: v["config_source"] for k, v in described["topic"][topic].items()}
        assert entries["retention.ms"] == "7200000"
        assert sources["retention.ms"] == "DYNAMIC_TOPIC_CONFIG"
        for name in TOPIC_CONFIGS:
            assert name in entries, f"{name} missing from DescribeConfigs"
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Client quotas
# ---------------------------------------------------------------------------------------------


def quota_entries(java, broker, *match: str, strict: bool = False) -> list[dict]:
    args = [a for m in match for a in ("--match", m)] + (["--strict"] if strict else [])
    out = admin(java, broker, "describe-quotas", *args)
    return sorted(out.one("quotas")["entries"], key=lambda e: json.dumps(e, sort_keys=True))


@pytest.mark.peer_gap("Tansu 0.6 has no client quotas")
def test_java_client_quotas_are_altered_described_and_persist(broker, java):
    def alter(*args):
        return admin(java, broker, "alter-quotas", *args)

    ok = alter("--entity", "client-id=slow", "--set", "producer_byte_rate=20000",
               "--set", "consumer_byte_rate=30000")
    assert ok.events("error") == [], ok.describe()
    alter("--entity", "user=", "--entity", "client-id=", "--set", "request_percentage=50")
    alter("--entity", "ip=10.0.0.1", "--set", "connection_creation_rate=5")
    ghost = alter("--entity", "client-id=ghost", "--set", "producer_byte_rate=100", "--validate-only")
    assert ghost.events("error") == [], ghost.describe()
    for refused in (
        ["--entity", "client-id=x", "--set", "producer_byte_rate=1.5"],
        ["--entity", "client-id=x", "--set", "no_such_quota=1"],
        ["--entity", "ip=10.0.0.2", "--set", "producer_byte_rate=1"],
    ):
        out = alter(*refused)
        assert out.one("error")["error"] == "InvalidRequestException", out.describe()

    slow = {"entity": {"client-id": "slow"},
            "values": {"consumer_byte_rate": 30000.0, "producer_byte_rate": 20000.0}}
    defaults = {"entity": {"client-id": None, "user": None}, "values": {"request_percentage": 50.0}}
    ip = {"entity": {"ip": "10.0.0.1"}, "values": {"connection_creation_rate": 5.0}}
    everything = sorted([slow, defaults, ip], key=lambda e: json.dumps(e, sort_keys=True))
    assert quota_entries(java, broker) == everything, "validate-only and refused changes stored nothing"
    assert quota_entries(java, broker, "client-id=slow") == [slow]
    assert quota_entries(java, broker, "client-id=<default>") == [defaults]
    assert quota_entries(java, broker, "client-id=<default>", strict=True) == []
    assert quota_entries(java, broker, "ip=<any>") == [ip]

    broker.restart()
    assert quota_entries(java, broker) == everything, "quotas survive a restart"
    alter("--entity", "client-id=slow", "--remove", "producer_byte_rate", "--remove", "consumer_byte_rate")
    # "Any" matches every entity of the type, defaults included, as in Kafka.
    assert quota_entries(java, broker, "client-id=<any>") == [defaults]


@pytest.mark.peer_gap("Tansu 0.6 has no client quotas")
def test_clients_over_their_byte_rate_quota_are_throttled_and_lose_nothing(broker, topic, java):
    """Kafka measures rates over at least ten seconds, so 10 kB/s lets a client move 100 kB at
    once and then holds it back: 400 kB take about 40 s. A client without a quota is not held
    back, and once the quota is removed the throttled one finishes with every record in order."""
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    admin(java, broker, "alter-quotas", "--entity", "client-id=slow",
          "--set", "producer_byte_rate=10000", "--set", "consumer_byte_rate=10000")
    # On a cluster each broker applies the shared quota document when its watch delivers it
    # and enforces what it describes: wait until every broker (the topic's leader among them)
    # describes the quota before producing.
    for host, port in broker.addresses:
        with kafkawire.Connection(f"{host}:{port}") as conn:
            wait_until(lambda: b"producer_byte_rate" in conn.request(
                kafkawire.describe_client_quotas_request_v0(1, "client-id", "slow")), 30,
                f"broker {host}:{port} to apply the slow client's quota")
    value = b"v" * 1000
    throttle_seen = []

    def stats(raw):
        for b in json.loads(raw).get("brokers", {}).values():
            throttle_seen.append(b.get("throttle", {}).get("max", 0))

    # Small requests: the quota holds back what follows a request, not the request itself.
    slow = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "slow", "linger.ms": 5,
                     "batch.size": 10000, "statistics.interval.ms": 200, "stats_cb": stats})
    fast = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "fast", "linger.ms": 5})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    for i in range(400):
        slow.produce(topic, key=b"slow", value=value, headers={"i": str(i)}, on_delivery=report)
        fast.produce(topic, key=b"fast", value=value, headers={"i": str(i)}, on_delivery=report)
    assert fast.flush(10) == 0, "an unthrottled client is not held back"
    assert slow.flush(4) > 0, "the throttled producer is still held back after 4 s"
    assert max(throttle_seen, default=0) > 0, "the broker told the producer its throttle time"

    def read(client_id: str, expected: int, timeout: float) -> list:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "client.id": client_id,
                             "group.id": f"{client_id}-{topic}", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, 0)])
        got, deadline = [], time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            m = consumer.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m)
        consumer.close()
        return got

    written = 400 + (400 - len(slow))
    assert len(read("slow", written, 4)) < written, "the throttled consumer is held back"
    admin(java, broker, "alter-quotas", "--entity", "client-id=slow",
          "--remove", "producer_byte_rate", "--remove", "consumer_byte_rate")
    assert slow.flush(30) == 0, "the producer finishes once the quota is gone"
    assert failures == []
    got = read("slow", 800, 30)
    assert len(got) == 800
    for key in (b"slow", b"fast"):
        order = [int(dict(m.headers())["i"]) for m in got if m.key() == key]
        assert order == list(range(400)), f"{key!r} records lost or reordered"


@pytest.mark.peer_gap("Tansu 0.6 has no client quotas")
def test_connections_over_an_ip_creation_rate_are_closed_unserved(broker, java):
    """1 connection/s, measured over at least ten seconds, lets about ten connections in at
    once; Kafka closes the ones after that unserved (after a delay). Other addresses are not
    affected. The test connects from 127.0.0.2 so the admin client's 127.0.0.1 is not."""
    out = admin(java, broker, "alter-quotas", "--entity", "ip=127.0.0.2", "--set", "connection_creation_rate=1")
    assert out.events("error") == [], out.describe()
    host, port = broker.host, broker.port
    # On a cluster the broker that took the change answers once it stored the shared quota
    # document; the one tested here applies it when its watch delivers it. It enforces what it
    # describes (one store), so wait until it describes the quota.
    with kafkawire.Connection(f"{host}:{port}") as conn:
        wait_until(lambda: b"connection_creation_rate" in conn.request(
            kafkawire.describe_client_quotas_request_v0(1, "ip", "127.0.0.2")), 30,
            "the tested broker to apply the connection quota")

    def connect(source: str) -> socket.socket:
        sock = socket.create_connection((host, int(port)), timeout=3, source_address=(source, 0))
        sock.sendall(kafkawire.frame(kafkawire.api_versions_request(0, 1)))
        return sock

    def served(sock: socket.socket) -> bool:
        try:
            return len(sock.recv(4)) == 4
        except (socket.timeout, ConnectionError):
            return False
        finally:
            sock.close()

    burst = [connect("127.0.0.2") for _ in range(20)]
    results = [served(sock) for sock in burst]
    assert 5 <= sum(results) <= 12, results
    assert not any(results[12:]), f"connections past the quota were served: {results}"
    assert served(connect("127.0.0.1")), "another address is not throttled"


def test_java_admin_describes_and_updates_feature_levels_on_every_broker(broker, java):
    """KIP-584 through the Java Admin (describeFeatures, updateFeatures) as kafka-features.sh
    uses it: a new cluster's levels, Kafka's refusal of a level not served, and a safe
    downgrade of share.version that every broker serves by (its ApiVersions, asked of
    each broker itself, drop the share group APIs) until the upgrade brings them back."""
    share_group_heartbeat = 76
    described = admin(java, broker, "describe-features").one("features")
    levels = {"group.version": [1, 1], "share.version": [1, 1], "transaction.version": [2, 2]}
    assert described["finalized"] == levels, described
    supported = {"group.version": [0, 1], "share.version": [0, 1], "transaction.version": [0, 2]}
    assert described["supported"] == supported, described
    epoch = described["epoch"]
    assert epoch >= 0, described

    refused = admin(java, broker, "update-features", "--feature", "transaction.version=3").one("refused")
    assert refused["error"] == "InvalidUpdateVersionException", refused
    assert "This cluster only supports versions 0-2" in refused["message"], refused
    admin(java, broker, "update-features", "--feature", "share.version=0", "--validate-only",
          "--upgrade-type", "safe_downgrade").one("updated")
    assert admin(java, broker, "describe-features").one("features")["epoch"] == epoch

    def every_broker(share_groups: bool) -> bool:
        answers = [kafkawire.api_versions_features("{}:{}".format(*a)) for a in broker.addresses]
        return all(("share.version" in a.finalized) == share_groups
                   and (share_group_heartbeat in a.api_keys) == share_groups
                   and a.finalized_epoch > epoch for a in answers)

    try:
        admin(java, broker, "update-features", "--feature", "share.version=0",
              "--upgrade-type", "safe_downgrade").one("updated")
        wait_until(lambda: every_broker(False), 30, "every broker to serve share.version 0")
        described = admin(java, broker, "describe-features").one("features")
        assert "share.version" not in described["finalized"], described
    finally:
        admin(java, broker, "update-features", "--feature", "share.version=1").one("updated")
    wait_until(lambda: every_broker(True), 30, "every broker to serve share groups again")
