"""Log compaction: a cleanup.policy=compact topic keeps the latest value per key, drops
tombstones after delete.retention.ms, and consumers read a valid offset sequence with gaps."""

from __future__ import annotations

import pytest

import time

from confluent_kafka import Consumer, TopicPartition

from harness import wait_until
from pyclients import ck_create_topic, ck_produce

KEYS = 20
ROUNDS = 8
DELETED = {f"k{i}" for i in range(5)}


def read_from_start(bootstrap: str, topic: str, timeout: float = 20.0) -> list[tuple[int, str, str | None]]:
    """Every record of partition 0 from the log start to the end, as (offset, key, value)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-reader", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    out: list[tuple[int, str, str | None]] = []
    try:
        c.assign([TopicPartition(topic, 0, -2)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF: read everything
                    return out
                raise AssertionError(m.error())
            out.append((m.offset(), m.key().decode(), None if m.value() is None else m.value().decode()))
        raise AssertionError(f"did not reach the end within {timeout}s ({len(out)} records)")
    finally:
        c.close()


@pytest.mark.peer_gap("Tansu 0.6 does not compact topics")
def test_compacted_topic_keeps_latest_values_and_drops_tombstones(broker_factory, topic, java):
    broker = broker_factory(log_cleaner_backoff_ms=300)
    ck_create_topic(broker.bootstrap, topic, partitions=1,
                    config={"cleanup.policy": "compact", "segment.bytes": "2048", "delete.retention.ms": "3000"})
    for r in range(ROUNDS):
        records = [{"key": f"k{i}".encode(), "value": f"v{r}-{i}".encode(), "partition": 0} for i in range(KEYS)]
        ck_produce(broker.bootstrap, topic, records)
    tombstones = [{"key": k.encode(), "value": None, "partition": 0} for k in sorted(DELETED)]
    ck_produce(broker.bootstrap, topic, tombstones)
    # Roll past everything above so it all sits in closed segments.
    for _ in range(3):
        ck_produce(broker.bootstrap, topic, [{"key": b"pad", "value": b"x" * 1500, "partition": 0}])
    end = ROUNDS * KEYS + len(DELETED) + 3

    def compacted() -> list[tuple[int, str, str | None]]:
        seen = read_from_start(broker.bootstrap, topic)
        keyed = [r for r in seen if r[1] != "pad"]
        return seen if len(keyed) == KEYS else []

    seen = wait_until(compacted, 30, "compaction to leave one record per key")
    offsets = [o for o, _, _ in seen]
    assert offsets == sorted(set(offsets)), "offsets strictly increase"
    assert offsets[-1] == end - 1, "the log end is unchanged"
    latest = {k: v for _, k, v in seen if k != "pad"}
    for i in range(KEYS):
        key = f"k{i}"
        assert latest[key] == (None if key in DELETED else f"v{ROUNDS - 1}-{i}"), key

    # After delete.retention.ms the tombstones go too.
    def tombstones_gone() -> list:
        seen = read_from_start(broker.bootstrap, topic)
        return seen if not {k for _, k, _ in seen} & DELETED else []

    seen = wait_until(tombstones_gone, 30, "tombstones to be removed after delete.retention.ms")
    assert {k for _, k, _ in seen} - {"pad"} == {f"k{i}" for i in range(KEYS)} - DELETED

    # A restart reads the compacted segments back (indexes rebuilt), and the Java consumer
    # reads the same gap-tolerant sequence.
    broker.restart(hard=True)
    assert read_from_start(broker.bootstrap, topic) == seen
    result = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", str(len(seen)))
    assert [(r["offset"], r["key"], r["value"]) for r in result.events("record")] == seen
