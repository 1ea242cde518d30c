"""Thin helpers over the real Python clients (confluent-kafka, kafka-python) and kcat, so each
test reads as its scenario. They add deadlines, never change client behaviour."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness import kcat_binary


@dataclass
class Delivered:
    """One delivery report from confluent-kafka."""

    index: int
    error: Optional[KafkaError]
    partition: int = -1
    offset: int = -1
    timestamp: int = -1


@dataclass
class Received:
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: list = field(default_factory=list)
    timestamp: int = -1


# ---------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# ---------------------------------------------------------------------------------------------


def ck_admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def ck_create_topic(bootstrap: str, topic: str, partitions: int = 1, config: Optional[dict] = None,
                    timeout: float = 20.0) -> None:
    admin = ck_admin(bootstrap)  # must outlive the futures
    futures = admin.create_topics(
        # The broker's default replication factor (-1, KIP-464): 1 standalone, 3 on a cluster.
        [NewTopic(topic, num_partitions=partitions, replication_factor=-1, config=config or {})],
        operation_timeout=timeout, request_timeout=timeout,
    )
    futures[topic].result(timeout)


def ck_produce(bootstrap: str, topic: str, records: Iterable[dict], config: Optional[dict] = None,
               timeout: float = 30.0) -> list[Delivered]:
    """Produces records given as dicts (key, value, headers, partition, timestamp) and returns
    every delivery report, in send order."""
    # Bounded delivery: a refused record comes back as an error report instead of retrying
    # for librdkafka's default five minutes.
    conf = {"bootstrap.servers": bootstrap, "message.timeout.ms": int(timeout * 1000 * 2 / 3)}
    conf.update(config or {})
    producer = Producer(conf)
    reports: list[Optional[Delivered]] = []

    def on_delivery(index: int):
        def cb(err, msg):
            if err is None:
                reports[index] = Delivered(index, None, msg.partition(), msg.offset(), msg.timestamp()[1])
            else:
                reports[index] = Delivered(index, err)
        return cb

    for i, r in enumerate(records):
        reports.append(None)
        kwargs = {k: r[k] for k in ("key", "value", "headers", "partition", "timestamp") if r.get(k) is not None}
        kwargs.setdefault("value", r.get("value"))
        producer.produce(topic, on_delivery=on_delivery(i), **kwargs)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    assert all(r is not None for r in reports)
    return reports  # type: ignore[return-value]


def ck_consume(bootstrap: str, topic: str, partitions: Iterable[int], expected: int,
               offset: int = -2, timeout: float = 30.0, config: Optional[dict] = None) -> list[Received]:
    """Reads `expected` records from the given partitions (from `offset`, default earliest) by
    assignment, without a consumer group; fails on timeout or a consumer error."""
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "tributary-tests-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    }
    conf.update(config or {})
    consumer = Consumer(conf)
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p in partitions])
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(out) < expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"consumed {len(out)} of {expected} records within {timeout}s")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise AssertionError(f"consumer error: {msg.error()}")
            out.append(Received(msg.partition(), msg.offset(), msg.key(), msg.value(),
                                msg.headers() or [], msg.timestamp()[1]))
        # Anything beyond `expected` would be a duplicate or a stray; give it a moment to show.
        extra = consumer.poll(0.3)
        if extra is not None and not extra.error():
            out.append(Received(extra.partition(), extra.offset(), extra.key(), extra.value(),
                                extra.headers() or [], extra.timestamp()[1]))
        return out
    finally:
        consumer.close()


def ck_topic_partitions(bootstrap: str, topic: str, timeout: float = 10.0) -> int:
    md = Producer({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=timeout)
    t = md.topics[topic]
    if t.error is not None:
        raise AssertionError(f"metadata for {topic}: {t.error}")
    return len(t.partitions)


# ---------------------------------------------------------------------------------------------
# kcat
# ---------------------------------------------------------------------------------------------


def kcat(*args: str, stdin: Optional[str] = None, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [kcat_binary(), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"$ {' '.join(cmd)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
