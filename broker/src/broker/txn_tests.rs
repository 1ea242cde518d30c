//! The transaction coordinator against a real broker in a temporary directory: producer ids
//! and epochs, fencing, what a transaction may write, commit and abort with their markers
//! and offsets, timeouts, restarts in the middle of an end, and id expiry.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Flags};
use crate::group::coordinator::CommitOffset;
use crate::group::OFFSETS_TOPIC;
use crate::partition::Isolation;
use crate::storage::batch::split_batches;
use crate::txn::{ProducerRef, TransactionCoordinator, TxnMetadata, TxnState};

const TIMEOUT_MS: i32 = 60_000;

fn open_broker(dir: &std::path::Path, flags: Flags) -> Arc<Broker> {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        commit_journal_bytes: Some(1 << 20),
        group_initial_rebalance_delay_ms: Some(0),
        ..flags
    })
    .expect("config");
    let broker = Broker::open(config).expect("open broker");
    if crate::test_support::topic(&broker, "t").is_none() {
        crate::test_support::create_topic(&broker, "t", 2, BTreeMap::new());
    }
    broker
}

fn txns(broker: &Broker) -> &Arc<TransactionCoordinator> {
    &broker.txns
}

async fn init(broker: &Broker, id: &str) -> ProducerRef {
    txns(broker)
        .init_producer_id(broker, id, TIMEOUT_MS, None)
        .await
        .expect("init producer id")
}

/// (is control, commit?) of every batch in partition `index` of "t".
fn batches(broker: &Broker, index: i32) -> Vec<(bool, i64)> {
    let partition = crate::test_support::partition(broker, "t", index);
    let data = partition
        .read(0, 1 << 20, true, Isolation::ReadUncommitted)
        .expect("read");
    split_batches(&data.records)
        .map(|b| {
            let b = b.expect("batch");
            (b.is_control(), b.producer_id())
        })
        .collect()
}

fn offset_of(broker: &Broker, group: &str) -> Option<i64> {
    let fetched = broker
        .groups
        .fetch_offsets(group, Some(vec![("t".into(), vec![0])]))
        .ok()?;
    fetched.first()?.1.first()?.1.as_ref().map(|o| o.offset)
}

/// Sends `offset` for `group`'s partition 0 of topic "t" in `producer`'s transaction, as
/// TxnOffsetCommit does once AddOffsetsToTxn put the group's partition in it.
async fn send_offset(broker: &Broker, producer: ProducerRef, group: &str, offset: i64) {
    let c = txns(broker);
    let offsets_partition = (
        OFFSETS_TOPIC.to_string(),
        broker.groups.partition_for(group),
    );
    c.add_offsets("tx", producer, group, offsets_partition)
        .await
        .expect("add offsets");
    broker
        .groups
        .commit_txn_offsets(producer, group, vec![commit_offset(offset)])
        .await
        .expect("txn offsets");
}

fn commit_offset(offset: i64) -> CommitOffset {
    CommitOffset {
        topic: "t".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
    }
}

#[tokio::test]
async fn a_new_id_gets_a_fresh_producer_and_a_re_init_bumps_the_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let first = init(&b, "tx").await;
    assert_eq!(first.epoch, 0);
    let other = init(&b, "other").await;
    assert_ne!(
        other.id, first.id,
        "each transactional id has its own producer id"
    );
    let again = init(&b, "tx").await;
    assert_eq!((again.id, again.epoch), (first.id, 1));
    let refused = txns(&b)
        .init_producer_id(&*b, "tx", TIMEOUT_MS * 100, None)
        .await;
    assert_eq!(
        refused.err(),
        Some(ResponseError::InvalidTransactionTimeout)
    );
    let empty = txns(&b).init_producer_id(&*b, "", TIMEOUT_MS, None).await;
    assert_eq!(empty.err(), Some(ResponseError::InvalidRequest));
}

