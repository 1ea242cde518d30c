//! Consumer groups (KIP-848) in the group shard, beside the classic ones: a heartbeat runs
//! the pure core under the consumer groups' lock, its records are appended through the same
//! path as the classic groups' records, and the answer waits until they are committed. The
//! timers remove members whose session or rebalance deadline passed; a load installs what the
//! partition's records rebuild. A group id is one type or the other at a time: a join to a
//! classic group with members upgrades it (or is refused GROUP_ID_NOT_FOUND), the last
//! consumer-protocol member leaving a group of classic members downgrades it, and classic
//! members of a consumer group are served by [`super::migration`].
//!
//! A write that was appended but failed to become durable is answered with its error while
//! the group keeps the change (Kafka reverts to the last committed state), so memory may be
//! ahead of the log until the partition is next loaded.
//!
//! Offsets of a consumer group live where a classic group's do (an offsets-only classic slot,
//! as Kafka keeps them apart from the group's state); what a consumer group adds is the member
//! epoch check of OffsetCommit and OffsetFetch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::offsets::CommitOffset;
use super::{GroupCoordinator, GroupIdRule, Slot};
use crate::group::consumer::records::Record;
use crate::group::consumer::{
    ConsumerGroup, ConsumerGroupState, ConsumerGroups, Context, HeartbeatRequest,
    HeartbeatResponse, TopicsImage,
};
use crate::group::effects::Now;
use crate::group::rebalance_log::{RebalanceLog, Rebalances};
use crate::group::records::group_key;
use crate::group::state::GroupState;
use crate::log::{Appended, Entry};

/// The consumer groups of the partitions served here, with the deadline already in the timer
/// heap for each. One lock for all of them (held across an append, which does not wait), so
/// records of one group reach the log in the order they were applied.
#[derive(Default)]
pub(crate) struct ConsumerState {
    pub(super) groups: ConsumerGroups,
    scheduled: HashMap<String, i64>,
    /// For the metrics: each group's epoch when last seen, and its rebalances not yet read.
    rebalances: HashMap<String, (i32, RebalanceLog)>,
}

/// Who asks for a consumer group's offsets, for the member epoch check (OffsetFetch v9+ and
/// OffsetCommit).
#[derive(Debug, Clone, Copy)]
pub struct MemberEpoch<'a> {
    /// Member id.
    pub member_id: &'a str,
    /// Member epoch (-1: not a member, an admin client or a simple consumer).
    pub epoch: i32,
}

/// What a consumer group member's epoch is checked for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Access<'a> {
    /// OffsetCommit at `api_version` of `offsets`.
    Commit {
        /// The request's version.
        api_version: i16,
        /// The offsets committed (an older epoch may commit those assigned since, KIP-1251).
        offsets: &'a [CommitOffset],
    },
    /// TxnOffsetCommit (any version).
    TransactionalCommit,
    /// OffsetFetch.
    Fetch,
}

/// A refused ConsumerGroupHeartbeat: the code, and the core's reason when it has one (the
/// response's error message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The Kafka error code.
    pub code: ResponseError,
    /// Why, for the client's log.
    pub message: Option<String>,
}

