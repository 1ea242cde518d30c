//! `Partition` on its own: appends from clients and from the broker, idempotence, transactions
//! and the last stable offset, durability waits, config changes, DeleteRecords, producer expiry
//! and what a reopen rebuilds from the log. The wire and client suites cover the same paths
//! end to end; these pin the behaviour down for the cluster-mode rewrite.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::records::{Compression, Record};
use uuid::Uuid;

use super::*;
use crate::producer::SequenceError;
use tributary_storage::codec::CompressionPolicy;
use tributary_storage::test_util::{batch, encode, record, simple, BatchSpec};

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &Path) -> Partition {
    open_with(dir, LogConfig::default())
}

fn open_with(dir: &Path, settings: impl Into<TopicSettings>) -> Partition {
    let role = Role::Leader { epoch: 3 };
    let topic = ("t", Uuid::nil());
    Partition::open(dir, topic, 0, role, settings.into(), &Replay::default()).expect("open")
}

fn idempotent(pid: i64, base_sequence: i32, records: usize) -> BytesMut {
    batch(&BatchSpec {
        records,
        producer_id: pid,
        base_sequence,
        timestamp: NOW,
        ..BatchSpec::default()
    })
}

/// A transactional batch of producer `pid` (epoch 0), `records` records from `base_sequence`.
fn transactional(pid: i64, base_sequence: i32, records: i32) -> BytesMut {
    transactional_at(pid, 0, base_sequence, records)
}

fn transactional_at(pid: i64, epoch: i16, base_sequence: i32, records: i32) -> BytesMut {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: true,
            producer_id: pid,
            producer_epoch: epoch,
            sequence: base_sequence + i,
            timestamp: NOW,
            ..record(i, Some("k"), Some("v"))
        })
        .collect();
    encode(&records, Compression::None)
}

fn append(p: &Partition, bytes: &[u8]) -> Appended {
    p.append_verified(&Bytes::copy_from_slice(bytes), NOW, &|_, _| Ok(()), false)
        .expect("append")
}

fn read_offsets(p: &Partition, from: i64, isolation: Isolation) -> (Vec<(i64, i64)>, FetchedData) {
    let data = p.read(from, 1 << 20, true, isolation).expect("read");
    let batches = tributary_storage::batch::split_batches(&data.records)
        .map(|b| {
            let b = b.expect("valid stored batch");
            (b.base_offset(), b.last_offset())
        })
        .collect();
    (batches, data)
}

#[test]
fn client_batches_get_consecutive_offsets_stamped_with_the_leader_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    let a = append(&p, &simple(2, NOW));
    let b = append(&p, &simple(3, NOW));
    assert_eq!((a.base_offset, a.end_offset, a.records), (0, 2, 2));
    assert_eq!((b.base_offset, b.end_offset, b.records), (2, 5, 3));
    let (batches, data) = read_offsets(&p, 0, Isolation::ReadUncommitted);
    assert_eq!(batches, [(0, 1), (2, 4)]);
    assert_eq!(data.high_watermark, 5, "a single replica commits at once");
    let stored = BatchView::parse(&data.records).expect("first batch");
    assert_eq!(stored.partition_leader_epoch(), 3);
    assert_eq!(*p.watch_high_watermark().borrow(), 5);
}

#[test]
fn a_retried_idempotent_batch_gets_its_first_offset_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &idempotent(7, 0, 2));
    let second = append(&p, &idempotent(7, 2, 3));
    let retry = append(&p, &idempotent(7, 2, 3));
    assert_eq!((retry.base_offset, retry.records), (second.base_offset, 0));
    assert_eq!(p.with_log(|l| l.log_end_offset()), 5);
}

#[test]
fn a_sequence_gap_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &idempotent(7, 0, 2));
    let gap = p.append_verified(&idempotent(7, 5, 1).freeze(), NOW, &|_, _| Ok(()), false);
    assert!(matches!(
        gap,
        Err(AppendError::Sequence(SequenceError::OutOfOrder { .. }))
    ));
    assert_eq!(p.with_log(|l| l.log_end_offset()), 2);
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_until_its_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &simple(1, NOW));
    append(&p, &transactional(9, 0, 2));
    append(&p, &simple(1, NOW));
    assert_eq!(
        p.last_stable_offset(),
        1,
        "held at the transaction's first offset"
    );
    let (committed, data) = read_offsets(&p, 0, Isolation::ReadCommitted);
    assert_eq!(committed, [(0, 0)]);
    assert_eq!(data.last_stable_offset, 1);
    let end = p.append_marker(9, 0, false, 1, NOW).expect("abort marker");
    assert_eq!(end, 5);
    assert_eq!(p.last_stable_offset(), 5);
    let (_, data) = read_offsets(&p, 0, Isolation::ReadCommitted);
    let aborted: Vec<_> = data
        .aborted
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    assert_eq!(
        aborted,
        [(9, 1)],
        "read_committed readers learn what to skip"
    );
}

