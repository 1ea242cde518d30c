"""Consumer group lag on the broker's /metrics: high watermark minus the committed offset, per
group and partition, as `kafka_consumergroup_lag` (the chart's lag alert reads it)."""

import re
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from harness import BrokerProcess, free_port, wait_until
from pyclients import ck_create_topic, ck_produce


def lag_series(http_addr: str) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    series = {}
    pattern = r'^kafka_consumergroup_lag\{group="([^"]*)",partition="([^"]*)",topic="([^"]*)"\} (\S+)$'
    for group, partition, topic, value in re.findall(pattern, text, re.M):
        series[(group, topic, partition)] = float(value)
    return series


def test_lag_is_high_watermark_minus_committed_offset(request: pytest.FixtureRequest, tmp_path: Path,
                                                      topic: str) -> None:
    http_addr = f"127.0.0.1:{free_port()}"
    broker = BrokerProcess("tributary", tmp_path / "broker", extra_env={"TRIBUTARY_HTTP_LISTENER": http_addr})
    request.node._brokers = [broker]
    broker.start()
    try:
        ck_create_topic(broker.bootstrap, topic, partitions=2)
        ck_produce(broker.bootstrap, topic, [{"value": b"x", "partition": 0} for _ in range(10)])
        ck_produce(broker.bootstrap, topic, [{"value": b"y", "partition": 1} for _ in range(4)])
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lagging",
                             "enable.auto.commit": False})
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)],
                            asynchronous=False)
        finally:
            consumer.close()
        wait_until(lambda: lag_series(http_addr).get(("lagging", topic, "0")) == 7.0, timeout=10,
                   what="lag 7 on partition 0")
        series = lag_series(http_addr)
        assert series[("lagging", topic, "1")] == 0.0
    finally:
        broker.stop()
