//! Classic members of a consumer group (Kafka's `classicGroupJoinToConsumerGroup`,
//! `classicGroupSyncToConsumerGroup`, `classicGroupHeartbeatToConsumerGroup` and
//! `classicGroupLeaveToConsumerGroup`): JoinGroup runs the same three steps as a heartbeat
//! (membership and group epoch, target assignment, one reconciliation step) with the
//! subscription and owned partitions read from the embedded consumer protocol; SyncGroup
//! hands out the member's assigned partitions; Heartbeat answers REBALANCE_IN_PROGRESS
//! whenever the member must rejoin to move on. A partition the member still owns is
//! released only when its next JoinGroup no longer reports it (cooperative members) or
//! reports nothing (eager members revoke everything before rejoining), so incremental
//! reconciliation holds for classic members too.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::embedded::{decode_subscription, encode_assignment, subscription_version};
use super::group::{ConsumerGroup, RebalanceDeadline};
use super::heartbeat::Advance;
use super::member::{Member, MemberState};
use super::migration::{by_id, named, CONSUMER_PROTOCOL_TYPE};
use super::records::{ClassicMemberMetadata, Record};
use super::request::Context;
use super::topics::TopicsImage;

/// A JoinGroup as a consumer group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicJoin {
    /// Member id; empty for a first join.
    pub member_id: String,
    /// The id a new member gets (made by the caller, which owns the randomness).
    pub new_member_id: String,
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
    /// Protocol type (must be `consumer`).
    pub protocol_type: String,
    /// Protocols (assignor name, embedded subscription) in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394: a first join of a dynamic member is answered MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// A successful JoinGroup of a classic member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicJoined {
    /// The member id to use.
    pub member_id: String,
    /// The generation: the member's epoch.
    pub generation: i32,
    /// The protocol: the member's most preferred one.
    pub protocol_name: String,
}

/// A refused classic request: the code, and the member id to hand back (the new one for
/// MEMBER_ID_REQUIRED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicRefused {
    /// Kafka error code.
    pub code: ResponseError,
    /// Member id for the response.
    pub member_id: String,
}

