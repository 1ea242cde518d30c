"""A tiered partition that loses its directory (SIGKILL, the partition's directory deleted, the
broker's own metadata kept) restarts after its remote log, never at offset 0: the log starts
in the bucket, the records the bucket holds read back with their own values, new records get
offsets after the remote end and reach the bucket in turn, so no offset is handed out twice.
With the commit journal on, the journal's batches past the remote end come back as well, so
every acknowledged record does. And a consumer reading the remote part while the bucket is
unreachable is answered a retriable error, counted, instead of waiting out the bucket."""

import json
import shutil
import time

import pytest

from blackhole import Blackhole
from harness import metric_sum, wait_until
from kafkawire import Connection, fetch_request_v4, parse_fetch_v4
from pyclients import ck_create_topic, ck_produce, kcat
from s3server import broker_settings
from test_tiered_storage import BUCKET, EARLIEST, EARLIEST_LOCAL, LATEST, LATEST_TIERED, list_offset, s3  # noqa: F401

pytestmark = [
    pytest.mark.peer_gap("Tansu has no KIP-405 tiered storage (remote.storage.enable)"),
    pytest.mark.single_broker("deletes one standalone broker's partition directory and restarts it; "
                              "the cluster case is tiered/cluster_tests.rs and the empty-volume test "
                              "of test_tiered_storage.py"),
]

RECORDS = 8000       # about 8 MB: eight 1 MiB segments go to the bucket, the active one stays
NEW_RECORDS = 2500   # enough to roll and upload segments after the restart
VALUE_BYTES = 1000
KAFKA_STORAGE_ERROR = 56


def old_value(i: int) -> str:
    return f"before-{i:06d}-".ljust(VALUE_BYTES, "o")


def new_value(i: int) -> str:
    return f"after-{i:06d}-".ljust(VALUE_BYTES, "n")


def create_topic(bootstrap: str, topic: str) -> None:
    """One tiered partition of 1 MiB segments keeping locally only the active one once uploaded."""
    ck_create_topic(bootstrap, topic, partitions=1, config={
        "remote.storage.enable": "true",
        "segment.bytes": str(1 << 20),
        "local.retention.bytes": "1",
        "retention.ms": "-1",
    })


def produce(bootstrap: str, topic: str, values: list[str]) -> list[int]:
    """Produces `values` to partition 0 with acks=all and an idempotent producer; returns the
    acknowledged offsets (every record must be acknowledged)."""
    reports = ck_produce(bootstrap, topic, [{"value": v, "partition": 0} for v in values],
                         config={"linger.ms": 5, "batch.num.messages": 100, "acks": "all",
                                 "enable.idempotence": True}, timeout=120)
    errors = [r.error for r in reports if r.error is not None]
    assert not errors, errors[:5]
    return [r.offset for r in reports]


def offsets(bootstrap: str, topic: str) -> dict[str, int]:
    """ListOffsets earliest, earliest-local, latest-tiered and latest (raises on an error)."""
    return {name: list_offset(bootstrap, topic, ts) for name, ts in
            (("earliest", EARLIEST), ("earliest_local", EARLIEST_LOCAL),
             ("latest_tiered", LATEST_TIERED), ("latest", LATEST))}


def wait_tiered(broker, topic: str, end: int) -> int:
    """Waits until every closed segment is in the bucket and gone from the disk (the local log
    is the active segment alone, right after the remote end); returns the remote end (the
    offset after the last uploaded record)."""
    partition_dir = broker.data_dir / f"{topic}-0"

    def caught_up():
        o = offsets(broker.bootstrap, topic)
        active_only = len(list(partition_dir.glob("*.log"))) == 1
        done = active_only and o["latest"] == end and o["earliest_local"] == o["latest_tiered"] + 1
        return done and o["earliest_local"] > 0 and o["earliest_local"]
    return wait_until(caught_up, 120, "uploads to catch up and local retention to follow them")


def read_back(bootstrap: str, topic: str) -> list[tuple[int, str]]:
    """Every record of partition 0 from offset 0 to the end, read by kcat: (offset, value)."""
    out = kcat("-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-J", timeout=150)
    got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [(m["offset"], m["payload"]) for m in got]


def kill_and_lose_partition_dir(broker, topic: str) -> None:
    broker.kill()
    partition_dir = broker.data_dir / f"{topic}-0"
    assert partition_dir.is_dir(), partition_dir
    shutil.rmtree(partition_dir)
    assert (broker.data_dir / "meta.properties").exists(), "the broker's own metadata stays"
    broker.start()


def tiered_broker(broker_factory, s3, prefix: str, **extra):
    return broker_factory(**{**broker_settings(s3, BUCKET, prefix), **extra})


