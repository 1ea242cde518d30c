//! Mixed groups in the coordinator: the classic APIs (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) of classic members of a consumer group, served from the consumer group's
//! state by the pure core (`group::consumer::classic`), and the slot bookkeeping of the
//! conversions between the two types (`group::consumer::migration`).
//!
//! A group's offsets stay in its classic slot whatever its type: an upgrade leaves the slot
//! an offsets-only empty group; a downgrade puts the classic group back in the slot, with
//! those offsets, and starts a rebalance (as Kafka does) so the classic members agree on an
//! assignment of their own. Lock order: a classic slot before the consumer groups, never the
//! other way round.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::consumer::entries;
use super::{GroupCoordinator, SharedSlot, Slot};
use crate::group::classic::Group;
use crate::group::consumer::classic::{ClassicJoin, ClassicSync};
use crate::group::consumer::member::LEAVE_GROUP_MEMBER_EPOCH;
use crate::group::consumer::migration::CONSUMER_PROTOCOL_TYPE;
use crate::group::consumer::{Context, HeartbeatRequest, TopicsImage};
use crate::group::effects::{Effects, JoinResult, Now, SyncResult};
use crate::group::heartbeat::LeavingMember;
use crate::group::join::JoinRequest;
use crate::group::records::GroupValue;
use crate::group::state::GroupState;
use crate::group::sync::SyncRequest;

/// Whether the classic group of `slot` has members (an upgrade converts it then).
pub(super) fn classic_has_members(slot: &Slot) -> bool {
    !matches!(slot.group.state(), GroupState::Empty | GroupState::Dead)
}

/// Leaves an upgraded classic group's slot holding only its offsets; joins and syncs still
/// waiting are dropped, which answers them REBALANCE_IN_PROGRESS so they rejoin the
/// consumer group.
pub(super) fn empty_classic_slot(slot: &mut Slot) {
    let mut empty = Group::new(slot.group.id(), Now { mono: 0, wall: 0 }, 0);
    empty.state_timestamp = slot.group.state_timestamp;
    empty.offsets = std::mem::take(&mut slot.group.offsets);
    slot.group = empty;
    slot.joins.clear();
    slot.syncs.clear();
    slot.scheduled = None;
}

impl GroupCoordinator {
    /// The classic slot a consumer heartbeat may convert, locked before the consumer groups:
    /// a join's (an upgrade of a classic group), or a leave's when only classic members
    /// would remain (a downgrade).
    pub(super) fn classic_slot_for(
        &self,
        group_id: &str,
        request: &HeartbeatRequest,
    ) -> Option<SharedSlot> {
        if request.member_epoch == 0 {
            return self.get(group_id);
        }
        if request.member_epoch != LEAVE_GROUP_MEMBER_EPOCH {
            return None;
        }
        let may_downgrade = self.consumer.lock().groups.get(group_id).is_some_and(|g| {
            let mut rest = g
                .members()
                .values()
                .filter(|m| m.member_id != request.member_id)
                .peekable();
            rest.peek().is_some() && rest.all(|m| m.uses_classic_protocol())
        });
        may_downgrade.then(|| self.get_or_create(group_id))
    }

    /// Puts the classic group a downgrade made into `slot`, with the slot's offsets, and
    /// starts its rebalance.
    pub(super) fn install_downgraded(
        self: &Arc<Self>,
        shared: &SharedSlot,
        slot: &mut Slot,
        value: GroupValue,
        now: Now,
    ) {
        let id = slot.group.id().to_string();
        let mut group = Group::from_value(&id, value, now, self.config.initial_rebalance_delay_ms);
        group.offsets = std::mem::take(&mut slot.group.offsets);
        slot.group = group;
        slot.scheduled = None;
        let mut effects = Effects::default();
        slot.group
            .prepare_rebalance(now, "downgrade from a consumer group", &mut effects);
        self.apply(shared, slot, effects);
    }

    /// Installs the classic group a downgrade of consumer group `group_id` wrote: in the slot
    /// the caller holds locked, or else in the group's own (made if need be).
    pub(super) fn finish_downgrade(
        self: &Arc<Self>,
        group_id: &str,
        shared: Option<SharedSlot>,
        slot: Option<&mut Slot>,
        value: GroupValue,
        now: Now,
    ) {
        let shared = shared.unwrap_or_else(|| self.get_or_create(group_id));
        match slot {
            Some(slot) => self.install_downgraded(&shared, slot, value, now),
            None => self.install_downgraded(&shared, &mut shared.lock(), value, now),
        }
        tracing::info!(group = %group_id, "consumer group downgraded to a classic group");
    }

    /// Deletes consumer group `group_id` when it is empty, with its tombstones (not waited
    /// for), before a classic group takes the id (Kafka's `maybeDeleteEmptyConsumerGroup`),
    /// so the id is never both types at once.
    pub(super) fn drop_empty_consumer_group(&self, group_id: &str) {
        let Ok(Some(tombstones)) = self.delete_consumer_group(group_id) else {
            return;
        };
        tracing::info!(group = %group_id, "empty consumer group replaced by a classic group");
        if let Err(error) = self.append(group_id, &tombstones, self.now()) {
            tracing::warn!(group = %group_id, %error, "empty consumer group's tombstones not written");
        }
    }

