"""librdkafka (confluent-kafka) and Java (3.9) consumers with `group.protocol=consumer` (KIP-848)
against brokers serving `group.coordinator.rebalance.protocols=classic,consumer`: members share
a topic's partitions with every record consumed once, and committed offsets carry a group over
a restart of its consumers, of the brokers, and over its coordinator's crash in the middle of a
reconciliation (on the cluster kind, the coordinator moves to another broker); a regular
expression resolved by the broker picks up a new topic (exactly-once consume-transform-produce
with this protocol: test_transactions.py)."""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from groupclients import Flow, JavaMember, assert_never_owned_twice, java_groups, poll_until
from harness import metric_sum
from pyclients import ck_create_topic, ck_produce

PARTITIONS = 4
RECORDS = 200
PROTOCOLS = "classic,consumer"

def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })


def produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    reports = ck_produce(bootstrap, topic, [
        {"value": f"{i}".encode(), "partition": i % PARTITIONS} for i in range(first, first + count)
    ])
    assert all(r.error is None for r in reports)


def assigned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def poll_all(members: list[Consumer], until, timeout: float, what: str) -> dict[int, list[tuple[int, int]]]:
    """Polls every member in turn, committing what each read at once, until `until(got)`."""
    got: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(members))}
    deadline = time.monotonic() + timeout
    while not until(got):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: read {sum(map(len, got.values()))}"
        for i, c in enumerate(members):
            msgs = c.consume(num_messages=100, timeout=0.2)
            for m in msgs:
                assert not m.error(), m.error()
                got[i].append((m.partition(), m.offset()))
            if msgs:
                c.commit(asynchronous=False)
    return got