#[test]
fn a_marker_fences_older_epochs_of_its_producer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &transactional(9, 0, 1));
    p.append_marker(9, 2, true, 1, NOW)
        .expect("commit at epoch 2");
    let stale = p.append_marker(9, 1, true, 1, NOW);
    assert!(matches!(
        stale,
        Err(AppendError::Sequence(SequenceError::StaleEpoch { .. }))
    ));
    let old_epoch = p.append_verified(&transactional(9, 1, 1).freeze(), NOW, &|_, _| Ok(()), false);
    assert!(
        old_epoch.is_err(),
        "epoch 0 writes are fenced after an epoch-2 marker"
    );
}

#[test]
fn a_transactions_v2_marker_must_be_above_the_epoch_of_the_transaction_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &transactional_at(9, 0, 0, 1));
    p.append_marker(9, 1, true, 2, NOW)
        .expect("the end of epoch 0's transaction, bumped to 1");
    let next = append(&p, &transactional_at(9, 1, 0, 1));
    let held = p.last_stable_offset();
    assert_eq!(held, next.base_offset, "epoch 1's transaction is open");
    let late = p.append_marker(9, 1, true, 2, NOW);
    assert!(
        matches!(
            late,
            Err(AppendError::Sequence(SequenceError::MarkerNotBumped { .. }))
        ),
        "a late copy of the first end must not end the second transaction: {late:?}"
    );
    assert_eq!(p.last_stable_offset(), held, "still open");
    p.append_marker(9, 2, false, 2, NOW)
        .expect("the second transaction's own end");
    assert!(p.last_stable_offset() > held);
    p.append_marker(9, 2, false, 1, NOW)
        .expect("a classic marker at the current epoch is accepted, as before KIP-1228");
}

#[test]
fn transactional_batches_must_pass_the_coordinators_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    let refused = p.append_verified(
        &transactional(9, 0, 1).freeze(),
        NOW,
        &|_, _| {
            Err(AppendError::Transaction(
                kafka_protocol::error::ResponseError::InvalidTxnState,
            ))
        },
        false,
    );
    assert!(matches!(refused, Err(AppendError::Transaction(_))));
    assert_eq!(p.with_log(|l| l.log_end_offset()), 0);
    // Plain batches never ask.
    let plain = p.append_verified(
        &simple(1, NOW).freeze(),
        NOW,
        &|_, _| panic!("asked"),
        false,
    );
    assert!(plain.is_ok());
}

#[tokio::test]
async fn durability_waits_end_when_the_offset_is_synced_or_the_partition_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(open(dir.path()));
    let appended = append(&p, &simple(4, NOW));
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move { p.wait_durable(appended.end_offset).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "not durable before a sync");
    p.mark_durable(appended.end_offset);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .ok()
            .and_then(Result::ok),
        Some(true)
    );
    let more = append(&p, &simple(1, NOW));
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move { p.wait_durable(more.end_offset).await })
    };
    p.delete_data().expect("delete");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .ok()
            .and_then(Result::ok),
        Some(false)
    );
    assert!(!dir.path().exists());
}

#[test]
fn reopening_rebuilds_idempotence_and_open_transactions_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let p = open(dir.path());
        append(&p, &idempotent(7, 0, 2));
        append(&p, &transactional(9, 0, 1));
        p.flush().expect("flush");
    }
    let p = open(dir.path());
    let retry = append(&p, &idempotent(7, 0, 2));
    assert_eq!(
        (retry.base_offset, retry.records),
        (0, 0),
        "dedup survives the restart"
    );
    assert_eq!(
        p.last_stable_offset(),
        2,
        "the open transaction still holds it"
    );
    let producers: Vec<i64> = p.producers().iter().map(|(s, _)| s.producer_id).collect();
    assert_eq!(producers, [7, 9]);
}

#[test]
fn a_forced_codec_is_applied_to_what_is_stored() {
    // Given when the partition opens, as the replica manager does.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open_with(
        dir.path(),
        TopicSettings {
            log: LogConfig::default(),
            compression: CompressionPolicy::Force(Compression::Lz4),
            min_insync_replicas: 3,
        },
    );
    assert_eq!(
        p.min_insync_replicas(),
        3,
        "opened with the topic's settings"
    );
    append(&p, &simple(3, NOW));
    let (_, data) = read_offsets(&p, 0, Isolation::ReadUncommitted);
    let stored = BatchView::parse(&data.records).expect("stored batch");
    assert_eq!(
        stored.compression(),
        tributary_storage::batch::Compression::Lz4
    );
}

