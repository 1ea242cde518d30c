//! The share-partition manager over a fake log and the real share coordinator (on the
//! in-memory coordinator log): resets, acquisition, durable acknowledgements surviving a new
//! leader, lock expiry, and a deposed leader fenced (pitfalls 1 to 3 of SHARE_GROUPS.md).

use std::time::Duration;

use super::*;
use crate::log::memory::MemoryLog;
use crate::share::coordinator::STATE_PARTITIONS;
use crate::share::partition::tests::{ack, range};
use crate::share::partition::AckType;

const TOPIC: Uuid = Uuid::from_u128(5);

/// A partition's log as a list of batches, led at an epoch a test sets.
struct FakeLog {
    epoch: Mutex<Option<i32>>,
    batches: Mutex<Vec<FetchedBatch>>,
    start: Mutex<i64>,
}

impl FakeLog {
    fn with(records: i64, batch: i64) -> Arc<FakeLog> {
        let log = Arc::new(FakeLog {
            epoch: Mutex::new(Some(1)),
            batches: Mutex::new(Vec::new()),
            start: Mutex::new(0),
        });
        log.append(records, batch);
        log
    }

    fn append(&self, records: i64, batch: i64) {
        let mut batches = self.batches.lock();
        let mut next = batches.last().map_or(0, |b| b.last + 1);
        let end = next + records;
        while next < end {
            let last = (next + batch - 1).min(end - 1);
            batches.push(FetchedBatch {
                first: next,
                last,
                aborted: false,
            });
            next = last + 1;
        }
    }
}

impl ShareLog for FakeLog {
    fn leader_epoch(&self, _: Uuid, _: i32) -> Option<i32> {
        *self.epoch.lock()
    }

    fn bounds(&self, _: Uuid, _: i32, _: bool) -> Option<(i64, i64)> {
        let start = *self.start.lock();
        let end = self.batches.lock().last().map_or(start, |b| b.last + 1);
        Some((start, end))
    }

    fn read(
        &self,
        _: Uuid,
        _: i32,
        offset: i64,
        _: usize,
        _: bool,
        _: bool,
    ) -> Result<LogChunk, ResponseError> {
        let batches: Vec<FetchedBatch> = self
            .batches
            .lock()
            .iter()
            .filter(|b| b.last >= offset)
            .copied()
            .collect();
        let records = ShareRecords::Memory(Bytes::from(format!("{batches:?}")));
        Ok(LogChunk { records, batches })
    }

    fn offset_for_time(&self, _: Uuid, _: i32, _: i64) -> Option<i64> {
        None
    }
}

fn key() -> SharePartitionKey {
    SharePartitionKey {
        group: "queue".into(),
        topic: TOPIC,
        partition: 0,
    }
}

fn settings(reset: OffsetReset) -> ShareSettings {
    ShareSettings {
        limits: Limits {
            lock_duration_ms: 1_000,
            ..Limits::default()
        },
        reset,
        read_committed: false,
    }
}

const ASK: FetchAsk = FetchAsk {
    mode: AcquireMode::BatchOptimized,
    max_records: 500,
    max_bytes: 1 << 20,
    from_file: false,
};

fn persister() -> Arc<dyn StatePersister> {
    let log: Arc<dyn crate::log::CoordinatorLog> =
        Arc::new(MemoryLog::with_partitions(STATE_PARTITIONS));
    let coordinator = ShareCoordinator::new(log, Duration::from_secs(5));
    coordinator.sync_leadership();
    Arc::new(coordinator)
}

#[tokio::test]
async fn earliest_reads_from_the_log_start_and_each_record_goes_to_one_member() {
    let log = FakeLog::with(10, 5);
    let m = SharePartitionManager::new(log.clone(), persister());
    let s = settings(OffsetReset::Earliest);
    let a = m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    assert_eq!(a.acquired, vec![range(0, 9, 1)]);
    assert!(!a.records.is_empty());
    let b = m.fetch(&key(), "b", &s, ASK, 0).await.expect("fetched");
    assert_eq!(b, ShareFetched::default(), "nothing left, no records sent");
    assert_eq!(m.loaded(), vec![key()]);
}

