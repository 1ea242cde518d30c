"""kafka-python (pure-Python protocol implementation): producer, consumer, offsets by time."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import MessageSizeTooLargeError

from pyclients import ck_create_topic

CODECS = ["gzip", "snappy", "lz4", "zstd"]
# One codec runs on the cluster too (CLUSTER PASS in conftest.py); each of the others only on
# one broker: a follower copies batches as they are, whatever their codec.
CLUSTER_CODEC = "zstd"
CODEC_CASES = [c if c == CLUSTER_CODEC else pytest.param(c, marks=pytest.mark.same_on_cluster(
    f"the {c} codec: the cluster runs {CLUSTER_CODEC}, and a follower copies batches whatever their codec"))
               for c in CODECS]


def produce(bootstrap, topic, records, **config):
    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=15000, **config)
    try:
        futures = [producer.send(topic, **r) for r in records]
        producer.flush(30)
        return [f.get(timeout=30) for f in futures]
    finally:
        producer.close(10)


def consume(bootstrap, topic, partitions, expected, offset=None, timeout=30.0):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             request_timeout_ms=20000)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        if offset is None:
            consumer.seek_to_beginning(*tps)
        else:
            for tp in tps:
                consumer.seek(tp, offset)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(records)
        assert len(out) >= expected, f"consumed {len(out)} of {expected} within {timeout}s"
        return out
    finally:
        consumer.close()


def test_keyed_produce_and_ordered_consume(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    records = [{"key": f"order-{i % 6}".encode(), "value": f"{i}".encode()} for i in range(120)]
    meta = produce(broker.bootstrap, topic, records, linger_ms=5)
    partition_of = {}
    for r, m in zip(records, meta):
        assert partition_of.setdefault(r["key"], m.partition) == m.partition
    got = consume(broker.bootstrap, topic, range(3), 120)
    assert {(m.partition, m.offset) for m in meta} == {(r.partition, r.offset) for r in got}
    for key in partition_of:
        values = [int(r.value) for r in sorted(got, key=lambda r: r.offset) if r.key == key]
        assert values == sorted(values) and len(values) == 20


@pytest.mark.parametrize("codec", CODEC_CASES)
def test_compression_round_trip(broker, topic, codec):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    records = [{"value": (f"{codec}-{i}-" + "zz" * 100).encode(), "partition": 0} for i in range(100)]
    meta = produce(broker.bootstrap, topic, records, compression_type=codec, linger_ms=20)
    assert [m.offset for m in meta] == list(range(100))
    got = consume(broker.bootstrap, topic, [0], 100)
    assert [r.value for r in got] == [r["value"] for r in records]


@pytest.mark.same_on_cluster('record headers and null keys and values: the record codec')
def test_headers_and_nulls(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    records = [
        {"key": None, "value": b"v", "partition": 0},
        {"key": b"k", "value": None, "partition": 0},
        {"key": b"h", "value": b"with headers", "partition": 0, "headers": [("x", b"1"), ("y", b"")]},
    ]
    produce(broker.bootstrap, topic, records)
    got = consume(broker.bootstrap, topic, [0], 3)
    assert [(r.key, r.value) for r in got] == [(None, b"v"), (b"k", None), (b"h", b"with headers")]
    assert list(got[2].headers) == [("x", b"1"), ("y", b"")]


@pytest.mark.peer_gap("Tansu 0.6 ignores the timestamp in ListOffsets and under-reports the latest offset")
def test_offsets_for_times_and_beginning_end_offsets(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    t0 = int(time.time() * 1000) - 120_000
    produce(broker.bootstrap, topic, [{"value": f"{i}".encode(), "partition": 0, "timestamp_ms": t0 + 10 * i}
                                      for i in range(8)])
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, request_timeout_ms=20000)
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 8}
        found = consumer.offsets_for_times({tp: t0 + 35})[tp]
        assert (found.offset, found.timestamp) == (4, t0 + 40)
        assert consumer.offsets_for_times({tp: t0 + 71})[tp] is None
    finally:
        consumer.close()


def test_idempotent_producer(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=2)
    records = [{"key": f"k{i % 4}".encode(), "value": f"{i}".encode()} for i in range(400)]
    meta = produce(broker.bootstrap, topic, records, enable_idempotence=True, acks="all")
    for p in range(2):
        offsets = sorted(m.offset for m in meta if m.partition == p)
        assert offsets == list(range(len(offsets)))
    got = consume(broker.bootstrap, topic, range(2), 400)
    assert sorted(int(r.value) for r in got) == list(range(400))


@pytest.mark.same_on_cluster("a read inside one log's batch")
def test_fetch_from_the_middle_of_a_batch(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    meta = produce(broker.bootstrap, topic, [{"value": f"m{i}".encode(), "partition": 0} for i in range(10)],
                   linger_ms=200)
    assert [m.offset for m in meta] == list(range(10))
    got = consume(broker.bootstrap, topic, [0], 5, offset=5)
    assert [(r.offset, r.value) for r in got] == [(i, f"m{i}".encode()) for i in range(5, 10)]


@pytest.mark.peer_gap("Tansu does not implement --message-max-bytes")
@pytest.mark.same_on_cluster('message.max.bytes is checked by the leader before anything is written')
def test_oversized_record_is_rejected(broker_factory, topic):
    broker = broker_factory(message_max_bytes=4096)
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=1_000_000, retries=0)
    try:
        with pytest.raises(MessageSizeTooLargeError):
            producer.send(topic, value=b"y" * 20_000, partition=0).get(timeout=30)
        ok = producer.send(topic, value=b"fits", partition=0).get(timeout=30)
        assert ok.offset == 0
    finally:
        producer.close(10)
    assert broker.alive()
