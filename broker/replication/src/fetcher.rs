//! Follower fetchers (Kafka's `ReplicaFetcherThread`): one task per leader this broker
//! follows, sending Kafka Fetch requests with this broker's replica id and incarnation
//! (Fetch v15+ `ReplicaState`) for every partition it follows there, appending what comes back
//! with the leader's offsets and epochs, and truncating where the leader reports that the logs
//! diverge (KIP-595's `DivergingEpoch`) or that the fetch offset is out of its range. What to
//! do with each answer is decided by the pure functions of [`crate::partition::follower`];
//! this module is the I/O around them: a round connects, chooses the partitions, fsyncs their
//! positions if asked to, sends, and applies the answer ([`apply`]).
//! Each answer also records how far the replica still lags its leader ([`lag`], the
//! MaxLag metric); with `replica.fsync.before.ack` a fetch reports only fsynced positions
//! ([`fsync`]). Replicas outside the ISR that their topic lists in
//! `follower.replication.throttled.replicas` are left out of a fetch while the follower's
//! replication throttle is used up. A supervisor re-plans the tasks whenever an image is
//! applied; the leader's ISR-shrink check runs beside it. The broker is reached only through
//! [`FetcherHost`]: its peer connections, throttles and remote log stay above this floor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::sync::watch;
use tributary_storage::clock::now_ms;
use uuid::Uuid;

use self::apply::{apply, Applied};
pub use self::host::{
    FetcherHost, FetcherSettings, HostError, LeaderLink, RemoteRebuild, RemoteRestart,
};
use self::lag::{FetcherLag, FollowedKey};
use self::refusal::Refusals;
use crate::partition::follower;
use crate::partition::{Partition, Role};

mod apply;
pub mod fsync;
mod host;
pub mod lag;
mod refusal;
#[cfg(test)]
mod tests;

/// The broker as the fetchers see it.
type Host = dyn FetcherHost;

/// The Fetch version followers send: ReplicaState (v15), topic ids (v13), DivergingEpoch (v12).
const FETCH_VERSION: i16 = 15;
/// Bytes per partition and per response (replica.fetch.max.bytes and
/// replica.fetch.response.max.bytes).
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
/// Pause after a failed fetch (replica.fetch.backoff.ms), and before refetching a partition
/// the leader answered with an error.
const BACKOFF: Duration = Duration::from_millis(500);
/// Longest a follower's rebuild from the remote log metadata may take (two small objects).
const REBUILD_TIMEOUT: Duration = Duration::from_secs(30);

/// The partitions followed at one leader.
type Followed = Vec<Arc<Partition>>;

/// Starts the supervisor and the ISR-shrink check; both end with the broker. How far the
/// followed replicas lag is published in `max_lag` (the MaxLag metric).
pub fn spawn<H: FetcherHost + 'static>(broker: &Arc<H>, max_lag: prometheus::IntGauge) {
    let broker: Arc<Host> = broker.clone();
    spawn_supervisor(&broker, max_lag);
    spawn_shrink_check(Arc::downgrade(&broker));
}

fn spawn_supervisor(broker: &Arc<Host>, max_lag: prometheus::IntGauge) {
    let mut applied = broker.metadata().subscribe_applied();
    applied.mark_changed();
    let weak = Arc::downgrade(broker);
    let lag = Arc::new(FetcherLag::new(max_lag));
    tokio::spawn(async move {
        let mut fetchers: HashMap<i32, watch::Sender<Followed>> = HashMap::new();
        while applied.changed().await.is_ok() {
            applied.borrow_and_update();
            let Some(b) = weak.upgrade() else {
                return;
            };
            let mut plan = plan(&*b);
            tracing::debug!(
                leaders = ?plan.keys().collect::<Vec<_>>(),
                running = ?fetchers.keys().collect::<Vec<_>>(),
                "fetchers re-planned"
            );
            let followed: HashSet<FollowedKey> = plan.values().flatten().map(|p| key(p)).collect();
            lag.retain(|key| followed.contains(key));
            // Leaders no longer followed get an empty set, which ends their task.
            fetchers.retain(|leader, sender| {
                let set = plan.remove(leader).unwrap_or_default();
                let keep = !set.is_empty();
                let _ = sender.send(set);
                keep
            });
            for (leader, set) in plan {
                let (sender, receiver) = watch::channel(set);
                tokio::spawn(fetch_from(weak.clone(), leader, receiver, lag.clone()));
                fetchers.insert(leader, sender);
            }
        }
    });
}

