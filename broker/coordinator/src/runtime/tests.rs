//! The runtime with a tiny shard (string values by key, per partition) over an in-memory log:
//! a partition is loaded by replay and then served, dropped when its leadership is lost,
//! never installed by a load that lost its leadership meanwhile, and loaded again from the
//! log when its leadership comes back.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::*;
use crate::log::memory::MemoryLog;
use crate::log::{Appended, Chunk, Entry};
use tributary_storage::ProducerRef;

const PARTITIONS: i32 = 3;

/// The values a partition's records leave: the last per key, none after a tombstone.
#[derive(Debug, Default)]
struct Values {
    values: BTreeMap<String, String>,
    skipped: usize,
}

impl Replay for Values {
    fn apply(&mut self, record: &LogRecord) {
        let Some(key) = record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
        else {
            self.skipped += 1;
            return;
        };
        match record.value.as_deref().map(std::str::from_utf8) {
            None => {
                self.values.remove(key);
            }
            Some(Ok(value)) => {
                self.values.insert(key.to_string(), value.to_string());
            }
            Some(Err(_)) => self.skipped += 1,
        }
    }

    fn skipped(&self) -> usize {
        self.skipped
    }
}

/// The installed values of each partition.
struct TestShard {
    runtime: Runtime,
    state: Mutex<BTreeMap<i32, BTreeMap<String, String>>>,
    /// The partitions installed, in order.
    installed: Mutex<Vec<i32>>,
}

impl Shard for TestShard {
    type Replay = Values;
    const NAME: &'static str = "test";

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn install(&self, partition: i32, replay: Values) -> usize {
        self.installed.lock().push(partition);
        let keys = replay.values.len();
        let before = self.state.lock().insert(partition, replay.values);
        assert!(before.is_none(), "installed over state still in memory");
        keys
    }

    fn unload(&self, partition: i32) -> usize {
        self.state.lock().remove(&partition).map_or(0, |v| v.len())
    }
}

/// A log whose reads return one record at a time and block past the first record until
/// `open` (so partitions of more than one record load in the background), or fail while
/// `fail` is set.
struct GatedLog {
    inner: MemoryLog,
    open: AtomicBool,
    fail: AtomicBool,
    /// The topic is still being created, as a broker behind the others sees it.
    creating: AtomicBool,
    /// Reads that reached the end of a partition past its first record: background replays
    /// done.
    replays_done: AtomicUsize,
}

impl GatedLog {
    fn new() -> GatedLog {
        GatedLog {
            inner: MemoryLog::with_partitions(PARTITIONS),
            open: AtomicBool::new(false),
            fail: AtomicBool::new(false),
            creating: AtomicBool::new(false),
            replays_done: AtomicUsize::new(0),
        }
    }
}

