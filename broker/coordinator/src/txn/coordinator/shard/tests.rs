//! Which ids a coordinator serves, over an in-memory log: NOT_COORDINATOR for partitions led
//! elsewhere, COORDINATOR_LOAD_IN_PROGRESS while a partition loads, everything back after a
//! load, nothing left (or written) after the leadership moves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::log::memory::MemoryLog;
use crate::log::{Appended, Chunk, CoordinatorLog, Entry, LogError};
use crate::txn::coordinator::fixtures::{open, Host, TIMEOUT_MS};
use crate::txn::{ProducerRef, TxnConfig, TxnState};

const PARTITIONS: i32 = 4;

/// A log whose reads return one record at a time, and block past the first record until
/// `open` is set: partitions with more than one record load in the background.
struct SlowLog {
    inner: MemoryLog,
    open: AtomicBool,
}

impl CoordinatorLog for SlowLog {
    fn partitions(&self) -> Option<i32> {
        self.inner.partitions()
    }
    fn ensure_topic(&self, partitions: i32) -> Result<i32, LogError> {
        self.inner.ensure_topic(partitions)
    }
    fn append(
        &self,
        partition: i32,
        entries: &[Entry],
        txn: Option<ProducerRef>,
        now_wall: i64,
        timeout: Duration,
    ) -> Result<Appended, LogError> {
        self.inner
            .append(partition, entries, txn, now_wall, timeout)
    }
    fn read(&self, partition: i32, offset: i64) -> Result<Chunk, LogError> {
        while offset > 0 && !self.open.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut chunk = self.inner.read(partition, offset)?;
        if let Some(first) = chunk.records.first().cloned() {
            let end = chunk.next_offset;
            chunk.records = vec![first.clone()];
            chunk.next_offset = first.offset + 1;
            chunk.at_end = chunk.next_offset >= end;
        }
        Ok(chunk)
    }
    fn leader_epoch(&self, partition: i32) -> Option<i32> {
        self.inner.leader_epoch(partition)
    }
    fn leader(&self, partition: i32) -> Option<i32> {
        self.inner.leader(partition)
    }
    fn delete_before(&self, partition: i32, offset: i64) -> Result<i64, LogError> {
        self.inner.delete_before(partition, offset)
    }
    fn taking_leadership(&self, partition: i32) -> bool {
        self.inner.taking_leadership(partition)
    }
}

fn coordinator(log: Arc<dyn CoordinatorLog>) -> Arc<TransactionCoordinator> {
    let config = TxnConfig {
        topic_partitions: PARTITIONS,
        ..TxnConfig::default()
    };
    let c = Arc::new(TransactionCoordinator::new(config, log));
    c.start(None);
    c
}

async fn loaded(c: &TransactionCoordinator) {
    for _ in 0..1000 {
        if !c.is_loading() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("loading never finished");
}

#[tokio::test]
async fn ids_of_a_partition_led_elsewhere_answer_not_coordinator() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(log.clone());
    let host = Host::default();
    let partition = c.partition_for("tx");
    log.set_leader(partition, None);
    let refused = c.init_producer_id(&host, "tx", TIMEOUT_MS, None).await;
    assert_eq!(refused.err(), Some(ResponseError::NotCoordinator));
    assert_eq!(c.describe("tx").err(), Some(ResponseError::NotCoordinator));
    assert!(log.records(partition).is_empty(), "nothing written");
    assert_eq!(c.find("tx"), Ok(1), "FindCoordinator names the leader");
    // Once led here, the (small) partition is loaded on the spot and served.
    log.set_leader(partition, Some(3));
    let p = c
        .init_producer_id(&host, "tx", TIMEOUT_MS, None)
        .await
        .expect("init once led here");
    assert_eq!(p.epoch, 0);
    assert_eq!(c.find("tx"), Ok(0));
}