#[test]
fn turning_on_compaction_makes_keys_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &simple(1, NOW));
    p.configure(TopicSettings {
        log: LogConfig {
            compact: true,
            ..LogConfig::default()
        },
        compression: CompressionPolicy::Producer,
        min_insync_replicas: 2,
    });
    let keyless = p.append_verified(&simple(1, NOW).freeze(), NOW, &|_, _| Ok(()), false);
    assert!(matches!(keyless, Err(AppendError::KeylessRecords { .. })));
    assert_eq!(
        p.min_insync_replicas(),
        2,
        "configured with the log's settings"
    );
}

#[test]
fn min_insync_replicas_is_one_until_configured_and_never_less() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    assert_eq!(p.min_insync_replicas(), 1);
    p.configure(TopicSettings {
        log: LogConfig::default(),
        compression: CompressionPolicy::Producer,
        min_insync_replicas: 0,
    });
    assert_eq!(p.min_insync_replicas(), 1);
}

#[test]
fn delete_records_moves_the_log_start_and_older_reads_are_out_of_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    for _ in 0..3 {
        append(&p, &simple(2, NOW));
    }
    assert_eq!(p.delete_records(3).expect("delete records"), 3);
    assert!(matches!(
        p.read(1, 1 << 20, true, Isolation::ReadUncommitted),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(p.delete_records(-1).expect("to the high watermark"), 6);
}

/// Segment data files in `dir`, retired (`.deleted`) or not.
fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".deleted") || n.ends_with(".log"))
        .count()
}

/// Retention and DeleteRecords leave no file behind: what they retire under the partition
/// lock is deleted once it is let go.
#[test]
fn retention_and_delete_records_delete_the_files_they_retire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: 10_000,
        ..tributary_storage::test_util::small_config()
    };
    let p = open_with(dir.path(), config);
    for _ in 0..20 {
        append(&p, &simple(2, NOW - 60_000));
    }
    for _ in 0..20 {
        append(&p, &simple(2, NOW));
    }
    let before = segment_files(dir.path());
    p.enforce_retention(NOW).expect("retention");
    let after_retention = segment_files(dir.path());
    assert!(after_retention < before, "{before} -> {after_retention}");
    let end = p.with_log(|log| log.log_end_offset());
    p.delete_records(-1).expect("delete records");
    assert_eq!(p.with_log(|log| log.log_start_offset()), end);
    assert_eq!(
        segment_files(dir.path()),
        1,
        "only the active segment's log"
    );
}

/// On the runtime (the DeleteRecords handler) the retired files are deleted on a blocking
/// thread, not by the worker serving the request.
#[tokio::test]
async fn delete_records_on_the_runtime_deletes_its_files_on_a_blocking_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open_with(dir.path(), tributary_storage::test_util::small_config());
    for _ in 0..20 {
        append(&p, &simple(2, NOW));
    }
    assert!(segment_files(dir.path()) > 1);
    p.delete_records(-1).expect("delete records");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while segment_files(dir.path()) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the retired files were not deleted within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn idle_producers_expire_unless_their_transaction_is_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &idempotent(7, 0, 1));
    append(&p, &transactional(9, 0, 1));
    let later = NOW + 10_000;
    assert_eq!(p.expire_producers(later, 5_000), 1);
    let left: Vec<i64> = p.producers().iter().map(|(s, _)| s.producer_id).collect();
    assert_eq!(left, [9]);
}

#[test]
fn broker_batches_skip_the_client_rules_but_not_the_crc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    let mut two = simple(1, NOW).to_vec();
    two.extend_from_slice(&simple(2, NOW));
    let appended = p
        .append(&two, NOW)
        .expect("the broker may write several batches");
    assert_eq!(appended.end_offset, 3);
    let mut corrupt = simple(1, NOW).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(p.append(&corrupt, NOW).is_err());
}

#[test]
fn only_a_leader_takes_writes_and_a_new_epoch_stamps_the_next_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = open(dir.path());
    append(&p, &simple(1, NOW));
    p.set_role(Role::Follower {
        leader: 2,
        epoch: 4,
    });
    let refused = p.append_verified(&simple(1, NOW).freeze(), NOW, &|_, _| Ok(()), false);
    assert!(matches!(refused, Err(AppendError::NotLeader { .. })));
    assert!(matches!(
        p.append_marker(9, 0, true, 1, NOW),
        Err(AppendError::NotLeader { .. })
    ));
    p.set_role(Role::Leader { epoch: 5 });
    assert_eq!(p.leader_epoch(), 5);
    append(&p, &simple(1, NOW));
    let (_, data) = read_offsets(&p, 1, Isolation::ReadUncommitted);
    let stored = BatchView::parse(&data.records).expect("batch");
    assert_eq!(stored.partition_leader_epoch(), 5);
}
