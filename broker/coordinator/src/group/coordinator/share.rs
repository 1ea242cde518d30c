//! Share groups' membership (KIP-932's ShareGroupHeartbeat and ShareGroupDescribe) in the
//! group shard, beside the classic and consumer groups: the pure core of
//! [`crate::share::group`] decides, under one lock for all share groups of the partitions
//! served here. A group id is of one type at a time: a share heartbeat for a classic or
//! consumer group, and a consumer heartbeat for a share group, get GROUP_ID_NOT_FOUND.
//!
//! Every change is written to the group's `__consumer_offsets` partition as Kafka writes it
//! ([`crate::share::group_records`], the difference between the group before and after), and
//! a heartbeat is answered once its records are durable; a load replays them, so members
//! keep their ids, epochs and assignments when the coordinator moves or restarts. Sessions
//! end without a timer: expired members are dropped, and their records written, whenever the
//! group is looked at (every heartbeat of any member, every describe or list), which is when
//! an expiry changes an answer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{GroupCoordinator, GroupIdRule, Refused};
use crate::group::effects::Now;
use crate::log::{Appended, Entry, LogError};
use crate::share::assignor::TopicPartition;
use crate::share::group::{
    Heartbeat, HeartbeatAnswer, ShareGroup, ShareGroupConfig, ShareMember, TopicsView,
};
use crate::share::group_records::{changes, ShareReplay};

/// The share groups of the partitions served here.
#[derive(Default)]
pub(crate) struct ShareGroups {
    groups: HashMap<String, ShareGroup>,
}

/// A share group as ShareGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupDescription {
    /// The group epoch.
    pub group_epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The members by id, with their subscriptions and assignments.
    pub members: Vec<(String, ShareMember)>,
    /// Every topic a member subscribes to.
    pub subscribed: BTreeSet<String>,
}

impl ShareGroupDescription {
    /// Kafka's group state: Empty without members, else Stable (a share group never
    /// rebalances: members move straight to their targets).
    pub fn state(&self) -> &'static str {
        state_of(self.members.is_empty())
    }

    /// Every partition assigned to some member.
    pub fn assigned(&self) -> BTreeSet<TopicPartition> {
        self.members
            .iter()
            .flat_map(|(_, m)| m.assignment.iter().copied())
            .collect()
    }
}

impl GroupCoordinator {
    /// ShareGroupHeartbeat at this group's coordinator, answered once its records are
    /// durable: `topics` is what the group's members may read now, `config` the group's
    /// settings (its group configs over the broker's).
    pub async fn share_heartbeat(
        self: &Arc<Self>,
        group_id: &str,
        heartbeat: &Heartbeat,
        topics: &TopicsView,
        config: &ShareGroupConfig,
    ) -> Result<HeartbeatAnswer, Refused> {
        if group_id.is_empty() {
            return Err(Refused {
                code: ResponseError::InvalidRequest,
                message: Some("GroupId can't be empty.".into()),
            });
        }
        self.check(group_id, GroupIdRule::NonEmpty)?;
        if self.is_other_type(group_id) {
            return Err(not_share(group_id));
        }
        let now = self.now();
        let (answer, appended) = {
            let mut share = self.share.lock();
            let before = share.groups.get(group_id).cloned();
            let group = share.groups.entry(group_id.to_owned()).or_default();
            let expired = group.expire(now.mono);
            if !expired.is_empty() {
                tracing::info!(group = %group_id, members = ?expired, "share group members' sessions expired");
            }
            let answer = group.heartbeat(heartbeat, topics, config, now.mono);
            if group.is_empty() && group.group_epoch() == 0 {
                // A refused first join leaves no group behind.
                share.groups.remove(group_id);
            }
            let appended = self
                .persist_share(group_id, before.as_ref(), share.groups.get(group_id), now)
                .map_err(|error| {
                    tracing::warn!(group = %group_id, %error, "share group records not written");
                    match before {
                        Some(before) => share.groups.insert(group_id.to_owned(), before),
                        None => share.groups.remove(group_id),
                    };
                    Refused::from(error.code())
                })?;
            (answer, appended)
        };
        let answer = answer.map_err(|e| Refused {
            code: e.code(),
            message: Some(e.to_string()),
        })?;
        if let Some(appended) = appended {
            appended.durable.await.map_err(|error| {
                tracing::warn!(group = %group_id, %error, "share group records not durable");
                Refused::from(error.code())
            })?;
        }
        Ok(answer)
    }

    /// ShareGroupDescribe of one group: GROUP_ID_NOT_FOUND unless it is a share group.
    pub fn describe_share_group(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<ShareGroupDescription, ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        let now = self.now();
        let mut share = self.share.lock();
        let group = self
            .expire_share(&mut share, group_id, now)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let members: Vec<(String, ShareMember)> = group
            .members()
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        let subscribed = members
            .iter()
            .flat_map(|(_, m)| m.topics.iter().cloned())
            .collect();
        Ok(ShareGroupDescription {
            group_epoch: group.group_epoch(),
            assignment_epoch: group.assignment_epoch(),
            members,
            subscribed,
        })
    }

