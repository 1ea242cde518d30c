//! `trib` against a real Tributary broker started by each test.

mod common;

use common::{group_types, scenarios, trib, trib_with_input, Broker};

#[test]
fn records_round_trip_through_tributary() {
    scenarios::produce_consume_round_trip(&Broker::tributary());
}

#[test]
fn failed_records_fail_produce_on_tributary() {
    scenarios::produce_reports_failed_records(&Broker::tributary());
}

#[test]
fn partitions_are_respected_on_tributary() {
    scenarios::partitions_are_respected(&Broker::tributary());
}

#[test]
fn topic_lifecycle_on_tributary() {
    scenarios::topic_lifecycle(&Broker::tributary());
}

#[test]
fn add_partitions_on_tributary() {
    scenarios::add_partitions(&Broker::tributary());
}

#[test]
fn topic_configs_on_tributary() {
    scenarios::topic_configs(&Broker::tributary());
}

#[test]
fn unknown_topics_are_reported_on_tributary() {
    scenarios::unknown_topic_errors(&Broker::tributary());
}

#[test]
fn cluster_info_on_tributary() {
    scenarios::cluster_info(&Broker::tributary());
}

#[test]
fn groups_on_tributary() {
    scenarios::group_lifecycle(&Broker::tributary());
}

#[test]
fn classic_and_consumer_groups_on_tributary() {
    let b = Broker::tributary_with(&[
        "--group-coordinator-rebalance-protocols",
        "classic,consumer",
        "--group-initial-rebalance-delay-ms",
        "0",
    ]);
    group_types::classic_and_consumer_groups(&b);
}

#[test]
fn ctrl_c_and_active_groups_on_tributary() {
    scenarios::ctrl_c_commits_and_active_groups_are_protected(&Broker::tributary());
}

#[test]
fn benchmarks_on_tributary() {
    scenarios::benchmarks(&Broker::tributary());
}

#[test]
fn produce_creates_topics_where_the_broker_allows_it() {
    let b = Broker::tributary();
    trib_with_input(&b.addr, &["produce", "fresh"], b"first\n").ok();
    let out = trib(&b.addr, &["consume", "fresh", "--from-beginning", "-e"]);
    assert_eq!(out.ok(), "first\n");
}

#[test]
fn produce_to_a_missing_topic_fails_where_auto_create_is_off() {
    let b = Broker::tributary_with(&["--auto-create-topics", "false"]);
    trib_with_input(&b.addr, &["produce", "missing"], b"x\n").fails(
        1,
        &[
            "topic 'missing' does not exist",
            "trib topic create missing",
        ],
    );
    trib(&b.addr, &["consume", "missing"]).fails(1, &["does not exist"]);
}
