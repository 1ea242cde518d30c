//! One member of a consumer group (KIP-848): what it subscribes to, which epoch it is at and
//! where it stands in reconciling its assignment towards the group's target.

use std::collections::BTreeSet;

use super::assignment::Assignment;
use super::records::ClassicMemberMetadata;

/// The member epoch a leaving member sends (and a removed member is left with).
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch a static member sends when it leaves for a while (KIP-345): its
/// instance id keeps its place until the session expires.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Where a member stands in its reconciliation (Kafka's `MemberState`; the numbers are the
/// ones records carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// At its target epoch with everything the target gives it.
    Stable,
    /// Must stop owning some partitions before it may move to the next epoch.
    UnrevokedPartitions,
    /// At its target epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
    /// A state a newer coordinator wrote: the member is fenced to rejoin from scratch.
    Unknown,
}

impl MemberState {
    /// The record's number for the state.
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// The state a record's number names; unknown numbers are [`MemberState::Unknown`], as
    /// Kafka reads them.
    pub fn from_value(value: i8) -> MemberState {
        match value {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// A consumer group member. The subscription half is persisted by the member metadata
/// record, the epoch half by the current assignment record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id (chosen by the client in Kafka 4; never empty).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub instance_id: Option<String>,
    /// `client.rack`, for rack-aware assignors.
    pub rack_id: Option<String>,
    /// Client id of the last heartbeat, for describe.
    pub client_id: String,
    /// Client address of the last heartbeat, for describe.
    pub client_host: String,
    /// Topics subscribed by name.
    pub subscribed_topic_names: BTreeSet<String>,
    /// Topics subscribed by regular expression (RE2 syntax, as Kafka's RE2/J).
    pub subscribed_topic_regex: Option<String>,
    /// How long the member may take to revoke partitions before it is fenced.
    pub rebalance_timeout_ms: i32,
    /// The server-side assignor the member asked for.
    pub server_assignor: Option<String>,
    /// The epoch the member must heartbeat with.
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response was lost may retry with it.
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions the member owns or is being given.
    pub assigned: Assignment,
    /// Partitions the member must give up before moving on.
    pub pending_revocation: Assignment,
    /// Set for a member speaking the classic protocol in a migrated group (kept for records).
    pub classic: Option<ClassicMemberMetadata>,
}

impl Member {
    /// A member that has just joined: epoch 0, nothing assigned.
    pub fn new(member_id: &str) -> Member {
        Member {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
        }
    }

    /// Whether the member is done reconciling towards the target of `assignment_epoch`.
    pub fn is_reconciled_to(&self, assignment_epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == assignment_epoch
    }

    /// Whether the subscription (what the assignment is computed from) differs.
    pub fn subscription_differs(&self, other: &Member) -> bool {
        self.subscribed_topic_names != other.subscribed_topic_names
            || self.subscribed_topic_regex != other.subscribed_topic_regex
    }

    /// Whether the member metadata record's fields differ (a new record is due).
    pub fn metadata_differs(&self, other: &Member) -> bool {
        self.instance_id != other.instance_id
            || self.rack_id != other.rack_id
            || self.client_id != other.client_id
            || self.client_host != other.client_host
            || self.subscription_differs(other)
            || self.rebalance_timeout_ms != other.rebalance_timeout_ms
            || self.server_assignor != other.server_assignor
            || self.classic != other.classic
    }

    /// Whether the current assignment record's fields differ.
    pub fn assignment_differs(&self, other: &Member) -> bool {
        self.member_epoch != other.member_epoch
            || self.previous_member_epoch != other.previous_member_epoch
            || self.state != other.state
            || self.assigned != other.assigned
            || self.pending_revocation != other.pending_revocation
    }

    /// The member's session timeout: its own for a classic member, else the group's.
    pub fn session_timeout_ms(&self, group_default: i32) -> i32 {
        self.classic
            .as_ref()
            .map_or(group_default, |c| c.session_timeout_ms)
    }

    /// Whether the member speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat).
    pub fn uses_classic_protocol(&self) -> bool {
        self.classic.is_some()
    }

    /// Every partition the member may still be consuming: assigned and pending revocation.
    pub fn owned(&self) -> Assignment {
        let mut all = self.assigned.clone();
        all.extend(&self.pending_revocation);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_states_map_to_kafkas_numbers() {
        for s in [
            MemberState::Stable,
            MemberState::UnrevokedPartitions,
            MemberState::UnreleasedPartitions,
            MemberState::Unknown,
        ] {
            assert_eq!(MemberState::from_value(s.value()), s);
        }
        assert_eq!(MemberState::from_value(9), MemberState::Unknown);
    }
}
