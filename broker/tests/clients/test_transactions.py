"""Transactions (KIP-98) with the Java client 3.9.1 and librdkafka (confluent-kafka): commits
are visible to READ_COMMITTED consumers and aborts are not, offsets sent to a transaction
commit with it, a new producer instance fences the old one, an open transaction holds
READ_COMMITTED readers back until it times out, across a broker crash too, or until an admin
aborts it."""

import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, KafkaException, Producer, TopicPartition

from pyclients import ck_admin, ck_consume, ck_create_topic, ck_produce


def committed_values(bootstrap: str, topic: str, partitions: int, expected: int) -> list[bytes]:
    got = ck_consume(bootstrap, topic, range(partitions), expected=expected,
                     config={"isolation.level": "read_committed"})
    return sorted(r.value for r in got)


def read_committed_within(bootstrap: str, topic: str, seconds: float) -> list[bytes]:
    """Everything a READ_COMMITTED consumer of partition 0 sees within `seconds`."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "txn-reader",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    try:
        consumer.assign([TopicPartition(topic, 0, -2)])
        out = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                out.append(msg.value())
        return out
    finally:
        consumer.close()


def txn_producer(bootstrap: str, transactional_id: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id}
    conf.update(extra)
    producer = Producer(conf)
    producer.init_transactions(20)
    return producer


def plain_records_behind_an_open_transaction(bootstrap: str, topic: str, timeout_ms: int,
                                            plain: int) -> Producer:
    """Opens a transaction on partition 0 of a new topic, then writes `plain` records after it;
    returns the transaction's producer, which READ_COMMITTED readers now wait on."""
    ck_create_topic(bootstrap, topic)
    stuck = txn_producer(bootstrap, f"{topic}-tx", **{"transaction.timeout.ms": timeout_ms})
    stuck.begin_transaction()
    for i in range(5):
        stuck.produce(topic, f"open-{i}".encode(), partition=0)
    stuck.flush(10)
    reports = ck_produce(bootstrap, topic,
                         [{"value": f"plain-{i}".encode(), "partition": 0} for i in range(plain)])
    assert all(r.error is None for r in reports)
    # The plain records sit behind the open transaction's first record.
    assert read_committed_within(bootstrap, topic, 1.5) == []
    return stuck


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_java_commits_are_read_and_aborts_are_skipped(broker, topic, java):
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    result = java.run("txn", "--bootstrap", broker.bootstrap, "--topic", topic,
                      "--transactional-id", f"{topic}-tx", "--transactions", "6",
                      "--count", "20", "--abort-every", "3")
    outcomes = [e["result"] for e in result.events("txn")]
    assert outcomes == ["committed", "committed", "aborted"] * 2, result.describe()
    result.one("done")

    want = sorted(f"t{n}-{i}".encode() for n in (0, 1, 3, 4) for i in range(20))
    assert committed_values(broker.bootstrap, topic, 3, expected=80) == want
    # READ_UNCOMMITTED readers see the aborted records too (and never the markers).
    everything = ck_consume(broker.bootstrap, topic, range(3), expected=120,
                            config={"isolation.level": "read_uncommitted"})
    assert len({r.value for r in everything}) == 120

    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", "80",
                        "--prop", "isolation.level=read_committed")
    assert sorted(r["value"].encode() for r in consumed.events("record")) == want


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_clients_of_the_classic_protocol_keep_working_at_transaction_version_2(broker, topic, java):
    """A new cluster is at `transaction.version` 2 (transactions v2, KIP-890 part 2), as a new
    Kafka 4.3 cluster is, and still serves producers that speak the classic protocol
    (AddPartitionsToTxn, EndTxn below v5): the Java client 3.9.1 and librdkafka commit and
    abort as before."""
    described = java.run("admin", "describe-features", "--bootstrap", broker.bootstrap).one("features")
    assert described["finalized"]["transaction.version"] == [2, 2], described
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    result = java.run("txn", "--bootstrap", broker.bootstrap, "--topic", topic,
                      "--transactional-id", f"{topic}-tx", "--transactions", "3",
                      "--count", "10", "--abort-every", "3")
    outcomes = [e["result"] for e in result.events("txn")]
    assert outcomes == ["committed", "committed", "aborted"], result.describe()
    producer = txn_producer(broker.bootstrap, f"{topic}-rd")
    for outcome in ("commit", "abort", "commit"):
        producer.begin_transaction()
        for i in range(5):
            producer.produce(topic, f"rd-{outcome}-{i}".encode(), partition=i % 3)
        getattr(producer, f"{outcome}_transaction")(20)
    want = sorted([f"t{n}-{i}".encode() for n in (0, 1) for i in range(10)]
                  + [f"rd-commit-{i}".encode() for i in range(5)] * 2)
    assert committed_values(broker.bootstrap, topic, 3, expected=len(want)) == want


