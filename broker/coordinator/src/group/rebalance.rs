//! Rebalance phases: starting a rebalance, ending the join phase, handing out assignments,
//! and the timers that bound each phase (Kafka's DelayedJoin, InitialDelayedJoin,
//! DelayedSync and DelayedHeartbeat, as deadlines checked by [`Group::tick`]).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic::{Group, InitialDelay, JoinPhase};
use super::effects::{AfterStore, Effects, Now, StoreGroup, SyncResult};
use super::state::GroupState;

impl Group {
    /// Starts a rebalance if the state allows one (`maybePrepareRebalance`).
    pub(super) fn maybe_prepare_rebalance(
        &mut self,
        now: Now,
        reason: &str,
        effects: &mut Effects,
    ) {
        if self.state.can_rebalance() {
            self.prepare_rebalance(now, reason, effects);
        }
    }

    /// Enters PreparingRebalance (`prepareRebalance`): members waiting for an assignment are
    /// told to rejoin, and the join phase starts, with the initial delay for an empty group.
    pub(super) fn prepare_rebalance(&mut self, now: Now, reason: &str, effects: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_assignments(now, ResponseError::RebalanceInProgress, effects);
        }
        self.sync_deadline = None;
        let rebalance_timeout = self.rebalance_timeout_ms();
        self.join_phase = Some(if self.state == GroupState::Empty {
            let delay = self.initial_delay_ms;
            JoinPhase {
                deadline: now.mono + delay,
                initial: Some(InitialDelay {
                    remaining_ms: (rebalance_timeout - delay).max(0),
                }),
            }
        } else {
            JoinPhase {
                deadline: now.mono + rebalance_timeout,
                initial: None,
            }
        });
        tracing::info!(group = %self.id, generation = self.generation, reason, "preparing to rebalance");
        self.transition(GroupState::PreparingRebalance, now);
        self.try_complete_join(now, effects);
    }

    /// Ends the join phase early once every member has rejoined (never during the initial
    /// delay, which always runs its course).
    pub(super) fn try_complete_join(&mut self, now: Now, effects: &mut Effects) {
        let early = self.join_phase.is_some_and(|p| p.initial.is_none());
        if self.state == GroupState::PreparingRebalance && early && self.all_joined() {
            self.complete_join(now, effects);
        }
    }

    /// Ends the join phase (`onCompleteJoin`): dynamic members that did not rejoin are
    /// dropped, then the next generation starts and every joined member gets its answer,
    /// the leader with all members' metadata.
    pub(super) fn complete_join(&mut self, now: Now, effects: &mut Effects) {
        self.join_phase = None;
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && !m.is_static())
            .map(|m| m.id.clone())
            .collect();
        for id in &missing {
            tracing::info!(group = %self.id, member = %id, "removing member that did not rejoin");
            self.remove_member(id, effects);
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined are left: wait another round for
            // them to come back or for their sessions to expire.
            self.join_phase = Some(JoinPhase {
                deadline: now.mono + self.rebalance_timeout_ms(),
                initial: None,
            });
            return;
        }
        self.init_next_generation(now);
        if self.state == GroupState::Empty {
            tracing::info!(group = %self.id, generation = self.generation, "group is now empty");
            effects.stores.push(StoreGroup {
                value: self.to_value(None),
                then: AfterStore::Nothing,
            });
            return;
        }
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            members = self.members.len(),
            protocol = self.protocol_name.as_deref().unwrap_or_default(),
            "group joined"
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let reply = self.join_result(&id, self.is_leader(&id));
            if let Some(member) = self.members.get_mut(&id) {
                if member.awaiting_join {
                    member.awaiting_join = false;
                    effects.joins.push((id.clone(), reply));
                }
                member.is_new = false;
                member.heartbeat_deadline = now.mono + i64::from(member.session_timeout_ms);
            }
            self.pending_sync.insert(id);
        }
        self.sync_deadline = Some(now.mono + self.rebalance_timeout_ms());
    }

    /// Hands out the leader's assignment once stored (`setAndPropagateAssignment`) and
    /// becomes Stable.
    pub(super) fn propagate_assignments(
        &mut self,
        now: Now,
        assignments: &[(String, Bytes)],
        effects: &mut Effects,
    ) {
        for member in self.members.values_mut() {
            member.assignment = assignments
                .iter()
                .find(|(id, _)| *id == member.id)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
        }
        self.answer_syncs(now, None, effects);
        self.transition(GroupState::Stable, now);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    /// Clears assignments and fails waiting SyncGroups with `error`
    /// (`resetAndPropagateAssignmentError`).
    pub(super) fn reset_assignments(
        &mut self,
        now: Now,
        error: ResponseError,
        effects: &mut Effects,
    ) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.answer_syncs(now, Some(error), effects);
    }

    fn answer_syncs(&mut self, now: Now, error: Option<ResponseError>, effects: &mut Effects) {
        let (protocol_type, protocol_name) =
            (self.protocol_type.clone(), self.protocol_name.clone());
        for member in self.members.values_mut() {
            if member.awaiting_sync {
                member.awaiting_sync = false;
                let reply = match error {
                    Some(e) => SyncResult::error(e),
                    None => SyncResult {
                        error: None,
                        protocol_type: protocol_type.clone(),
                        protocol_name: protocol_name.clone(),
                        assignment: member.assignment.clone(),
                    },
                };
                effects.syncs.push((member.id.clone(), reply));
            }
            member.heartbeat_deadline = now.mono + i64::from(member.session_timeout_ms);
        }
    }

    /// Fires every deadline that has passed at `now`.
    pub fn tick(&mut self, now: Now) -> Effects {
        let mut effects = Effects::default();
        if self.state == GroupState::Dead {
            return effects;
        }
        self.expire_pending_members(now, &mut effects);
        self.expire_heartbeats(now, &mut effects);
        // A zero initial delay extends to another zero delay: end those at once too (bounded,
        // in case a zero rebalance timeout keeps re-arming a phase that is already due).
        for _ in 0..4 {
            let Some(phase) = self.join_phase.filter(|p| p.deadline <= now.mono) else {
                break;
            };
            self.end_join_phase(now, phase, &mut effects);
        }
        if self.sync_deadline.is_some_and(|d| d <= now.mono) {
            self.expire_pending_sync(now, &mut effects);
        }
        effects
    }

    fn expire_pending_members(&mut self, now: Now, effects: &mut Effects) {
        let before = self.pending_members.len();
        self.pending_members
            .retain(|_, deadline| *deadline > now.mono);
        if self.pending_members.len() != before {
            tracing::info!(group = %self.id, "pending members expired before rejoining");
            self.try_complete_join(now, effects);
        }
    }

    fn expire_heartbeats(&mut self, now: Now, effects: &mut Effects) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline <= now.mono && !m.waiting_excuses_heartbeat())
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member_and_rebalance(&id, now, "member session expired", effects);
        }
    }

    /// Removes a member and reacts as Kafka's `removeMemberAndUpdateGroup` does.
    pub(super) fn remove_member_and_rebalance(
        &mut self,
        id: &str,
        now: Now,
        reason: &str,
        effects: &mut Effects,
    ) {
        if self.remove_member(id, effects).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now, reason, effects)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn end_join_phase(&mut self, now: Now, phase: JoinPhase, effects: &mut Effects) {
        if let Some(initial) = phase.initial {
            if self.new_member_added && initial.remaining_ms > 0 {
                // More members arrived during the delay: wait one more delay for stragglers.
                self.new_member_added = false;
                let delay = self.initial_delay_ms.min(initial.remaining_ms);
                self.join_phase = Some(JoinPhase {
                    deadline: now.mono + delay,
                    initial: Some(InitialDelay {
                        remaining_ms: (initial.remaining_ms - delay).max(0),
                    }),
                });
                return;
            }
        }
        self.complete_join(now, effects);
    }

    fn expire_pending_sync(&mut self, now: Now, effects: &mut Effects) {
        self.sync_deadline = None;
        if !matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) {
            return;
        }
        let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
        tracing::info!(group = %self.id, ?missing, "removing members that did not send SyncGroup");
        for id in &missing {
            self.remove_member(id, effects);
        }
        self.prepare_rebalance(now, "members did not sync in time", effects);
    }
}