impl ConsumerGroup {
    /// JoinGroup of a classic member: the records (applied) and the answer.
    pub fn classic_join(
        &mut self,
        req: &ClassicJoin,
        ctx: &Context<'_>,
    ) -> Result<(Vec<Record>, ClassicJoined), ClassicRefused> {
        let refuse = |code, member_id: &str| ClassicRefused {
            code,
            member_id: member_id.to_string(),
        };
        let new_id = if req.member_id.is_empty() {
            &req.new_member_id
        } else {
            &req.member_id
        };
        if !self.supports_classic_protocols(new_id, &req.protocol_type, &req.protocols) {
            return Err(refuse(ResponseError::InconsistentGroupProtocol, new_id));
        }
        if req.instance_id.is_none() && req.member_id.is_empty() && req.require_known_member_id {
            return Err(refuse(ResponseError::MemberIdRequired, new_id));
        }
        let unreadable = || refuse(ResponseError::InconsistentGroupProtocol, new_id);
        let (first, metadata) = req.protocols.first().ok_or_else(unreadable)?;
        let subscription = decode_subscription(metadata).ok_or_else(unreadable)?;
        // The identity checks refuse before changing anything; nothing fails after them.
        let mut records = Vec::new();
        let id = self.classic_joining(req, ctx, &mut records)?;
        let is_new = !self.members.contains_key(&id);
        let member = self
            .members
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Member::new(&id));
        let mut updated = member.clone();
        if req.instance_id.is_some() {
            updated.instance_id.clone_from(&req.instance_id);
        }
        if subscription.rack.is_some() {
            updated.rack_id.clone_from(&subscription.rack);
        }
        updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
        updated.server_assignor = None;
        updated.subscribed_topic_names = subscription.topics.iter().cloned().collect();
        updated.subscribed_topic_regex = None;
        updated.client_id.clone_from(&req.client_id);
        updated.client_host.clone_from(&req.client_host);
        updated.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: req.session_timeout_ms,
            supported_protocols: req.protocols.clone(),
        });
        let owned = by_id(&subscription.owned, ctx.topics);
        // The rejoin it was asked for: its join deadline is met.
        self.rebalance_deadlines.remove(&id);
        records.extend(self.advance(
            Advance {
                before: &member,
                updated,
                is_new,
                owned: Some(&owned),
                session_timeout_ms: req.session_timeout_ms,
            },
            ctx,
        ));
        let generation = self.members.get(&id).map_or(0, |m| m.member_epoch);
        // Kafka's sync timeout: the member must SyncGroup within its rebalance timeout.
        self.rebalance_deadlines
            .entry(id.clone())
            .or_insert(RebalanceDeadline {
                at: ctx
                    .now
                    .saturating_add(i64::from(req.rebalance_timeout_ms.max(0))),
                member_epoch: generation,
            });
        Ok((
            records,
            ClassicJoined {
                member_id: id,
                generation,
                protocol_name: first.clone(),
            },
        ))
    }

    /// Who a classic JoinGroup is from (the identity checks); a static member
    /// rejoining without its member id takes over its instance's place.
    fn classic_joining(
        &mut self,
        req: &ClassicJoin,
        ctx: &Context<'_>,
        records: &mut Vec<Record>,
    ) -> Result<String, ClassicRefused> {
        let refuse = |code, member_id: &str| ClassicRefused {
            code,
            member_id: member_id.to_string(),
        };
        let id = if req.member_id.is_empty() {
            req.new_member_id.clone()
        } else {
            req.member_id.clone()
        };
        let Some(instance) = &req.instance_id else {
            return match self.members.get(&id) {
                Some(m) if !m.uses_classic_protocol() => {
                    Err(refuse(ResponseError::UnknownMemberId, &id))
                }
                Some(_) => Ok(id),
                None => self.room_for(&id, ctx).map(|()| id),
            };
        };
        match self.static_member(instance).map(|m| m.member_id.clone()) {
            None => self.room_for(&id, ctx).map(|()| id),
            Some(holder) if holder == id => Ok(id),
            Some(holder) if req.member_id.is_empty() => {
                self.replace_static_member(&holder, &id, records);
                Ok(id)
            }
            Some(_) => Err(refuse(ResponseError::FencedInstanceId, &req.member_id)),
        }
    }

    /// GROUP_MAX_SIZE_REACHED when a new member would exceed `group.consumer.max.size`.
    fn room_for(&self, id: &str, ctx: &Context<'_>) -> Result<(), ClassicRefused> {
        if self.members.len() >= ctx.config.max_size {
            return Err(ClassicRefused {
                code: ResponseError::GroupMaxSizeReached,
                member_id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Whether a classic member offering `protocols` may join (Kafka's
    /// `supportsClassicProtocols`): the consumer protocol type, and one protocol every other
    /// classic member supports.
    fn supports_classic_protocols(
        &self,
        member_id: &str,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if protocol_type != CONSUMER_PROTOCOL_TYPE || protocols.is_empty() {
            return false;
        }
        let others: Vec<&ClassicMemberMetadata> = self
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .filter_map(|m| m.classic.as_ref())
            .collect();
        protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|c| c.supported_protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// The classic member a request names (by instance id when it has one), checked to speak
    /// the classic protocol (Kafka's `validateConsumerGroupMember` and
    /// `throwIfMemberDoesNotUseClassicProtocol`).
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&Member, ResponseError> {
        let member = match instance_id {
            None => self.members.get(member_id),
            Some(instance) => {
                let m = self.static_member(instance);
                if m.is_some_and(|m| m.member_id != member_id) {
                    return Err(ResponseError::FencedInstanceId);
                }
                m
            }
        };
        member
            .filter(|m| m.uses_classic_protocol())
            .ok_or(ResponseError::UnknownMemberId)
    }

    /// SyncGroup of a classic member: its assigned partitions in the embedded protocol, at
    /// the version of its subscription; it must come within the rebalance timeout of the
    /// JoinGroup. REBALANCE_IN_PROGRESS when the group moved on and
    /// the member must rejoin first (unless it is revoking: then it syncs to learn what).
    pub fn classic_sync(
        &mut self,
        sync: &ClassicSync<'_>,
        now: i64,
    ) -> Result<Bytes, ResponseError> {
        let member = self.classic_member(sync.member_id, sync.instance_id)?;
        if sync.generation != member.member_epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let Some(classic) = &member.classic else {
            return Err(ResponseError::UnknownMemberId);
        };
        let first = classic.supported_protocols.first();
        if sync
            .protocol_type
            .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
            || sync
                .protocol_name
                .is_some_and(|n| first.is_none_or(|(f, _)| f != n))
        {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        if self.group_epoch > member.member_epoch
            && member.state != MemberState::UnrevokedPartitions
        {
            return Err(ResponseError::RebalanceInProgress);
        }
        let version = first.map_or(0, |(_, m)| subscription_version(m));
        let assignment = encode_assignment(version, &named(&member.assigned, &self.topic_names()));
        let timeout = classic.session_timeout_ms;
        let id = member.member_id.clone();
        if member.state != MemberState::UnrevokedPartitions {
            // The sync timeout is met (a revoking member keeps its rebalance deadline).
            self.rebalance_deadlines.remove(&id);
        }
        self.session_deadlines
            .insert(id, now.saturating_add(i64::from(timeout)));
        Ok(assignment)
    }

    /// Heartbeat of a classic member: a fresh session, and REBALANCE_IN_PROGRESS when it
    /// must rejoin: the group epoch moved past it, it must revoke partitions, or partitions
    /// it waits for are free now. It must rejoin within its rebalance timeout.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<(), ResponseError> {
        let member = self.classic_member(member_id, instance_id)?;
        if generation != member.member_epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let rejoin = member.member_epoch < self.group_epoch
            || member.state == MemberState::UnrevokedPartitions
            || (member.state == MemberState::UnreleasedPartitions
                && !self.waits_on_unreleased(member));
        let timeout = member.session_timeout_ms(0);
        let join_deadline = RebalanceDeadline {
            at: now.saturating_add(i64::from(member.rebalance_timeout_ms.max(0))),
            member_epoch: member.member_epoch,
        };
        let id = member.member_id.clone();
        self.session_deadlines
            .insert(id.clone(), now.saturating_add(i64::from(timeout)));
        if rejoin {
            // Kafka's join timeout: a member that does not rejoin within its rebalance
            // timeout is removed, so it cannot hold partitions others wait for.
            self.rebalance_deadlines.entry(id).or_insert(join_deadline);
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether some partition `member` is targeted to but not given yet is still owned by
    /// another member (Kafka's `waitingOnUnreleasedPartition`).
    fn waits_on_unreleased(&self, member: &Member) -> bool {
        self.target(&member.member_id)
            .difference(&member.assigned)
            .iter()
            .any(|(t, p)| self.owners.contains_key(&(t, p)))
    }

    /// LeaveGroup of classic members: each one removed (bumping the group epoch), or the
    /// reason it is not, in request order.
    pub fn classic_leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        topics: &TopicsImage,
    ) -> (Vec<Record>, Vec<Result<(), ResponseError>>) {
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            let found = match instance_id {
                // An admin removes static members by instance id alone.
                Some(instance) if member_id.is_empty() => self
                    .static_member(instance)
                    .filter(|m| m.uses_classic_protocol())
                    .map(|m| m.member_id.clone())
                    .ok_or(ResponseError::UnknownMemberId),
                _ => self
                    .classic_member(member_id, instance_id.as_deref())
                    .map(|m| m.member_id.clone()),
            };
            results.push(found.map(|id| records.extend(self.fence_member(&id, topics))));
        }
        (records, results)
    }
}

/// A SyncGroup as a consumer group sees it (the leader's assignments are ignored: the
/// coordinator assigns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassicSync<'a> {
    /// Member id.
    pub member_id: &'a str,
    /// Static instance id.
    pub instance_id: Option<&'a str>,
    /// The generation the member believes in (its epoch).
    pub generation: i32,
    /// Protocol type (v5+).
    pub protocol_type: Option<&'a str>,
    /// Protocol name (v5+).
    pub protocol_name: Option<&'a str>,
}
