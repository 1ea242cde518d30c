"""Share groups (KIP-932) with librdkafka's share consumer (confluent-kafka `ShareConsumer`),
on one broker and on the cluster (where a share-partition's leader keeps its state on the
broker leading its `__share_group_state` partition, over the inter-broker APIs): members of one
share group read a topic's partitions together with every record delivered to one member, a
record released by one member is delivered again, with its delivery count, to another, a
closed member's records go back to the group, a rejected one never comes back, and a group's
configs set through the admin client (`share.auto.offset.reset`) decide where its
share-partitions start."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import AcknowledgeType, KafkaException, ShareConsumer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

import kafkawire
from harness import metric_sum, metric_texts, wait_until
from pyclients import ck_admin, ck_create_topic, ck_produce

PARTITIONS = 2

def share_consumer(bootstrap: str, group: str, explicit: bool = False) -> ShareConsumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group}
    if explicit:
        conf["share.acknowledgement.mode"] = "explicit"
    return ShareConsumer(conf)


def produce(bootstrap: str, topic: str, values: list[str]) -> None:
    reports = ck_produce(bootstrap, topic, [
        {"value": v.encode(), "partition": i % PARTITIONS} for i, v in enumerate(values)
    ])
    assert all(r.error is None for r in reports), reports


def records(consumer: ShareConsumer, timeout: float = 1.0) -> list:
    got = []
    for m in consumer.poll(timeout) or []:
        assert m.error() is None, m.error()
        got.append(m)
    return got


def group_config(bootstrap: str, group: str, entries: dict) -> None:
    admin = ck_admin(bootstrap)
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in entries.items()
    ])
    admin.incremental_alter_configs([resource])[resource].result(20)


def test_members_of_a_share_group_read_every_record_once(broker_factory, topic):
    members_broker = [broker_factory()]
    bootstrap = members_broker[0].bootstrap
    ck_create_topic(bootstrap, topic, PARTITIONS)
    # From the log start: a share-partition starts where it is first fetched
    # (share.auto.offset.reset), which under load may come after the records are produced.
    group_config(bootstrap, "share-readers", {"share.auto.offset.reset": "earliest"})
    members = [share_consumer(bootstrap, "share-readers") for _ in range(2)]
    try:
        for m in members:
            m.subscribe([topic])
        sent = [f"r{i}" for i in range(200)]
        produce(bootstrap, topic, sent)
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while len(seen) < len(sent):
            assert time.monotonic() < deadline, f"read {len(seen)} of {len(sent)} in 60 s"
            for m in members:
                seen += [r.value().decode() for r in records(m, 0.5)]
        assert sorted(seen) == sorted(sent), "every record once, none twice"
        broker = members_broker[0]
        assert metric_sum(broker, 'kafka_server_group_coordinator_metrics_share_groups{state="Stable"}') == 1
        # At most a session per member on each broker leading a partition it was assigned
        # (a member assigned both partitions before the other joined keeps both sessions; one
        # that read nothing yet may have none).
        leaders = {p.leader for p in ck_admin(bootstrap).list_topics(topic, timeout=20)
                   .topics[topic].partitions.values()}
        sessions = metric_sum(broker, "kafka_server_share_session_cache_share_sessions")
        assert 1 <= sessions <= len(members) * len(leaders), (sessions, leaders)
    finally:
        for m in members:
            m.close()


def test_a_released_record_is_delivered_again_to_another_member(broker_factory, topic):
    broker = broker_factory()
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, PARTITIONS)
    first = share_consumer(bootstrap, "share-release", explicit=True)
    second = share_consumer(bootstrap, "share-release")
    try:
        first.subscribe([topic])
        # The first member alone: it warms up and receives the record to release.
        deadline = time.monotonic() + 60
        n = 0
        while True:
            assert time.monotonic() < deadline, "the first member received nothing in 60 s"
            produce(bootstrap, topic, [f"warm-{n}"])
            n += 1
            got = records(first, 0.5)
            if got:
                break
        for m in got:
            first.acknowledge(m, AcknowledgeType.RELEASE)
        released = {(m.partition(), m.offset()) for m in got}
        first.commit_sync()
        assert metric_sum(broker, 'kafka_server_share_group_metrics_record_acknowledgement_total'
                          '{ack_type="release"}') == len(released)
        first.close()
        second.subscribe([topic])
        # The second member may also get warm-up records the first never handed over (produced
        # after its last poll, or prefetched and released at its close): only the released ones
        # are asserted on.
        again: dict = {}
        deadline = time.monotonic() + 60
        while not released <= set(again):
            assert time.monotonic() < deadline, f"redelivered {sorted(again)} of {sorted(released)}"
            for m in records(second, 0.5):
                again[(m.partition(), m.offset())] = m.delivery_count()
        assert {again[k] for k in released} == {2}, again
    finally:
        second.close()


def test_rejected_records_are_archived_and_released_ones_come_back_once_more(broker_factory, topic):
    """One explicit member rejects half of what it holds and releases the rest: only the
    released records come back (delivery count 2), the rejected ones never do, and the
    metrics count the deliveries, the archived records and the member."""
    broker = broker_factory()
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, 1)
    group = "share-reject"
    group_config(bootstrap, group, {"share.auto.offset.reset": "earliest"})
    count = 10
    reports = ck_produce(bootstrap, topic, [{"value": f"v{i}".encode()} for i in range(count)])
    assert all(r.error is None for r in reports), reports
    member = share_consumer(bootstrap, group, explicit=True)
    base = {name: metric_sum(broker, f"kafka_server_share_group_metrics_{name}_total")
            for name in ("records_acquired", "records_archived")}
    try:
        member.subscribe([topic])
        held: dict = {}
        deadline = time.monotonic() + 60
        while len(held) < count:
            assert time.monotonic() < deadline, f"acquired {sorted(held)} of {count} in 60 s"
            for m in records(member, 0.5):
                held[m.offset()] = m
        assert {m.delivery_count() for m in held.values()} == {1}
        assert metric_sum(broker, "kafka_server_group_coordinator_metrics_share_group_members") == 1
        rejected = {o for o in held if o % 2 == 0}
        for offset, m in held.items():
            member.acknowledge(m, AcknowledgeType.REJECT if offset in rejected else AcknowledgeType.RELEASE)
        results = member.commit_sync(20)
        assert all(e is None for e in results.values()), results
        again: dict = {}
        deadline = time.monotonic() + 60
        while len(again) < count - len(rejected):
            assert time.monotonic() < deadline, f"redelivered {sorted(again)}"
            for m in records(member, 0.5):
                again[m.offset()] = m
        assert set(again) == set(held) - rejected, sorted(again)
        assert {m.delivery_count() for m in again.values()} == {2}
        for m in again.values():
            member.acknowledge(m, AcknowledgeType.ACCEPT)
        results = member.commit_sync(20)
        assert all(e is None for e in results.values()), results
        # Nothing more: every record is accepted or archived.
        quiet_until = time.monotonic() + 3
        while time.monotonic() < quiet_until:
            late = records(member, 0.5)
            assert not late, [m.offset() for m in late]
        acquired = metric_sum(broker, "kafka_server_share_group_metrics_records_acquired_total")
        archived = metric_sum(broker, "kafka_server_share_group_metrics_records_archived_total")
        assert acquired - base["records_acquired"] == count + len(again), acquired
        assert archived - base["records_archived"] == len(rejected), archived
    finally:
        member.close()


ABANDON = r"""
import json, os, sys, time
from confluent_kafka import Producer, ShareConsumer
bootstrap, topic = sys.argv[1], sys.argv[2]
c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": "share-abandoned",
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([topic])
p = Producer({"bootstrap.servers": bootstrap})
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    p.produce(topic, value=b"held")
    p.flush(10)
    got = [m for m in (c.poll(0.5) or []) if m.error() is None]
    if got:
        print(json.dumps([[m.partition(), m.offset()] for m in got]), flush=True)
        os._exit(0)  # the connection drops with the records held, unacknowledged