impl CoordinatorLog for GatedLog {
    fn partitions(&self) -> Option<i32> {
        self.inner.partitions()
    }
    fn ensure_topic(&self, partitions: i32) -> Result<i32, LogError> {
        if self.creating.load(Ordering::SeqCst) {
            return Err(LogError::Creating { topic: "gated" });
        }
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
        if self.fail.load(Ordering::SeqCst) {
            return Err(LogError::NoPartition {
                topic: "gated",
                partition,
            });
        }
        while offset > 0 && !self.open.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut chunk = self.inner.read(partition, offset)?;
        if let Some(first) = chunk.records.first().cloned() {
            let end = chunk.next_offset;
            chunk.next_offset = first.offset + 1;
            chunk.records = vec![first];
            chunk.at_end = chunk.next_offset >= end;
        }
        if chunk.at_end && offset > 0 {
            self.replays_done.fetch_add(1, Ordering::SeqCst);
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

fn shard(log: Arc<dyn CoordinatorLog>) -> Arc<TestShard> {
    Arc::new(TestShard {
        runtime: Runtime::new(log, PARTITIONS),
        state: Mutex::new(BTreeMap::new()),
        installed: Mutex::new(Vec::new()),
    })
}

/// Appends `key` = `value` (`None`: a tombstone) to `partition`.
fn write(log: &MemoryLog, partition: i32, key: &str, value: Option<&str>) {
    let entry: Entry = (
        Bytes::copy_from_slice(key.as_bytes()),
        value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    );
    log.append(partition, &[entry], None, 0, Duration::ZERO)
        .expect("append");
}

/// The installed values of `partition`, if it is in memory.
fn values(shard: &TestShard, partition: i32) -> Option<Vec<(String, String)>> {
    let state = shard.state.lock();
    let values = state.get(&partition)?;
    Some(values.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn kv(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn owned(shard: &TestShard, partition: i32) -> Option<Ownership> {
    shard.runtime.owned.read().get(&partition).copied()
}

/// How many times `partition` was installed.
fn installs(shard: &TestShard, partition: i32) -> usize {
    shard
        .installed
        .lock()
        .iter()
        .filter(|&&p| p == partition)
        .count()
}

/// Polls `test` until it holds, failing after a deadline.
async fn until(what: &str, test: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !test() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn access_follows_the_leader_epoch_and_the_ownership() {
    let loaded = |epoch| Some(Ownership::Loaded { epoch });
    let loading = |epoch| Some(Ownership::Loading { epoch });
    assert_eq!(access(Some(3), false, loaded(3)), Access::Serve(3));
    assert_eq!(access(Some(3), false, loading(3)), Access::Wait);
    assert_eq!(access(Some(3), false, None), Access::Load(3));
    assert_eq!(
        access(Some(4), false, loaded(3)),
        Access::Load(4),
        "a new epoch reloads"
    );
    assert_eq!(access(Some(4), false, loading(3)), Access::Load(4));
    let refuse = |unload, taking| Access::Refuse { unload, taking };
    assert_eq!(access(None, false, loaded(3)), refuse(true, false));
    assert_eq!(access(None, false, loading(3)), refuse(true, false));
    assert_eq!(access(None, false, None), refuse(false, false));
    assert_eq!(
        access(None, true, loaded(3)),
        refuse(true, true),
        "named leader again: what an older epoch loaded goes"
    );
    assert_eq!(access(None, true, None), refuse(false, true));
}

#[tokio::test]
async fn a_small_partition_is_replayed_and_served_at_once() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    write(&log, 0, "a", Some("1"));
    write(&log, 0, "b", Some("2"));
    write(&log, 0, "a", Some("3"));
    write(&log, 0, "b", None);
    let s = shard(log.clone());
    assert_eq!(Runtime::serve(&s, 0), Ok(0));
    assert_eq!(
        values(&s, 0),
        kv(&[("a", "3")]),
        "last value wins, tombstones remove"
    );
    assert_eq!(owned(&s, 0), Some(Ownership::Loaded { epoch: 0 }));
    assert!(!s.runtime.is_loading());
    assert_eq!(Runtime::serve(&s, 0), Ok(0));
    assert_eq!(installs(&s, 0), 1, "served from memory at the same epoch");
    assert_eq!(s.runtime.if_loaded(0, 0, || "applied"), Some("applied"));
    assert_eq!(
        s.runtime.if_loaded(0, 1, || "applied"),
        None,
        "another epoch"
    );
}

#[tokio::test]
async fn a_large_partition_loads_in_the_background_behind_load_in_progress() {
    let log = Arc::new(GatedLog::new());
    write(&log.inner, 1, "a", Some("1"));
    write(&log.inner, 1, "b", Some("2"));
    let s = shard(log.clone());
    assert_eq!(
        Runtime::serve(&s, 1),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert!(s.runtime.is_loading());
    assert_eq!(
        Runtime::serve(&s, 1),
        Err(ResponseError::CoordinatorLoadInProgress),
        "still loading"
    );
    assert_eq!(
        values(&s, 1),
        None,
        "nothing installed before the replay ends"
    );
    log.open.store(true, Ordering::SeqCst);
    until("loaded", || !s.runtime.is_loading()).await;
    assert_eq!(Runtime::serve(&s, 1), Ok(0));
    assert_eq!(values(&s, 1), kv(&[("a", "1"), ("b", "2")]));
    assert_eq!(installs(&s, 1), 1, "one load for one epoch");
}

#[tokio::test]
async fn a_lost_leadership_unloads_the_partition_and_leaves_the_others() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    write(&log, 0, "a", Some("1"));
    write(&log, 1, "b", Some("2"));
    let s = shard(log.clone());
    Runtime::sync_leadership(&s);
    assert_eq!(values(&s, 0), kv(&[("a", "1")]));
    assert_eq!(values(&s, 1), kv(&[("b", "2")]));

    log.set_leader(0, None);
    Runtime::sync_leadership(&s);
    assert_eq!(values(&s, 0), None, "unloaded");
    assert_eq!(owned(&s, 0), None);
    assert_eq!(Runtime::serve(&s, 0), Err(ResponseError::NotCoordinator));
    assert_eq!(s.runtime.if_loaded(0, 0, || ()), None);
    assert_eq!(values(&s, 1), kv(&[("b", "2")]), "other partitions stay");
    assert_eq!(Runtime::serve(&s, 1), Ok(0));

    // A request finds the lost leadership by itself too.
    log.set_leader(1, None);
    assert_eq!(Runtime::serve(&s, 1), Err(ResponseError::NotCoordinator));
    assert_eq!(values(&s, 1), None);
}

#[tokio::test]
async fn a_broker_named_leader_before_its_replica_leads_answers_load_in_progress() {
    // FindCoordinator names the leader in the metadata; until that broker's replica takes the
    // role, a client it sent there must be told to retry, not to look elsewhere (librdkafka
    // fails a synchronous commit on NOT_COORDINATOR).
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    write(&log, 0, "a", Some("1"));
    log.set_leader(0, None);
    log.set_taking(0, true);
    let s = shard(log.clone());
    assert_eq!(
        Runtime::serve(&s, 0),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(owned(&s, 0), None, "nothing loads before the replica leads");

    log.set_taking(0, false);
    log.set_leader(0, Some(1));
    assert_eq!(Runtime::serve(&s, 0), Ok(1));
    assert_eq!(values(&s, 0), kv(&[("a", "1")]));

    // Named leader again after losing the role: the state of the older epoch goes at once.
    log.set_leader(0, None);
    log.set_taking(0, true);
    assert_eq!(
        Runtime::serve(&s, 0),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(values(&s, 0), None, "unloaded");
}

#[tokio::test]
async fn a_broker_that_does_not_see_the_topic_yet_answers_load_in_progress() {
    let log = Arc::new(GatedLog::new());
    log.open.store(true, Ordering::SeqCst);
    log.creating.store(true, Ordering::SeqCst);
    let s = shard(log.clone());
    assert_eq!(
        Runtime::serve_key(&s, "group"),
        Err(ResponseError::CoordinatorLoadInProgress),
        "retried here, not a lookup again"
    );
    log.creating.store(false, Ordering::SeqCst);
    assert!(Runtime::serve_key(&s, "group").is_ok());
}

#[tokio::test]
async fn a_load_that_lost_its_leadership_never_installs() {
    let log = Arc::new(GatedLog::new());
    write(&log.inner, 0, "a", Some("1"));
    write(&log.inner, 0, "b", Some("2"));
    let s = shard(log.clone());
    assert_eq!(
        Runtime::serve(&s, 0),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    log.inner.set_leader(0, None);
    Runtime::sync_leadership(&s);
    assert_eq!(owned(&s, 0), None, "the load is abandoned");
    assert!(!s.runtime.is_loading());

    // The replay of the lost epoch completes: nothing is installed or served.
    let stale = || {
        let mut replay = Values::default();
        replay.values.insert("stale".into(), "x".into());
        Ok(replay)
    };
    assert_eq!(Runtime::finish_load(s.as_ref(), 0, 0, stale()), None);
    assert_eq!(values(&s, 0), None);
    assert_eq!(owned(&s, 0), None);
    assert_eq!(Runtime::serve(&s, 0), Err(ResponseError::NotCoordinator));

    // Led again at a later epoch: the old epoch's replay does not pass for the new one's.
    log.inner.set_leader(0, Some(1));
    assert_eq!(
        Runtime::serve(&s, 0),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(Runtime::finish_load(s.as_ref(), 0, 0, stale()), None);
    assert_eq!(values(&s, 0), None);
    assert_eq!(owned(&s, 0), Some(Ownership::Loading { epoch: 1 }));
    let failed = Err(LoadError::Read(LogError::Closed));
    assert_eq!(Runtime::finish_load(s.as_ref(), 0, 0, failed), None);
    assert_eq!(
        owned(&s, 0),
        Some(Ownership::Loading { epoch: 1 }),
        "a stale failure leaves the current load alone"
    );

    // Both background replays (epochs 0 and 1) run to the end; only epoch 1 installs.
    log.open.store(true, Ordering::SeqCst);
    until("both replays are done", || {
        log.replays_done.load(Ordering::SeqCst) >= 2
    })
    .await;
    until("loaded", || !s.runtime.is_loading()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(owned(&s, 0), Some(Ownership::Loaded { epoch: 1 }));
    assert_eq!(values(&s, 0), kv(&[("a", "1"), ("b", "2")]));
    assert_eq!(installs(&s, 0), 1);
}

#[tokio::test]
async fn a_partition_led_again_is_reloaded_from_the_log() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    write(&log, 0, "a", Some("1"));
    let s = shard(log.clone());
    assert_eq!(Runtime::serve(&s, 0), Ok(0));
    assert_eq!(values(&s, 0), kv(&[("a", "1")]));

    // Another broker leads and writes meanwhile; back here at a later epoch, the partition is
    // replayed again rather than served from what memory had.
    log.set_leader(0, None);
    assert_eq!(Runtime::serve(&s, 0), Err(ResponseError::NotCoordinator));
    write(&log, 0, "a", Some("2"));
    log.set_leader(0, Some(4));
    assert_eq!(Runtime::serve(&s, 0), Ok(4));
    assert_eq!(values(&s, 0), kv(&[("a", "2")]));

    // A new epoch without a loss seen in between drops the old state before installing.
    write(&log, 0, "b", Some("3"));
    log.set_leader(0, Some(5));
    Runtime::sync_leadership(&s);
    assert_eq!(owned(&s, 0), Some(Ownership::Loaded { epoch: 5 }));
    assert_eq!(values(&s, 0), kv(&[("a", "2"), ("b", "3")]));
    assert_eq!(installs(&s, 0), 3);
}

#[tokio::test]
async fn a_failed_load_is_retried_at_the_next_request() {
    let log = Arc::new(GatedLog::new());
    write(&log.inner, 2, "a", Some("1"));
    log.fail.store(true, Ordering::SeqCst);
    let s = shard(log.clone());
    assert_eq!(
        Runtime::serve(&s, 2),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    until("the failed load is forgotten", || owned(&s, 2).is_none()).await;
    assert_eq!(values(&s, 2), None);
    log.fail.store(false, Ordering::SeqCst);
    assert_eq!(Runtime::serve(&s, 2), Ok(0), "one record: loaded at once");
    assert_eq!(values(&s, 2), kv(&[("a", "1")]));
}

#[tokio::test]
async fn a_held_runtime_loads_nothing_until_released() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    write(&log, 0, "a", Some("1"));
    let s = shard(log.clone());
    s.runtime.hold();
    assert_eq!(
        Runtime::serve(&s, 0),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    Runtime::sync_leadership(&s);
    assert!(s.runtime.is_loading());
    assert_eq!(owned(&s, 0), None);
    Runtime::release(&s);
    assert!(!s.runtime.is_loading());
    assert_eq!(values(&s, 0), kv(&[("a", "1")]));
    assert_eq!(owned(&s, 1), Some(Ownership::Loaded { epoch: 0 }));
}
