//! What the follower fetchers need of the broker beyond the append path: how to reach a
//! leader, the follower's replication throttle, the settings they run with, and the remote
//! log a replica may be rebuilt from. The broker implements it over its peer connections,
//! quotas and tiered storage, so the fetchers depend on none of them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::lag::FollowedKey;
use crate::append::AppendHost;
use crate::partition::Partition;
use crate::producer::ProducerSnapshot;

/// A failure of the broker parts the fetchers use (a leader's connection, the remote log):
/// logged, then the partition or the round backs off.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

/// The broker's settings the fetchers run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetcherSettings {
    /// This broker's node id, sent as the fetching replica.
    pub broker_id: i32,
    /// `replica.lag.time.max.ms`: how long a follower may lag before the leader drops it from
    /// the ISR (the shrink check runs every half of it).
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`: the leader's long poll for a fetch.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fsync.before.ack`: a fetch reports only fsynced positions.
    pub replica_fsync_before_ack: bool,
}

/// A connection to one leader, kept across rounds.
pub trait LeaderLink: Send {
    /// The `host:port` it reaches: a leader whose address changed gets a new link.
    fn address(&self) -> &str;

    /// Sends `request` as Fetch `version` and waits at most `timeout` for the answer.
    fn fetch<'a>(
        &'a mut self,
        request: &'a FetchRequest,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<FetchResponse, HostError>>;
}

/// Where a follower restarts when its leader sent its fetch offset to the remote log
/// (KIP-405's `buildRemoteLogAuxState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRestart {
    /// The leader's local log start: the follower's log restarts empty there and fetches on.
    pub restart_at: i64,
    /// The leader-epoch entries below it, from the remote segment's checkpoint; the log's
    /// epoch cache gets them (the one in force at `restart_at` moved to start there), so the
    /// follower's next fetch carries its last epoch and the divergence check works.
    pub epochs: Vec<(i32, i64)>,
    /// The producer state as of the remote segment's end, when it was uploaded with one: the
    /// follower's producer state starts from it.
    pub producers: Option<ProducerSnapshot>,
}

/// The remote log a follower's replica is rebuilt from (the broker's tiered storage).
pub trait RemoteRebuild: Send + Sync {
    /// Reads the remote log metadata of `partition` and plans its restart at the leader's
    /// local log start.
    fn plan<'a>(
        &'a self,
        partition: &'a Partition,
        leader_local_start: i64,
    ) -> BoxFuture<'a, Result<RemoteRestart, HostError>>;
}

/// The broker as the fetchers see it; they hold it weakly, so they end with the broker.
pub trait FetcherHost: AppendHost {
    /// The settings the fetchers run with.
    fn fetcher_settings(&self) -> FetcherSettings;

    /// A new connection to the leader at `address`, secured as the inter-broker listener is.
    fn link_to(&self, address: String) -> Box<dyn LeaderLink>;

    /// This process's incarnation epoch in cluster mode (-1 without one), sent with every
    /// fetch so the leader can tell this process from an earlier one.
    fn incarnation(&self) -> i64;

    /// Says (in cluster mode, in this broker's registration) that `leader`'s process
    /// `incarnation` refused the fetcher's connection, so the controller can fail it over
    /// before its Lease runs out; `None` withdraws it once the leader answers or is no longer
    /// followed.
    fn report_refusal(&self, leader: i32, incarnation: Option<i64>);

    /// The replicas among `sent` the follower's replication throttle applies to (KIP-73:
    /// listed in their topic's `follower.replication.throttled.replicas`, not in the ISR),
    /// when the throttle is bounded.
    fn throttled_replicas(&self, sent: &[Arc<Partition>]) -> HashSet<FollowedKey>;

    /// Whether the throttled replicas have used up the follower's throttle for now.
    fn follower_throttle_used_up(&self, now_ms: i64) -> bool;

    /// Counts `bytes` fetched for throttled replicas against the throttle.
    fn record_throttled_bytes(&self, bytes: usize, now_ms: i64);

    /// The remote log, if tiered storage is configured: a follower the leader answers
    /// OFFSET_MOVED_TO_TIERED_STORAGE rebuilds from it.
    fn remote_rebuild(&self) -> Option<Arc<dyn RemoteRebuild>>;
}
