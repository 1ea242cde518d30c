//! The commit journal end to end: acks=all produce requests answered after a journal round
//! survive a crash that loses every unsynced byte of their segments, a journal that wraps
//! and checkpoints replays nothing twice, and one that goes quiet is checkpointed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

use super::group_wire_tests::{broker_with, call, open_broker, topic};
use super::wire_tests::{batch, produce_request};
use crate::broker::Broker;
use crate::config::Flags;
use crate::journal::{Replay, JOURNAL_FILE};
use crate::storage::batch::split_batches;
use crate::storage::test_util::{encode, record};

/// Produces `records` with acks=all and returns the base offset, failing on any error.
async fn produce_acked(b: &Arc<Broker>, partition: i32, records: Bytes) -> i64 {
    let response: ProduceResponse = call(
        b,
        ApiKey::Produce,
        9,
        &produce_request(partition, -1, records),
    )
    .await;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 0, "produce to partition {partition}");
    answer.base_offset
}

/// (base offset, last offset) of every batch of the partition, read the way a consumer does.
async fn batches(b: &Arc<Broker>, partition: i32) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic("t"))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(8 << 20)])]);
        let response: FetchResponse = call(b, ApiKey::Fetch, 11, &request).await;
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        let records = data.records.clone().unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        for batch in split_batches(&records) {
            let batch = batch.expect("whole batches");
            out.push((batch.base_offset(), batch.last_offset()));
            offset = batch.next_offset();
        }
    }
}

async fn journal_ready(b: &Arc<Broker>) {
    for _ in 0..500 {
        if b.flusher.journal_ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the commit journal never became ready");
}

/// Cuts every segment of the topic's partitions to nothing: a machine crash that lost all the
/// page cache had not written back.
fn lose_unsynced_segment_data(dir: &std::path::Path) {
    for partition in ["t-0", "t-1"] {
        for entry in std::fs::read_dir(dir.join(partition)).expect("partition dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "log") {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("segment");
                file.set_len(0).expect("cut");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_come_back_from_the_journal_after_losing_the_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), Flags::default()).await;
    journal_ready(&b).await;
    for i in 0..20 {
        produce_acked(&b, i % 2, batch(5)).await;
    }
    let before = [batches(&b, 0).await, batches(&b, 1).await];
    assert_eq!(before[0].len(), 10);
    let id = crate::test_support::topic(&b, "t").expect("topic").id;
    let journaled = Replay::scan(&dir.path().join(JOURNAL_FILE)).unwrap();
    assert_eq!(
        journaled.batches_from(id, 0, 0).unwrap().len(),
        10,
        "acks=all went through the journal"
    );
    drop(b);

    lose_unsynced_segment_data(dir.path());
    let b = open_broker(dir.path(), Flags::default());
    assert_eq!([batches(&b, 0).await, batches(&b, 1).await], before);
    assert_eq!(
        produce_acked(&b, 0, batch(1)).await,
        50,
        "appends continue after the replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapping_journal_checkpoints_and_replays_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let flags = || Flags {
        message_max_bytes: Some(4 << 20),
        ..Flags::default()
    };
    let b = broker_with(dir.path(), flags()).await;
    journal_ready(&b).await;
    // About 2 MiB through a 1 MiB journal: it wraps, so checkpoints must free its space.
    for i in 0..400 {
        produce_acked(&b, i % 2, batch(100)).await;
    }
    // One request larger than the whole journal is fsynced in its segment instead.
    let big = "x".repeat(1_500_000);
    let records = encode(&[record(0, Some("big"), Some(&big))], Compression::None).freeze();
    produce_acked(&b, 0, records).await;
    let before = [batches(&b, 0).await, batches(&b, 1).await];
    assert_eq!(before[0].len() + before[1].len(), 401);
    drop(b);

    let b = open_broker(dir.path(), flags());
    let after = [batches(&b, 0).await, batches(&b, 1).await];
    assert_eq!(after, before, "stale journal records were skipped");
    for partition in &after {
        for pair in partition.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "offsets without gaps or overlaps");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_journal_is_checkpointed_without_waiting_to_fill() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), Flags::default()).await;
    journal_ready(&b).await;
    produce_acked(&b, 0, batch(5)).await;
    produce_acked(&b, 1, batch(5)).await;
    // Far below any fill threshold and the periodic checkpoint, so only the quiet spell after
    // the last round frees the journal.
    for _ in 0..200 {
        if b.flusher.journal_used() == Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "journal still holds {:?} bytes two seconds after the last write",
        b.flusher.journal_used()
    );
}