#[tokio::test]
async fn only_added_partitions_of_the_current_epoch_may_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let old = init(&b, "tx").await;
    let producer = init(&b, "tx").await;
    let c = txns(&b);
    assert_eq!(
        c.check_produce(producer, "t", 0),
        Err(ResponseError::TransactionAbortable)
    );
    c.add_partitions("tx", producer, &[("t".into(), 0)])
        .await
        .expect("add");
    assert_eq!(c.check_produce(producer, "t", 0), Ok(()));
    assert_eq!(
        c.check_produce(producer, "t", 1),
        Err(ResponseError::TransactionAbortable)
    );
    assert_eq!(
        c.check_produce(old, "t", 0),
        Err(ResponseError::InvalidProducerEpoch)
    );
    let fenced = c.add_partitions("tx", old, &[("t".into(), 1)]).await;
    assert_eq!(fenced.err(), Some(ResponseError::ProducerFenced));
}

#[tokio::test]
async fn verify_only_answers_whether_the_partition_is_in_the_ongoing_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let old = init(&b, "tx").await;
    let producer = init(&b, "tx").await;
    let c = txns(&b);
    let asked = [("t".to_string(), 0), ("t".to_string(), 1)];
    assert_eq!(
        c.verify_partitions("tx", producer, &asked),
        Ok(vec![false, false]),
        "no transaction yet"
    );
    c.add_partitions("tx", producer, &asked[..1])
        .await
        .expect("add");
    assert_eq!(
        c.verify_partitions("tx", producer, &asked),
        Ok(vec![true, false]),
        "verifying adds nothing"
    );
    assert_eq!(
        c.verify_partitions("tx", old, &asked).err(),
        Some(ResponseError::ProducerFenced)
    );
    let stranger = ProducerRef {
        id: producer.id + 1000,
        epoch: 0,
    };
    assert_eq!(
        c.verify_partitions("tx", stranger, &asked).err(),
        Some(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        c.verify_partitions("unknown", producer, &asked).err(),
        Some(ResponseError::InvalidProducerIdMapping)
    );
    c.end_txn(&*b, "tx", producer, false).await.expect("abort");
    assert_eq!(
        c.verify_partitions("tx", producer, &asked),
        Ok(vec![false, false]),
        "an ended transaction holds no partition"
    );
}

#[tokio::test]
async fn a_commit_writes_markers_to_every_partition_and_commits_the_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let p = init(&b, "tx").await;
    let c = txns(&b);
    c.add_partitions("tx", p, &[("t".into(), 0), ("t".into(), 1)])
        .await
        .expect("add");
    send_offset(&b, p, "g", 42).await;
    assert!(
        b.groups.holds_txn_offset("g", "t", 0),
        "held until the end (KIP-447)"
    );
    assert_eq!(offset_of(&b, "g"), None, "not visible before the commit");
    c.end_txn(&*b, "tx", p, true).await.expect("commit");
    assert_eq!(batches(&b, 0), [(true, p.id)]);
    assert_eq!(batches(&b, 1), [(true, p.id)]);
    assert_eq!(offset_of(&b, "g"), Some(42), "the marker committed it");
    assert!(!b.groups.holds_txn_offset("g", "t", 0));
    // A retried commit is answered with success and writes nothing more.
    c.end_txn(&*b, "tx", p, true).await.expect("retried commit");
    assert_eq!(batches(&b, 0).len(), 1);
    let state = c
        .snapshot()
        .into_iter()
        .find(|(id, _)| id == "tx")
        .map(|(_, t)| t.state);
    assert_eq!(state, Some(TxnState::CompleteCommit));
}

#[tokio::test]
async fn an_abort_writes_markers_and_drops_the_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let p = init(&b, "tx").await;
    let c = txns(&b);
    c.add_partitions("tx", p, &[("t".into(), 0)])
        .await
        .expect("add");
    send_offset(&b, p, "g", 7).await;
    c.end_txn(&*b, "tx", p, false).await.expect("abort");
    assert_eq!(batches(&b, 0), [(true, p.id)]);
    assert_eq!(offset_of(&b, "g"), None);
    assert!(!b.groups.holds_txn_offset("g", "t", 0), "dropped");
    let wrong = c.end_txn(&*b, "tx", p, true).await;
    assert_eq!(
        wrong.err(),
        Some(ResponseError::InvalidTxnState),
        "commit after abort"
    );
}

