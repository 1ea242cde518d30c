//! `trib` against the peer broker Tansu: the produce/consume round trip and the commands
//! Tansu supports.

use crate::common;

use common::{scenarios, Broker};

#[test]
fn records_round_trip_through_tansu() {
    scenarios::produce_consume_round_trip(&Broker::tansu());
}

#[test]
fn failed_records_fail_produce_on_tansu() {
    scenarios::produce_reports_failed_records(&Broker::tansu());
}

#[test]
fn partitions_are_respected_on_tansu() {
    scenarios::partitions_are_respected(&Broker::tansu());
}

#[test]
fn topic_lifecycle_on_tansu() {
    scenarios::topic_lifecycle(&Broker::tansu());
}

#[test]
fn unknown_topics_are_reported_on_tansu() {
    scenarios::unknown_topic_errors(&Broker::tansu());
}

#[test]
fn cluster_info_on_tansu() {
    scenarios::cluster_info(&Broker::tansu());
}

#[test]
fn unsupported_admin_apis_are_named_on_tansu() {
    // Tansu 0.6 has no CreatePartitions: the error says the broker lacks the API.
    let b = Broker::tansu();
    common::trib(&b.addr, &["topic", "create", "t", "-p", "1"]).ok();
    common::trib(&b.addr, &["topic", "add-partitions", "t", "-n", "1"]).fails(
        1,
        &["could not add partitions to 't'", "does not implement"],
    );
}

#[test]
fn groups_on_tansu() {
    scenarios::group_lifecycle(&Broker::tansu());
}

#[test]
fn ctrl_c_and_active_groups_on_tansu() {
    scenarios::ctrl_c_commits_and_active_groups_are_protected(&Broker::tansu());
}

#[test]
fn benchmarks_on_tansu() {
    scenarios::benchmarks(&Broker::tansu());
}