/// The partitions this broker follows, by leader.
fn plan(broker: &Host) -> BTreeMap<i32, Followed> {
    let me = broker.fetcher_settings().broker_id;
    let mut plan: BTreeMap<i32, Followed> = BTreeMap::new();
    for partition in broker.replicas().all() {
        if let Role::Follower { leader, .. } = partition.role() {
            if leader >= 0 && leader != me && !partition.is_deleted() {
                plan.entry(leader).or_default().push(partition);
            }
        }
    }
    plan
}

fn spawn_shrink_check(broker: Weak<Host>) {
    tokio::spawn(async move {
        loop {
            let Some(b) = broker.upgrade() else {
                return;
            };
            let max_lag = b.fetcher_settings().replica_lag_time_max_ms;
            b.replicas().shrink_lagging(now_ms(), max_lag);
            drop(b);
            let every = u64::try_from(max_lag / 2).unwrap_or(1).max(100);
            tokio::time::sleep(Duration::from_millis(every)).await;
        }
    });
}

/// Fetches from `leader` for the partitions `followed` holds until it holds none: one round
/// after another, pausing as the last one asks.
async fn fetch_from(
    broker: Weak<Host>,
    leader: i32,
    mut followed: watch::Receiver<Followed>,
    lag: Arc<FetcherLag>,
) {
    let mut fetcher = Fetcher {
        broker,
        leader,
        connection: None,
        held_back: HashMap::new(),
        lag,
        from_remote: Vec::new(),
        refusals: Refusals::default(),
    };
    loop {
        let partitions = followed.borrow_and_update().clone();
        if partitions.is_empty() {
            break;
        }
        match fetcher.round(partitions).await {
            Round::Again => {}
            Round::BackOff => tokio::time::sleep(BACKOFF).await,
            Round::Idle => {
                let _ = tokio::time::timeout(BACKOFF, followed.changed()).await;
            }
            Round::Stop => return,
        }
    }
    if let Some(b) = fetcher.broker.upgrade() {
        fetcher.refusals.withdraw(&*b, leader);
    }
}

/// What one fetcher task keeps between rounds.
struct Fetcher {
    /// Let go while a round waits, so a fetcher never keeps the broker alive.
    broker: Weak<Host>,
    leader: i32,
    /// Kept across rounds; replaced when the leader's address changes.
    connection: Option<Box<dyn LeaderLink>>,
    /// Partitions left out until the instant given: their last answer was an error or could
    /// not be applied.
    held_back: HashMap<FollowedKey, tokio::time::Instant>,
    lag: Arc<FetcherLag>,
    /// Partitions the last answer sent to the remote log: (partition, the role it was
    /// answered in, the leader's local log start).
    from_remote: Vec<(Arc<Partition>, Role, i64)>,
    /// What this follower said of the leader's refused connections.
    refusals: Refusals,
}

/// How a round ended: what the task waits for before the next one.
enum Round {
    /// Nothing: fetch again at once.
    Again,
    /// The leader is unknown, unreachable, or refused the fetch: wait [`BACKOFF`].
    BackOff,
    /// Nothing to fetch now: wait for a new set of partitions, at most [`BACKOFF`].
    Idle,
    /// The broker is gone.
    Stop,
}

