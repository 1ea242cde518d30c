"""Consumer groups with the Java client (3.9): partitions shared exactly once, members leaving,
crashing and being expired, incremental cooperative rebalancing and static membership."""

from __future__ import annotations

import time

import pytest

from groupclients import JavaMember, poll_until, wait_for_assignment
from harness import metric_sum
from pyclients import ck_create_topic, ck_produce

PARTITIONS = 6


@pytest.fixture
def members():
    started: list[JavaMember] = []
    yield started
    for m in started:
        m.kill()


def produce_spread(bootstrap: str, topic: str, count: int, start: int = 0) -> set[str]:
    """Produces `count` records round-robin over the partitions; returns their values."""
    records = [{"value": f"v{i}".encode(), "partition": i % PARTITIONS} for i in range(start, start + count)]
    reports = ck_produce(bootstrap, topic, records, {"linger.ms": 5})
    assert all(r.error is None for r in reports)
    return {r["value"].decode() for r in records}


def consumed_values(ms: list[JavaMember]) -> list[str]:
    return [e["value"] for m in ms for e in m.of("record")]


def start_members(java, broker, topic, group, members, n, **kwargs) -> list[JavaMember]:
    new = [JavaMember(java, broker.bootstrap, topic, group, f"{group}-{len(members) + i}", **kwargs) for i in range(n)]
    members.extend(new)
    return new


