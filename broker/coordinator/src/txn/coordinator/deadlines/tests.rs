//! The deadlines step by step, on a clock the tests set and an in-memory log: a transaction is
//! aborted once its timeout has passed and not a millisecond before, an end cut off before a
//! load (or by a failed marker write) is finished from the timer, and an entry left behind by
//! a state that moved on does nothing. One test runs the timer task itself, on the real clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::log::memory::MemoryLog;
use crate::txn::coordinator::fixtures::{open, Host, TIMEOUT_MS};
use crate::txn::{TxnConfig, TxnState};

const PARTITIONS: i32 = 4;
const T0: i64 = 1_000_000;

/// A coordinator over `log` timed by `clock`, serving every partition.
fn coordinator(log: Arc<MemoryLog>, clock: &Arc<AtomicI64>) -> Arc<TransactionCoordinator> {
    let config = TxnConfig {
        topic_partitions: PARTITIONS,
        ..TxnConfig::default()
    };
    let clock = clock.clone();
    let c = Arc::new(TransactionCoordinator::with_clock(
        config,
        log,
        Arc::new(move || clock.load(Ordering::SeqCst)),
    ));
    c.start(None);
    c
}

/// `id`'s metadata as the coordinator holds it.
fn state(c: &TransactionCoordinator, id: &str) -> Option<TxnMetadata> {
    c.snapshot()
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, t)| t)
}

#[test]
fn an_open_transaction_is_due_one_millisecond_past_its_timeout_and_an_end_at_the_retry() {
    let mut txn = TxnMetadata::new(7, TIMEOUT_MS, T0);
    assert_eq!(deadline(&txn, T0 + 5), None, "nothing open");
    txn.begin(T0).expect("begin");
    let at = deadline(&txn, T0 + 5).expect("an open transaction has one");
    assert_eq!(at, T0 + i64::from(TIMEOUT_MS) + 1);
    assert!(!is_due(&txn, at - 1));
    assert!(is_due(&txn, at));
    txn.state = TxnState::PrepareCommit;
    assert_eq!(deadline(&txn, T0 + 5), Some(T0 + 5));
    assert!(is_due(&txn, T0), "a decided end is always due");
    txn.state = TxnState::CompleteCommit;
    assert_eq!(deadline(&txn, T0 + 5), None);
    assert!(!is_due(&txn, at));
}

