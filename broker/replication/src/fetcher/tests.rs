//! The fetchers through their host alone: a follower copies a leader served by an in-process
//! [`LeaderLink`] that reads the leader's partition, with the leader's offsets and epochs, and
//! keeps following as the leader's log grows; and a leader whose address refuses the
//! follower's connections is reported gone, and the report withdrawn once it answers.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use prometheus::{IntCounter, IntGauge};
use tributary_storage::journal::Replay;
use tributary_storage::test_util::{batch, simple, BatchSpec, NOW};
use tributary_storage::{LogConfig, WRITEBACK_STEP};
use uuid::Uuid;

use super::*;
use crate::append::{AckDurability, AppendHost};
use crate::flusher::Flusher;
use crate::metadata::{BrokerInfo, ClusterImage, MetadataCache, PartitionState, TopicImage};
use crate::partition::{Isolation, TopicSettings};
use crate::replicas::ReplicaManager;
use crate::settings::ReplicaSettings;

const TOPIC: &str = "t";
const EPOCH: i32 = 2;
const LEADER: i32 = 0;
const FOLLOWER: i32 = 1;

/// A leader's Fetch answered from its partition in this process, or refused while `down`.
struct InProcessLeader {
    partition: Arc<Partition>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

/// A failed connection as the broker's peer connections report one: an I/O error inside.
#[derive(Debug, thiserror::Error)]
#[error("broker leader:9092: {0}")]
struct Unreachable(#[source] std::io::Error);

impl LeaderLink for InProcessLeader {
    fn address(&self) -> &str {
        "leader:9092"
    }

    fn fetch<'a>(
        &'a mut self,
        request: &'a FetchRequest,
        _version: i16,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<FetchResponse, HostError>> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                return Err(Box::new(Unreachable(refused)) as HostError);
            }
            let mut responses = Vec::new();
            let mut empty = true;
            for topic in &request.topics {
                let mut partitions = Vec::new();
                for asked in &topic.partitions {
                    let max = usize::try_from(asked.partition_max_bytes)?;
                    let read = self.partition.read(
                        asked.fetch_offset,
                        max,
                        true,
                        Isolation::ReadUncommitted,
                    )?;
                    empty &= read.records.is_empty();
                    partitions.push(
                        PartitionData::default()
                            .with_partition_index(asked.partition)
                            .with_high_watermark(read.high_watermark)
                            .with_log_start_offset(read.log_start_offset)
                            .with_records(Some(read.records)),
                    );
                }
                responses.push(
                    FetchableTopicResponse::default()
                        .with_topic_id(topic.topic_id)
                        .with_partitions(partitions),
                );
            }
            if empty {
                // The leader's long poll, shortened.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(FetchResponse::default().with_responses(responses))
        })
    }
}

/// Broker 1, following partition 0 of [`TOPIC`] at broker 0.
struct Follower {
    metadata: MetadataCache,
    replicas: ReplicaManager,
    flusher: Flusher,
    leader: Arc<Partition>,
    fetches: Arc<AtomicUsize>,
    /// The leader's address refuses connections while set.
    leader_down: Arc<AtomicBool>,
    /// What the fetcher said of refused connections, in order.
    refusals: parking_lot::Mutex<Vec<(i32, Option<i64>)>>,
}

impl AppendHost for Follower {
    fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    fn replicas(&self) -> &ReplicaManager {
        &self.replicas
    }

    fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    fn ack_durability(&self) -> AckDurability {
        AckDurability {
            fsync_acks_all: false,
            fsync_acks_one: false,
        }
    }
}

impl FetcherHost for Follower {
    fn fetcher_settings(&self) -> FetcherSettings {
        FetcherSettings {
            broker_id: FOLLOWER,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 100,
            replica_fsync_before_ack: false,
        }
    }

    fn link_to(&self, _address: String) -> Box<dyn LeaderLink> {
        Box::new(InProcessLeader {
            partition: self.leader.clone(),
            fetches: self.fetches.clone(),
            down: self.leader_down.clone(),
        })
    }