# One record a batch and no linger: every partition has several produce requests in flight (the
# default 5) whenever a transaction starts, and on a cluster the first of them waits for the
# leader's verification with the coordinator (KIP-890) while the next ones arrive.
PIPELINED = ["--prop", "batch.size=1", "--prop", "linger.ms=0",
             "--prop", "max.in.flight.requests.per.connection=5"]


def pipelined_producer() -> list[str]:
    """[`PIPELINED`] for the producer of the `eos` command, whose --prop is the consumer's."""
    return ["--producer-prop" if arg == "--prop" else arg for arg in PIPELINED]


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_java_pipelined_transactions_keep_each_producers_order(broker, topic, java):
    """A later request of a producer never overtakes an earlier one to the same partition:
    that was a fatal OutOfOrderSequenceException for the transaction (Flink's exactly-once
    sink). Every committed record is read once."""
    ck_create_topic(broker.bootstrap, topic, partitions=6)
    transactions, count = 50, 24
    result = java.run("txn", "--bootstrap", broker.bootstrap, "--topic", topic,
                      "--transactional-id", f"{topic}-tx", "--transactions", str(transactions),
                      "--count", str(count), *PIPELINED)
    assert [e["result"] for e in result.events("txn")] == ["committed"] * transactions, \
        result.describe()
    result.one("done")
    want = sorted(f"t{n}-{i}".encode() for n in range(transactions) for i in range(count))
    assert committed_values(broker.bootstrap, topic, 6, expected=len(want)) == want


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_offsets_sent_to_a_transaction_commit_only_with_it(broker, topic, java):
    source = f"{topic}-source"
    ck_create_topic(broker.bootstrap, topic)
    ck_create_topic(broker.bootstrap, source)
    group = f"{topic}-group"
    result = java.run("txn", "--bootstrap", broker.bootstrap, "--topic", topic,
                      "--transactional-id", f"{topic}-tx", "--transactions", "3", "--count", "5",
                      "--abort-every", "3", "--offsets-group", group, "--offsets-topic", source)
    result.one("done")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        [committed] = consumer.committed([TopicPartition(source, 0)], timeout=10)
    finally:
        consumer.close()
    # Transactions 0 and 1 committed offsets 5 and 10; the aborted third one's 15 is dropped.
    assert committed.offset == 10


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_a_new_producer_instance_fences_the_old_one(broker, topic):
    ck_create_topic(broker.bootstrap, topic)
    old = txn_producer(broker.bootstrap, f"{topic}-tx")
    old.begin_transaction()
    old.produce(topic, b"zombie", partition=0)
    old.flush(10)

    new = txn_producer(broker.bootstrap, f"{topic}-tx")
    with pytest.raises(KafkaException) as fenced:
        old.commit_transaction(10)
    assert fenced.value.args[0].fatal(), fenced.value

    new.begin_transaction()
    new.produce(topic, b"successor", partition=0)
    new.commit_transaction(10)
    assert committed_values(broker.bootstrap, topic, 1, expected=1) == [b"successor"]


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_open_transactions_hold_readers_back_across_a_crash_until_they_time_out_or_are_fenced(broker, topic):
    """A crash of every broker neither opens the gate of an open transaction nor loses it: the
    restarted coordinators still abort the one whose timeout runs out, and a new instance of the
    other's producer still aborts it. Neither outcome depends on how long the restart takes:
    `held` outlasts any restart the harness waits for, and `expiring` is aborted whether its
    timeout runs out while its coordinator is down (as soon as it is back, as in Kafka) or after."""
    held_timeout_ms, expiring_timeout_ms = 600_000, 10_000
    expiring_topic = f"{topic}-expiring"
    held = plain_records_behind_an_open_transaction(broker.bootstrap, topic, held_timeout_ms, plain=3)
    expiring = plain_records_behind_an_open_transaction(broker.bootstrap, expiring_topic,
                                                        expiring_timeout_ms, plain=2)

    broker.restart(hard=True)
    assert read_committed_within(broker.bootstrap, topic, 1.0) == [], "the crash opened the gate"
    # The coordinator aborts the expiring transaction after its timeout; then its plain records show.
    deadline = time.monotonic() + expiring_timeout_ms / 1000 + 16
    seen = []
    while time.monotonic() < deadline and len(seen) < 2:
        seen = read_committed_within(broker.bootstrap, expiring_topic, 1.0)
    assert seen == [b"plain-0", b"plain-1"], "the timed-out transaction was not aborted after the crash"
    # The held one is still open; its producer's next instance fences it and aborts it.
    assert read_committed_within(broker.bootstrap, topic, 1.0) == [], "the held transaction was ended"
    successor = txn_producer(broker.bootstrap, f"{topic}-tx")
    assert read_committed_within(broker.bootstrap, topic, 2.0) == [b"plain-0", b"plain-1", b"plain-2"]
    with pytest.raises(KafkaException) as fenced:
        held.commit_transaction(10)
    assert fenced.value.args[0].fatal(), fenced.value
    del expiring, successor


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
def test_java_admin_aborts_a_hanging_transaction(broker, topic, java):
    stuck = plain_records_behind_an_open_transaction(broker.bootstrap, topic, 600000, plain=2)

    # What kafka-transactions.sh abort does: DescribeProducers, then WriteTxnMarkers.
    out = java.run("admin", "abort-hanging", "--topic", topic, "--partition", "0",
                   "--bootstrap", broker.bootstrap).one("aborted")
    assert len(out["transactions"]) == 1 and out["transactions"][0].endswith("@0"), out
    assert read_committed_within(broker.bootstrap, topic, 2.0) == [b"plain-0", b"plain-1"]


