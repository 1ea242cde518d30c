//! What a group operation decided beyond its own answer: replies to requests that were
//! waiting, and group records to persist. Group logic returns these instead of doing I/O, so
//! it can be tested step by step; the coordinator carries them out.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::records::GroupValue;

/// The time an operation runs at: a monotonic clock for deadlines and the wall clock for
/// what is persisted (commit and state-change timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (deadlines).
    pub mono: i64,
    /// Milliseconds since the Unix epoch (persisted timestamps).
    pub wall: i64,
}

/// A member as the leader's JoinGroup response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id, if any.
    pub instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Error, or `None` for success.
    pub error: Option<ResponseError>,
    /// The member id the client must use from now on.
    pub member_id: String,
    /// Generation id (-1 on error).
    pub generation: i32,
    /// Protocol type of the group.
    pub protocol_type: Option<String>,
    /// Protocol selected for this generation.
    pub protocol_name: Option<String>,
    /// Leader's member id ("" when unknown).
    pub leader: String,
    /// KIP-814: the leader must not run the assignor (static leader rejoining a stable group).
    pub skip_assignment: bool,
    /// All members with metadata, for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// An error answer that hands `member_id` back.
    pub fn error(member_id: impl Into<String>, error: ResponseError) -> JoinResult {
        JoinResult {
            error: Some(error),
            member_id: member_id.into(),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Error, or `None` for success.
    pub error: Option<ResponseError>,
    /// Protocol type of the group.
    pub protocol_type: Option<String>,
    /// Protocol of the generation.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer.
    pub fn error(error: ResponseError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What to do once a group record is durable (or failed to be written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStore {
    /// Nothing waits for it (e.g. the group became empty).
    Nothing,
    /// The leader's assignment for `generation`: hand it out and become Stable.
    CompleteSync {
        /// Generation the assignment belongs to.
        generation: i32,
        /// Assignment per member id.
        assignments: Vec<(String, Bytes)>,
    },
    /// A static member replaced its old id in a stable group: answer its JoinGroup.
    ReplyJoin {
        /// The member's new id.
        member_id: String,
        /// The answer to send once the new id is durable.
        reply: JoinResult,
    },
}

/// A group metadata record to append to the group's `__consumer_offsets` partition.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreGroup {
    /// The record value.
    pub value: GroupValue,
    /// Follow-up once the write is durable.
    pub then: AfterStore,
}

/// Everything an operation asks the coordinator to carry out.
#[derive(Debug, Default)]
pub struct Effects {
    /// Answers for waiting JoinGroup requests, by member id.
    pub joins: Vec<(String, JoinResult)>,
    /// Answers for waiting SyncGroup requests, by member id.
    pub syncs: Vec<(String, SyncResult)>,
    /// Group records to persist, in order.
    pub stores: Vec<StoreGroup>,
}

impl Effects {
    /// Adds everything in `other` after what is here.
    pub fn extend(&mut self, other: Effects) {
        self.joins.extend(other.joins);
        self.syncs.extend(other.syncs);
        self.stores.extend(other.stores);
    }
}