sys.exit("nothing received in 60 s")
"""


def test_records_held_by_a_dropped_connection_go_back_at_once(broker_factory, topic):
    import json
    import subprocess
    import sys

    bootstrap = broker_factory().bootstrap
    ck_create_topic(bootstrap, topic, 1)
    out = subprocess.run([sys.executable, "-c", ABANDON, bootstrap, topic],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    held = {tuple(x) for x in json.loads(out.stdout.strip().splitlines()[-1])}
    other = share_consumer(bootstrap, "share-abandoned")
    try:
        other.subscribe([topic])
        again: dict = {}
        deadline = time.monotonic() + 60
        while not held <= set(again):
            assert time.monotonic() < deadline, f"redelivered {sorted(again)} of {sorted(held)}"
            for m in records(other, 0.5):
                again[(m.partition(), m.offset())] = m.delivery_count()
        # Given back by the session's end (its delivery not counted), not by the lock's
        # 30-second expiry (which counts it: the next delivery would be the second).
        assert {again[k] for k in held} == {1}, again
    finally:
        other.close()


def test_a_group_set_to_earliest_reads_what_was_produced_before_it_joined(broker_factory, topic):
    bootstrap = broker_factory().bootstrap
    ck_create_topic(bootstrap, topic, PARTITIONS)
    sent = [f"early-{i}" for i in range(50)]
    produce(bootstrap, topic, sent)
    group_config(bootstrap, "share-earliest", {"share.auto.offset.reset": "earliest"})
    admin = ck_admin(bootstrap)
    resource = ConfigResource(ResourceType.GROUP, "share-earliest")
    described = admin.describe_configs([resource])[resource].result(20)
    assert described["share.auto.offset.reset"].value == "earliest"
    assert described["share.record.lock.duration.ms"].value == "30000"
    with pytest.raises(KafkaException) as refused:
        group_config(bootstrap, "share-earliest", {"share.record.lock.duration.ms": "5"})
    assert "INVALID_CONFIG" in str(refused.value)
    consumer = share_consumer(bootstrap, "share-earliest")
    try:
        consumer.subscribe([topic])
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while len(seen) < len(sent):
            assert time.monotonic() < deadline, f"read {len(seen)} of {len(sent)} in 60 s"
            seen += [r.value().decode() for r in records(consumer, 0.5)]
        assert sorted(seen) == sorted(sent)
    finally:
        consumer.close()


@pytest.mark.single_broker("restarts the only broker, the group's coordinator; a cluster's brokers "
                           "each list only the groups they coordinate")
def test_a_share_group_outlives_a_restart_of_its_coordinator(broker_factory, topic):
    """A share group's membership is written to `__consumer_offsets`: after the broker
    restarts, ListGroups lists the group as before, from its records, with no member back."""
    broker = broker_factory()
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, PARTITIONS)
    group = "share-restart"
    group_config(bootstrap, group, {"share.auto.offset.reset": "earliest"})
    produce(bootstrap, topic, [f"r{i}" for i in range(10)])
    consumer = share_consumer(bootstrap, group, explicit=True)
    try:
        consumer.subscribe([topic])
        got: list = []
        wait_until(lambda: got.extend(records(consumer)) or len(got) >= 10, 60,
                   "the member to read the 10 records")
        for m in got:
            consumer.acknowledge(m, AcknowledgeType.ACCEPT)
        results = consumer.commit_sync(30)
        assert all(error is None for error in results.values()), results
        assert (group, "Stable", "share") in kafkawire.list_groups(bootstrap, ["share"])
    finally:
        consumer.close()
    wait_until(lambda: (group, "Empty", "share") in kafkawire.list_groups(bootstrap, ["share"]),
               30, "the group to be Empty once its member left")
    broker.restart()
    listed = wait_until(lambda: kafkawire.list_groups(bootstrap, ["share"]), 30,
                        "ListGroups to list share groups after the restart")
    assert listed == [(group, "Empty", "share")]
    # Its share-partitions' state came back too: a new member has nothing left to read.
    again = share_consumer(bootstrap, group)
    try:
        again.subscribe([topic])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert records(again) == []
    finally:
        again.close()


@pytest.mark.parametrize("how", ["crash", "shut_down"])
def test_a_share_partition_leader_lost_under_load_loses_no_acknowledgement(broker_factory, topic, how):
    """Four explicit members read a two-partition topic while records keep arriving; half-way,
    the leader of partition 0 is killed with SIGKILL (`crash`), or shut down with SIGTERM
    (`shut_down`: its controlled shutdown moves the share-partition's leadership to another
    broker while it still serves; on one broker: the broker restarts). Every record is
    delivered, none is accepted twice, and a record whose acceptance a member saw fail is
    either delivered again or was accepted for good (its acknowledgement was durable before
    the kill): none is lost."""
    import threading

    broker = broker_factory()
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, PARTITIONS)
    group = f"share-{how}"
    group_config(bootstrap, group, {"share.auto.offset.reset": "earliest"})
    total = 1200
    accepted: dict[str, int] = {}
    unsure: set[str] = set()
    seen: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def member() -> None:
        consumer = share_consumer(bootstrap, group, explicit=True)
        try:
            consumer.subscribe([topic])
            while not stop.is_set():
                try:
                    got = [m for m in (consumer.poll(0.5) or []) if m.error() is None]
                    for m in got:
                        consumer.acknowledge(m, AcknowledgeType.ACCEPT)
                    results = consumer.commit_sync(30) if got else {}
                except KafkaException:
                    results = None
                # The partitions whose acknowledgements the broker confirmed.
                confirmed = {tp.partition for tp, error in (results or {}).items() if error is None}
                with lock:
                    for m in got:
                        value = m.value().decode()
                        seen.add(value)
                        if m.partition() in confirmed:
                            accepted[value] = accepted.get(value, 0) + 1
                        else:
                            unsure.add(value)
        except Exception as e:  # noqa: BLE001 - reported by the test thread
            failures.append(repr(e))
        finally:
            consumer.close()

    threads = [threading.Thread(target=member, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    produce(bootstrap, topic, [f"c{i}" for i in range(total // 2)])
    deadline = time.monotonic() + 90
    while len(accepted) < total // 4:
        assert time.monotonic() < deadline, f"{len(accepted)} accepted before the kill, in 90 s"
        time.sleep(0.2)
    leader = ck_admin(bootstrap).list_topics(topic, timeout=20).topics[topic].partitions[0].leader
    getattr(broker, how)(leader)
    produce(bootstrap, topic, [f"c{i}" for i in range(total // 2, total)])
    everything = {f"c{i}" for i in range(total)}
    deadline = time.monotonic() + 120
    while not everything <= set(accepted) | unsure or not everything <= seen:
        assert not failures, failures
        assert time.monotonic() < deadline, \
            f"{len(set(accepted) | unsure)} of {total} settled, {len(seen)} seen in 120 s"
        time.sleep(0.2)
    # A record acknowledged but unsure may still come back: give it a little while.
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(60)
    assert not failures, failures
    twice = sorted(v for v, n in accepted.items() if n > 1)
    assert not twice, f"accepted twice: {twice[:10]}"
    assert everything <= seen, sorted(everything - seen)[:10]


def test_records_whose_lock_expires_go_to_another_member_and_a_late_accept_fails(broker_factory, topic):
    """With the broker's lock at one second (`group.share.record.lock.duration.ms`, its minimum
    lowered to match, as Kafka's own share consumer tests run), records a member holds past
    the lock go to another member with their delivery counted, and the first member's late
    acceptance is refused."""
    broker = broker_factory(group_share_record_lock_duration_ms=1000,
                            group_share_min_record_lock_duration_ms=1000)
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, 1)
    group = "share-expiry"
    group_config(bootstrap, group, {"share.auto.offset.reset": "earliest"})
    admin = ck_admin(bootstrap)
    resource = ConfigResource(ResourceType.GROUP, group)
    described = admin.describe_configs([resource])[resource].result(20)
    assert described["share.record.lock.duration.ms"].value == "1000"
    # One partition: both members are assigned it (the simple assignor shares a partition
    # only when members outnumber partitions).
    reports = ck_produce(bootstrap, topic, [{"value": f"x{i}".encode()} for i in range(5)])
    assert all(r.error is None for r in reports), reports
    holder = share_consumer(bootstrap, group, explicit=True)
    other = share_consumer(bootstrap, group)
    try:
        holder.subscribe([topic])
        held: list = []
        deadline = time.monotonic() + 60
        while not held:
            assert time.monotonic() < deadline, "the holder received nothing in 60 s"
            held = records(holder, 0.5)
        other.subscribe([topic])
        again: dict = {}
        deadline = time.monotonic() + 60
        wanted = {(m.partition(), m.offset()) for m in held}
        while not wanted <= set(again):
            assert time.monotonic() < deadline, f"redelivered {sorted(again)} of {sorted(wanted)}"
            for m in records(other, 0.5):
                again[(m.partition(), m.offset())] = m.delivery_count()
        assert {again[o] for o in wanted} == {2}, again
        expired = metric_sum(broker, "kafka_server_share_group_metrics_acquisition_lock_timeout_total")
        assert expired >= len(wanted), expired
        # The share-partition's series (its in-flight count moves as the other member acks).
        series = f'{{group="{group}",partition="0",topic="{topic}"}}'
        for name in ("in_flight_message_count", "lag"):
            assert metric_sum(broker, f"kafka_server_share_partition_metrics_{name}{series}") >= 0
            assert any(f"kafka_server_share_partition_metrics_{name}{series}" in text
                       for text in metric_texts(broker)), name
        for m in held:
            holder.acknowledge(m, AcknowledgeType.ACCEPT)
        try:
            results = holder.commit_sync(20)
            refused = [e for e in results.values() if e is not None]
        except KafkaException as e:
            refused = [e]
        assert refused, "a late acceptance of records another member holds is refused"
    finally:
        holder.close()
        other.close()


@pytest.mark.same_on_cluster("the share-partition leader alone decides how much each fetch acquires")
def test_a_poison_record_is_isolated_and_the_records_of_its_batch_consumed(broker_factory, topic):
    """A member that cannot process a batch holding a poison record releases the whole batch,
    every time. Past half the delivery limit each redelivery halves the batch, and the last one
    goes a record at a time: the poison record is archived alone after its fifth delivery, and
    every other record of its batch is accepted once."""
    broker = broker_factory()
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, 1)
    group = "share-poison"
    group_config(bootstrap, group, {"share.auto.offset.reset": "earliest"})
    values = [f"r{i}" for i in range(8)]
    values[3] = "poison"
    reports = ck_produce(bootstrap, topic, [{"value": v.encode(), "partition": 0} for v in values],
                         config={"linger.ms": 200})
    assert all(r.error is None for r in reports), reports
    consumer = share_consumer(bootstrap, group, explicit=True)
    accepted: dict[str, int] = {}
    poison_deliveries: list[int] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while set(accepted) != set(values) - {"poison"}:
            assert time.monotonic() < deadline, f"accepted {sorted(accepted)} in 60 s"
            got = records(consumer, 0.5)
            poisoned = any(m.value() == b"poison" for m in got)
            for m in got:
                if m.value() == b"poison":
                    poison_deliveries.append(m.delivery_count())
                kind = AcknowledgeType.RELEASE if poisoned else AcknowledgeType.ACCEPT
                consumer.acknowledge(m, kind)
                if not poisoned:
                    value = m.value().decode()
                    accepted[value] = accepted.get(value, 0) + 1
            if got:
                consumer.commit_sync(30)
        # Nothing comes back: the poison record is archived.
        for _ in range(4):
            assert records(consumer, 0.5) == []
    finally:
        consumer.close()
    assert all(n == 1 for n in accepted.values()), accepted
    assert poison_deliveries == [1, 2, 3, 4, 5], poison_deliveries
