//! SyncGroup (Kafka's `doSyncGroup`): members wait for the leader's assignment, which is
//! persisted before it is handed out; in a stable group a member just gets its assignment.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic::Group;
use super::effects::{AfterStore, Effects, Now, StoreGroup, SyncResult};
use super::state::GroupState;

/// A SyncGroup as the group sees it.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Generation the member believes in.
    pub generation: i32,
    /// Protocol type the member believes in (v5+).
    pub protocol_type: Option<String>,
    /// Protocol the member believes in (v5+).
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id (empty for followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// What happens to a SyncGroup right away.
#[derive(Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Answer now.
    Reply(SyncResult),
    /// Wait for the reply addressed to this member id in [`Effects::syncs`].
    Wait(String),
}

impl Group {
    /// Handles a SyncGroup.
    pub fn sync(&mut self, request: SyncRequest, now: Now) -> (SyncOutcome, Effects) {
        let mut effects = Effects::default();
        let outcome = self.sync_inner(request, now, &mut effects);
        (outcome, effects)
    }

    fn sync_inner(&mut self, request: SyncRequest, now: Now, effects: &mut Effects) -> SyncOutcome {
        let error = |e| SyncOutcome::Reply(SyncResult::error(e));
        let id = request.member_id.clone();
        if self.state == GroupState::Dead {
            return error(ResponseError::CoordinatorNotAvailable);
        }
        if self.is_fenced(request.instance_id.as_deref(), &id) {
            return error(ResponseError::FencedInstanceId);
        }
        if !self.has_member(&id) {
            return error(ResponseError::UnknownMemberId);
        }
        if request.generation != self.generation {
            return error(ResponseError::IllegalGeneration);
        }
        let mismatch = |asked: &Option<String>, have: &Option<String>| {
            asked.as_ref().is_some_and(|a| have.as_ref() != Some(a))
        };
        if mismatch(&request.protocol_type, &self.protocol_type)
            || mismatch(&request.protocol_name, &self.protocol_name)
        {
            return error(ResponseError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty => error(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => error(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                if let Some(member) = self.members.get_mut(&id) {
                    member.awaiting_sync = true;
                }
                self.synced(&id);
                if self.is_leader(&id) {
                    let mut assignments = request.assignments;
                    for member in self.members.keys() {
                        if !assignments.iter().any(|(m, _)| m == member) {
                            tracing::warn!(group = %self.id, member = %member, "leader gave no assignment; using an empty one");
                            assignments.push((member.clone(), Bytes::new()));
                        }
                    }
                    assignments.retain(|(m, _)| self.members.contains_key(m));
                    tracing::info!(group = %self.id, generation = self.generation, "assignment received from leader");
                    effects.stores.push(StoreGroup {
                        value: self.to_value(Some(&assignments)),
                        then: AfterStore::CompleteSync {
                            generation: self.generation,
                            assignments,
                        },
                    });
                }
                SyncOutcome::Wait(id)
            }
            GroupState::Stable => {
                self.synced(&id);
                let Some(member) = self.members.get_mut(&id) else {
                    return error(ResponseError::UnknownMemberId);
                };
                member.heartbeat_deadline = now.mono + i64::from(member.session_timeout_ms);
                let assignment = member.assignment.clone();
                SyncOutcome::Reply(self.sync_result(assignment))
            }
            GroupState::Dead => error(ResponseError::CoordinatorNotAvailable),
        }
    }

    fn synced(&mut self, id: &str) {
        self.pending_sync.remove(id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    /// Continues after a group record was written (`Ok`) or failed with the Kafka error.
    pub fn on_stored(
        &mut self,
        then: AfterStore,
        result: Result<(), ResponseError>,
        now: Now,
    ) -> Effects {
        let mut effects = Effects::default();
        match then {
            AfterStore::Nothing => {}
            AfterStore::CompleteSync {
                generation,
                assignments,
            } => {
                // The group may have moved on while the record was written.
                if self.state != GroupState::CompletingRebalance || self.generation != generation {
                    return effects;
                }
                match result {
                    Ok(()) => self.propagate_assignments(now, &assignments, &mut effects),
                    Err(error) => {
                        self.reset_assignments(now, error, &mut effects);
                        self.maybe_prepare_rebalance(
                            now,
                            "storing the assignment failed",
                            &mut effects,
                        );
                    }
                }
            }
            AfterStore::ReplyJoin { member_id, reply } => {
                let reply = match result {
                    Ok(()) => reply,
                    Err(error) => super::effects::JoinResult::error("", error),
                };
                effects.joins.push((member_id, reply));
            }
        }
        effects
    }
}