def test_consumer_protocol_members_share_partitions_and_resume_after_restarts(broker_factory, topic):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    bootstrap = broker.bootstrap
    ck_create_topic(bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-g"

    members = [consumer(bootstrap, group), consumer(bootstrap, group)]
    try:
        for c in members:
            c.subscribe([topic])
        poll_all(members, lambda _: all(len(assigned(c)) == PARTITIONS // 2 for c in members), 60,
                 "both members to own half the partitions")
        owned = [assigned(c) for c in members]
        assert owned[0].isdisjoint(owned[1]) and owned[0] | owned[1] == set(range(PARTITIONS))

        produce(bootstrap, topic, 0, RECORDS)
        got = poll_all(members, lambda g: sum(map(len, g.values())) >= RECORDS, 60, "every record")
        records = got[0] + got[1]
        assert len(records) == len(set(records)) == RECORDS, "each record is consumed once"
        for i, c in enumerate(members):
            assert {p for p, _ in got[i]} <= owned[i], "a member reads only what it owns"
            assert got[i], f"member {i} read records"
    finally:
        for c in members:
            c.close()

    # The group's records are replayed from __consumer_offsets when the broker comes back.
    broker.restart()
    assert "records not understood" not in broker.log_text(), broker.log_tail()
    produce(bootstrap, topic, RECORDS, RECORDS)
    restarted = consumer(bootstrap, group)
    try:
        restarted.subscribe([topic])
        got = poll_all([restarted], lambda g: len(g[0]) >= RECORDS, 60, "the records after the commits")
        expected = {(i % PARTITIONS, i // PARTITIONS) for i in range(RECORDS, 2 * RECORDS)}
        assert len(got[0]) == RECORDS and set(got[0]) == expected, \
            "the restarted consumer resumes exactly where the group committed"
        committed = restarted.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)
        assert {tp.partition: tp.offset for tp in committed} == {p: 2 * RECORDS // PARTITIONS for p in range(PARTITIONS)}
    finally:
        restarted.close()


def own_everything_once(members: list[JavaMember]) -> bool:
    """Whether the members own every partition exactly once (member epochs differ under this
    protocol: a member that only revoked is not told of the epoch it moved to)."""
    owned = [m.owned() for m in members]
    return all(o is not None for o in owned) and sorted(p for o in owned for p in o) == list(range(PARTITIONS))


def test_java_consumer_protocol_members_share_partitions_and_hand_them_over(broker_factory, topic, java):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-java"
    props = {"group.protocol": "consumer"}
    members = [JavaMember(java, broker.bootstrap, topic, group, f"j{i}", assignor="server", props=props)
               for i in range(2)]
    try:
        poll_until(lambda: own_everything_once(members) and all(len(m.owned()) == 2 for m in members), 60,
                   "two Java members to own two partitions each", members)
        assert metric_sum(broker, 'kafka_server_group_coordinator_metrics_groups{protocol="consumer"}') >= 1
        assert metric_sum(broker, 'kafka_server_group_coordinator_metrics_rebalance_total{protocol="consumer"}') >= 1
        produce(broker.bootstrap, topic, 0, RECORDS)
        values = lambda ms: [e["value"] for m in ms for e in m.of("record")]  # noqa: E731
        poll_until(lambda: len(values(members)) >= RECORDS, 60, "every record consumed", members)
        assert sorted(values(members)) == sorted(str(i) for i in range(RECORDS)), "each record once"

        # One leaves: the other is given its partitions and resumes from its commits.
        members[0].close()
        poll_until(lambda: own_everything_once(members[1:]), 60, "the remaining member to own everything", members)
        produce(broker.bootstrap, topic, RECORDS, RECORDS)
        poll_until(lambda: len(values(members)) >= 2 * RECORDS, 60, "the records after the hand-over", members)
        time.sleep(1)  # a duplicate would show up now
        assert sorted(values(members)) == sorted(str(i) for i in range(2 * RECORDS)), "each record once"
        for m in members:
            assert not m.of("commit-failed"), m.describe()
    finally:
        for m in members:
            m.kill()


def test_a_killed_consumer_protocol_member_is_removed_when_its_session_ends(broker_factory, topic, java):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS,
                            group_consumer_session_timeout_ms=3000,
                            group_consumer_heartbeat_interval_ms=500)
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-killed"
    props = {"group.protocol": "consumer"}
    members = [JavaMember(java, broker.bootstrap, topic, group, f"k{i}", assignor="server", props=props)
               for i in range(2)]
    try:
        poll_until(lambda: own_everything_once(members) and all(len(m.owned()) == 2 for m in members), 60,
                   "two Java members to own two partitions each", members)
        members[0].kill()
        killed = time.monotonic()
        poll_until(lambda: own_everything_once(members[1:]), 30, "the survivor to own everything", members)
        assert time.monotonic() - killed >= 2, "the partitions moved only once the session ended"
    finally:
        for m in members:
            m.kill()


def test_a_restarted_static_member_gets_its_partitions_back(broker_factory, topic, java):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-static"
    props = {"group.protocol": "consumer"}

    def member(i: int, name: str) -> JavaMember:
        return JavaMember(java, broker.bootstrap, topic, group, name, assignor="server",
                          instance_id=f"static-{i}", props=props)

    members = [member(0, "s0"), member(1, "s1")]
    try:
        poll_until(lambda: own_everything_once(members) and all(len(m.owned()) == 2 for m in members), 60,
                   "two static members to own two partitions each", members)
        before = [m.owned() for m in members]
        revoked = len(members[1].of("revoked"))
        members[0].close()  # a static member leaves for a while (epoch -2)
        members.append(member(0, "s0-again"))
        back = members[2:]
        poll_until(lambda: back[0].owned() == before[0], 30, "the static member's partitions back", members)
        assert members[1].owned() == before[1] and len(members[1].of("revoked")) == revoked, \
            "the other member was not disturbed"
    finally:
        for m in members:
            m.kill()


def test_a_group_reconciling_when_its_coordinator_crashes_resumes(broker_factory, topic, java):
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-crash"
    props = {"group.protocol": "consumer"}

    def member(name: str) -> JavaMember:
        return JavaMember(java, broker.bootstrap, topic, group, name, assignor="server", props=props)

    members = [member("c0"), member("c1")]
    values = lambda: [e["value"] for m in members for e in m.of("record")]  # noqa: E731
    try:
        poll_until(lambda: own_everything_once(members) and all(len(m.owned()) == 2 for m in members), 60,
                   "two Java members to own two partitions each", members)
        produce(broker.bootstrap, topic, 0, RECORDS)
        poll_until(lambda: len(values()) >= RECORDS, 60, "every record consumed", members)
        coordinator = java_groups(java, broker.bootstrap, "describe", "--group", group).one("description")["coordinator"]
        assert coordinator is not None

        # A third member joins: the others must revoke a partition each before it is given them.
        # The coordinator is killed once the first revocation is under way.
        revoked = sum(len(m.of("revoked")) for m in members)
        members.append(member("c2"))
        poll_until(lambda: sum(len(m.of("revoked")) for m in members) > revoked, 60, "a revocation", members)
        broker.crash(coordinator)

        poll_until(lambda: own_everything_once(members) and sorted(len(m.owned()) for m in members) == [1, 1, 2],
                   120, "the three members to share the partitions after the coordinator's crash", members)
        produce(broker.bootstrap, topic, RECORDS, RECORDS)
        later = lambda: [v for v in values() if int(v) >= RECORDS]  # noqa: E731
        poll_until(lambda: len(later()) >= RECORDS, 60, "the records after the crash", members)
        time.sleep(1)  # a duplicate would show up now
        assert sorted(later()) == sorted(str(i) for i in range(RECORDS, 2 * RECORDS)), \
            "after the group settled, each record is consumed once: one owner per partition, from its commits"
        assert set(values()) == {str(i) for i in range(2 * RECORDS)}, "nothing was lost"
    finally:
        for m in members:
            m.kill()


def test_a_regex_subscription_picks_up_a_new_topic_and_nothing_else(broker_factory, topic):
    """librdkafka sends the expression; the broker resolves it (RE2, whole names) and, as
    topics appear, gives the group their partitions (KIP-848)."""
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    bootstrap = broker.bootstrap
    first, later, unmatched = f"{topic}-a", f"{topic}-b", f"other-{topic}-c"
    for name in (first, unmatched):
        ck_create_topic(bootstrap, name, partitions=PARTITIONS)
    c = consumer(bootstrap, f"{topic}-regex")
    got: dict[str, set[int]] = {}

    def poll_until_read(name: str, count: int, what: str) -> None:
        deadline = time.monotonic() + 60
        while len(got.get(name, ())) < count:
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {dict((t, len(v)) for t, v in got.items())}"
            for m in c.consume(num_messages=100, timeout=0.2):
                assert not m.error(), m.error()
                got.setdefault(m.topic(), set()).add(m.offset() * PARTITIONS + m.partition())
    try:
        c.subscribe([f"^{re.escape(topic)}-.*"])
        produce(bootstrap, first, 0, RECORDS)
        produce(bootstrap, unmatched, 0, RECORDS)
        poll_until_read(first, RECORDS, "the records of the topic the expression matches")
        ck_create_topic(bootstrap, later, partitions=PARTITIONS)
        produce(bootstrap, later, 0, RECORDS)
        poll_until_read(later, RECORDS, "the records of the topic created after the subscription")
        assert {tp.topic for tp in c.assignment()} == {first, later}
        assert unmatched not in got, "a topic the expression does not match is never assigned"
    finally:
        c.close()


def test_java_consumer_protocol_group_scales_up_and_down_under_load_consuming_each_record_once(
        broker_factory, topic, java):
    """Members commit after every poll, so a hand-over that revokes before it assigns (the
    protocol's point) leaves nothing to read twice."""
    broker = broker_factory(group_coordinator_rebalance_protocols=PROTOCOLS)
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-scale"
    props = {"group.protocol": "consumer"}
    members: list[JavaMember] = []

    def join(name: str) -> None:
        members.append(JavaMember(java, broker.bootstrap, topic, group, name, assignor="server", props=props))

    flow = None
    try:
        join("j0")
        join("j1")
        poll_until(lambda: own_everything_once(members), 60, "two members to share the partitions", members)
        flow = Flow(broker.bootstrap, topic, PARTITIONS)
        join("j2")
        poll_until(lambda: own_everything_once(members) and all(m.owned() for m in members), 90,
                   "the third member to get its share under load", members)
        members[0].close()
        poll_until(lambda: own_everything_once(members[1:]), 90, "the two left to own everything", members)
        produced = flow.stop()
        flow = None
        got = lambda: [e["value"] for m in members for e in m.of("record")]  # noqa: E731
        poll_until(lambda: set(got()) >= set(produced), 90, "every record consumed", members)
        time.sleep(1)  # a duplicate would show up now
        read = got()
        assert len(read) == len(set(read)) == len(produced), "each record consumed once"
        assert_never_owned_twice(members)
        for m in members:
            assert not m.of("commit-failed"), m.describe()
    finally:
        if flow is not None:
            flow.stop()
        for m in members:
            m.kill()
