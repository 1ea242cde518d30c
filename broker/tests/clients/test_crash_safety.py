"""Durability: every record acknowledged with acks=all survives SIGKILL of the broker, in
order, exactly once, with no gap in offsets; the log recovers a torn tail."""

import re
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from pyclients import ck_consume, ck_create_topic, ck_produce

pytestmark = pytest.mark.peer_gap("Tansu runs on memory storage here: a restart loses every record")

PARTITIONS = 2


class AckTracker:
    def __init__(self) -> None:
        self.acked: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.failed: list[tuple[bytes, str]] = []

    def callback(self, err, msg) -> None:
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.failed.append((msg.value(), str(err)))


def read_partition(bootstrap: str, topic: str, partition: int) -> list[tuple[int, bytes]]:
    """Every record of the partition, from the log start to the high watermark."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-check", "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        assert low == 0, f"partition {partition} starts at {low}, not 0"
    finally:
        consumer.close()
    if high == 0:
        return []
    got = ck_consume(bootstrap, topic, [partition], expected=high, timeout=60)
    return [(r.offset, r.value) for r in got]


def verify_log(bootstrap: str, topic: str, acked: list[tuple[int, int, bytes]]) -> dict[int, int]:
    sizes = {}
    for p in range(PARTITIONS):
        records = read_partition(bootstrap, topic, p)
        offsets = [o for o, _ in records]
        assert offsets == list(range(len(records))), f"partition {p}: gap or duplicate in offsets"
        values = [v for _, v in records]
        assert len(set(values)) == len(values), f"partition {p}: a record was written twice"
        seqs = [int(v) for v in values]
        assert seqs == sorted(seqs), f"partition {p}: records out of send order"
        at = dict(records)
        for part, offset, value in acked:
            if part == p:
                assert at.get(offset) == value, (
                    f"acknowledged record {value!r} at {p}/{offset} is {'missing' if offset not in at else at[offset]!r}"
                )
        sizes[p] = len(records)
    return sizes


def test_acknowledged_records_survive_sigkill_mid_stream(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    tracker = AckTracker()
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.timeout.ms": 90000,
        "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    seq = 0

    def pump(done, timeout: float, what: str) -> None:
        nonlocal seq
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out {what}: {len(tracker.acked)} acked, {len(tracker.failed)} failed")
            try:
                producer.produce(topic, value=b"%09d" % seq, partition=seq % PARTITIONS, on_delivery=tracker.callback)
                seq += 1
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)

    pump(lambda: len(tracker.acked) >= 5000, 90, "waiting for acks before the kill")
    broker.kill()  # SIGKILL while requests are in flight
    acked_before_kill = len(tracker.acked)
    sent_at_kill = seq
    # Keep sending into the dead broker for a moment: these queue up and retry.
    pump(lambda: seq >= sent_at_kill + 2000, 30, "queueing while the broker is down")

    broker.start()
    pump(lambda: len(tracker.acked) >= acked_before_kill + 5000, 120, "waiting for acks after the restart")
    assert producer.flush(90) == 0, "records still undelivered after the restart"

    sizes = verify_log(broker.bootstrap, topic, tracker.acked)
    assert sum(sizes.values()) >= len(tracker.acked)
    # Records after the restart were acknowledged at offsets beyond the ones before the kill.
    assert len(tracker.acked) >= acked_before_kill + 5000


def test_sigterm_stops_the_broker_and_a_restart_serves_the_same_data(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    reports = ck_produce(broker.bootstrap, topic, [{"value": b"%09d" % i, "partition": i % PARTITIONS}
                                                   for i in range(1000)], {"acks": "all"})
    assert all(r.error is None for r in reports)
    assert broker.stop(20) == 0, "broker did not exit cleanly on SIGTERM"
    broker.start()
    verify_log(broker.bootstrap, topic, [(r.partition, r.offset, b"%09d" % r.index) for r in reports])
    more = ck_produce(broker.bootstrap, topic, [{"value": b"%09d" % 1000, "partition": 0}], {"acks": "all"})
    assert more[0].error is None and more[0].offset == 500


@pytest.mark.single_broker("writes into the segments while the broker is down; a pod starts its broker "
                          "again at once, and on a cluster a replica's divergent tail is the follower "
                          "truncation of broker/tests/cluster")
def test_a_torn_tail_is_truncated_on_recovery(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    reports = ck_produce(broker.bootstrap, topic, [{"value": b"%09d" % i, "partition": i % PARTITIONS}
                                                   for i in range(400)], {"acks": "all"})
    assert all(r.error is None for r in reports)
    broker.kill()
    # DESIGN.md: each partition is a directory of `<20-digit base offset>.log` segments.
    segments = [p for p in Path(broker.data_dir).rglob("*.log") if re.fullmatch(r"\d{20}\.log", p.name)]
    assert segments, f"no <20-digit>.log segments under {broker.data_dir}"
    for seg in segments:
        with open(seg, "ab") as f:
            # A plausible batch header (base offset, length) followed by too few bytes: a torn write.
            f.write((10_000).to_bytes(8, "big") + (5000).to_bytes(4, "big") + b"\xde\xad\xbe\xef" * 10)
    broker.start()
    verify_log(broker.bootstrap, topic, [(r.partition, r.offset, b"%09d" % r.index) for r in reports])
    after = ck_produce(broker.bootstrap, topic, [{"value": b"%09d" % 400, "partition": 0}], {"acks": "all"})
    assert after[0].error is None and after[0].offset == 200, "new writes must continue right after the last good batch"
    assert broker.alive()