    fn incarnation(&self) -> i64 {
        -1
    }

    fn report_refusal(&self, leader: i32, incarnation: Option<i64>) {
        self.refusals.lock().push((leader, incarnation));
    }

    fn throttled_replicas(&self, _sent: &[Arc<Partition>]) -> HashSet<FollowedKey> {
        HashSet::new()
    }

    fn follower_throttle_used_up(&self, _now_ms: i64) -> bool {
        false
    }

    fn record_throttled_bytes(&self, _bytes: usize, _now_ms: i64) {}

    fn remote_rebuild(&self) -> Option<Arc<dyn RemoteRebuild>> {
        None
    }
}

fn broker(id: i32) -> BrokerInfo {
    BrokerInfo {
        id,
        host: format!("broker-{id}"),
        port: 9092,
        rack: None,
        incarnation: 7 + i64::from(id),
        endpoints: Vec::new(),
    }
}

/// Waits (at most 10 s) until `done` holds.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Partition 0 of [`TOPIC`], led here at [`EPOCH`].
fn open_leader(dir: &std::path::Path) -> Arc<Partition> {
    let leader = Partition::open(
        dir,
        (TOPIC, Uuid::new_v4()),
        0,
        Role::Leader { epoch: EPOCH },
        TopicSettings::from(LogConfig::default()),
        &Replay::default(),
    );
    Arc::new(leader.expect("open the leader"))
}

