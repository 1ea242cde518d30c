//! Heartbeat and LeaveGroup (Kafka's `handleHeartbeat` and `handleLeaveGroup`).

use kafka_protocol::error::ResponseError;

use super::classic::Group;
use super::effects::{Effects, Now};
use super::state::GroupState;

/// One member leaving, as LeaveGroup v3+ lists them.
#[derive(Debug, Clone)]
pub struct LeavingMember {
    /// Member id; empty to remove a static member by instance id (admin removal).
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client's reason (logged).
    pub reason: Option<String>,
}

impl Group {
    /// Handles a heartbeat: `Ok` keeps the session alive; REBALANCE_IN_PROGRESS (also
    /// keeping it alive) tells the member to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Now,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if self.is_fenced(instance_id, member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.has_member(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        self.touch(member_id, now);
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Pushes a member's session deadline out by its session timeout.
    pub(super) fn touch(&mut self, member_id: &str, now: Now) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline = now.mono + i64::from(member.session_timeout_ms);
        }
    }

    /// Handles a LeaveGroup: one result per leaving member.
    pub fn leave(
        &mut self,
        leaving: &[LeavingMember],
        now: Now,
    ) -> (
        Result<Vec<Result<(), ResponseError>>, ResponseError>,
        Effects,
    ) {
        let mut effects = Effects::default();
        if self.state == GroupState::Dead {
            return (Err(ResponseError::CoordinatorNotAvailable), effects);
        }
        let results = leaving
            .iter()
            .map(|m| self.leave_one(m, now, &mut effects))
            .collect();
        (Ok(results), effects)
    }

    fn leave_one(
        &mut self,
        m: &LeavingMember,
        now: Now,
        effects: &mut Effects,
    ) -> Result<(), ResponseError> {
        let reason = format!(
            "member left the group: {}",
            m.reason.as_deref().unwrap_or("no reason given")
        );
        if m.member_id.is_empty() {
            // Administrative removal of a static member by instance id.
            let id = m
                .instance_id
                .as_deref()
                .and_then(|i| self.static_member_id(i))
                .map(str::to_string)
                .ok_or(ResponseError::UnknownMemberId)?;
            self.remove_member_and_rebalance(&id, now, &reason, effects);
            return Ok(());
        }
        if self.pending_members.remove(&m.member_id).is_some() {
            if self.state == GroupState::PreparingRebalance {
                self.try_complete_join(now, effects);
            }
            return Ok(());
        }
        if self.is_fenced(m.instance_id.as_deref(), &m.member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.has_member(&m.member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        tracing::info!(group = %self.id, member = %m.member_id, "member leaving");
        self.remove_member_and_rebalance(&m.member_id, now, &reason, effects);
        Ok(())
    }
}
