"""The coordinator-kill loop (issue 40, item 7), not part of `make test`: its name keeps
pytest from collecting it, as its rounds take about 25 s each. `make coordinator-kill-loop
ROUNDS=50` runs it on the cluster kind.

Two Java (3.9) members of a classic group have committed a first batch when the broker
coordinating their group is SIGKILLed (its pod starts it again). The group must consume the
second batch within a few seconds, each record once, and RF 3 topics created right after
through the Java admin must have every replica in sync within a few seconds, the restarted
broker included, with nothing produced to them. Found by it: while the lowest-numbered broker
was down (its pod waiting out the restart back-off) the brokers named it the controller, and
the Java admin's CreateTopics timed out waiting for it."""

from __future__ import annotations

import os
import signal
import time

import pytest

from groupclients import JavaMember, java_groups, poll_until
from harness import Timeout, wait_until
from pyclients import ck_admin, ck_create_topic, ck_produce

PARTITIONS = 4
BATCH = 100
ROUNDS = int(os.environ.get("TRIBUTARY_COORDINATOR_KILL_ROUNDS", "1"))
# A killed broker's pod starts it again at once the first time, and its new incarnation
# moves its leaderships (the coordinator's __consumer_offsets partition among them) in about
# two seconds. A broker killed again within ten minutes is restarted only after the kubelet's
# back-off (10 s, 20 s, 40 s, 80 s, 160 s, then 300 s), so its leaderships move when its Lease
# expires (9 s), and the clients then find the new leaders: the bound allows for that.
RESUME_WITHIN = 20.0
ISR_WITHIN = 10.0
# Rounds run on one cluster before a fresh one replaces it: within five rounds no broker is
# killed more than five times, so its pod's back-off stays at most 80 s, under BACK_WITHIN.
ROUNDS_PER_CLUSTER = 5
BACK_WITHIN = 120.0


def values(members: list[JavaMember]) -> list[int]:
    return [int(e["value"]) for m in members for e in m.of("record")]


def produce(bootstrap: str, topic: str, first: int) -> None:
    reports = ck_produce(bootstrap, topic,
                         [{"value": f"{i}".encode(), "partition": i % PARTITIONS} for i in range(first, first + BATCH)],
                         config={"acks": "all"})
    assert all(r.error is None for r in reports), [str(r.error) for r in reports if r.error][:3]


def in_sync(bootstrap: str, topic: str) -> list[str]:
    """The partitions of `topic` whose ISR is not their whole replica set, as the brokers'
    metadata answers show them (empty: all in sync)."""
    meta = ck_admin(bootstrap).list_topics(topic, timeout=5).topics[topic]
    assert meta.error is None and meta.partitions, f"{topic}: {meta.error}"
    return [f"{topic}-{p.id} leader {p.leader} isr {sorted(p.isrs)} replicas {sorted(p.replicas)}"
            for p in meta.partitions.values() if sorted(p.isrs) != sorted(p.replicas) or p.leader < 0]


def create_topic(java, bootstrap: str, name: str) -> str:
    """Creates an RF 3, two-partition topic through the Java admin."""
    created = java.run("admin", "create-topic", "--bootstrap", bootstrap, "--topic", name,
                       "--partitions", "2", "--rf", "3")
    assert created.one("created")["topic"] == name, created.describe()
    return name


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_group_resumes_and_a_new_topic_is_in_sync_after_the_coordinator_is_killed(
        request, broker_factory, broker_kind, topic, java, round_):
    if broker_kind != "cluster":
        pytest.skip("kills one broker of several: run with --broker-kind cluster")
    if round_ % ROUNDS_PER_CLUSTER == 0:
        request.getfixturevalue("cluster_pool").close()
    broker = broker_factory()
    ck_create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"{topic}-g"
    members = [JavaMember(java, broker.bootstrap, topic, group, f"m{i}") for i in range(2)]
    try:
        poll_until(lambda: all(m.owned() for m in members)
                   and sorted(p for m in members for p in m.owned()) == list(range(PARTITIONS)),
                   60, "two members to share the partitions", members)
        produce(broker.bootstrap, topic, 0)
        poll_until(lambda: len(values(members)) >= BATCH, 60, "the first batch consumed", members)
        coordinator = java_groups(java, broker.bootstrap, "describe", "--group", group).one("description")["coordinator"]
        assert coordinator is not None
        # The members commit after every poll that returned records: once each has committed
        # what it read, a redelivery after the crash would show as a duplicate.
        time.sleep(1)

        killed = broker.cluster.signal_brokers(signal.SIGKILL, [coordinator])
        started = time.monotonic()
        assert killed, f"no running process for broker {coordinator}"
        produce(broker.bootstrap, topic, BATCH)
        poll_until(lambda: len(values(members)) >= 2 * BATCH, RESUME_WITHIN - (time.monotonic() - started),
                   f"the second batch consumed after coordinator {coordinator} was killed", members)
        resumed = time.monotonic() - started
        time.sleep(1)  # a redelivery would show up now
        assert sorted(values(members)) == list(range(2 * BATCH)), "each record consumed once, none lost"

        # New RF 3 topics, nothing produced to them, one created while the killed broker may
        # still be down (its pod restarts it after a back-off when it died recently), one once
        # it runs again: every replica, the restarted one included, joins their ISRs.
        during = create_topic(java, broker.bootstrap, f"{topic}-during")
        wait_until(lambda: all(broker.cluster.broker_pids().get(b) not in (None, pid) for b, pid in killed.items()),
                   BACK_WITHIN, f"broker {coordinator} running again")
        back = time.monotonic()
        after = create_topic(java, broker.bootstrap, f"{topic}-after")
        try:
            wait_until(lambda: not in_sync(broker.bootstrap, during) + in_sync(broker.bootstrap, after),
                       ISR_WITHIN, "the new topics' ISRs to be their replicas")
        except Timeout as e:
            raise Timeout(f"{e}: {in_sync(broker.bootstrap, during) + in_sync(broker.bootstrap, after)}") from None
        print(f"round {round_}: coordinator {coordinator}: resumed {resumed:.1f} s after the kill, "
              f"back after {back - started:.1f} s, new topics in sync {time.monotonic() - back:.1f} s later",
              flush=True)
    finally:
        for m in members:
            m.kill()