#[tokio::test]
async fn a_new_leader_loads_the_ids_and_a_deposed_one_forgets_them_and_writes_nothing() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let host = Host::default();
    let first = coordinator(log.clone());
    let p = open(&first, &host, "tx").await;
    let partition = first.partition_for("tx");
    let written = log.records(partition).len();
    assert_eq!(written, 2, "init and add, one record each");

    // Another broker takes over: it loads the last value of the id.
    let second = coordinator(log.clone());
    loaded(&second).await;
    let (_, txn) = second
        .snapshot()
        .into_iter()
        .find(|(id, _)| id == "tx")
        .expect("loaded");
    assert_eq!((txn.producer_id, txn.producer_epoch), (p.id, p.epoch));
    assert_eq!(txn.state, TxnState::Ongoing);
    assert_eq!(second.check_produce(p, "t", 0), Ok(()));

    // The leadership moves away: the ids are unloaded and nothing more is written.
    log.set_leader(partition, None);
    second.sync_leadership();
    assert!(second.snapshot().is_empty());
    assert_eq!(
        second.check_produce(p, "t", 0),
        Err(ResponseError::InvalidTxnState)
    );
    let ended = second.end_txn(&host, "tx", p, true).await;
    assert_eq!(ended.err(), Some(ResponseError::NotCoordinator));
    // The first coordinator was never told, but its replica no longer leads: fenced too.
    let ended = first.end_txn(&host, "tx", p, true).await;
    assert_eq!(ended.err(), Some(ResponseError::NotCoordinator));
    assert_eq!(
        log.records(partition).len(),
        written,
        "no write while deposed"
    );
}

#[tokio::test]
async fn a_new_leader_epoch_reloads_from_the_log() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let host = Host::default();
    let stale = coordinator(log.clone());
    let p = open(&stale, &host, "tx").await;
    // Meanwhile another coordinator (at a later epoch) commits the transaction.
    let other = coordinator(log.clone());
    other.end_txn(&host, "tx", p, true).await.expect("commit");
    // Leading again at a new epoch, the stale one reloads instead of trusting its memory.
    log.set_leader(stale.partition_for("tx"), Some(1));
    let retried = stale.end_txn(&host, "tx", p, true).await;
    assert_eq!(retried, Ok(()), "a retry of a completed commit");
    let (_, txn) = stale.snapshot().into_iter().next().expect("loaded");
    assert_eq!(txn.state, TxnState::CompleteCommit);
}

#[tokio::test]
async fn a_large_partition_loads_in_the_background_behind_load_in_progress() {
    let log = Arc::new(SlowLog {
        inner: MemoryLog::with_partitions(PARTITIONS),
        open: AtomicBool::new(true),
    });
    let host = Host::default();
    let p = open(&coordinator(log.clone()), &host, "tx").await;
    log.open.store(false, Ordering::SeqCst);
    let c = coordinator(log.clone());
    assert!(c.is_loading(), "two records: more than one read");
    let early = c.add_partitions("tx", p, &[("t".into(), 1)]).await;
    assert_eq!(early.err(), Some(ResponseError::CoordinatorLoadInProgress));
    assert_eq!(
        c.describe("tx").err(),
        Some(ResponseError::CoordinatorLoadInProgress)
    );
    log.open.store(true, Ordering::SeqCst);
    loaded(&c).await;
    c.add_partitions("tx", p, &[("t".into(), 1)])
        .await
        .expect("served once loaded");
    let (_, txn) = c.snapshot().into_iter().next().expect("loaded");
    assert_eq!(txn.partitions.len(), 2);
}

#[tokio::test]
async fn an_expired_id_leaves_a_tombstone_that_a_load_applies() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let host = Host::default();
    let config = TxnConfig {
        topic_partitions: PARTITIONS,
        id_expiration_ms: 1,
        ..TxnConfig::default()
    };
    let c = Arc::new(TransactionCoordinator::new(config, log.clone()));
    c.start(None);
    c.init_producer_id(&host, "tx", TIMEOUT_MS, None)
        .await
        .expect("init");
    tokio::time::sleep(Duration::from_millis(5)).await;
    c.expire(&host).await;
    assert!(c.snapshot().is_empty());
    let records = log.records(c.partition_for("tx"));
    assert_eq!(records.last().map(|r| r.value.is_none()), Some(true));
    assert!(
        coordinator(log.clone()).snapshot().is_empty(),
        "not loaded back"
    );
}
