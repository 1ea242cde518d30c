//! Which offset commits a group accepts (Kafka's `validateOffsetCommit` and the state check
//! of `doCommitOffsets`).

use kafka_protocol::error::ResponseError;

use super::classic::Group;
use super::effects::Now;
use super::state::GroupState;

/// Who is committing.
#[derive(Debug, Clone, Default)]
pub struct Committer {
    /// Member id ("" for a client not using group management).
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Generation (-1 for a client not using group management).
    pub generation: i32,
}

impl Group {
    /// Whether `who` may commit now; an accepted commit from a member also counts as a
    /// heartbeat.
    pub fn check_commit(&mut self, who: &Committer, now: Now) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        // Generation -1 on an empty group: an admin client or a consumer that assigns its own
        // partitions, whatever member id it sends (librdkafka's consumer-protocol client sends
        // the one it generated), as Kafka's ClassicGroup.validateOffsetCommit accepts it.
        if who.generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if who.is_managed() {
            self.check_member(who)?;
        } else if self.state != GroupState::Empty {
            // Only members may commit for a group that has members.
            return Err(ResponseError::UnknownMemberId);
        }
        match self.state {
            GroupState::Empty => Ok(()),
            GroupState::Stable | GroupState::PreparingRebalance => {
                // Commits stay allowed while preparing: the heartbeat tells the member to rejoin.
                self.touch(&who.member_id, now);
                Ok(())
            }
            GroupState::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Dead => Err(ResponseError::CoordinatorNotAvailable),
        }
    }
}

impl Group {
    /// Whether `who` may send offsets with a transaction (TxnOffsetCommit, KIP-447): a
    /// producer outside group management always may; a member must be current. Unlike plain
    /// commits, the group's state does not matter: the offsets apply when the transaction
    /// commits.
    pub fn check_txn_commit(&self, who: &Committer) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if who.is_managed() {
            self.check_member(who)
        } else {
            Ok(())
        }
    }

    /// A committer claiming membership must be the current member at this generation.
    fn check_member(&self, who: &Committer) -> Result<(), ResponseError> {
        if self.is_fenced(who.instance_id.as_deref(), &who.member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.has_member(&who.member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if who.generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }
}

impl Committer {
    /// Whether the committer claims group membership (else it is a client managing its own
    /// assignment).
    fn is_managed(&self) -> bool {
        self.generation >= 0 || !self.member_id.is_empty() || self.instance_id.is_some()
    }
}
