//! Follower fetchers (Kafka's `ReplicaFetcherThread`): one task per leader this broker
//! follows, sending Kafka Fetch requests with this broker's replica id and incarnation
//! (Fetch v15+ `ReplicaState`) for every partition it follows there, appending what comes back
//! with the leader's offsets and epochs, and truncating where the leader reports that the logs
//! diverge (KIP-595's `DivergingEpoch`) or that the fetch offset is out of its range.
//! Each answer also records how far the replica still lags its leader ([`super::lag`], the
//! MaxLag metric); with `replica.fsync.before.ack` a fetch reports only fsynced positions
//! ([`super::fsync`]). Replicas outside the ISR that their topic lists in
//! `follower.replication.throttled.replicas` are left out of a fetch while the follower's
//! replication throttle is used up. A supervisor re-plans the tasks whenever an image is applied; the leader's
//! ISR-shrink check runs beside it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};
use tokio::sync::watch;
use uuid::Uuid;

use super::fsync;
use super::lag::{fetch_lag, FetcherLag, FollowedKey};
use crate::broker::Broker;
use crate::partition::{Partition, Role};
use crate::peer::PeerConnection;
use crate::quotas::replication::{is_throttled, FOLLOWER_RATE_KEY, FOLLOWER_REPLICAS_KEY};

/// The Fetch version followers send: ReplicaState (v15), topic ids (v13), DivergingEpoch (v12).
const FETCH_VERSION: i16 = 15;
/// Bytes per partition and per response (replica.fetch.max.bytes and
/// replica.fetch.response.max.bytes).
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
/// Pause after a failed fetch (replica.fetch.backoff.ms), and before refetching a partition
/// the leader answered with an error.
const BACKOFF: Duration = Duration::from_millis(500);

/// The partitions followed at one leader.
type Followed = Vec<Arc<Partition>>;

/// Starts the supervisor and the ISR-shrink check; both end with the broker.
pub fn spawn(broker: &Arc<Broker>) {
    spawn_supervisor(broker);
    spawn_shrink_check(Arc::downgrade(broker));
}