    /// DeleteGroups of a share group, answered once its tombstones are durable: false when
    /// `group_id` is no share group here; removed when it has no members (NON_EMPTY_GROUP
    /// otherwise). The caller deletes its share-partitions' state.
    pub async fn delete_share_group(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<bool, ResponseError> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        let now = self.now();
        let appended = {
            let mut share = self.share.lock();
            let Some(group) = self.expire_share(&mut share, group_id, now) else {
                return Ok(false);
            };
            if !group.is_empty() {
                return Err(ResponseError::NonEmptyGroup);
            }
            let before = share.groups.remove(group_id);
            self.persist_share(group_id, before.as_ref(), None, now)
                .map_err(|error| {
                    tracing::warn!(group = %group_id, %error, "share group tombstones not written");
                    if let Some(before) = before {
                        share.groups.insert(group_id.to_owned(), before);
                    }
                    error.code()
                })?
        };
        if let Some(appended) = appended {
            appended.durable.await.map_err(|error| error.code())?;
        }
        Ok(true)
    }

    /// Whether share group `group_id` may have its offsets altered or deleted: served here,
    /// of no other type, and without members (NON_EMPTY_GROUP otherwise, as Kafka answers).
    pub fn share_group_is_idle(self: &Arc<Self>, group_id: &str) -> Result<(), ResponseError> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        if self.is_other_type(group_id) {
            return Err(ResponseError::GroupIdNotFound);
        }
        let now = self.now();
        let mut share = self.share.lock();
        let Some(group) = self.expire_share(&mut share, group_id, now) else {
            return Ok(());
        };
        if !group.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        // Members joining later get their assignment from a new target.
        let before = group.clone();
        group.bump_epoch();
        self.persist_lazily(group_id, &before, Some(group), now);
        Ok(())
    }

    /// Whether `group_id` is a share group served here.
    pub fn is_share_group(&self, group_id: &str) -> bool {
        self.share.lock().groups.contains_key(group_id)
    }

    /// The share groups served here with their states (ListGroups), sorted by id.
    pub fn list_share_groups(&self) -> Vec<(String, &'static str)> {
        let now = self.now();
        let mut share = self.share.lock();
        let ids: Vec<String> = share.groups.keys().cloned().collect();
        let mut listed: Vec<(String, &'static str)> = ids
            .into_iter()
            .filter_map(|id| {
                let empty = self.expire_share(&mut share, &id, now)?.is_empty();
                Some((id, state_of(empty)))
            })
            .collect();
        listed.sort();
        listed
    }

    /// Members of every share group coordinated here.
    pub fn share_group_members(&self) -> usize {
        self.share
            .lock()
            .groups
            .values()
            .map(|group| group.members().len())
            .sum()
    }

    /// Whether `group_id` is a classic or consumer group here (its offsets included).
    fn is_other_type(&self, group_id: &str) -> bool {
        self.get(group_id).is_some() || self.consumer.lock().groups.get(group_id).is_some()
    }

    /// Forgets the share groups `unloaded` selects (their offsets partition left this
    /// broker); returns how many.
    pub(super) fn unload_share_groups(&self, unloaded: impl Fn(&str) -> bool) -> usize {
        let mut share = self.share.lock();
        let before = share.groups.len();
        share.groups.retain(|id, _| !unloaded(id));
        before - share.groups.len()
    }

    /// Installs the share groups a loaded partition's records rebuild, their members'
    /// sessions starting now; returns how many.
    pub(super) fn install_share_groups(&self, replay: ShareReplay) -> usize {
        let loaded = replay.into_groups(self.now().mono, self.config.share.session_timeout_ms);
        let count = loaded.len();
        self.share.lock().groups.extend(loaded);
        count
    }

    /// Drops the expired members of share group `group_id` and writes that; the group, if
    /// it exists.
    fn expire_share<'a>(
        &self,
        share: &'a mut ShareGroups,
        group_id: &str,
        now: Now,
    ) -> Option<&'a mut ShareGroup> {
        let group = share.groups.get_mut(group_id)?;
        if group.members().values().any(|m| m.deadline_ms <= now.mono) {
            let before = group.clone();
            let expired = group.expire(now.mono);
            tracing::info!(group = %group_id, members = ?expired, "share group members' sessions expired");
            self.persist_lazily(group_id, &before, Some(group), now);
        }
        Some(group)
    }

    /// Appends the records taking share group `group_id` from `before` to `after`, if any.
    fn persist_share(
        &self,
        group_id: &str,
        before: Option<&ShareGroup>,
        after: Option<&ShareGroup>,
        now: Now,
    ) -> Result<Option<Appended>, LogError> {
        let entries: Vec<Entry> = changes(group_id, before, after)
            .iter()
            .map(|record| record.entry())
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        self.append(group_id, &entries, now).map(Some)
    }

    /// [`Self::persist_share`] where nobody waits for the records (an expiry noticed in
    /// passing): a failure is logged, and the next load has the group as last written.
    fn persist_lazily(
        &self,
        group_id: &str,
        before: &ShareGroup,
        after: Option<&ShareGroup>,
        now: Now,
    ) {
        if let Err(error) = self.persist_share(group_id, Some(before), after, now) {
            tracing::warn!(group = %group_id, %error, "share group records not written");
        }
    }
}

/// Kafka's name of a share group's state: Empty without members, else Stable.
fn state_of(empty: bool) -> &'static str {
    if empty {
        "Empty"
    } else {
        "Stable"
    }
}

/// The refusal of a share request for a group of another type.
fn not_share(group_id: &str) -> Refused {
    Refused {
        code: ResponseError::GroupIdNotFound,
        message: Some(format!("Group {group_id} is not a share group.")),
    }
}
