"""Consumer group lag on the broker's /metrics: high watermark minus the committed offset, per
group and partition, as `kafka_consumergroup_lag` (the chart's lag alert reads it)."""

import re
import time
import urllib.request

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from harness import wait_until
from pyclients import ck_create_topic, ck_produce


def lag_series(http_addr: str) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    series = {}
    pattern = r'^kafka_consumergroup_lag\{group="([^"]*)",partition="([^"]*)",topic="([^"]*)"\} (\S+)$'
    for group, partition, topic, value in re.findall(pattern, text, re.M):
        series[(group, topic, partition)] = float(value)
    return series


def commit_until_taken(consumer: Consumer, offsets: list, timeout: float = 30.0) -> None:
    """A synchronous commit retried on retriable errors, as the Java client's commitSync does:
    on a fresh cluster this test's commit is the first, so the coordinator topic is created
    under it and its partitions take their leaders a moment later (COORDINATOR_LOAD_IN_PROGRESS
    meanwhile, which librdkafka retries only a few times)."""
    coordinator_moving = {KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR,
                          KafkaError.COORDINATOR_NOT_AVAILABLE}
    deadline = time.monotonic() + timeout
    while True:
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return
        except KafkaException as e:
            error = e.args[0]
            retriable = error.retriable() or error.code() in coordinator_moving
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_lag_is_high_watermark_minus_committed_offset(broker, topic: str) -> None:
    ck_create_topic(broker.bootstrap, topic, partitions=2)
    ck_produce(broker.bootstrap, topic, [{"value": b"x", "partition": 0} for _ in range(10)])
    ck_produce(broker.bootstrap, topic, [{"value": b"y", "partition": 1} for _ in range(4)])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"lagging-{topic}",
                         "enable.auto.commit": False})
    try:
        commit_until_taken(consumer, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])
    finally:
        consumer.close()

    def every_broker() -> dict[tuple[str, str, str], float]:
        # The group's coordinator exports its lag; on a cluster that is one of the brokers.
        return {k: v for addr in broker.http_addresses for k, v in lag_series(addr).items()}
    wait_until(lambda: every_broker().get((f"lagging-{topic}", topic, "0")) == 7.0, timeout=10,
               what="lag 7 on partition 0")
    assert every_broker()[(f"lagging-{topic}", topic, "1")] == 0.0