#[tokio::test]
async fn a_transaction_is_aborted_when_its_timeout_passes_and_not_before() {
    let clock = Arc::new(AtomicI64::new(T0));
    let host = Host::default();
    let c = coordinator(Arc::new(MemoryLog::with_partitions(PARTITIONS)), &clock);
    let p = open(&c, &host, "tx").await;
    let at = T0 + i64::from(TIMEOUT_MS) + 1;
    assert_eq!(
        c.next_deadline(),
        Some(at),
        "set when the transaction began"
    );

    clock.store(at - 1, Ordering::SeqCst);
    c.fire_due(&host).await;
    assert_eq!(state(&c, "tx").map(|t| t.state), Some(TxnState::Ongoing));
    assert_eq!(
        c.check_produce(p, "t", 0),
        Ok(()),
        "still open at its timeout"
    );

    clock.store(at, Ordering::SeqCst);
    c.fire_due(&host).await;
    let txn = state(&c, "tx").expect("still known");
    assert_eq!(txn.state, TxnState::CompleteAbort);
    assert_eq!(
        txn.producer_epoch,
        p.epoch + 1,
        "the abort fences the producer"
    );
    assert_eq!(
        c.check_produce(p, "t", 0),
        Err(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(c.state_in_log().get("tx"), Some(&txn), "and is durable");
}

#[tokio::test]
async fn a_transaction_ended_in_time_is_left_alone_at_its_old_deadline() {
    let clock = Arc::new(AtomicI64::new(T0));
    let host = Host::default();
    let c = coordinator(Arc::new(MemoryLog::with_partitions(PARTITIONS)), &clock);
    let p = open(&c, &host, "tx").await;
    let first = T0 + i64::from(TIMEOUT_MS) + 1;
    c.end_txn(&host, "tx", p, true).await.expect("commit");
    // The next transaction begins later: its deadline is later than the pending entry.
    clock.store(T0 + 5_000, Ordering::SeqCst);
    c.add_partitions("tx", p, &[("t".into(), 1)])
        .await
        .expect("add");
    clock.store(first, Ordering::SeqCst);
    c.fire_due(&host).await;
    let txn = state(&c, "tx").expect("known");
    assert_eq!(txn.state, TxnState::Ongoing, "not past its own timeout");
    assert_eq!(txn.producer_epoch, p.epoch);
    // The look at the old deadline set the entry of the open transaction.
    let second = T0 + 5_000 + i64::from(TIMEOUT_MS) + 1;
    assert_eq!(c.next_deadline(), Some(second));
    clock.store(second, Ordering::SeqCst);
    c.fire_due(&host).await;
    assert_eq!(
        state(&c, "tx").map(|t| t.state),
        Some(TxnState::CompleteAbort)
    );
}

#[tokio::test]
async fn an_end_prepared_before_a_load_is_finished_after_the_load() {
    let clock = Arc::new(AtomicI64::new(T0));
    let host = Host::default();
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let first = coordinator(log.clone(), &clock);
    let p = open(&first, &host, "tx").await;
    // The coordinator stops right after saving its commit decision, before any marker.
    let mut prepared = state(&first, "tx").expect("known");
    prepared.state = TxnState::PrepareCommit;
    first.save("tx", prepared).await.expect("save");
    drop(first);

    let second = coordinator(log.clone(), &clock);
    assert_eq!(
        state(&second, "tx").map(|t| t.state),
        Some(TxnState::PrepareCommit),
        "loaded as it was left"
    );
    assert_eq!(second.next_deadline(), Some(T0), "due at once");
    second.fire_due(&host).await;
    let txn = state(&second, "tx").expect("known");
    assert_eq!(txn.state, TxnState::CompleteCommit);
    assert_eq!((txn.producer_id, txn.producer_epoch), (p.id, p.epoch));
    assert_eq!(second.state_in_log().get("tx"), Some(&txn));
}

#[tokio::test]
async fn an_end_whose_markers_failed_is_tried_again_on_the_timer() {
    let clock = Arc::new(AtomicI64::new(T0));
    let host = Host::default();
    let c = coordinator(Arc::new(MemoryLog::with_partitions(PARTITIONS)), &clock);
    let p = open(&c, &host, "tx").await;
    host.failing.store(true, Ordering::SeqCst);
    c.end_txn(&host, "tx", p, true)
        .await
        .expect("the decision is saved");
    assert_eq!(
        state(&c, "tx").map(|t| t.state),
        Some(TxnState::PrepareCommit)
    );
    assert_eq!(c.next_deadline(), Some(T0 + RETRY_MS));
    // Still failing at the retry: tried, and set again a retry later.
    clock.store(T0 + RETRY_MS, Ordering::SeqCst);
    c.fire_due(&host).await;
    assert_eq!(
        state(&c, "tx").map(|t| t.state),
        Some(TxnState::PrepareCommit)
    );
    assert_eq!(c.next_deadline(), Some(T0 + 2 * RETRY_MS));
    host.failing.store(false, Ordering::SeqCst);
    clock.store(T0 + 2 * RETRY_MS, Ordering::SeqCst);
    c.fire_due(&host).await;
    assert_eq!(
        state(&c, "tx").map(|t| t.state),
        Some(TxnState::CompleteCommit)
    );
}

#[tokio::test]
async fn a_v2_end_marks_with_its_version_and_a_partition_already_marked_completes_it() {
    let clock = Arc::new(AtomicI64::new(T0));
    let host = Host::default();
    let c = coordinator(Arc::new(MemoryLog::with_partitions(PARTITIONS)), &clock);
    let p = open(&c, &host, "tx").await;
    host.already_marked.store(true, Ordering::SeqCst);
    let next = c
        .end_txn_v2(&host, "tx", p, true)
        .await
        .expect("a refusal for the marker's epoch is a marker already written");
    assert_eq!(
        state(&c, "tx").map(|t| t.state),
        Some(TxnState::CompleteCommit)
    );
    let markers = host.markers.lock().clone();
    assert_eq!(markers.len(), 1);
    let m = markers[0];
    assert_eq!(
        (
            m.producer.id,
            m.producer.epoch,
            m.commit,
            m.transaction_version
        ),
        (next.id, next.epoch, true, 2),
        "the marker carries the bumped epoch and transactions v2's version"
    );
    assert_eq!(next.epoch, p.epoch + 1);
}

#[tokio::test]
async fn the_timer_task_aborts_a_timed_out_transaction_without_a_request() {
    let host = Arc::new(Host::default());
    let config = TxnConfig {
        topic_partitions: PARTITIONS,
        ..TxnConfig::default()
    };
    let c = Arc::new(TransactionCoordinator::new(
        config,
        Arc::new(MemoryLog::with_partitions(PARTITIONS)),
    ));
    c.start(None);
    c.run_timers(Arc::<Host>::downgrade(&host));
    let p = c
        .init_producer_id(host.as_ref(), "tx", 20, None)
        .await
        .expect("init");
    c.add_partitions("tx", p, &[("t".into(), 0)])
        .await
        .expect("add");
    for _ in 0..1000 {
        if state(&c, "tx").map(|t| t.state) == Some(TxnState::CompleteAbort) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the transaction was not aborted within 10 s of its 20 ms timeout");
}