    /// JoinGroup of a classic member to consumer group `group_id`; `None` when the group is
    /// not a consumer group with members (any more), for the classic path to answer.
    pub(super) async fn join_consumer_group(
        self: &Arc<Self>,
        group_id: &str,
        request: &JoinRequest,
        topics: &TopicsImage,
    ) -> Option<JoinResult> {
        let now = self.now();
        let join = ClassicJoin {
            member_id: request.member_id.clone(),
            new_member_id: uuid::Uuid::new_v4().to_string(),
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocol_type: request.protocol_type.clone(),
            protocols: request
                .protocols
                .iter()
                .map(|p| (p.name.clone(), p.metadata.clone()))
                .collect(),
            require_known_member_id: request.require_known_member_id,
        };
        let (joined, appended) = {
            let mut state = self.consumer.lock();
            let group = state.groups.get_mut(group_id).filter(|g| !g.is_empty())?;
            let before = group.clone();
            let ctx = Context {
                now: now.mono,
                topics,
                config: &self.config.consumer,
            };
            let (records, joined) = match group.classic_join(&join, &ctx) {
                Ok(done) => done,
                Err(refused) => return Some(JoinResult::error(refused.member_id, refused.code)),
            };
            let appended = if records.is_empty() {
                None
            } else {
                match self.append(group_id, &entries(&records), now) {
                    Ok(appended) => Some(appended),
                    Err(error) => {
                        state.groups.restore(group_id, Some(before));
                        return Some(JoinResult::error(joined.member_id, error.code()));
                    }
                }
            };
            self.schedule_consumer(&mut state, group_id);
            (joined, appended)
        };
        if let Some(appended) = appended {
            if let Err(error) = appended.durable.await {
                return Some(JoinResult::error(joined.member_id, error.code()));
            }
        }
        Some(JoinResult {
            error: None,
            member_id: joined.member_id,
            generation: joined.generation,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: Some(joined.protocol_name),
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        })
    }

    /// SyncGroup of a classic member of consumer group `group_id` (`None`: not one).
    pub(super) fn sync_consumer_group(
        &self,
        group_id: &str,
        request: &SyncRequest,
    ) -> Option<SyncResult> {
        let now = self.now();
        let mut state = self.consumer.lock();
        let group = state.groups.get_mut(group_id).filter(|g| !g.is_empty())?;
        let sync = ClassicSync {
            member_id: &request.member_id,
            instance_id: request.instance_id.as_deref(),
            generation: request.generation,
            protocol_type: request.protocol_type.as_deref(),
            protocol_name: request.protocol_name.as_deref(),
        };
        let result = group.classic_sync(&sync, now.mono);
        let protocol_name = group
            .member(&request.member_id)
            .and_then(|m| m.classic.as_ref())
            .and_then(|c| c.supported_protocols.first())
            .map(|(name, _)| name.clone());
        self.schedule_consumer(&mut state, group_id);
        Some(match result {
            Ok(assignment) => SyncResult {
                error: None,
                protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
                protocol_name,
                assignment,
            },
            Err(code) => SyncResult::error(code),
        })
    }

    /// Heartbeat of a classic member of consumer group `group_id` (`None`: not one).
    pub(super) fn heartbeat_consumer_group(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<Result<(), ResponseError>> {
        let now = self.now();
        let mut state = self.consumer.lock();
        let group = state.groups.get_mut(group_id).filter(|g| !g.is_empty())?;
        let result = group.classic_heartbeat(member_id, instance_id, generation, now.mono);
        self.schedule_consumer(&mut state, group_id);
        Some(result)
    }

    /// LeaveGroup of classic members of consumer group `group_id` (`None`: not one). The
    /// records are written without waiting for them, as the classic LeaveGroup does.
    pub(super) fn leave_consumer_group(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Option<Vec<Result<(), ResponseError>>> {
        let now = self.now();
        let mut state = self.consumer.lock();
        let group = state.groups.get_mut(group_id).filter(|g| !g.is_empty())?;
        let leaving: Vec<(String, Option<String>)> = members
            .iter()
            .map(|m| (m.member_id.clone(), m.instance_id.clone()))
            .collect();
        // The topics the group already subscribes to are all a removal can change.
        let topics = TopicsImage::new(group.subscribed_topics().values().cloned());
        let (records, results) = group.classic_leave(&leaving, &topics);
        if !records.is_empty() {
            if let Err(error) = self.append(group_id, &entries(&records), now) {
                tracing::warn!(group = %group_id, %error, "classic members' leaving not written");
            }
        }
        self.schedule_consumer(&mut state, group_id);
        Some(results)
    }
}