impl From<ResponseError> for Refused {
    fn from(code: ResponseError) -> Refused {
        Refused {
            code,
            message: None,
        }
    }
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat: the core's decision, answered once its records are committed.
    /// `topics` is the cluster's topics as the heartbeat sees them. A join to a classic group
    /// upgrades it, and the last consumer-protocol member leaving downgrades the group, when
    /// `group.consumer.migration.policy` allows (see the `migration` module).
    pub async fn consumer_heartbeat(
        self: &Arc<Self>,
        group_id: &str,
        request: HeartbeatRequest,
        topics: &TopicsImage,
    ) -> Result<HeartbeatResponse, Refused> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        if self.is_share_group(group_id) {
            return Err(not_consumer(group_id));
        }
        let (response, appended) = self.consumer_heartbeat_now(group_id, &request, topics)?;
        if let Some(appended) = appended {
            appended.durable.await.map_err(|error| {
                tracing::warn!(group = %group_id, %error, "consumer group records not durable");
                Refused::from(error.code())
            })?;
        }
        Ok(response)
    }

    /// The decision of a heartbeat, its records appended and the conversions made.
    fn consumer_heartbeat_now(
        self: &Arc<Self>,
        group_id: &str,
        request: &HeartbeatRequest,
        topics: &TopicsImage,
    ) -> Result<(HeartbeatResponse, Option<Appended>), Refused> {
        let now = self.now();
        // Lock order: the classic slot, then the consumer groups.
        let shared = self.classic_slot_for(group_id, request);
        let mut slot = shared.as_ref().map(|s| s.lock());
        if shared.is_none() && self.classic_in_use(group_id) {
            return Err(not_consumer(group_id));
        }
        let (response, appended, downgrade) = {
            let mut state = self.consumer.lock();
            let before = state.groups.get(group_id).cloned();
            let ctx = Context {
                now: now.mono,
                topics,
                config: &self.config.consumer,
            };
            let mut written = Vec::new();
            if let Some(slot) = slot.as_deref() {
                if super::migration::classic_has_members(slot) {
                    written = upgrade(&mut state, slot, request, &ctx)?;
                }
            }
            let upgraded = !written.is_empty();
            let outcome = match state.groups.heartbeat(group_id, request, &ctx) {
                Ok(outcome) => outcome,
                Err(e) => {
                    state.groups.restore(group_id, before);
                    return Err(Refused {
                        code: e.code(),
                        message: Some(e.to_string()),
                    });
                }
            };
            written.extend(entries(&outcome.records));
            let downgrade = outcome.downgrade.map(|mut value| {
                value.current_state_timestamp = now.wall;
                written.push((group_key(group_id), Some(value.encode())));
                value
            });
            let appended = if written.is_empty() {
                None
            } else {
                match self.append(group_id, &written, now) {
                    Ok(appended) => Some(appended),
                    Err(error) => {
                        tracing::warn!(group = %group_id, %error, "consumer group records not written");
                        state.groups.restore(group_id, before);
                        return Err(error.code().into());
                    }
                }
            };
            if upgraded {
                if let Some(slot) = slot.as_deref_mut() {
                    super::migration::empty_classic_slot(slot);
                }
                tracing::info!(group = %group_id, "classic group upgraded to a consumer group");
            }
            if downgrade.is_some() {
                state.groups.restore(group_id, None);
                state.scheduled.remove(group_id);
            } else {
                self.schedule_consumer(&mut state, group_id);
            }
            (outcome.response, appended, downgrade)
        };
        if let Some(value) = downgrade {
            self.finish_downgrade(group_id, shared.clone(), slot.as_deref_mut(), value, now);
        }
        Ok((response, appended))
    }

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND unless it is a consumer group.
    pub fn describe_consumer_group(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<ConsumerGroup, ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        self.consumer
            .lock()
            .groups
            .get(group_id)
            .cloned()
            .ok_or(ResponseError::GroupIdNotFound)
    }

    /// DeleteGroups of consumer group `group_id`: `None` when it is not one, NON_EMPTY_GROUP
    /// while it has members, else its tombstones (it is gone from memory already).
    pub(super) fn delete_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<Option<Vec<Entry>>, ResponseError> {
        let mut state = self.consumer.lock();
        let Some(group) = state.groups.get(group_id) else {
            return Ok(None);
        };
        if !group.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let tombstones = entries(&group.tombstones());
        state.groups.restore(group_id, None);
        state.scheduled.remove(group_id);
        Ok(Some(tombstones))
    }

    /// Every consumer group with its state, by id (ListGroups).
    pub fn list_consumer_groups(&self) -> Vec<(String, ConsumerGroupState)> {
        self.consumer
            .lock()
            .groups
            .iter()
            .map(|g| (g.group_id().to_string(), g.state()))
            .collect()
    }

    /// The topics consumer group `group_id` subscribes to while it has members (OffsetDelete
    /// refuses their offsets then); `None` otherwise.
    pub(super) fn consumer_subscriptions(&self, group_id: &str) -> Option<HashSet<String>> {
        let state = self.consumer.lock();
        let group = state.groups.get(group_id).filter(|g| !g.is_empty())?;
        Some(group.subscribed_topics().keys().cloned().collect())
    }

    /// Whether `group_id` is a consumer group (DescribeGroups does not describe those).
    pub(super) fn is_consumer_group(&self, group_id: &str) -> bool {
        self.consumer.lock().groups.get(group_id).is_some()
    }

    /// Whether `group_id` is a consumer group with members (JoinGroup is refused then).
    pub(super) fn consumer_in_use(&self, group_id: &str) -> bool {
        self.consumer
            .lock()
            .groups
            .get(group_id)
            .is_some_and(|g| !g.is_empty())
    }

    /// Whether `group_id` is a classic group with members (consumer heartbeats are refused
    /// then; an empty one holds only offsets, the consumer group's own among them).
    pub(super) fn classic_in_use(&self, group_id: &str) -> bool {
        self.get(group_id).is_some_and(|shared| {
            let slot = shared.lock();
            !matches!(slot.group.state(), GroupState::Empty | GroupState::Dead)
        })
    }

    /// Kafka's `validateOffsetCommit` / `validateOffsetFetch` of a consumer group: `None` when
    /// `group_id` is not a consumer group (the classic checks apply), else whether `who` may
    /// commit or fetch. A non-member may only while the group has no members (commit) or
    /// always (fetch without a member id). A consumer-protocol member must commit with v9+
    /// (UNSUPPORTED_VERSION); a classic member's generation is its member epoch
    /// (ILLEGAL_GENERATION when it differs, STALE_MEMBER_EPOCH for the others, except for an
    /// OffsetCommit with an older epoch of partitions assigned to it since, KIP-1251).
    pub(super) fn check_consumer_member(
        &self,
        group_id: &str,
        who: MemberEpoch<'_>,
        access: Access<'_>,
    ) -> Option<Result<(), ResponseError>> {
        let state = self.consumer.lock();
        let group = state.groups.get(group_id)?;
        let fetch = matches!(access, Access::Fetch);
        if who.epoch < 0 && (group.is_empty() || (fetch && who.member_id.is_empty())) {
            return Some(Ok(()));
        }
        let Some(m) = group.member(who.member_id) else {
            return Some(Err(ResponseError::UnknownMemberId));
        };
        if let Access::Commit { api_version, .. } = access {
            if api_version < 9 && !m.uses_classic_protocol() {
                return Some(Err(ResponseError::UnsupportedVersion));
            }
        }
        if m.member_epoch == who.epoch {
            return Some(Ok(()));
        }
        if m.uses_classic_protocol() {
            return Some(Err(ResponseError::IllegalGeneration));
        }
        Some(match access {
            Access::Commit { offsets, .. }
                if who.epoch < m.member_epoch
                    && group.assigned_since(
                        who.member_id,
                        who.epoch,
                        offsets.iter().map(|o| (o.topic.as_str(), o.partition)),
                    ) =>
            {
                Ok(())
            }
            _ => Err(ResponseError::StaleMemberEpoch),
        })
    }

    /// OffsetFetch v9+'s member check for `group_id`: nothing for classic groups.
    pub fn check_offset_fetch(
        self: &Arc<Self>,
        group_id: &str,
        who: MemberEpoch<'_>,
    ) -> Result<(), ResponseError> {
        self.check_consumer_member(group_id, who, Access::Fetch)
            .unwrap_or(Ok(()))
    }

    /// Fires the session and rebalance deadlines of consumer group `group_id`: expired
    /// members are removed and the records written (nobody waits on them); a removal that
    /// leaves only classic members may downgrade the group.
    pub(super) fn tick_consumer(self: &Arc<Self>, group_id: &str) {
        let now = self.now();
        // Lock order: the classic slot (needed by a downgrade), then the consumer groups.
        let may_downgrade = self
            .consumer
            .lock()
            .groups
            .get(group_id)
            .is_some_and(|g| g.may_downgrade_at(now.mono));
        let shared = may_downgrade.then(|| self.get_or_create(group_id));
        let mut slot = shared.as_ref().map(|s| s.lock());
        let mut state = self.consumer.lock();
        state.scheduled.remove(group_id);
        let Some(group) = state.groups.get_mut(group_id) else {
            return;
        };
        // The topics the group already subscribes to are all a removal can change.
        let topics = TopicsImage::new(group.subscribed_topics().values().cloned());
        let ctx = Context {
            now: now.mono,
            topics: &topics,
            config: &self.config.consumer,
        };
        let (records, expired, downgrade) = group.expire_or_downgrade(&ctx);
        for (member, why) in &expired {
            tracing::info!(group = %group_id, %member, ?why, "consumer group member removed");
        }
        let mut written = entries(&records);
        let downgrade = downgrade.map(|mut value| {
            value.current_state_timestamp = now.wall;
            written.push((group_key(group_id), Some(value.encode())));
            value
        });
        if !written.is_empty() {
            if let Err(error) = self.append(group_id, &written, now) {
                tracing::warn!(group = %group_id, %error, "consumer group expiry not written");
            }
        }
        let Some(value) = downgrade else {
            self.schedule_consumer(&mut state, group_id);
            return;
        };
        state.groups.restore(group_id, None);
        drop(state);
        self.finish_downgrade(group_id, shared.clone(), slot.as_deref_mut(), value, now);
    }

    /// Puts consumer group `group_id`'s next deadline in the timer heap if it is earlier than
    /// the one already there.
    pub(super) fn schedule_consumer(&self, state: &mut ConsumerState, group_id: &str) {
        self.note_rebalance(state, group_id);
        let Some(deadline) = state.groups.get(group_id).and_then(|g| g.next_deadline()) else {
            return;
        };
        let scheduled = state.scheduled.get(group_id).copied();
        if scheduled.is_none_or(|s| deadline < s) {
            state.scheduled.insert(group_id.to_string(), deadline);
            self.timers.schedule(deadline, group_id);
        }
    }

    /// Notes, after a change of consumer group `group_id`, the rebalance it started (a new
    /// group epoch) or finished (every member at the target assignment), for the metrics.
    fn note_rebalance(&self, state: &mut ConsumerState, group_id: &str) {
        let Some(group) = state.groups.get(group_id) else {
            return;
        };
        let now = self.now().mono;
        let (seen, log) = state
            .rebalances
            .entry(group_id.to_string())
            .or_insert_with(|| (0, RebalanceLog::default()));
        if group.is_empty() {
            log.abandon();
        } else {
            if group.group_epoch() > *seen {
                log.start(now);
            }
            if group.state() == ConsumerGroupState::Stable {
                log.finish(now);
            }
        }
        *seen = group.group_epoch();
    }

    /// Takes the consumer groups' rebalances since the last call, and forgets groups gone.
    pub(super) fn take_consumer_rebalances(&self) -> Rebalances {
        let mut state = self.consumer.lock();
        let ConsumerState {
            groups, rebalances, ..
        } = &mut *state;
        rebalances.retain(|id, _| groups.get(id).is_some());
        let mut taken = Rebalances::default();
        for (_, log) in rebalances.values_mut() {
            let mine = log.take();
            taken.started += mine.started;
            taken.finished_ms.extend(mine.finished_ms);
        }
        taken
    }

    /// Installs a loaded partition's consumer groups with fresh sessions (Kafka's
    /// `onLoaded`); returns how many.
    pub(super) fn install_consumer_groups(&self, mut loaded: ConsumerGroups, now: Now) -> usize {
        let session = self.config.consumer.session_timeout_ms;
        let ids: Vec<String> = loaded
            .iter_mut()
            .map(|g| {
                g.on_loaded(now.mono, session);
                g.group_id().to_string()
            })
            .collect();
        let mut state = self.consumer.lock();
        for group in loaded.iter() {
            // A loaded group's epochs are history, not rebalances.
            let seen = (group.group_epoch(), RebalanceLog::default());
            state.rebalances.insert(group.group_id().to_string(), seen);
        }
        state.groups.extend(loaded);
        for id in &ids {
            self.schedule_consumer(&mut state, id);
        }
        ids.len()
    }

    /// Drops the consumer groups `unloaded` accepts; returns how many.
    pub(super) fn unload_consumer_groups(&self, unloaded: impl Fn(&str) -> bool) -> usize {
        let mut state = self.consumer.lock();
        state.scheduled.retain(|id, _| !unloaded(id));
        state.groups.unload(unloaded)
    }
}

