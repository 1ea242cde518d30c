//! The ConsumerGroupHeartbeat request and response as the core sees them: plain fields,
//! decoupled from the wire types so the decision can be driven by tests and, later, by the
//! handler's translation of kafka-protocol's messages.

use super::assignment::Assignment;
use super::config::ConsumerGroupConfig;
use super::records::Record;
use super::topics::TopicsImage;
use crate::group::records::GroupValue;

/// The fields of a ConsumerGroupHeartbeat request, plus who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// Member id; never empty (the handler makes one for clients that leave it to the
    /// coordinator).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member to leave for a while, else the
    /// member's current epoch.
    pub member_epoch: i32,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Rack id (`None`: unchanged).
    pub rack_id: Option<String>,
    /// Rebalance timeout (-1: unchanged).
    pub rebalance_timeout_ms: i32,
    /// Topics subscribed by name (`None`: unchanged).
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Topics subscribed by regular expression (`None`: unchanged).
    pub subscribed_topic_regex: Option<String>,
    /// Server assignor asked for (`None`: unchanged).
    pub server_assignor: Option<String>,
    /// Partitions the member owns (`None`: not reported in this heartbeat).
    pub owned: Option<Assignment>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
}

/// What a heartbeat is judged against besides the group.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The time now (ms; the caller's clock, the one deadlines are compared with).
    pub now: i64,
    /// The cluster's topics.
    pub topics: &'a TopicsImage,
    /// Group settings.
    pub config: &'a ConsumerGroupConfig,
}

/// The fields of a successful ConsumerGroupHeartbeat response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// The member id to use from now on.
    pub member_id: String,
    /// The epoch to heartbeat with next.
    pub member_epoch: i32,
    /// When to heartbeat next (0 after leaving).
    pub heartbeat_interval_ms: i32,
    /// The member's full assignment, when it changed or the request was a full one.
    pub assignment: Option<Assignment>,
}

/// A heartbeat's result: records to write (already applied to the group) and the answer to
/// send once they are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Records in the order to append them.
    pub records: Vec<Record>,
    /// The response.
    pub response: HeartbeatResponse,
    /// Set when the member's leaving turned the group back into a classic group: the
    /// classic group's metadata record, to write after `records` (the consumer group's
    /// tombstones); the consumer group is gone.
    pub downgrade: Option<GroupValue>,
}