#[tokio::test]
async fn latest_starts_at_the_log_end_and_takes_what_comes_after() {
    let log = FakeLog::with(10, 5);
    let m = SharePartitionManager::new(log.clone(), persister());
    let s = settings(OffsetReset::Latest);
    let first = m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    assert!(first.acquired.is_empty());
    log.append(3, 3);
    let next = m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    assert_eq!(next.acquired, vec![range(10, 12, 1)]);
}

#[tokio::test]
async fn acknowledgements_are_durable_and_a_new_leader_redelivers_only_the_rest() {
    let log = FakeLog::with(10, 5);
    let state = persister();
    let s = settings(OffsetReset::Earliest);
    let m = SharePartitionManager::new(log.clone(), state.clone());
    m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    m.acknowledge(&key(), "a", &s, &[ack(0, 4, AckType::Accept)], 10)
        .await
        .expect("accepted");
    m.acknowledge(&key(), "a", &s, &[ack(5, 5, AckType::Release)], 10)
        .await
        .expect("released");
    m.acknowledge(&key(), "a", &s, &[ack(6, 6, AckType::Reject)], 10)
        .await
        .expect("rejected");
    assert_eq!(m.counts().archived, 1, "the rejected record");
    // The leader dies holding 7..9; a new leader (epoch 2) loads the durable state.
    *log.epoch.lock() = Some(2);
    let next = SharePartitionManager::new(log.clone(), state);
    let got = next.fetch(&key(), "b", &s, ASK, 20).await.expect("fetched");
    assert_eq!(
        got.acquired,
        vec![range(5, 5, 2), range(7, 9, 1)],
        "accepted and rejected records never come back; the released one counts 2"
    );
}

#[tokio::test]
async fn an_expired_lock_passes_the_record_on_and_the_late_ack_fails() {
    let log = FakeLog::with(2, 2);
    let m = SharePartitionManager::new(log.clone(), persister());
    let s = settings(OffsetReset::Earliest);
    m.fetch(&key(), "slow", &s, ASK, 0).await.expect("fetched");
    let fast = m
        .fetch(&key(), "fast", &s, ASK, 1_000)
        .await
        .expect("fetched");
    assert_eq!(fast.acquired, vec![range(0, 1, 2)]);
    assert_eq!(
        m.acknowledge(&key(), "slow", &s, &[ack(0, 1, AckType::Accept)], 1_001)
            .await,
        Err(ResponseError::InvalidRecordState)
    );
    m.acknowledge(&key(), "fast", &s, &[ack(0, 1, AckType::Accept)], 1_001)
        .await
        .expect("accepted");
    let counts = m.counts();
    assert_eq!(counts.lock_expiries, 2, "both of slow's records expired");
    assert_eq!(counts.acquired, 4, "two records, each delivered twice");
    assert_eq!(counts.archived, 0);
}

#[tokio::test]
async fn stats_show_records_in_flight_and_those_done_with_past_the_start() {
    let log = FakeLog::with(10, 5);
    let m = SharePartitionManager::new(log.clone(), persister());
    let s = settings(OffsetReset::Earliest);
    m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    // 3 is accepted while 0..2 are still held: the start stays at 0.
    m.acknowledge(&key(), "a", &s, &[ack(3, 3, AckType::Accept)], 10)
        .await
        .expect("accepted");
    let stats = m.stats();
    assert_eq!(
        stats,
        vec![(
            key(),
            WindowStats {
                start_offset: 0,
                in_flight: 9,
                delivery_complete: 1
            }
        )]
    );
    m.forget("queue", |_| true);
    assert!(
        m.stats().is_empty(),
        "a dropped share-partition has no figures"
    );
}