def test_a_tiered_partition_that_lost_its_directory_restarts_after_its_remote_log(
        broker_factory, topic, s3, java):
    broker = tiered_broker(broker_factory, s3, "lost-dir", commit_journal_bytes=0)
    create_topic(broker.bootstrap, topic)
    acked = {}
    first = [old_value(i) for i in range(RECORDS)]
    assert produce(broker.bootstrap, topic, first) == list(range(RECORDS))
    acked.update(enumerate(first))
    remote_end = wait_tiered(broker, topic, RECORDS)
    assert 0 < remote_end < RECORDS
    before = offsets(broker.bootstrap, topic)
    assert before == {"earliest": 0, "earliest_local": remote_end, "latest_tiered": remote_end - 1,
                      "latest": RECORDS}, before

    kill_and_lose_partition_dir(broker, topic)

    # The log starts in the bucket and its local part right after the remote end; the records
    # of the lost active segment were only on the deleted disk (no journal to bring them back).
    after = wait_until(lambda: offsets(broker.bootstrap, topic), 60, "the partition to answer ListOffsets")
    assert after == {"earliest": 0, "earliest_local": remote_end, "latest_tiered": remote_end - 1,
                     "latest": remote_end}, (before, after)
    second = [new_value(i) for i in range(NEW_RECORDS)]
    new_offsets = produce(broker.bootstrap, topic, second)
    assert new_offsets == list(range(remote_end, remote_end + NEW_RECORDS)), new_offsets[:3]
    lost = set(range(remote_end, RECORDS))
    for offset in lost:
        del acked[offset]
    acked.update(zip(new_offsets, second))
    expected = sorted(acked.items())

    # Every record reads back with its own value: the old ones from the bucket, the new ones
    # after them (kcat, then the Java client).
    assert read_back(broker.bootstrap, topic) == expected
    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "0",
                        "--offset", "0", "--max", str(len(expected)), "--timeout-ms", "90000", timeout=180)
    records = consumed.events("record")
    assert [(r["offset"], r["value"]) for r in records] == expected

    # The new records reach the bucket after the old ones, and local retention follows.
    end = remote_end + NEW_RECORDS
    new_remote_end = wait_tiered(broker, topic, end)
    assert new_remote_end > remote_end
    assert read_back(broker.bootstrap, topic) == expected


def test_with_the_journal_on_the_records_past_the_remote_log_come_back_too(broker_factory, topic, s3):
    # A journal smaller than what is produced: its replay cannot rebuild the log from offset 0
    # and stops early, at an empty log, as in the lost-directory case with the default journal.
    broker = tiered_broker(broker_factory, s3, "journal", commit_journal_bytes=3 << 20)
    create_topic(broker.bootstrap, topic)
    first = [old_value(i) for i in range(RECORDS)]
    assert produce(broker.bootstrap, topic, first) == list(range(RECORDS))
    remote_end = wait_tiered(broker, topic, RECORDS)

    kill_and_lose_partition_dir(broker, topic)

    # The remote part from the bucket, the rest from the journal: every acknowledged record.
    after = wait_until(lambda: offsets(broker.bootstrap, topic), 60, "the partition to answer ListOffsets")
    assert after == {"earliest": 0, "earliest_local": remote_end, "latest_tiered": remote_end - 1,
                     "latest": RECORDS}, after
    second = [new_value(i) for i in range(NEW_RECORDS)]
    assert produce(broker.bootstrap, topic, second) == list(range(RECORDS, RECORDS + NEW_RECORDS))
    expected = list(enumerate(first + second))
    assert read_back(broker.bootstrap, topic) == expected

    # A second crash, this time with the directory kept, changes nothing.
    broker.restart(hard=True)
    wait_until(lambda: offsets(broker.bootstrap, topic)["latest"] == RECORDS + NEW_RECORDS, 60,
               "the partition to answer after the second restart")
    assert read_back(broker.bootstrap, topic) == expected


def fetch_remote_part(bootstrap: str, topic: str, timeout: float) -> tuple[int, float]:
    """One Fetch of partition 0 at offset 0 (in the bucket): its error code and how long the
    answer took."""
    started = time.monotonic()
    with Connection(bootstrap, timeout=timeout) as conn:
        _, partitions = parse_fetch_v4(conn.request(fetch_request_v4(7, topic, 0, 0, max_wait_ms=500)))
    return partitions[0].error_code, time.monotonic() - started


def test_an_unreachable_bucket_answers_remote_fetches_with_a_retriable_error_and_counts_them(
        broker_factory, topic, s3):
    path = Blackhole(s3.port)
    try:
        broker = tiered_broker(broker_factory, s3, "unreachable", remote_storage_endpoint=path.endpoint)
        create_topic(broker.bootstrap, topic)
        values = [old_value(i) for i in range(3000)]
        assert produce(broker.bootstrap, topic, values) == list(range(3000))
        wait_tiered(broker, topic, 3000)
        errors = f'tributary_tiered_remote_fetch_errors_total{{topic="{topic}"}}'
        assert metric_sum(broker, errors) == 0

        # The bucket's path drops: a fetch of the remote part is answered at once with
        # KAFKA_STORAGE_ERROR (retriable), not after the bucket's timeouts, and is counted.
        path.cut()
        code, took = fetch_remote_part(broker.bootstrap, topic, timeout=25)
        assert code == KAFKA_STORAGE_ERROR, code
        assert took < 10, f"the answer took {took:.1f}s"
        assert metric_sum(broker, errors) >= 1

        # A real consumer keeps retrying (no records, no fatal error) and every retry counts.
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                             "enable.auto.commit": False, "enable.partition.eof": False})
        try:
            consumer.assign([TopicPartition(topic, 0, 0)])
            counted = metric_sum(broker, errors)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                assert msg is None or (msg.error() and not msg.error().fatal()), msg and msg.offset()
            assert metric_sum(broker, errors) > counted, "the consumer's retries are counted"

            # Back: it reads everything, in order, with its values.
            path.restore()
            got = []
            deadline = time.monotonic() + 90
            while len(got) < len(values):
                assert time.monotonic() < deadline, f"read {len(got)} of {len(values)} after the bucket came back"
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                got.append((msg.offset(), msg.value().decode()))
            assert got == list(enumerate(values))
        finally:
            consumer.close()
    finally:
        path.stop()
