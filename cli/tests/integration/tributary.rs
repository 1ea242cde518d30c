//! `trib` against a real Tributary broker started by each test.

use crate::common;

use std::time::Duration;

use common::{eventually, group_types, scenarios, share, trib, trib_with_input, unique, Broker};

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
fn share_groups_on_tributary() {
    share::share_group_consumption(&Broker::tributary());
    share::share_groups_switched_off(&Broker::tributary_with(&["--group-share-enable", "false"]));
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

/// The codec (attributes & 7) of every record batch in partition 0's first segment of `topic`.
fn stored_codecs(b: &Broker, topic: &str) -> Vec<u16> {
    let segment = b
        .data_dir()
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log");
    let bytes = std::fs::read(&segment).unwrap_or_default();
    let mut codecs = Vec::new();
    let mut at = 0;
    // baseOffset (8), batchLength (4), leader epoch (4), magic (1), crc (4), attributes (2).
    while let (Some(length), Some(attributes)) =
        (bytes.get(at + 8..at + 12), bytes.get(at + 21..at + 23))
    {
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        codecs.push(u16::from_be_bytes([attributes[0], attributes[1]]) & 7);
        at += 12 + length as usize;
    }
    codecs
}

/// librdkafka before 2.11.1 (trib's is 2.10) sends gzip, snappy and lz4 batches uncompressed,
/// silently, unless the broker advertises Produce from v0 (KAFKA-18659); and `-X
/// compression.codec` is the codec unless `-z` says otherwise, which is refused.
#[test]
fn produce_stores_batches_compressed_with_each_codec() {
    let b = Broker::tributary();
    // Compressible lines, so librdkafka keeps the compressed form.
    let input: Vec<u8> = (0..200)
        .flat_map(|i| format!("a fairly repetitive line of text number {i}\n").into_bytes())
        .collect();
    let cases: [(&[&str], u16); 6] = [
        (&["-z", "gzip"], 1),
        (&["-z", "snappy"], 2),
        (&["-z", "lz4"], 3),
        (&["-z", "zstd"], 4),
        (&["-X", "compression.codec=gzip"], 1),
        (&[], 0),
    ];
    for (flags, codec) in cases {
        let topic = unique("codec");
        let mut args = vec!["produce", topic.as_str()];
        args.extend_from_slice(flags);
        trib_with_input(&b.addr, &args, &input).ok();
        let codecs = eventually(
            &format!("{topic}'s batches on disk"),
            Duration::from_secs(20),
            || {
                let codecs = stored_codecs(&b, &topic);
                (!codecs.is_empty()).then_some(codecs)
            },
        );
        assert!(
            codecs.iter().all(|c| *c == codec),
            "{flags:?}: stored codecs {codecs:?}, want all {codec}"
        );
    }
    let topic = unique("codec");
    trib_with_input(
        &b.addr,
        &[
            "produce",
            &topic,
            "-z",
            "lz4",
            "-X",
            "compression.codec=gzip",
        ],
        &input,
    )
    .fails(2, &["-z lz4", "compression.codec=gzip"]);
}