#[tokio::test]
async fn a_deposed_leader_cannot_acknowledge_what_the_new_leader_handed_out() {
    // Pitfall 1: A acquires on the old leader, leadership moves, B gets the record from the
    // new leader; A's acknowledgement fails, B's succeeds, nothing is lost.
    let state = persister();
    let s = settings(OffsetReset::Earliest);
    let old_log = FakeLog::with(1, 1);
    let old = SharePartitionManager::new(old_log.clone(), state.clone());
    let a = old.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    assert_eq!(a.acquired, vec![range(0, 0, 1)]);

    let new_log = FakeLog::with(1, 1);
    *new_log.epoch.lock() = Some(2);
    let new = SharePartitionManager::new(new_log, state);
    let b = new.fetch(&key(), "b", &s, ASK, 0).await.expect("fetched");
    assert_eq!(
        b.acquired,
        vec![range(0, 0, 1)],
        "the lock died with the old leader"
    );

    assert_eq!(
        old.acknowledge(&key(), "a", &s, &[ack(0, 0, AckType::Accept)], 1)
            .await,
        Err(ResponseError::NotLeaderOrFollower)
    );
    new.acknowledge(&key(), "b", &s, &[ack(0, 0, AckType::Accept)], 1)
        .await
        .expect("accepted");
}

#[tokio::test]
async fn a_follower_answers_not_leader_and_a_closed_session_gives_records_back() {
    let log = FakeLog::with(3, 3);
    let m = SharePartitionManager::new(log.clone(), persister());
    let s = settings(OffsetReset::Earliest);
    m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    m.release_member(&key(), "a").await.expect("released");
    let b = m.fetch(&key(), "b", &s, ASK, 0).await.expect("fetched");
    assert_eq!(
        b.acquired,
        vec![range(0, 2, 1)],
        "the delivery was not counted"
    );
    *log.epoch.lock() = None;
    assert_eq!(
        m.fetch(&key(), "b", &s, ASK, 0).await,
        Err(ResponseError::NotLeaderOrFollower)
    );
}

/// The real persister, whose writes wait while the gate is shut.
struct GatedPersister {
    inner: Arc<dyn StatePersister>,
    open: tokio::sync::watch::Receiver<bool>,
}

impl StatePersister for GatedPersister {
    fn read<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        leader_epoch: i32,
    ) -> BoxFuture<'a, Result<Option<StoredState>, ResponseError>> {
        self.inner.read(key, leader_epoch)
    }

    fn initialize<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        self.inner.initialize(key, state_epoch, start_offset)
    }

    fn write<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: Vec<StateRange>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        let mut open = self.open.clone();
        Box::pin(async move {
            let _ = open.wait_for(|open| *open).await;
            self.inner
                .write(key, state_epoch, leader_epoch, start_offset, ranges)
                .await
        })
    }
}

#[tokio::test]
async fn forgetting_a_share_partition_mid_acknowledgement_never_redelivers_what_it_accepts() {
    let log = FakeLog::with(10, 10);
    let (gate, open) = tokio::sync::watch::channel(false);
    let persister: Arc<dyn StatePersister> = Arc::new(GatedPersister {
        inner: persister(),
        open,
    });
    let m = Arc::new(SharePartitionManager::new(log.clone(), persister));
    let s = settings(OffsetReset::Earliest);
    gate.send_replace(true);
    let a = m.fetch(&key(), "a", &s, ASK, 0).await.expect("fetched");
    assert_eq!(a.acquired, vec![range(0, 9, 1)]);
    gate.send_replace(false);
    // a accepts 0..4; the write waits at the gate while the group's last session ends.
    let acking = {
        let m = m.clone();
        tokio::spawn(async move {
            m.acknowledge(&key(), "a", &s, &[ack(0, 4, AckType::Accept)], 10)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    m.forget("queue", |_| true);
    // Another member fetches meanwhile; it waits for the write instead of loading the state
    // from before it.
    let fetching = {
        let m = m.clone();
        tokio::spawn(async move { m.fetch(&key(), "b", &s, ASK, 20).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.send_replace(true);
    assert_eq!(acking.await.expect("joined"), Ok(()));
    let b = fetching.await.expect("joined").expect("fetched");
    assert_eq!(
        b.acquired,
        vec![range(5, 9, 1)],
        "accepted records stay accepted"
    );
}