fn spawn_supervisor(broker: &Arc<Broker>) {
    let mut applied = broker.metadata.subscribe_applied();
    applied.mark_changed();
    let weak = Arc::downgrade(broker);
    let lag = Arc::new(FetcherLag::new(broker.metrics.replica_max_lag.clone()));
    tokio::spawn(async move {
        let mut fetchers: HashMap<i32, watch::Sender<Followed>> = HashMap::new();
        while applied.changed().await.is_ok() {
            applied.borrow_and_update();
            let Some(b) = weak.upgrade() else {
                return;
            };
            let mut plan = plan(&b);
            let followed: HashSet<FollowedKey> = plan
                .values()
                .flatten()
                .map(|p| (p.topic_id(), p.index()))
                .collect();
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
fn plan(broker: &Broker) -> BTreeMap<i32, Followed> {
    let me = broker.config.broker_id;
    let mut plan: BTreeMap<i32, Followed> = BTreeMap::new();
    for partition in broker.replicas.all() {
        if let Role::Follower { leader, .. } = partition.role() {
            if leader >= 0 && leader != me && !partition.is_deleted() {
                plan.entry(leader).or_default().push(partition);
            }
        }
    }
    plan
}

fn spawn_shrink_check(broker: Weak<Broker>) {
    tokio::spawn(async move {
        loop {
            let Some(b) = broker.upgrade() else {
                return;
            };
            let max_lag = b.config.replica_lag_time_max_ms;
            b.replicas.shrink_lagging(crate::clock::now_ms(), max_lag);
            drop(b);
            let every = u64::try_from(max_lag / 2).unwrap_or(1).max(100);
            tokio::time::sleep(Duration::from_millis(every)).await;
        }
    });
}

/// Fetches from `leader` for the partitions `followed` holds until it holds none.
async fn fetch_from(
    broker: Weak<Broker>,
    leader: i32,
    mut followed: watch::Receiver<Followed>,
    lag: Arc<FetcherLag>,
) {
    let mut connection: Option<PeerConnection> = None;
    let mut held_back: HashMap<(Uuid, i32), tokio::time::Instant> = HashMap::new();
    loop {
        let partitions = followed.borrow_and_update().clone();
        if partitions.is_empty() {
            return;
        }
        let Some(mut b) = broker.upgrade() else {
            return;
        };
        let Some(address) = b
            .metadata
            .image()
            .broker(leader)
            .map(|info| format!("{}:{}", info.host, info.port))
        else {
            drop(b);
            tokio::time::sleep(BACKOFF).await;
            continue;
        };
        if connection.as_ref().is_none_or(|c| c.address() != address) {
            connection = Some(PeerConnection::new(address, b.peer_security.clone()));
        }
        let now = tokio::time::Instant::now();
        held_back.retain(|_, until| *until > now);
        let mut sent: Vec<Arc<Partition>> = partitions
            .into_iter()
            .filter(|p| !held_back.contains_key(&(p.topic_id(), p.index())))
            .filter(|p| matches!(p.role(), Role::Follower { leader: l, .. } if l == leader))
            .collect();
        let throttled = throttled_replicas(&b, &sent);
        if !throttled.is_empty() {
            let bound = b.config.dynamic.replication_rate(FOLLOWER_RATE_KEY);
            if b.replication_quotas
                .follower
                .exceeded(bound, crate::clock::now_ms())
            {
                sent.retain(|p| !throttled.contains(&(p.topic_id(), p.index())));
            }
        }
        if b.config.replica_fsync_before_ack {
            // The fetch reports each position to the leader: only fsynced ones.
            let flusher = b.flusher.clone();
            drop(b);
            fsync::sync_fetched(&flusher, &sent).await;
            sent.retain(|p| fsync::may_report(p, true));
            let Some(again) = broker.upgrade() else {
                return;
            };
            b = again;
        }
        if sent.is_empty() {
            drop(b);
            let _ = tokio::time::timeout(BACKOFF, followed.changed()).await;
            continue;
        }
        let request = fetch_request(&b, &sent);
        let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        drop(b);
        let answer: Result<FetchResponse, _> = conn
            .call(
                ApiKey::Fetch,
                FETCH_VERSION,
                &request,
                wait + Duration::from_secs(10),
            )
            .await;
        let Some(b) = broker.upgrade() else {
            return;
        };
        match answer {
            Ok(response) if response.error_code == 0 => {
                for (partition, data) in match_partitions(&sent, response) {
                    if throttled.contains(&(partition.topic_id(), partition.index())) {
                        let bytes = data.records.as_ref().map_or(0, |r| r.len());
                        b.replication_quotas
                            .follower
                            .record(bytes, crate::clock::now_ms());
                    }
                    if !apply(&b, &partition, &data, &lag) {
                        held_back.insert(
                            (partition.topic_id(), partition.index()),
                            tokio::time::Instant::now() + BACKOFF,
                        );
                    }
                }
            }
            Ok(response) => {
                tracing::warn!(
                    leader,
                    error = response.error_code,
                    "follower fetch refused"
                );
                drop(b);
                tokio::time::sleep(BACKOFF).await;
            }
            Err(error) => {
                tracing::debug!(leader, %error, "follower fetch failed");
                drop(b);
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// The replicas in `sent` the follower's replication throttle applies to (listed in their
/// topic's `follower.replication.throttled.replicas`, not in the ISR), when it is bounded.
fn throttled_replicas(broker: &Broker, sent: &[Arc<Partition>]) -> HashSet<FollowedKey> {
    if broker
        .config
        .dynamic
        .replication_rate(FOLLOWER_RATE_KEY)
        .is_none()
    {
        return HashSet::new();
    }
    let image = broker.metadata.image();
    let me = broker.config.broker_id;
    sent.iter()
        .filter(|p| {
            image.topic(p.topic()).is_some_and(|topic| {
                is_throttled(&topic.configs, FOLLOWER_REPLICAS_KEY, p.index(), me, || {
                    p.is_in_sync(me)
                })
            })
        })
        .map(|p| (p.topic_id(), p.index()))
        .collect()
}

/// One fetch for every partition in `sent`, from where each log ends.
fn fetch_request(broker: &Broker, sent: &[Arc<Partition>]) -> FetchRequest {
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
    let incarnation = broker.registrar.as_ref().map_or(-1, |r| r.incarnation());
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(broker.config.broker_id))
                .with_replica_epoch(incarnation),
        )
        .with_max_wait_ms(broker.config.replica_fetch_wait_max_ms)
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

/// Applies the leader's answer for one partition, recording how far the replica still lags;
/// false when the partition should wait before it is fetched again.
fn apply(
    broker: &Broker,
    partition: &Arc<Partition>,
    data: &PartitionData,
    lag: &FetcherLag,
) -> bool {
    let now_ms = crate::clock::now_ms();
    if data.error_code != 0 {
        return recover(partition, data);
    }
    let diverging = &data.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        let target = truncation_offset(partition, diverging.epoch, diverging.end_offset);
        if let Err(error) = partition.truncate_replica(target) {
            tracing::error!(?partition, %error, "cannot truncate a diverged replica");
            return false;
        }
        return true;
    }
    let records = data.records.as_deref().unwrap_or_default();
    match partition.append_from_leader(records, data.high_watermark, data.log_start_offset, now_ms)
    {
        Ok((_, flush)) => {
            broker.flusher.after_write(partition, flush);
            let end = partition.with_log(|log| log.log_end_offset());
            lag.record(
                (partition.topic_id(), partition.index()),
                fetch_lag(data.high_watermark, end),
            );
            true
        }
        Err(error) => {
            tracing::warn!(?partition, %error, "cannot append what the leader sent");
            false
        }
    }
}

/// Where a follower cuts its log when the leader says its log ends `leader_end` for `epoch`
/// (Kafka's `getOffsetTruncationState`): at the lower of that and where the same epoch ends
/// here; when this log has no such epoch, at the lower of the leader's end and its own.
fn truncation_offset(partition: &Partition, epoch: i32, leader_end: i64) -> i64 {
    partition.with_log(|log| {
        let end = log.log_end_offset();
        if leader_end < 0 {
            return log.high_watermark();
        }
        let (local_epoch, local_end) = log.end_offset_for_epoch(epoch);
        if local_epoch < 0 || local_end < 0 {
            leader_end.min(end)
        } else {
            leader_end.min(local_end)
        }
    })
}

/// Handles an error the leader returned for a partition; false to back off.
fn recover(partition: &Partition, data: &PartitionData) -> bool {
    let code = data.error_code;
    if code != ResponseError::OffsetOutOfRange.code() {
        return false;
    }
    let end = partition.with_log(|log| log.log_end_offset());
    let result = if data.log_start_offset > end {
        partition.restart_replica_at(data.log_start_offset)
    } else if data.high_watermark >= 0 && data.high_watermark < end {
        partition.truncate_replica(data.high_watermark)
    } else {
        return false;
    };
    if let Err(error) = result {
        tracing::error!(?partition, %error, "cannot recover a replica out of the leader's range");
        return false;
    }
    true
}
