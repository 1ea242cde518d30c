"""Online migration between classic and consumer groups (KIP-848) with the Java client (3.9),
its classic members eager (range) or cooperative (cooperative-sticky):
a running classic group whose members are replaced one by one by `group.protocol=consumer`
members while records flow (a rolling upgrade of a fleet), then the reverse. Every record is
consumed, no partition is ever owned by two members at once, a record is read twice only
where its partition changed hands (at-least-once), the committed offsets end at the log end,
and ListGroups reports the type the group has at each end. A mixed group (classic and
consumer-protocol members) resumes after a broker restart."""

from __future__ import annotations

from collections import Counter
from typing import Optional

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, TopicPartition

from groupclients import Flow, JavaMember, assert_never_owned_twice, poll_until, wait_for_assignment
from pyclients import ck_admin, ck_create_topic, ck_produce

PARTITIONS = 4
PROTOCOLS = "classic,consumer"
CLASSIC = {"group.protocol": "classic"}
CONSUMER = {"group.protocol": "consumer"}

def values(members: list[JavaMember]) -> list[str]:
    return [e["value"] for m in members for e in m.of("record")]


def own_everything_once(members: list[JavaMember]) -> bool:
    owned = [m.owned() for m in members]
    return all(o is not None and o for o in owned) and \
        sorted(p for o in owned for p in o) == list(range(PARTITIONS))  # type: ignore[union-attr]


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset for tp in
                c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)}
    finally:
        c.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in range(PARTITIONS)}
    finally:
        c.close()


def group_type(bootstrap: str, group: str) -> Optional[ConsumerGroupType]:
    admin = ck_admin(bootstrap)  # kept alive until the result is in
    listed = admin.list_consumer_groups(request_timeout=20).result(timeout=30)
    assert not listed.errors, listed.errors
    return next((g.type for g in listed.valid if g.group_id == group), None)


def replace_one_by_one(old: list[JavaMember], start_new, all_members: list[JavaMember], what: str,
                       type_now, types: list[ConsumerGroupType]) -> list[JavaMember]:
    """Closes each member of `old` in turn and starts its replacement, waiting each time for
    the live members to own every partition once and to go on consuming; the group then has
    the type `types` names for that step (a mixed group is a consumer group)."""
    live = list(old)
    for i, member in enumerate(old):
        member.close()
        live.remove(member)
        new = start_new(i)
        all_members.append(new)
        live.append(new)
        seen = len(values(all_members))
        poll_until(lambda: own_everything_once(live) and len(values(all_members)) > seen + 20, 90,
                   f"{what} step {i}: the live members to own every partition once and consume", all_members)
        assert_never_owned_twice(all_members)
        assert type_now() == types[i], f"{what} step {i}"
    return live


@pytest.mark.parametrize("classic_assignor", ["range", "cooperative-sticky"])
def test_a_rolling_upgrade_and_downgrade_of_java_consumers_keeps_every_record(broker_factory, topic, java,
                                                                             classic_assignor):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-g"
    members: list[JavaMember] = []

    def member(name: str, protocol: dict[str, str]) -> JavaMember:
        assignor = "server" if protocol is CONSUMER else classic_assignor
        return JavaMember(java, bootstrap, topic, group, name, assignor=assignor, props=protocol)

    def type_now() -> Optional[ConsumerGroupType]:
        return group_type(bootstrap, group)

    flow = Flow(bootstrap, topic, PARTITIONS)
    try:
        classic = [member(f"classic{i}", CLASSIC) for i in range(3)]
        members += classic
        wait_for_assignment(classic, PARTITIONS, 90, "the classic group to form")
        assert group_type(bootstrap, group) == ConsumerGroupType.CLASSIC

        # The first consumer-protocol member upgrades the group; classic members stay in it.
        upgraded = replace_one_by_one(classic, lambda i: member(f"consumer{i}", CONSUMER), members, "upgrade",
                                      type_now, [ConsumerGroupType.CONSUMER] * 3)
        # Classic members join the consumer group; the last consumer-protocol member leaving
        # downgrades it.
        replace_one_by_one(upgraded, lambda i: member(f"again-classic{i}", CLASSIC), members, "downgrade", type_now,
                           [ConsumerGroupType.CONSUMER, ConsumerGroupType.CONSUMER, ConsumerGroupType.CLASSIC])
        log = broker.log_text()
        assert "classic group upgraded to a consumer group" in log
        assert "consumer group downgraded to a classic group" in log

        produced = flow.stop()
        poll_until(lambda: set(values(members)) >= set(produced), 90, "every record consumed", members)
        poll_until(lambda: committed(bootstrap, topic, group) == end_offsets(bootstrap, topic), 60,
                   "the committed offsets to reach the log end", members)
    finally:
        if not flow._stop.is_set():
            flow.stop()
        for m in members:
            m.kill()

    intervals = assert_never_owned_twice(members)
    got = values(members)
    assert set(got) == set(produced), "every record consumed, nothing else"
    for value in [v for v, n in Counter(got).items() if n > 1]:
        partition = int(value[1:]) % PARTITIONS
        assert len(intervals[partition]) > 1, f"{value} read twice without a hand-over of {partition}"


def produce(bootstrap: str, topic: str, first: int, count: int) -> set[str]:
    records = [{"value": f"v{n}".encode(), "partition": n % PARTITIONS} for n in range(first, first + count)]
    reports = ck_produce(bootstrap, topic, records)
    assert all(r.error is None for r in reports)
    return {r["value"].decode() for r in records}


def test_a_mixed_group_resumes_after_a_broker_restart(broker_factory, topic, java):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-mixed"
    members: list[JavaMember] = []

    def member(name: str, protocol: dict[str, str]) -> JavaMember:
        assignor = "server" if protocol is CONSUMER else "range"
        m = JavaMember(java, bootstrap, topic, group, name, assignor=assignor, props=protocol)
        members.append(m)
        return m

    try:
        classic = [member(f"classic{i}", CLASSIC) for i in range(2)]
        wait_for_assignment(classic, PARTITIONS, 90, "the classic group to form")
        classic[0].close()
        live = [classic[1], member("consumer0", CONSUMER)]
        poll_until(lambda: own_everything_once(live), 90, "the mixed group to own every partition", members)
        assert group_type(bootstrap, group) == ConsumerGroupType.CONSUMER

        produced = produce(bootstrap, topic, 0, 200)
        poll_until(lambda: set(values(members)) >= produced, 60, "the records before the restart", members)

        broker.restart()
        produced |= produce(bootstrap, topic, 200, 200)
        poll_until(lambda: set(values(members)) >= produced, 90, "the records after the restart", members)
        poll_until(lambda: committed(bootstrap, topic, group) == end_offsets(bootstrap, topic), 60,
                   "the committed offsets to reach the log end", members)
        assert group_type(bootstrap, group) == ConsumerGroupType.CONSUMER, "still a mixed consumer group"
        assert own_everything_once(live)
    finally:
        for m in members:
            m.kill()
    intervals = assert_never_owned_twice(members)
    got = values(members)
    assert set(got) == produced
    for value in [v for v, n in Counter(got).items() if n > 1]:
        partition = int(value[1:]) % PARTITIONS
        assert len(intervals[partition]) > 1, f"{value} read twice without a hand-over of {partition}"