/// A follower of `leader` (broker 1 of 2) with its data in `dir`, fetching through the
/// in-process link once [`spawn`]ed; the counter is its flusher's started writeback bytes.
fn follower_of(leader: &Arc<Partition>, dir: &std::path::Path) -> (Arc<Follower>, IntCounter) {
    let id = leader.topic_id();
    let settings = || TopicSettings::from(LogConfig::default());
    let state = PartitionState {
        replicas: vec![LEADER, FOLLOWER],
        ..PartitionState::sole(LEADER, 1, EPOCH)
    };
    let topic = TopicImage {
        name: TOPIC.into(),
        id,
        configs: BTreeMap::new(),
        replication_factor: 2,
        partitions: vec![state],
    };
    let image = ClusterImage::new("c".into(), LEADER, vec![broker(LEADER), broker(FOLLOWER)])
        .with_topic(topic);
    let replicas = ReplicaManager::new(
        ReplicaSettings {
            broker_id: FOLLOWER,
            data_dir: dir.to_path_buf(),
            tiered: false,
            topic_settings: Arc::new(move |_| settings()),
        },
        Replay::default(),
    );
    let metadata = MetadataCache::new(image);
    replicas.apply_latest(&metadata);
    let writeback = IntCounter::new("writeback", "test").expect("counter");
    let seconds = prometheus::Histogram::with_opts(prometheus::histogram_opts!("f", "f"));
    let host = Arc::new(Follower {
        metadata,
        replicas,
        flusher: Flusher::new(seconds.expect("histogram"), writeback.clone(), None),
        leader: leader.clone(),
        fetches: Arc::default(),
        leader_down: Arc::default(),
        refusals: parking_lot::Mutex::default(),
    });
    (host, writeback)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_copies_its_leader_with_the_leaders_offsets_and_epochs() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let leader = open_leader(leader_dir.path());
    for _ in 0..3 {
        leader.append(&simple(4, NOW), NOW).expect("append");
    }

    let (host, _) = follower_of(&leader, follower_dir.path());
    let follower = host.replicas.get(TOPIC, 0).expect("the follower's replica");
    assert_eq!(
        follower.role(),
        Role::Follower {
            leader: LEADER,
            epoch: EPOCH
        }
    );

    spawn(&host, IntGauge::new("maxlag", "test").expect("gauge"));
    wait_until("the follower copies 12 records", || {
        follower.fetch_position() == (12, EPOCH)
    })
    .await;

    // It keeps following as the leader's log grows.
    leader.append(&simple(5, NOW), NOW).expect("append");
    wait_until("the follower copies the next 5", || {
        follower.fetch_position() == (17, EPOCH)
    })
    .await;
    let read = |p: &Partition| {
        let read = p.read(0, 1 << 20, true, Isolation::ReadUncommitted);
        read.expect("read").records
    };
    assert_eq!(
        read(&follower),
        read(&leader),
        "the same batches, byte for byte"
    );
    assert!(host.fetches.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_starts_the_writeback_of_what_it_copies_a_step_at_a_time() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let leader = open_leader(leader_dir.path());
    let big = BatchSpec {
        records: 4,
        value_len: 64 << 10,
        ..BatchSpec::default()
    };
    let batches = 40;
    for _ in 0..batches {
        leader.append(&batch(&big), NOW).expect("append");
    }
    let written = leader.with_log(|log| log.size_bytes());
    assert!(written >= 2 * WRITEBACK_STEP, "{written} bytes to copy");

    let (host, writeback) = follower_of(&leader, follower_dir.path());
    let follower = host.replicas.get(TOPIC, 0).expect("the follower's replica");
    spawn(&host, IntGauge::new("maxlag", "test").expect("gauge"));
    let end = 4 * batches;
    wait_until("the follower copies everything", || {
        follower.fetch_position() == (end, EPOCH)
    })
    .await;
    // Every whole step but the last partial one, started off the fetch path.
    let steps = written / WRITEBACK_STEP;
    wait_until("the copied steps' writeback starts", || {
        writeback.get() >= steps * WRITEBACK_STEP
    })
    .await;
    assert!(writeback.get() <= written, "{} started", writeback.get());
    assert_eq!(follower.durable_offset(), 0, "started, not fsynced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reports_a_leader_whose_address_refuses_it_once_and_withdraws_when_it_answers() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let leader = open_leader(leader_dir.path());
    leader.append(&simple(4, NOW), NOW).expect("append");
    let (host, _) = follower_of(&leader, follower_dir.path());
    let follower = host.replicas.get(TOPIC, 0).expect("the follower's replica");
    spawn(&host, IntGauge::new("maxlag", "test").expect("gauge"));
    wait_until("the follower copies 4 records", || {
        follower.fetch_position() == (4, EPOCH)
    })
    .await;
    assert!(host.refusals.lock().is_empty(), "nothing refused yet");

    host.leader_down.store(true, Ordering::SeqCst);
    // The leader's incarnation as the image has it (broker 0's: 7).
    let reported = vec![(LEADER, Some(7))];
    wait_until("the refusal is reported", || {
        *host.refusals.lock() == reported
    })
    .await;
    let tried = host.fetches.load(Ordering::SeqCst);
    wait_until("three more refused tries", || {
        host.fetches.load(Ordering::SeqCst) >= tried + 3
    })
    .await;
    assert_eq!(
        *host.refusals.lock(),
        reported,
        "said once, not at every try"
    );

    host.leader_down.store(false, Ordering::SeqCst);
    leader.append(&simple(2, NOW), NOW).expect("append");
    wait_until("the follower copies on", || {
        follower.fetch_position() == (6, EPOCH)
    })
    .await;
    assert_eq!(
        *host.refusals.lock(),
        vec![(LEADER, Some(7)), (LEADER, None)],
        "withdrawn once the leader answered"
    );
}

#[test]
fn only_a_refused_connection_counts_as_refused_wherever_it_is_in_the_chain() {
    let io = |kind| std::io::Error::from(kind);
    let refused = std::io::ErrorKind::ConnectionRefused;
    assert!(refusal::refused(&(Box::new(io(refused)) as HostError)));
    assert!(refusal::refused(
        &(Box::new(Unreachable(io(refused))) as HostError)
    ));
    for other in [
        std::io::ErrorKind::ConnectionReset,
        std::io::ErrorKind::TimedOut,
        std::io::ErrorKind::UnexpectedEof,
    ] {
        assert!(!refusal::refused(
            &(Box::new(Unreachable(io(other))) as HostError)
        ));
    }
    assert!(!refusal::refused(&HostError::from("timed out")));
}
