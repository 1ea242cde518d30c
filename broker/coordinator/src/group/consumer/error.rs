//! Why a heartbeat is refused. Internal and typed; [`HeartbeatError::code`] is the one place
//! each becomes the Kafka error code the client acts on.

use kafka_protocol::error::ResponseError;

/// A refused ConsumerGroupHeartbeat. Nothing changed in the group when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// A field is missing or malformed for the epoch sent.
    #[error("invalid heartbeat: {0}")]
    InvalidRequest(&'static str),
    /// The member asked for an assignor the broker does not run.
    #[error("server assignor {0} is not one of group.consumer.assignors")]
    UnsupportedAssignor(String),
    /// The subscription's regular expression does not compile.
    #[error("subscribed topic regex {regex} is not valid: {reason}")]
    InvalidRegularExpression {
        /// The expression sent.
        regex: String,
        /// What the regex parser said.
        reason: String,
    },
    /// A new member would exceed `group.consumer.max.size`.
    #[error("the group already has its maximum of {max} members")]
    GroupMaxSizeReached {
        /// The limit.
        max: usize,
    },
    /// The member (or the instance id) is not in the group: it must rejoin with epoch 0.
    #[error("member {member} is not in the group; it must rejoin with epoch 0")]
    UnknownMemberId {
        /// The member id (or instance id) sent.
        member: String,
    },
    /// The member's epoch is not one the coordinator accepts: it must give up its partitions
    /// and rejoin.
    #[error("member {member} sent epoch {received} but is at {current}; it must give up its partitions and rejoin")]
    FencedMemberEpoch {
        /// Member id.
        member: String,
        /// Epoch sent.
        received: i32,
        /// Epoch the coordinator has.
        current: i32,
    },
    /// A static member joins while the previous holder of its instance id has not left.
    #[error("instance id {instance} is still used by member {owner}, which must leave first")]
    UnreleasedInstanceId {
        /// The instance id.
        instance: String,
        /// The member holding it.
        owner: String,
    },
    /// A static member was replaced by a newer incarnation with the same instance id.
    #[error("instance id {instance} now belongs to member {owner}, not {member}")]
    FencedInstanceId {
        /// The instance id.
        instance: String,
        /// The member holding it.
        owner: String,
        /// The member id sent.
        member: String,
    },
}

impl HeartbeatError {
    /// The Kafka error code the response carries.
    pub fn code(&self) -> ResponseError {
        match self {
            HeartbeatError::InvalidRequest(_) => ResponseError::InvalidRequest,
            HeartbeatError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
            HeartbeatError::InvalidRegularExpression { .. } => {
                ResponseError::InvalidRegularExpression
            }
            HeartbeatError::GroupMaxSizeReached { .. } => ResponseError::GroupMaxSizeReached,
            HeartbeatError::UnknownMemberId { .. } => ResponseError::UnknownMemberId,
            HeartbeatError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
            HeartbeatError::UnreleasedInstanceId { .. } => ResponseError::UnreleasedInstanceId,
            HeartbeatError::FencedInstanceId { .. } => ResponseError::FencedInstanceId,
        }
    }
}
