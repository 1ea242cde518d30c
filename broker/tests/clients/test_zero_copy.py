"""Zero-copy fetches: a plaintext consumer's record sets go from the segment files to the socket
with sendfile. kcat and confluent-kafka read back exactly what was produced, over several
partitions and many small segments, with budgets that cut fetches mid-way, and the broker counts
the record bytes it sent from files (so a silent fall back to copying everywhere fails here).
TLS connections keep the copy path: test_security.py."""

from __future__ import annotations

import json

import pytest

from harness import metric_sum, wait_until
from pyclients import ck_consume, ck_create_topic, ck_produce, kcat
from test_share_groups import group_config, records, share_consumer

pytestmark = pytest.mark.peer_gap("a Tributary metric: the peer broker does not export it")

SENT_FROM_FILES = "tributary_fetch_sendfile_bytes_total"
PARTITIONS = 3
COUNT = 1500


def produced_records() -> list[dict]:
    return [{"key": f"k-{i}".encode(), "value": (f"value-{i}-" + "x" * (i % 300)).encode(),
             "partition": i % PARTITIONS} for i in range(COUNT)]


def by_partition(records: list[tuple[int, int, bytes, bytes]]) -> dict[int, list[tuple[bytes, bytes]]]:
    out: dict[int, list[tuple[bytes, bytes]]] = {}
    for partition, _offset, key, value in sorted(records, key=lambda r: (r[0], r[1])):
        out.setdefault(partition, []).append((key, value))
    return out


def test_consumers_read_back_exactly_what_was_produced_from_files(broker, topic):
    # Small segments, so fetches end at segment ends and continue in the next file.
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS, config={"segment.bytes": "8192"})
    records = produced_records()
    # Small batches: many per segment, and fetch budgets below a segment cut between them.
    ck_produce(broker.bootstrap, topic, records, config={"linger.ms": 5, "batch.size": 4000})
    expected = by_partition([(r["partition"], i, r["key"], r["value"]) for i, r in enumerate(records)])
    payload = sum(len(r["key"]) + len(r["value"]) for r in records)

    before = metric_sum(broker, SENT_FROM_FILES)
    got = ck_consume(broker.bootstrap, topic, range(PARTITIONS), COUNT, config={
        "fetch.max.bytes": 6000, "max.partition.fetch.bytes": 2500, "message.max.bytes": 6000,
    })
    assert by_partition([(m.partition, m.offset, m.key, m.value) for m in got]) == expected
    assert [m.offset for m in got if m.partition == 0] == list(range(COUNT // PARTITIONS))
    sent = metric_sum(broker, SENT_FROM_FILES) - before
    assert sent >= payload, f"confluent-kafka: {sent} record bytes sent from files, {payload} produced"

    before = metric_sum(broker, SENT_FROM_FILES)
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J",
               "-X", "fetch.max.bytes=7000", "-X", "max.partition.fetch.bytes=3000",
               "-X", "message.max.bytes=7000")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    consumed = [(m["partition"], m["offset"], m["key"].encode(), m["payload"].encode()) for m in lines]
    assert by_partition(consumed) == expected
    sent = metric_sum(broker, SENT_FROM_FILES) - before
    assert sent >= payload, f"kcat: {sent} record bytes sent from files, {payload} produced"


def test_a_share_consumer_reads_back_exactly_what_was_produced_from_files(broker, topic):
    """confluent-kafka's share consumer (KIP-932) over plaintext: the batches each ShareFetch
    hands it go from the segment files too."""
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS, config={"segment.bytes": "8192"})
    produced = produced_records()
    ck_produce(broker.bootstrap, topic, produced, config={"linger.ms": 5, "batch.size": 4000})
    payload = sum(len(r["key"]) + len(r["value"]) for r in produced)
    group = f"{topic}-share"
    group_config(broker.bootstrap, group, {"share.auto.offset.reset": "earliest"})

    before = metric_sum(broker, SENT_FROM_FILES)
    consumer = share_consumer(broker.bootstrap, group)
    try:
        consumer.subscribe([topic])
        got: list = []
        wait_until(lambda: got.extend(records(consumer)) or len(got) >= COUNT, 90,
                   f"the share consumer to read {COUNT} records")
    finally:
        consumer.close()
    consumed = [(m.partition(), m.offset(), m.key(), m.value()) for m in got]
    expected = by_partition([(r["partition"], i, r["key"], r["value"]) for i, r in enumerate(produced)])
    assert by_partition(consumed) == expected
    sent = metric_sum(broker, SENT_FROM_FILES) - before
    assert sent >= payload, f"share consumer: {sent} record bytes sent from files, {payload} produced"