#[tokio::test]
async fn re_initializing_aborts_the_open_transaction_and_fences_the_old_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let p = init(&b, "tx").await;
    let c = txns(&b);
    c.add_partitions("tx", p, &[("t".into(), 1)])
        .await
        .expect("add");
    let next = init(&b, "tx").await;
    assert_eq!((next.id, next.epoch), (p.id, p.epoch + 1));
    assert_eq!(
        batches(&b, 1),
        [(true, p.id)],
        "the abort marker fences the old epoch"
    );
    assert_eq!(
        c.end_txn(&*b, "tx", p, true).await.err(),
        Some(ResponseError::ProducerFenced)
    );
}

#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open_broker(dir.path(), Flags::default());
    let p = txns(&b)
        .init_producer_id(&*b, "tx", 1, None)
        .await
        .expect("init with a 1 ms timeout");
    let c = txns(&b);
    c.add_partitions("tx", p, &[("t".into(), 0)])
        .await
        .expect("add");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    c.expire(&*b).await;
    let txn = c
        .snapshot()
        .into_iter()
        .find(|(id, _)| id == "tx")
        .map(|(_, t)| t);
    let txn = txn.expect("still known");
    assert_eq!(txn.state, TxnState::CompleteAbort);
    assert_eq!(txn.producer_epoch, p.epoch + 1);
    assert_eq!(
        c.check_produce(p, "t", 0),
        Err(ResponseError::InvalidProducerEpoch)
    );
    // KIP-360: the timed-out producer may re-initialize with its old epoch.
    let back = c
        .init_producer_id(&*b, "tx", TIMEOUT_MS, Some(p))
        .await
        .expect("re-init after timeout");
    assert_eq!(back.id, p.id);
}

#[tokio::test]
async fn state_survives_a_restart_and_idle_ids_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = {
        let b = open_broker(dir.path(), Flags::default());
        let p = init(&b, "tx").await;
        txns(&b)
            .add_partitions("tx", p, &[("t".into(), 0)])
            .await
            .expect("add");
        for partition in b.replicas.all() {
            partition.flush().expect("flush");
        }
        p
    };
    let b = open_broker(
        dir.path(),
        Flags {
            transactional_id_expiration_ms: Some(1),
            ..Flags::default()
        },
    );
    let c = txns(&b);
    assert_eq!(
        c.check_produce(p, "t", 0),
        Ok(()),
        "the open transaction is back"
    );
    c.end_txn(&*b, "tx", p, true)
        .await
        .expect("commit after restart");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    c.expire(&*b).await;
    assert!(c.snapshot().is_empty(), "an idle, ended id is forgotten");
    assert_eq!(
        c.check_produce(p, "t", 0),
        Err(ResponseError::InvalidTxnState)
    );
}

