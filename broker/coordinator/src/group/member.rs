//! One member of a classic group, as the coordinator tracks it between requests.

use bytes::Bytes;

/// A protocol a member supports (for consumers: an assignor name and its subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProtocol {
    /// Protocol name, e.g. `range` or `cooperative-sticky`.
    pub name: String,
    /// Opaque metadata the leader's assignor reads (the consumer subscription).
    pub metadata: Bytes,
}

/// A group member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Coordinator-assigned id (`<client or instance id>-<uuid>`).
    pub id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub instance_id: Option<String>,
    /// Client id from the request header, for DescribeGroups.
    pub client_id: String,
    /// Client address, for DescribeGroups.
    pub client_host: String,
    /// Heartbeats must arrive within this many milliseconds.
    pub session_timeout_ms: i32,
    /// How long this member may take to rejoin during a rebalance.
    pub rebalance_timeout_ms: i32,
    /// Protocol type (`consumer`, `connect`, ...).
    pub protocol_type: String,
    /// Supported protocols in the member's order of preference.
    pub protocols: Vec<MemberProtocol>,
    /// Assignment from the last completed SyncGroup.
    pub assignment: Bytes,
    /// A JoinGroup from this member is waiting for the join phase to end.
    pub awaiting_join: bool,
    /// A SyncGroup from this member is waiting for the leader's assignment.
    pub awaiting_sync: bool,
    /// Joined but has not completed a join phase yet: expires on its join deadline even while
    /// waiting, because it has no member id to heartbeat with.
    pub is_new: bool,
    /// Monotonic time (ms) by which the next heartbeat must arrive.
    pub heartbeat_deadline: i64,
}

impl Member {
    /// Metadata this member sent for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    /// Whether `protocols` equals what the member already sent (same names, order and bytes).
    pub fn matches(&self, protocols: &[MemberProtocol]) -> bool {
        self.protocols == protocols
    }

    /// Whether a missed heartbeat deadline is forgiven: members waiting in a join or sync
    /// phase need not heartbeat, except new ones (`MemberMetadata.hasSatisfiedHeartbeat`).
    pub fn waiting_excuses_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join || self.awaiting_sync)
    }

    /// Whether this member belongs to the static-membership world.
    pub fn is_static(&self) -> bool {
        self.instance_id.is_some()
    }
}
