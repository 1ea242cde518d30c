"""The Java AdminClient's consumer-group operations: list, describe, list and alter offsets,
delete offsets and delete groups, with the errors Kafka gives for groups that have members."""

from __future__ import annotations

import pytest

from groupclients import JavaMember, java_groups, poll_until, wait_for_assignment
from pyclients import ck_create_topic, ck_produce


@pytest.fixture
def members():
    started: list[JavaMember] = []
    yield started
    for m in started:
        m.kill()


def assert_listed_by_state(java, bootstrap: str, group: str, state: str) -> None:
    """ListGroups' states filter lists `group` under its `state`, not under the other state,
    and lists only groups in the state asked for."""
    for asked in ("Stable", "Empty"):
        listed = java_groups(java, bootstrap, "list", "--state", asked).events("group")
        assert all(g["state"] == asked for g in listed), listed
        assert (group in {g["group"] for g in listed}) == (asked == state), (asked, listed)


@pytest.mark.peer_gap("Tansu 0.6 lists groups without their state")
def test_admin_client_lists_describes_alters_and_deletes_groups(broker, topic, java, members):
    ck_create_topic(broker.bootstrap, topic, partitions=4)
    ck_produce(broker.bootstrap, topic, [{"value": f"{i}".encode(), "partition": i % 4} for i in range(40)])
    group = [JavaMember(java, broker.bootstrap, topic, "admin", f"admin-{i}") for i in range(2)]
    members.extend(group)
    wait_for_assignment(group, 4, 90, "two members to own all four partitions")
    poll_until(lambda: sum(len(m.records()) for m in group) >= 40, 60, "records consumed", group)
    poll_until(lambda: all(m.of("committed") for m in group), 30, "commits", group)

    listed = java_groups(java, broker.bootstrap, "list").events("group")
    assert {"event": "group", "group": "admin", "simple": False, "state": "Stable"} in listed
    # The states filter, judged on this test's group alone: on a shared cluster, groups of
    # earlier tests whose members were killed stay Stable until their sessions run out.
    assert_listed_by_state(java, broker.bootstrap, "admin", "Stable")

    d = java_groups(java, broker.bootstrap, "describe", "--group", "admin").one("description")
    assert (d["state"], d["assignor"], d["simple"]) == ("Stable", "range", False)
    assert d["coordinator"] in range(len(broker.addresses))
    assert sorted(m["client"] for m in d["members"]) == ["admin-0", "admin-1"]
    assert all(m["host"] == "/127.0.0.1" for m in d["members"])
    assert sorted(p for m in d["members"] for p in m["partitions"]) == [0, 1, 2, 3]

    offsets = java_groups(java, broker.bootstrap, "list-offsets", "--group", "admin").one("offsets")["offsets"]
    assert offsets == {f"{topic}:{p}": 10 for p in range(4)}

    # A group with members can be neither deleted nor have its offsets altered.
    err = java_groups(java, broker.bootstrap, "delete", "--group", "admin").one("error")
    assert err["error"] == "GroupNotEmptyException"
    err = java_groups(java, broker.bootstrap, "alter-offsets", "--group", "admin", "--set", f"{topic}:0=0").one("error")
    assert err["error"] == "UnknownMemberIdException"
    err = java_groups(java, broker.bootstrap, "delete-offsets", "--group", "admin", "--topic", topic,
                      "--partition", "0").one("error")
    assert err["error"] == "GroupSubscribedToTopicException"

    for m in group:
        m.close()
    d = java_groups(java, broker.bootstrap, "describe", "--group", "admin").one("description")
    assert (d["state"], d["members"]) == ("Empty", [])
    assert_listed_by_state(java, broker.bootstrap, "admin", "Empty")

    java_groups(java, broker.bootstrap, "alter-offsets", "--group", "admin", "--set", f"{topic}:0=3",
                "--set", f"{topic}:1=0").one("altered")
    java_groups(java, broker.bootstrap, "delete-offsets", "--group", "admin", "--topic", topic,
                "--partition", "2").one("offsets-deleted")
    offsets = java_groups(java, broker.bootstrap, "list-offsets", "--group", "admin").one("offsets")["offsets"]
    assert offsets == {f"{topic}:0": 3, f"{topic}:1": 0, f"{topic}:3": 10}

    # A restarted member resumes from the altered offsets.
    again = JavaMember(java, broker.bootstrap, topic, "admin", "admin-again")
    members.append(again)
    poll_until(lambda: len(again.records()) >= 7 + 10 + 10, 60, "records after the alteration", [again])
    firsts = {}
    for p, o in again.records():
        firsts.setdefault(p, o)
    assert firsts == {0: 3, 1: 0, 2: 0}
    again.close()

    java_groups(java, broker.bootstrap, "delete", "--group", "admin").one("deleted")
    assert not [g for g in java_groups(java, broker.bootstrap, "list").events("group") if g["group"] == "admin"]
    d = java_groups(java, broker.bootstrap, "describe", "--group", "admin").one("description")
    assert d["state"] == "Dead"
    err = java_groups(java, broker.bootstrap, "delete", "--group", "admin").one("error")
    assert err["error"] == "GroupIdNotFoundException"