/// GROUP_ID_NOT_FOUND for a consumer heartbeat to a classic group that stays classic.
fn not_consumer(group_id: &str) -> Refused {
    Refused {
        code: ResponseError::GroupIdNotFound,
        message: Some(format!("group {group_id} is not a consumer group")),
    }
}

/// Upgrades the classic group of `slot` when `request` is a join and the core agrees: the
/// consumer group is installed and the entries returned (the classic group's tombstone,
/// then the consumer group's records). GROUP_ID_NOT_FOUND otherwise, as Kafka answers.
fn upgrade(
    state: &mut ConsumerState,
    slot: &Slot,
    request: &HeartbeatRequest,
    ctx: &Context<'_>,
) -> Result<Vec<Entry>, Refused> {
    let group_id = slot.group.id();
    if request.member_epoch != 0 {
        return Err(not_consumer(group_id));
    }
    let (group, records) =
        ConsumerGroup::from_classic(&slot.group, ctx.topics, ctx).map_err(|e| {
            tracing::info!(group = %group_id, reason = %e, "classic group not upgraded");
            Refused {
                code: ResponseError::GroupIdNotFound,
                message: Some(e.to_string()),
            }
        })?;
    state.groups.restore(group_id, Some(group));
    let mut written = vec![(group_key(group_id), None)];
    written.extend(entries(&records));
    Ok(written)
}

/// The log entries of consumer group records.
pub(super) fn entries(records: &[Record]) -> Vec<Entry> {
    records.iter().map(Record::encode).collect()
}