def test_three_consumers_share_six_partitions_and_read_every_record_once(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = start_members(java, broker, topic, "three", members, 3)
    wait_for_assignment(group, PARTITIONS, 90, "three members to own all six partitions")
    owned = [m.owned() for m in group]
    assert all(len(o) == 2 for o in owned), owned
    assert len({m.generation() for m in group}) == 1

    values = produce_spread(broker.bootstrap, topic, 600)
    poll_until(lambda: len(consumed_values(group)) >= 600, 60, "600 records consumed", group)
    time.sleep(1)  # anything extra (a duplicate) would show up now
    got = consumed_values(group)
    assert sorted(got) == sorted(values), "every record exactly once across the group"
    for m, o in zip(group, owned):
        assert {p for p, _ in m.records()} <= o, f"{m.name} read partitions it does not own"
    for m in group:
        assert not m.of("commit-failed"), m.describe()


def test_a_member_that_leaves_hands_its_partitions_to_the_others(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = start_members(java, broker, topic, "leave", members, 3)
    wait_for_assignment(group, PARTITIONS, 90, "three members to own all six partitions")
    before = produce_spread(broker.bootstrap, topic, 120)
    poll_until(lambda: len(consumed_values(group)) >= 120, 60, "first records consumed", group)

    leaving = group[2]
    leaving.close()
    assert leaving.of("closed"), leaving.describe()
    stay = group[:2]
    generation = stay[0].generation()
    wait_for_assignment(stay, PARTITIONS, 30, "the two remaining members to own all six partitions")
    assert stay[0].generation() > generation

    after = produce_spread(broker.bootstrap, topic, 300, start=1000)
    poll_until(lambda: len([v for v in consumed_values(stay) if v in after]) >= 300, 60,
               "records after the leave consumed", stay)
    time.sleep(1)
    got_after = [v for v in consumed_values(stay) if v in after]
    assert sorted(got_after) == sorted(after)
    assert not [v for v in consumed_values([leaving]) if v in after]
    # Nothing committed before the hand-over is read again.
    assert sorted(consumed_values(group)) == sorted(before | after)


def test_a_killed_member_is_expired_after_its_session_timeout(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    session_ms = 6000
    group = start_members(java, broker, topic, "crash", members, 3, session_timeout_ms=session_ms)
    wait_for_assignment(group, PARTITIONS, 90, "three members to own all six partitions")
    generation = group[0].generation()

    group[2].kill()
    killed_at = time.monotonic()
    stay = group[:2]
    wait_for_assignment(stay, PARTITIONS, 60, "the survivors to take over the killed member's partitions")
    took = time.monotonic() - killed_at
    assert stay[0].generation() > generation
    # The coordinator waits for the session to run out (less one heartbeat interval at most),
    # then the survivors rejoin within a heartbeat.
    assert took >= session_ms / 1000 - 1.5, f"reassigned after {took:.1f}s, before the session expired"
    assert took <= session_ms / 1000 + 10, f"reassigned only after {took:.1f}s"

    after = produce_spread(broker.bootstrap, topic, 120, start=5000)
    poll_until(lambda: len([v for v in consumed_values(stay) if v in after]) >= 120, 60,
               "records after the crash consumed", stay)


@pytest.mark.peer_gap("Tansu 0.6 does not complete incremental cooperative rebalances")
def test_cooperative_sticky_rebalances_incrementally(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    first = start_members(java, broker, topic, "coop", members, 2, assignor="cooperative-sticky")
    wait_for_assignment(first, PARTITIONS, 90, "two cooperative members to own all six partitions")
    owned_before = [m.owned() for m in first]
    assert [len(o) for o in owned_before] == [3, 3]
    marks = [len(m.events) for m in first]

    third = start_members(java, broker, topic, "coop", members, 1, assignor="cooperative-sticky")
    everyone = first + third
    wait_for_assignment(everyone, PARTITIONS, 60, "three cooperative members to own all six partitions")
    for m, mark, before in zip(first, marks, owned_before):
        later = m.events[mark:]
        revoked = [p for e in later if e["event"] == "revoked" for p in e["partitions"]]
        assert not [e for e in later if e["event"] == "lost"], m.describe()
        # Incremental: only the partition that moves is revoked; the others are kept throughout.
        assert len(revoked) == 1, m.describe()
        assert m.owned() == before - set(revoked), m.describe()
    assert third[0].owned() == {p for m, mark in zip(first, marks)
                                for e in m.events[mark:] if e["event"] == "revoked" for p in e["partitions"]}

    values = produce_spread(broker.bootstrap, topic, 300)
    poll_until(lambda: len(consumed_values(everyone)) >= 300, 60, "records consumed", everyone)
    time.sleep(1)
    assert sorted(consumed_values(everyone)) == sorted(values)


def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = [
        JavaMember(java, broker.bootstrap, topic, "static", f"static-{i}", instance_id=f"instance-{i}",
                   session_timeout_ms=30000)
        for i in range(2)
    ]
    members.extend(group)
    wait_for_assignment(group, PARTITIONS, 90, "two static members to own all six partitions")
    generation = group[0].generation()
    owned = group[0].owned()
    other_mark = len(group[1].events)

    group[0].kill()  # a crash: no LeaveGroup; static members keep their place
    again = JavaMember(java, broker.bootstrap, topic, "static", "static-0-again", instance_id="instance-0",
                       session_timeout_ms=30000)
    members.append(again)
    poll_until(lambda: again.owned() is not None, 60, "the restarted static member to be assigned", [again])
    assert again.owned() == owned
    assert again.generation() == generation, "no new generation: the group did not rebalance"
    assert not [e for e in group[1].events[other_mark:] if e["event"] in ("revoked", "assigned")], group[1].describe()


REBALANCES = 'kafka_server_group_coordinator_metrics_rebalance_total{protocol="classic"}'
REBALANCE_TIMES = 'kafka_server_group_coordinator_metrics_rebalance_duration_seconds_count{protocol="classic"}'


@pytest.mark.peer_gap("Tansu 0.6 has no /metrics")
def test_group_metrics_count_groups_by_state_and_their_rebalances(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    started, timed = metric_sum(broker, REBALANCES), metric_sum(broker, REBALANCE_TIMES)
    group = start_members(java, broker, topic, "metrics", members, 2)
    wait_for_assignment(group, PARTITIONS, 90, "two members to own all six partitions")
    assert metric_sum(broker, 'kafka_server_group_coordinator_metrics_classic_groups{state="Stable"}') >= 1
    assert metric_sum(broker, 'kafka_server_group_coordinator_metrics_groups{protocol="classic"}') >= 1
    assert metric_sum(broker, REBALANCES) > started, "the group's rebalance was counted"
    assert metric_sum(broker, REBALANCE_TIMES) > timed, "and timed once it was stable"