impl Fetcher {
    /// One fetch: connect, choose the partitions, fsync their positions if asked to, send,
    /// and apply the answer.
    async fn round(&mut self, partitions: Followed) -> Round {
        let Some(b) = self.broker.upgrade() else {
            return Round::Stop;
        };
        if !self.connect(&*b) {
            return Round::BackOff;
        }
        let mut sent = self.ready(partitions);
        let throttled = b.throttled_replicas(&sent);
        if !throttled.is_empty() && b.follower_throttle_used_up(now_ms()) {
            sent.retain(|p| !throttled.contains(&key(p)));
        }
        let b = if b.fetcher_settings().replica_fsync_before_ack {
            match sync_positions(&self.broker, b, &mut sent).await {
                Some(b) => b,
                None => return Round::Stop,
            }
        } else {
            b
        };
        if sent.is_empty() {
            return Round::Idle;
        }
        let request = fetch_request(&*b, &sent);
        drop(b);
        let Some(connection) = self.connection.as_mut() else {
            return Round::Again;
        };
        let answer = send(connection, &request).await;
        let Some(b) = self.broker.upgrade() else {
            return Round::Stop;
        };
        let round = self.take(&*b, answer, &sent, &throttled);
        let remote = b.remote_rebuild();
        drop(b);
        for (partition, role, leader_local_start) in std::mem::take(&mut self.from_remote) {
            let rebuilt =
                rebuild_from_remote(remote.as_deref(), &partition, role, leader_local_start).await;
            if !rebuilt {
                let until = tokio::time::Instant::now() + BACKOFF;
                self.held_back.insert(key(&partition), until);
            }
        }
        round
    }

    /// Points the kept connection at the leader's address in the image; false when the image
    /// does not list the leader.
    fn connect(&mut self, broker: &Host) -> bool {
        let Some(address) = broker
            .metadata()
            .image()
            .broker(self.leader)
            .map(|info| format!("{}:{}", info.host, info.port))
        else {
            return false;
        };
        if self
            .connection
            .as_ref()
            .is_none_or(|c| c.address() != address)
        {
            self.connection = Some(broker.link_to(address));
        }
        true
    }

    /// The partitions of this round: not held back, and still following this leader.
    fn ready(&mut self, partitions: Followed) -> Vec<Arc<Partition>> {
        let now = tokio::time::Instant::now();
        self.held_back.retain(|_, until| *until > now);
        partitions
            .into_iter()
            .filter(|p| !self.held_back.contains_key(&key(p)))
            .filter(|p| follower::follows(p.role(), self.leader))
            .collect()
    }

    /// Applies the leader's answer to each partition `sent` asked for, holding back those
    /// that should wait, and counting throttled replicas' bytes against the throttle.
    fn take(
        &mut self,
        broker: &Host,
        answer: Result<FetchResponse, HostError>,
        sent: &[Arc<Partition>],
        throttled: &HashSet<FollowedKey>,
    ) -> Round {
        let leader = self.leader;
        let response = match answer {
            Err(error) => {
                tracing::debug!(leader, %error, "follower fetch failed");
                return if self.refusals.failed(broker, leader, &error) {
                    Round::Again
                } else {
                    Round::BackOff
                };
            }
            Ok(response) => {
                self.refusals.answered(broker, leader);
                response
            }
        };
        if response.error_code != 0 {
            tracing::warn!(
                leader,
                error = response.error_code,
                "follower fetch refused"
            );
            return Round::BackOff;
        }
        for (partition, data) in match_partitions(sent, response) {
            if throttled.contains(&key(&partition)) {
                let bytes = data.records.as_ref().map_or(0, |r| r.len());
                broker.record_throttled_bytes(bytes, now_ms());
            }
            match apply(broker.flusher(), &partition, &data, &self.lag) {
                Applied::Done => {}
                Applied::Wait => {
                    let until = tokio::time::Instant::now() + BACKOFF;
                    self.held_back.insert(key(&partition), until);
                }
                Applied::FromRemote { leader_local_start } => {
                    let role = partition.role();
                    self.from_remote.push((partition, role, leader_local_start));
                }
            }
        }
        Round::Again
    }
}

