"""confluent-kafka (librdkafka 2.x): keyed produce, ordered consume, codecs, headers, nulls,
timestamps, the idempotent producer and a fetch that starts inside a batch."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from pyclients import ck_consume, ck_create_topic, ck_produce

CODECS = ["gzip", "snappy", "lz4", "zstd"]
# One codec runs on the cluster too (CLUSTER PASS in conftest.py); each of the others only on
# one broker: a follower copies batches as they are, whatever their codec.
CLUSTER_CODEC = "zstd"
CODEC_CASES = [c if c == CLUSTER_CODEC else pytest.param(c, marks=pytest.mark.same_on_cluster(
    f"the {c} codec: the cluster runs {CLUSTER_CODEC}, and a follower copies batches whatever their codec"))
               for c in CODECS]


def test_keyed_records_land_on_one_partition_per_key_in_send_order(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=4)
    records = [{"key": f"account-{i % 7}".encode(), "value": f"{i}".encode()} for i in range(300)]
    reports = ck_produce(broker.bootstrap, topic, records, {"linger.ms": 5})
    assert all(r.error is None for r in reports), [r.error for r in reports if r.error]

    partition_of: dict[bytes, int] = {}
    for rec, rep in zip(records, reports):
        assert partition_of.setdefault(rec["key"], rep.partition) == rep.partition
    assert len(set(partition_of.values())) > 1, "7 keys over 4 partitions all hashed to one partition"

    got = ck_consume(broker.bootstrap, topic, range(4), expected=300)
    assert len(got) == 300
    for key, partition in partition_of.items():
        mine = [r for r in got if r.key == key]
        assert {r.partition for r in mine} == {partition}
        values = [int(r.value) for r in sorted(mine, key=lambda r: r.offset)]
        assert values == sorted(values), f"order lost for {key!r}"
    # Offsets acknowledged are the offsets the records are read back at.
    acked = {(r.partition, r.offset): rec["value"] for rec, r in zip(records, reports)}
    assert {(r.partition, r.offset): r.value for r in got} == acked


@pytest.mark.parametrize("codec", CODEC_CASES)
def test_compressed_batches_round_trip(broker, topic, codec):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    records = [{"key": f"k{i}".encode(), "value": (f"{codec}-{i}-" + "payload " * 40).encode()} for i in range(200)]
    reports = ck_produce(broker.bootstrap, topic, records, {"compression.type": codec, "linger.ms": 20})
    assert all(r.error is None for r in reports)
    assert [r.offset for r in reports] == list(range(200))
    got = ck_consume(broker.bootstrap, topic, [0], expected=200)
    assert [(r.key, r.value) for r in got] == [(r["key"], r["value"]) for r in records]


@pytest.mark.same_on_cluster('record headers and null keys and values: the record codec')
def test_headers_and_null_keys_and_values_survive(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    records = [
        {"key": None, "value": b"no key"},
        {"key": b"tombstone", "value": None},
        {"key": None, "value": None},
        {"key": b"k", "value": b"v", "headers": [("h1", b"one"), ("h2", None), ("h1", b"again"), ("empty", b"")]},
    ]
    reports = ck_produce(broker.bootstrap, topic, records)
    assert all(r.error is None for r in reports)
    got = ck_consume(broker.bootstrap, topic, [0], expected=4)
    assert [(r.key, r.value) for r in got] == [(b.get("key"), b.get("value")) for b in records]
    assert got[0].headers == []
    assert got[3].headers == [("h1", b"one"), ("h2", None), ("h1", b"again"), ("empty", b"")]


@pytest.mark.peer_gap("Tansu 0.6 ignores the timestamp in ListOffsets and under-reports the latest offset")
@pytest.mark.same_on_cluster("CreateTime kept and ListOffsets by timestamp: one log's time index, read by its leader")
def test_create_time_timestamps_are_kept_and_searchable(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    t0 = int(time.time() * 1000) - 3_600_000
    records = [{"value": f"{i}".encode(), "timestamp": t0 + i * 1000, "partition": 0} for i in range(10)]
    reports = ck_produce(broker.bootstrap, topic, records)
    assert [r.timestamp for r in reports] == [t0 + i * 1000 for i in range(10)]

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ts-lookup"})
    try:
        def lookup(ts):
            return consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0].offset
        assert lookup(t0 - 1) == 0
        assert lookup(t0) == 0
        assert lookup(t0 + 2500) == 3          # first record with timestamp >= the query
        assert lookup(t0 + 9000) == 9
        assert lookup(t0 + 9001) == -1         # nothing that late: OFFSET_END (-1)
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 10)
    finally:
        consumer.close()
    got = ck_consume(broker.bootstrap, topic, [0], expected=10)
    assert [r.timestamp for r in got] == [t0 + i * 1000 for i in range(10)]


def test_idempotent_producer_writes_each_record_exactly_once(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    records = [{"key": f"k{i % 10}".encode(), "value": f"{i}".encode()} for i in range(2000)]
    reports = ck_produce(broker.bootstrap, topic, records, {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "max.in.flight.requests.per.connection": 5,
        "batch.num.messages": 50,
    })
    assert all(r.error is None for r in reports), {str(r.error) for r in reports if r.error}
    got = ck_consume(broker.bootstrap, topic, range(3), expected=2000)
    values = [int(r.value) for r in got]
    assert len(values) == 2000 and sorted(values) == list(range(2000)), "duplicates or losses"
    for p in range(3):
        offsets = sorted(r.offset for r in got if r.partition == p)
        assert offsets == list(range(len(offsets))), f"gap or duplicate offsets in partition {p}"


@pytest.mark.same_on_cluster("a read inside one log's batch")
def test_fetch_from_the_middle_of_a_batch_starts_at_the_requested_offset(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    # One linger window: librdkafka sends the ten records as one batch.
    records = [{"value": f"m{i}".encode(), "partition": 0} for i in range(10)]
    reports = ck_produce(broker.bootstrap, topic, records, {"linger.ms": 200, "batch.num.messages": 100})
    assert [r.offset for r in reports] == list(range(10))
    got = ck_consume(broker.bootstrap, topic, [0], expected=5, offset=5)
    assert [(r.offset, r.value) for r in got] == [(i, f"m{i}".encode()) for i in range(5, 10)]


@pytest.mark.peer_gap("Tansu 0.6 answers ListOffsets latest with 1 after a 5-record batch")
def test_earliest_and_latest_offsets(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    ck_produce(broker.bootstrap, topic, [{"value": f"{i}".encode(), "partition": 0} for i in range(5)])
    earliest = ck_consume(broker.bootstrap, topic, [0], expected=5, offset=-2)  # OFFSET_BEGINNING
    assert [r.offset for r in earliest] == [0, 1, 2, 3, 4]

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "latest", "enable.auto.commit": False})
    try:
        # ListOffsets earliest (-2) and latest (-1).
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 5)
        # Starting at the end (OFFSET_END) delivers nothing old, then exactly what comes next.
        consumer.assign([TopicPartition(topic, 0, -1)])
        quiet_until = time.monotonic() + 2
        while time.monotonic() < quiet_until:
            msg = consumer.poll(0.2)
            assert msg is None or msg.error(), f"reading from the end delivered old record {msg.offset()}"
        ck_produce(broker.bootstrap, topic, [{"value": b"new", "partition": 0}])
        deadline = time.monotonic() + 15
        msg = None
        while time.monotonic() < deadline and msg is None:
            msg = consumer.poll(0.2)
        assert msg is not None and not msg.error()
        assert (msg.offset(), msg.value()) == (5, b"new")
    finally:
        consumer.close()


@pytest.mark.peer_gap("Tansu does not implement --message-max-bytes")
@pytest.mark.same_on_cluster('message.max.bytes is checked by the leader before anything is written')
def test_oversized_record_is_rejected_and_the_broker_keeps_serving(broker_factory, topic):
    broker = broker_factory(message_max_bytes=4096)
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    reports = ck_produce(broker.bootstrap, topic, [{"value": b"x" * 20_000, "partition": 0}],
                         {"message.max.bytes": 1_000_000, "compression.type": "none"})
    assert reports[0].error is not None
    assert reports[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE, str(reports[0].error)

    ok = ck_produce(broker.bootstrap, topic, [{"value": b"small", "partition": 0}])
    assert ok[0].error is None and ok[0].offset == 0
    assert [r.value for r in ck_consume(broker.bootstrap, topic, [0], expected=1)] == [b"small"]
    assert broker.alive()