@pytest.mark.peer_gap("Tansu 0.6 does not implement transactions")
@pytest.mark.parametrize("protocol,pipelined", [
    ("classic", False), ("consumer", False),
    pytest.param("classic", True, id="classic-pipelined")])
def test_java_consume_transform_produce_is_exactly_once(broker, topic, java, protocol, pipelined):
    """With either group protocol: the consumer protocol's (KIP-848) groups take transactional
    offsets too; and with one record a batch, five requests in flight (a Flink exactly-once
    sink's pattern)."""
    source, sink, group = f"{topic}-in", f"{topic}-out", f"{topic}-eos"
    ck_create_topic(broker.bootstrap, source, partitions=2)
    ck_create_topic(broker.bootstrap, sink, partitions=2)
    # Both partitions get records, so the group commits an offset for each (a partition it
    # never read from has no committed offset).
    reports = ck_produce(broker.bootstrap, source,
                         [{"value": f"r{i}".encode(), "partition": i % 2} for i in range(200)])
    assert all(r.error is None for r in reports)

    result = java.run("eos", "--bootstrap", broker.bootstrap, "--input", source, "--output", sink,
                      "--group", group, "--transactional-id", f"{topic}-tx", "--count", "200",
                      "--prop", f"group.protocol={protocol}",
                      *(pipelined_producer() if pipelined else []))
    done = result.one("done")
    assert done["copied"] == 200 and done["transactions"] >= 1, result.describe()
    admin = ck_admin(broker.bootstrap)  # kept alive until the result is in
    listed = admin.list_consumer_groups(request_timeout=20).result(timeout=30)
    expected = ConsumerGroupType.CONSUMER if protocol == "consumer" else ConsumerGroupType.CLASSIC
    assert [g.type for g in listed.valid if g.group_id == group] == [expected]

    assert committed_values(broker.bootstrap, sink, 2, expected=200) == sorted(
        f"r{i}-out".encode() for i in range(200))
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(source, 0), TopicPartition(source, 1)], timeout=10)
    finally:
        consumer.close()
    per_partition = {p: sum(1 for r in reports if r.partition == p) for p in (0, 1)}
    assert {tp.partition: tp.offset for tp in committed} == per_partition
