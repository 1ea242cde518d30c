"""Drives the real clients the test suite installs (kcat, confluent-kafka, kafka-python, the
Java client) through `tributary-fuzz capture`'s recording proxy, so the corpus holds the
frames real clients send: produce with every codec, idempotent and transactional producers,
group consumers with commits, and the admin APIs each client offers.

Each client gets a client.id starting with its name (fz-kcat, fz-confluent, fz-kafka-python,
fz-java); the proxy labels frames by it. A client call that fails is reported and skipped (the
corpus then lacks its frames); the driver fails only when a whole client is unusable.

Usage: python3 drive.py --bootstrap HOST:PORT --topics-out FILE
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "clients"))

from harness import JAVA_SRC_DIR, JavaClient, java_build, kafka_java_jars, kcat_binary  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TOPICS = {"cap-ck": 3, "cap-kp": 3, "cap-kcat": 3, "cap-java": 3, "cap-txn": 2, "cap-admin": 1}
failures: list[str] = []


def step(name: str, fn, *args, **kwargs):
    """Runs one client call; a failure is reported and the drive goes on."""
    try:
        result = fn(*args, **kwargs)
        print(f"drive: ok   {name}", flush=True)
        return result
    except Exception as e:  # noqa: BLE001 - any client error is reported, not fatal
        failures.append(name)
        print(f"drive: FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return None


# ---------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# ---------------------------------------------------------------------------------------------


def confluent(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       NewPartitions, NewTopic, OffsetSpec, ScramCredentialInfo,
                                       ScramMechanism, UserScramCredentialUpsertion)

    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "fz-confluent-admin"})

    def wait(futures):
        for f in (futures.values() if isinstance(futures, dict) else [futures]):
            f.result(20)

    step("confluent create_topics", wait, admin.create_topics(
        [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in TOPICS.items()], operation_timeout=20))
    step("confluent create_topics validate_only", wait, admin.create_topics(
        [NewTopic("cap-validate", num_partitions=2, replication_factor=1, config={"retention.ms": "60000"})],
        validate_only=True))
    for codec in CODECS:
        p = Producer({"bootstrap.servers": bootstrap, "client.id": f"fz-confluent-producer-{codec}",
                      "compression.type": codec, "linger.ms": 5, "enable.idempotence": False, "acks": 1})
        for i in range(10):
            p.produce("cap-ck", key=f"k{i}".encode(), value=f"{codec}-{i}".encode() * 4,
                      headers=[("h", b"v")], partition=i % 3)
        step(f"confluent produce {codec}", p.flush, 20)
    idem = Producer({"bootstrap.servers": bootstrap, "client.id": "fz-confluent-idempotent",
                     "enable.idempotence": True, "compression.type": "lz4"})
    for i in range(10):
        idem.produce("cap-ck", value=f"idem-{i}".encode())
    step("confluent idempotent produce", idem.flush, 20)

    consumer = Consumer({"bootstrap.servers": bootstrap, "client.id": "fz-confluent-consumer",
                         "group.id": "fz-group-ck", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})

    def consume_and_commit():
        consumer.subscribe(["cap-ck"])
        got, deadline = 0, time.monotonic() + 30
        while got < 20 and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                got += 1
        consumer.commit(asynchronous=False)
        if got == 0:
            raise RuntimeError("consumed nothing")

    step("confluent group consume + commit", consume_and_commit)

    def transactions():
        p = Producer({"bootstrap.servers": bootstrap, "client.id": "fz-confluent-txn",
                      "transactional.id": "fz-txn-ck", "compression.type": "zstd"})
        p.init_transactions(20)
        for abort in (False, True):
            p.begin_transaction()
            for i in range(5):
                p.produce("cap-txn", value=f"txn-{abort}-{i}".encode(), partition=i % 2)
            p.send_offsets_to_transaction([TopicPartition("cap-ck", 0, 3)], consumer.consumer_group_metadata(), 20)
            p.flush(20)
            (p.abort_transaction if abort else p.commit_transaction)(20)

    step("confluent transactions", transactions)
    consumer.close()

    step("confluent create_partitions", wait, admin.create_partitions([NewPartitions("cap-admin", 2)]))
    res = ConfigResource(ConfigResource.Type.TOPIC, "cap-admin")
    step("confluent describe_configs", wait, admin.describe_configs([res]))
    step("confluent incremental_alter_configs", wait, admin.incremental_alter_configs([ConfigResource(
        ConfigResource.Type.TOPIC, "cap-admin",
        incremental_configs=[ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])]))
    step("confluent describe_cluster", lambda: admin.describe_cluster().result(20))
    step("confluent describe_topics", lambda: wait(admin.describe_topics(
        __import__("confluent_kafka").TopicCollection(["cap-ck"]))))
    step("confluent list_consumer_groups", lambda: admin.list_consumer_groups().result(20))
    step("confluent describe_consumer_groups", wait, admin.describe_consumer_groups(["fz-group-ck"]))
    step("confluent list_consumer_group_offsets", wait, admin.list_consumer_group_offsets(
        [__import__("confluent_kafka").ConsumerGroupTopicPartitions("fz-group-ck")]))
    step("confluent list_offsets", wait, admin.list_offsets({
        TopicPartition("cap-ck", 0): OffsetSpec.earliest(), TopicPartition("cap-ck", 1): OffsetSpec.latest(),
        TopicPartition("cap-ck", 2): OffsetSpec.max_timestamp()}))
    step("confluent delete_records", wait, admin.delete_records([TopicPartition("cap-ck", 2, 1)]))
    step("confluent alter_user_scram_credentials", wait, admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("fz-user", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192),
                                     b"secret")]))
    step("confluent describe_user_scram_credentials", lambda: admin.describe_user_scram_credentials().result(20))
    step("confluent describe_acls", lambda: admin.describe_acls(__import__("confluent_kafka.admin", fromlist=["AclBindingFilter"]).AclBindingFilter(
        __import__("confluent_kafka.admin", fromlist=["ResourceType"]).ResourceType.ANY, None,
        __import__("confluent_kafka.admin", fromlist=["ResourcePatternType"]).ResourcePatternType.ANY, None, None,
        __import__("confluent_kafka.admin", fromlist=["AclOperation"]).AclOperation.ANY,
        __import__("confluent_kafka.admin", fromlist=["AclPermissionType"]).AclPermissionType.ANY)).result(20))
    step("confluent create+delete topic", lambda: (wait(admin.create_topics([NewTopic("cap-doomed", 1, 1)])),
                                                   wait(admin.delete_topics(["cap-doomed"]))))
    step("confluent delete_consumer_groups", wait, admin.delete_consumer_groups(["fz-group-gone"]))


# ---------------------------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------------------------


def kafka_python(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic

    for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
        def produce(codec=codec):
            p = KafkaProducer(bootstrap_servers=bootstrap, client_id=f"fz-kafka-python-producer-{codec or 'none'}",
                              compression_type=codec, linger_ms=5)
            for i in range(10):
                p.send("cap-kp", key=f"k{i}".encode(), value=f"kp-{codec}-{i}".encode(), headers=[("h", b"v")])
            p.flush(20)
            p.close(5)
        step(f"kafka-python produce {codec or 'none'}", produce)

    def consume():
        c = KafkaConsumer("cap-kp", bootstrap_servers=bootstrap, client_id="fz-kafka-python-consumer",
                          group_id="fz-group-kp", auto_offset_reset="earliest", enable_auto_commit=False,
                          consumer_timeout_ms=8000)
        got = 0
        for _ in c:
            got += 1
            if got >= 20:
                break
        c.commit()
        c.close()
        if got == 0:
            raise RuntimeError("consumed nothing")

    step("kafka-python group consume + commit", consume)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fz-kafka-python-admin")
    step("kafka-python create_topics", admin.create_topics, [NewTopic("cap-kp-extra", 2, 1)])
    step("kafka-python create_partitions", admin.create_partitions, {"cap-kp-extra": NewPartitions(3)})
    step("kafka-python describe_configs", admin.describe_configs,
         [ConfigResource(ConfigResourceType.TOPIC, "cap-kp")])
    step("kafka-python alter_configs", admin.alter_configs,
         [ConfigResource(ConfigResourceType.TOPIC, "cap-kp-extra", configs={"retention.ms": "7200000"})])
    step("kafka-python list_groups", admin.list_groups)
    step("kafka-python describe_groups", admin.describe_groups, ["fz-group-kp"])
    step("kafka-python list_group_offsets", admin.list_group_offsets, "fz-group-kp")
    step("kafka-python describe_cluster", admin.describe_cluster)
    step("kafka-python describe_topics", admin.describe_topics, ["cap-kp"])
    step("kafka-python describe_log_dirs", admin.describe_log_dirs)
    step("kafka-python list_transactions", admin.list_transactions)
    step("kafka-python describe_transactions", admin.describe_transactions, ["fz-txn-ck"])
    step("kafka-python list_partition_reassignments", admin.list_partition_reassignments)
    step("kafka-python delete_topics", admin.delete_topics, ["cap-kp-extra"])
    step("kafka-python delete_groups", admin.delete_groups, ["fz-group-gone"])
    admin.close()


# ---------------------------------------------------------------------------------------------
# kcat
# ---------------------------------------------------------------------------------------------


def kcat(bootstrap: str) -> None:
    def run(*args: str, stdin: str | None = None) -> None:
        subprocess.run([kcat_binary(), "-b", bootstrap, *args], input=stdin, text=True,
                       capture_output=True, timeout=60, check=True)

    lines = "\n".join(f"k{i}:v{i}" for i in range(10)) + "\n"
    for codec in CODECS:
        step(f"kcat produce {codec}", run, "-P", "-t", "cap-kcat", "-K:", "-z", codec, "-H", "h=v",
             "-X", f"client.id=fz-kcat-producer-{codec}", "-X", "linger.ms=20", stdin=lines)
    step("kcat consume", run, "-C", "-t", "cap-kcat", "-o", "beginning", "-e", "-q",
         "-X", "client.id=fz-kcat-consumer")
    step("kcat group consume", run, "-G", "fz-group-kcat", "cap-kcat", "-c", "10", "-q",
         "-X", "client.id=fz-kcat-group", "-X", "auto.offset.reset=earliest")
    step("kcat metadata", run, "-L", "-X", "client.id=fz-kcat-metadata")
    step("kcat query offsets", run, "-Q", "-t", "cap-kcat:0:-1", "-X", "client.id=fz-kcat-query")


# ---------------------------------------------------------------------------------------------
# The Java client
# ---------------------------------------------------------------------------------------------


def java(bootstrap: str) -> None:
    build = Path(tempfile.mkdtemp(prefix="fz-java-"))
    jars = kafka_java_jars()
    cli = JavaClient(java_build(JAVA_SRC_DIR, build, jars), jars)

    def run(name: str, *args: str) -> None:
        r = cli.run(*args, check=False, timeout=120)
        if r.returncode != 0 or r.events("error"):
            raise RuntimeError(f"{name}: exit {r.returncode} {r.events('error')}")

    def admin(op: str, *args: str) -> None:
        step(f"java admin {op}", run, op, "admin", op, "--bootstrap", bootstrap,
             "--prop", f"client.id=fz-java-admin-{op}", *args)

    for codec in CODECS:
        step(f"java produce {codec}", run, "produce", "produce", "--bootstrap", bootstrap, "--topic", "cap-java",
             "--count", "10", "--key-prefix", "k", "--prop", f"compression.type={codec}",
             "--prop", f"client.id=fz-java-producer-{codec}", "--prop", "linger.ms=5")
    step("java produce acks=1 not idempotent", run, "produce", "produce", "--bootstrap", bootstrap,
         "--topic", "cap-java", "--count", "5", "--prop", "acks=1", "--prop", "enable.idempotence=false",
         "--prop", "client.id=fz-java-producer-plain")
    step("java group consume", run, "consume", "consume", "--bootstrap", bootstrap, "--topic", "cap-java",
         "--group", "fz-group-java", "--max", "20", "--timeout-ms", "20000",
         "--prop", "client.id=fz-java-consumer", "--prop", "enable.auto.commit=true",
         "--prop", "auto.commit.interval.ms=100")
    step("java transactions", run, "txn", "txn", "--bootstrap", bootstrap, "--topic", "cap-txn",
         "--transactional-id", "fz-txn-java", "--transactions", "2", "--count", "3", "--abort-every", "2",
         "--offsets-group", "fz-group-java", "--offsets-topic", "cap-java", "--prop", "client.id=fz-java-txn")
    step("java offsets", run, "offsets", "offsets", "--bootstrap", bootstrap, "--topic", "cap-java",
         "--partition", "0", "--time", "0", "--prop", "client.id=fz-java-offsets")
    admin("create-topic", "--topic", "cap-java-extra", "--partitions", "2", "--config", "cleanup.policy=compact")
    admin("list-topics")
    admin("describe-topics", "--topic", "cap-java")
    admin("create-partitions", "--topic", "cap-java-extra", "--count", "3")
    admin("describe-configs", "--topic", "cap-java")
    admin("alter-configs", "--topic", "cap-java-extra", "--set", "retention.ms=3600000")
    admin("alter-configs", "--topic", "cap-java-extra", "--set", "segment.ms=3600000", "--legacy")
    admin("describe-cluster")
    admin("describe-log-dirs")
    admin("alter-quotas", "--entity", "client-id=fz-quota", "--set", "producer_byte_rate=1048576")
    admin("describe-quotas", "--match", "client-id=<any>")
    admin("alter-scram", "--user", "fz-java-user", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192",
          "--password", "secret")
    admin("describe-scram")
    admin("elect-leaders", "--topic", "cap-java")
    admin("reassign", "--topic", "cap-java", "--replicas", "0")
    admin("abort-hanging", "--topic", "cap-txn")
    admin("delete-topic", "--topic", "cap-java-extra")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topics-out", required=True)
    a = ap.parse_args()
    Path(a.topics_out).write_text("".join(f"topic {t} {n}\n" for t, n in sorted(TOPICS.items())))
    for name, client in [("confluent-kafka", confluent), ("kafka-python", kafka_python), ("kcat", kcat),
                         ("java", java)]:
        if step(f"{name} (whole client)", client, a.bootstrap) is None and f"{name} (whole client)" in failures:
            return 1
    print(f"drive: done, {len(failures)} client calls failed: {failures}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