/// KIP-405's follower rebuild after OFFSET_MOVED_TO_TIERED_STORAGE: read the remote log
/// metadata and the epoch checkpoint of the segment before the leader's local log start,
/// then restart the log there with those epochs (never downloading the remote log). Bounded
/// by [`REBUILD_TIMEOUT`]; false (back off, try again) when it could not.
async fn rebuild_from_remote(
    remote: Option<&dyn RemoteRebuild>,
    partition: &Arc<Partition>,
    role: Role,
    leader_local_start: i64,
) -> bool {
    let Some(remote) = remote else {
        tracing::warn!(
            ?partition,
            "the leader moved this replica's fetch offset to tiered storage, but this broker \
             has no remote storage configured (--remote-log-storage-system-enable)"
        );
        return false;
    };
    let plan = match tokio::time::timeout(
        REBUILD_TIMEOUT,
        remote.plan(partition, leader_local_start),
    )
    .await
    {
        Ok(Ok(plan)) => plan,
        Ok(Err(error)) => {
            tracing::warn!(?partition, %error, "cannot rebuild the replica from the remote log yet");
            return false;
        }
        Err(_) => {
            tracing::warn!(
                ?partition,
                timeout = ?REBUILD_TIMEOUT,
                "reading the remote log metadata timed out; rebuilding the replica later"
            );
            return false;
        }
    };
    match partition.restart_replica_from_remote(
        plan.restart_at,
        &plan.epochs,
        plan.producers.as_ref(),
        role,
    ) {
        Ok(true) => true,
        Ok(false) => {
            tracing::info!(
                ?partition,
                "the replica's role changed during its rebuild; not restarted"
            );
            false
        }
        Err(error) => {
            tracing::error!(?partition, %error, "cannot restart the replica from the remote log");
            false
        }
    }
}

/// A followed partition's key (what the lag and the throttle are kept by).
pub fn key(partition: &Partition) -> FollowedKey {
    (partition.topic_id(), partition.index())
}

/// With `replica.fsync.before.ack`: the fetch reports each position to the leader, so fsync
/// them and leave out those not durable yet. The broker is let go while the fsync runs (taken
/// again from `weak`); `None` when it is gone.
async fn sync_positions(
    weak: &Weak<Host>,
    broker: Arc<Host>,
    sent: &mut Vec<Arc<Partition>>,
) -> Option<Arc<Host>> {
    let flusher = broker.flusher().clone();
    drop(broker);
    fsync::sync_fetched(&flusher, sent).await;
    sent.retain(|p| fsync::may_report(p, true));
    weak.upgrade()
}

/// Sends `request` and waits for the answer: the leader's long poll, then ten seconds more.
async fn send(
    connection: &mut Box<dyn LeaderLink>,
    request: &FetchRequest,
) -> Result<FetchResponse, HostError> {
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    connection
        .fetch(request, FETCH_VERSION, wait + Duration::from_secs(10))
        .await
}

/// One fetch for every partition in `sent`, from where each log ends.
fn fetch_request(broker: &Host, sent: &[Arc<Partition>]) -> FetchRequest {
    let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
    for partition in sent {
        let (fetch_offset, last_fetched_epoch) = partition.fetch_position();
        let log_start_offset = partition.with_log(|log| log.log_start_offset());
        topics.entry(partition.topic_id()).or_default().push(
            FetchPartition::default()
                .with_partition(partition.index())
                .with_current_leader_epoch(partition.leader_epoch())
                .with_fetch_offset(fetch_offset)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_log_start_offset(log_start_offset)
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    let incarnation = broker.incarnation();
    let settings = broker.fetcher_settings();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(settings.broker_id))
                .with_replica_epoch(incarnation),
        )
        .with_max_wait_ms(settings.replica_fetch_wait_max_ms)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(id, partitions)| {
                    FetchTopic::default()
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// Pairs each answered partition with the replica it was asked for.
fn match_partitions(
    sent: &[Arc<Partition>],
    response: FetchResponse,
) -> Vec<(Arc<Partition>, PartitionData)> {
    let mut out = Vec::new();
    for topic in response.responses {
        for data in topic.partitions {
            let found = sent
                .iter()
                .find(|p| p.topic_id() == topic.topic_id && p.index() == data.partition_index);
            if let Some(partition) = found {
                out.push((partition.clone(), data));
            }
        }
    }
    out
}
