"""librdkafka (confluent-kafka) and kafka-python group consumers commit and resume, and
committed offsets and groups survive a broker crash."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from pyclients import ck_create_topic, ck_produce

PARTITIONS = 3
RECORDS = 90


def fill(bootstrap: str, topic: str) -> None:
    ck_create_topic(bootstrap, topic, partitions=PARTITIONS)
    reports = ck_produce(bootstrap, topic, [{"value": f"{i}".encode(), "partition": i % PARTITIONS} for i in range(RECORDS)])
    assert all(r.error is None for r in reports)


def ck_group_read(bootstrap: str, topic: str, group: str, count: int, timeout: float = 60.0) -> list[tuple[int, int]]:
    """Reads `count` records in `group`, commits them synchronously, and leaves."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    c.subscribe([topic])
    got: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count:
            assert time.monotonic() < deadline, f"read {len(got)} of {count} records in group {group}"
            msgs = c.consume(num_messages=count - len(got), timeout=0.5)
            for m in msgs:
                assert not m.error(), m.error()
                got.append((m.partition(), m.offset()))
            if msgs:
                c.commit(asynchronous=False)
    finally:
        c.close()
    return got


def ck_committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def test_librdkafka_group_consumer_commits_and_resumes(broker, topic):
    fill(broker.bootstrap, topic)
    first = ck_group_read(broker.bootstrap, topic, "ck", 40)
    committed = ck_committed(broker.bootstrap, topic, "ck")
    for p in range(PARTITIONS):
        mine = [o for q, o in first if q == p]
        assert committed[p] == (max(mine) + 1 if mine else -1001)
    rest = ck_group_read(broker.bootstrap, topic, "ck", RECORDS - 40)
    assert sorted(first + rest) == sorted((i % PARTITIONS, i // PARTITIONS) for i in range(RECORDS)), \
        "the second consumer resumes exactly where the first committed"


def test_kafka_python_group_consumer_commits_and_resumes(broker, topic):
    from kafka import KafkaConsumer

    fill(broker.bootstrap, topic)

    def read(count: int) -> list[tuple[int, int]]:
        c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="kp", auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=500)
        got: list[tuple[int, int]] = []
        deadline = time.monotonic() + 60
        try:
            while len(got) < count:
                assert time.monotonic() < deadline, f"kafka-python read {len(got)} of {count}"
                batches = c.poll(timeout_ms=500, max_records=count - len(got))
                for records in batches.values():
                    got.extend((r.partition, r.offset) for r in records)
                if batches:
                    c.commit()
        finally:
            c.close()
        return got

    first = read(50)
    rest = read(RECORDS - 50)
    assert sorted(first + rest) == sorted((i % PARTITIONS, i // PARTITIONS) for i in range(RECORDS))
    # librdkafka sees what kafka-python committed.
    assert ck_committed(broker.bootstrap, topic, "kp") == {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}


@pytest.mark.peer_gap("Tansu (memory storage) loses everything on restart")
def test_committed_offsets_and_groups_survive_a_broker_crash(broker, topic):
    fill(broker.bootstrap, topic)
    first = ck_group_read(broker.bootstrap, topic, "survivor", 45)
    before = ck_committed(broker.bootstrap, topic, "survivor")
    assert sum(max(o, 0) for o in before.values()) == 45

    broker.restart(hard=True)  # SIGKILL, then start on the same data

    assert ck_committed(broker.bootstrap, topic, "survivor") == before
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups(request_timeout=20).result(20)
    assert "survivor" in {g.group_id for g in listed.valid}
    rest = ck_group_read(broker.bootstrap, topic, "survivor", RECORDS - 45)
    assert sorted(first + rest) == sorted((i % PARTITIONS, i // PARTITIONS) for i in range(RECORDS))