/// Polls until the coordinator has loaded (or migrated) its state.
async fn loaded(broker: &Broker) {
    for _ in 0..2000 {
        if !txns(broker).is_loading() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("transaction state never loaded");
}

/// Appends `txn` for `id` straight to its `__transaction_state` partition, as a coordinator
/// that crashed right after saving it would have left it.
fn append_state(broker: &Broker, id: &str, txn: &TxnMetadata) {
    let index = txns(broker).partition_for(id);
    let partition = crate::test_support::partition(broker, crate::txn::TRANSACTION_TOPIC, index);
    let entries = [(
        crate::txn::records::txn_key(id),
        Some(crate::txn::records::encode_value(txn)),
    )];
    let batch = crate::coordinator::log::encode_batch(&entries, None, crate::clock::now_ms())
        .expect("encode");
    partition
        .append(&batch, crate::clock::now_ms())
        .expect("append");
    partition.flush().expect("flush");
}

#[tokio::test]
async fn a_prepared_commit_and_the_producer_epoch_survive_a_restart_through_the_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = {
        let b = open_broker(dir.path(), Flags::default());
        init(&b, "tx").await;
        let p = init(&b, "tx").await;
        txns(&b)
            .add_partitions("tx", p, &[("t".into(), 0)])
            .await
            .expect("add");
        // The broker dies right after saving the commit decision, before any marker.
        let mut prepared = txns(&b)
            .snapshot()
            .into_iter()
            .find(|(id, _)| id == "tx")
            .map(|(_, t)| t)
            .expect("known");
        prepared.state = TxnState::PrepareCommit;
        append_state(&b, "tx", &prepared);
        p
    };
    assert!(
        !dir.path().join("transactions.json").exists(),
        "the state lives in the topic only"
    );
    let b = open_broker(dir.path(), Flags::default());
    loaded(&b).await;
    let (_, txn) = txns(&b)
        .snapshot()
        .into_iter()
        .find(|(id, _)| id == "tx")
        .expect("loaded from the topic");
    assert_eq!((txn.producer_id, txn.producer_epoch), (p.id, 1));
    assert_prepared_or_completed(txn.state);
    // The expiry completes what was prepared: the marker, then CompleteCommit.
    txns(&b).expire(&*b).await;
    assert_eq!(batches(&b, 0), [(true, p.id)]);
    let state = txns(&b)
        .snapshot()
        .into_iter()
        .find(|(id, _)| id == "tx")
        .map(|(_, t)| t.state);
    assert_eq!(state, Some(TxnState::CompleteCommit));
    // The producer keeps its id; an older epoch stays fenced.
    let next = init(&b, "tx").await;
    assert_eq!((next.id, next.epoch), (p.id, 2));
}

/// A commit prepared before a load: the coordinator's timer finishes a loaded end at once, so
/// by the time a test looks it may already be complete.
fn assert_prepared_or_completed(state: TxnState) {
    assert!(
        matches!(state, TxnState::PrepareCommit | TxnState::CompleteCommit),
        "{state:?}"
    );
}

#[tokio::test]
async fn a_state_file_from_before_the_topic_is_migrated_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut idle = TxnMetadata::new(40, TIMEOUT_MS, crate::clock::now_ms());
    idle.producer_epoch = 5;
    let mut prepared = TxnMetadata::new(41, TIMEOUT_MS, crate::clock::now_ms());
    prepared.state = TxnState::PrepareCommit;
    prepared.started_ms = prepared.updated_ms;
    prepared.partitions.insert(("t".into(), 1));
    let file: crate::txn::TxnMap = [
        ("idle".to_string(), idle),
        ("prepared".to_string(), prepared),
    ]
    .into();
    let path = dir.path().join("transactions.json");
    std::fs::write(&path, serde_json::to_vec(&file).expect("json")).expect("write");

    let b = open_broker(dir.path(), Flags::default());
    loaded(&b).await;
    assert!(!path.exists(), "set aside once migrated");
    assert!(dir.path().join("transactions.json.migrated").exists());
    let migrated = txns(&b).state_in_log();
    assert_eq!(
        migrated.get("idle"),
        file.get("idle"),
        "the idle id is in the topic"
    );
    let prepared = migrated
        .get("prepared")
        .expect("the prepared id is in the topic");
    assert_eq!(prepared.producer_id, 41);
    assert_prepared_or_completed(prepared.state);
    // The producer keeps its id and epoch.
    let again = init(&b, "idle").await;
    assert_eq!((again.id, again.epoch), (40, 6));
    // The prepared commit is completed.
    txns(&b).expire(&*b).await;
    assert_eq!(batches(&b, 1), [(true, 41)]);
    drop(b);

    // A restart loads from the topic; the set-aside file is not applied again.
    let b = open_broker(dir.path(), Flags::default());
    loaded(&b).await;
    let again = init(&b, "idle").await;
    assert_eq!((again.id, again.epoch), (40, 7));
}
