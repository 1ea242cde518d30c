//! JoinGroup (Kafka's `handleJoinGroup` and its helpers): new members get an id (KIP-394:
//! dynamic members must come back with it), static members take over their instance's old id
//! (KIP-345), known members rejoin, and the group rebalances when membership or metadata
//! changes.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic::{Group, NEW_MEMBER_JOIN_TIMEOUT_MS};
use super::effects::{AfterStore, Effects, JoinResult, Now, StoreGroup};
use super::member::{Member, MemberProtocol};
use super::protocol;
use super::state::GroupState;

/// A JoinGroup as the group sees it (validated for group id and session timeout).
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Member id; empty for a first join.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols in order of preference.
    pub protocols: Vec<MemberProtocol>,
    /// KIP-394 (JoinGroup v4+, dynamic members): a first join gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// KIP-814 (JoinGroup v9+): a static leader may be told to skip the assignment.
    pub supports_skip_assignment: bool,
    /// Client's reason (logged).
    pub reason: Option<String>,
}

/// What happens to a JoinGroup right away.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Answer now.
    Reply(JoinResult),
    /// Wait for the reply addressed to this member id in [`Effects::joins`].
    Wait(String),
}

impl Group {
    /// Whether a JoinGroup of `member_id` fits under `max_size` members (`group.max.size`,
    /// KIP-389, as Kafka's `acceptJoiningMember` decides): a member of the group may always
    /// rejoin; during a rebalance only the members that rejoined so far count.
    pub fn admits(&self, member_id: &str, max_size: usize) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members.get(member_id).is_some_and(|m| m.awaiting_join)
                    || self.members.values().filter(|m| m.awaiting_join).count() < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max_size
            }
        }
    }

    /// Handles a JoinGroup.
    pub fn join(&mut self, request: JoinRequest, now: Now) -> (JoinOutcome, Effects) {
        let mut effects = Effects::default();
        let outcome = self.join_inner(request, now, &mut effects);
        (outcome, effects)
    }

    fn join_inner(&mut self, request: JoinRequest, now: Now, effects: &mut Effects) -> JoinOutcome {
        use JoinOutcome::Reply;
        let member_id = request.member_id.clone();
        if self.state == GroupState::Dead {
            return Reply(JoinResult::error(
                member_id,
                ResponseError::CoordinatorNotAvailable,
            ));
        }
        if !protocol::supports(
            self.protocol_type.as_deref(),
            self.members.values(),
            &request.protocol_type,
            &request.protocols,
        ) {
            return Reply(JoinResult::error(
                member_id,
                ResponseError::InconsistentGroupProtocol,
            ));
        }
        if member_id.is_empty() {
            self.join_new_member(request, now, effects)
        } else {
            self.join_known_member(request, now, effects)
        }
    }

    fn join_new_member(
        &mut self,
        request: JoinRequest,
        now: Now,
        effects: &mut Effects,
    ) -> JoinOutcome {
        let new_id = Group::new_member_id(&request.client_id, request.instance_id.as_deref());
        if let Some(instance) = request.instance_id.clone() {
            return match self.static_member_id(&instance).map(str::to_string) {
                Some(old_id) => {
                    self.replace_and_rejoin(&instance, &old_id, &new_id, request, now, effects)
                }
                None => self.add_member_and_rebalance(new_id, request, now, effects),
            };
        }
        if request.require_known_member_id {
            let deadline = now.mono + i64::from(request.session_timeout_ms);
            self.pending_members.insert(new_id.clone(), deadline);
            return JoinOutcome::Reply(JoinResult::error(new_id, ResponseError::MemberIdRequired));
        }
        self.add_member_and_rebalance(new_id, request, now, effects)
    }

    fn join_known_member(
        &mut self,
        request: JoinRequest,
        now: Now,
        effects: &mut Effects,
    ) -> JoinOutcome {
        use JoinOutcome::Reply;
        let member_id = request.member_id.clone();
        if self.pending_members.contains_key(&member_id) {
            // The second half of KIP-394: the id handed out with MEMBER_ID_REQUIRED.
            return self.add_member_and_rebalance(member_id, request, now, effects);
        }
        let instance = request.instance_id.as_deref();
        if self.is_fenced(instance, &member_id) {
            return Reply(JoinResult::error(
                member_id,
                ResponseError::FencedInstanceId,
            ));
        }
        let unknown_instance = instance.is_some_and(|i| self.static_member_id(i).is_none());
        if !self.has_member(&member_id) || unknown_instance {
            return Reply(JoinResult::error(member_id, ResponseError::UnknownMemberId));
        }
        let same_metadata = self
            .members
            .get(&member_id)
            .is_some_and(|m| m.matches(&request.protocols));
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(request, now, "member rejoined", effects)
            }
            GroupState::CompletingRebalance if same_metadata => {
                // A retry of a join whose answer was lost: answer from the current generation.
                Reply(self.join_result(&member_id, self.is_leader(&member_id)))
            }
            GroupState::CompletingRebalance => {
                self.update_member_and_rebalance(request, now, "member metadata changed", effects)
            }
            GroupState::Stable if self.is_leader(&member_id) => {
                // The leader rejoins to trigger a rebalance (e.g. topic metadata changed).
                self.update_member_and_rebalance(request, now, "leader rejoined", effects)
            }
            GroupState::Stable if !same_metadata => {
                self.update_member_and_rebalance(request, now, "member metadata changed", effects)
            }
            GroupState::Stable => Reply(self.join_result(&member_id, false)),
            GroupState::Empty | GroupState::Dead => {
                Reply(JoinResult::error(member_id, ResponseError::UnknownMemberId))
            }
        }
    }

    /// Adds a member and starts or feeds a rebalance (`addMemberAndRebalance`).
    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Now,
        effects: &mut Effects,
    ) -> JoinOutcome {
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        tracing::info!(group = %self.id, member = %member_id, instance = ?request.instance_id, "member joining");
        self.add_member(Member {
            id: member_id.clone(),
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: true,
            awaiting_sync: false,
            is_new: true,
            heartbeat_deadline: now.mono + NEW_MEMBER_JOIN_TIMEOUT_MS,
        });
        let reason = request.reason.as_deref().unwrap_or("new member joined");
        self.maybe_prepare_rebalance(now, reason, effects);
        self.try_complete_join(now, effects);
        JoinOutcome::Wait(member_id)
    }

    /// Records a known member's new join and starts or feeds a rebalance.
    fn update_member_and_rebalance(
        &mut self,
        request: JoinRequest,
        now: Now,
        why: &str,
        effects: &mut Effects,
    ) -> JoinOutcome {
        let id = request.member_id.clone();
        if let Some(member) = self.members.get_mut(&id) {
            member.protocols = request.protocols;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.session_timeout_ms = request.session_timeout_ms;
            member.client_id = request.client_id;
            member.client_host = request.client_host;
            member.awaiting_join = true;
        }
        let reason = request.reason.as_deref().unwrap_or(why);
        self.maybe_prepare_rebalance(now, reason, effects);
        self.try_complete_join(now, effects);
        JoinOutcome::Wait(id)
    }

    /// A static member restarted without its member id: it takes over the old id
    /// (`updateStaticMemberAndRebalance`). In a stable group whose protocol choice and this
    /// member's metadata are unchanged there is no rebalance: the new id is persisted and the
    /// member resumes its assignment.
    fn replace_and_rejoin(
        &mut self,
        instance: &str,
        old_id: &str,
        new_id: &str,
        request: JoinRequest,
        now: Now,
        effects: &mut Effects,
    ) -> JoinOutcome {
        tracing::info!(group = %self.id, instance, old = old_id, new = new_id, "static member replaces its old id");
        let old_leader = self.leader.clone().unwrap_or_default();
        let unchanged = self
            .members
            .get(old_id)
            .is_some_and(|m| m.matches(&request.protocols));
        self.replace_static_member(instance, old_id, new_id, effects);
        if let Some(member) = self.members.get_mut(new_id) {
            member.heartbeat_deadline = now.mono + i64::from(request.session_timeout_ms);
            member.protocols = request.protocols.clone();
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.session_timeout_ms = request.session_timeout_ms;
            member.client_id = request.client_id.clone();
            member.client_host = request.client_host.clone();
        }
        match self.state {
            GroupState::Stable
                if unchanged
                    && protocol::select(self.members.values()).as_deref()
                        == self.protocol_name.as_deref() =>
            {
                let mut reply = self.join_result(new_id, false);
                if request.supports_skip_assignment {
                    // KIP-814: a restarted static leader learns it leads but keeps the
                    // current assignment.
                    if self.is_leader(new_id) {
                        reply.members = self.member_metadata();
                    }
                    reply.skip_assignment = true;
                } else {
                    // Older clients would run the assignor if told they lead, and a stable
                    // group would not hand the result out: report the old leader id.
                    reply.leader = if self.is_leader(new_id) {
                        old_leader
                    } else {
                        reply.leader
                    };
                }
                effects.stores.push(StoreGroup {
                    value: self.to_value(None),
                    then: AfterStore::ReplyJoin {
                        member_id: new_id.to_string(),
                        reply,
                    },
                });
                JoinOutcome::Wait(new_id.to_string())
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                if let Some(member) = self.members.get_mut(new_id) {
                    member.awaiting_join = true;
                }
                self.prepare_rebalance(now, "static member rejoined with new metadata", effects);
                JoinOutcome::Wait(new_id.to_string())
            }
            GroupState::PreparingRebalance => {
                if let Some(member) = self.members.get_mut(new_id) {
                    member.awaiting_join = true;
                }
                self.try_complete_join(now, effects);
                JoinOutcome::Wait(new_id.to_string())
            }
            GroupState::Empty | GroupState::Dead => {
                // A static member cannot be registered in an empty or dead group.
                JoinOutcome::Reply(JoinResult::error(new_id, ResponseError::UnknownMemberId))
            }
        }
    }
}
