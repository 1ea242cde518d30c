//! Share groups' membership (KIP-932's ShareGroupHeartbeat and ShareGroupDescribe) in the
//! group shard, beside the classic and consumer groups: the pure core of
//! [`crate::share::group`] decides, under one lock for all share groups of the partitions
//! served here. A group id is of one type at a time: a share heartbeat for a classic or
//! consumer group, and a consumer heartbeat for a share group, get GROUP_ID_NOT_FOUND.
//!
//! Membership is kept in memory only. What a share group must not lose lives elsewhere: the
//! share-partitions' states with the share coordinator, durable before any acknowledgement
//! is answered. When the offsets partition moves, the new coordinator starts with no
//! members; each member's next heartbeat gets UNKNOWN_MEMBER_ID and it joins again at epoch 0
//! (librdkafka and the Java client rejoin on it), receiving its assignment anew. Sessions
//! end without a timer: expired members are dropped whenever the group is looked at (every
//! heartbeat of any member, every describe), which is when an expiry changes an answer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{GroupCoordinator, GroupIdRule, Refused};
use crate::share::assignor::TopicPartition;
use crate::share::group::{
    Heartbeat, HeartbeatAnswer, ShareGroup, ShareGroupConfig, ShareMember, TopicsView,
};

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
    /// ShareGroupHeartbeat at this group's coordinator: `topics` is what the group's members
    /// may read now, `config` the group's settings (its group configs over the broker's).
    pub fn share_heartbeat(
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
        let now = self.now().mono;
        let mut share = self.share.lock();
        let group = share.groups.entry(group_id.to_owned()).or_default();
        let expired = group.expire(now);
        if !expired.is_empty() {
            tracing::info!(group = %group_id, members = ?expired, "share group members' sessions expired");
        }
        let answer = group.heartbeat(heartbeat, topics, config, now);
        if group.is_empty() && group.group_epoch() == 0 {
            // A refused first join leaves no group behind.
            share.groups.remove(group_id);
        }
        answer.map_err(|e| Refused {
            code: e.code(),
            message: Some(e.to_string()),
        })
    }

    /// ShareGroupDescribe of one group: GROUP_ID_NOT_FOUND unless it is a share group.
    pub fn describe_share_group(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<ShareGroupDescription, ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        let now = self.now().mono;
        let mut share = self.share.lock();
        let group = share
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::GroupIdNotFound)?;
        group.expire(now);
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

    /// DeleteGroups of a share group: false when `group_id` is no share group here; removed
    /// when it has no members (NON_EMPTY_GROUP otherwise). The caller deletes its
    /// share-partitions' state.
    pub fn delete_share_group(self: &Arc<Self>, group_id: &str) -> Result<bool, ResponseError> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        let now = self.now().mono;
        let mut share = self.share.lock();
        let Some(group) = share.groups.get_mut(group_id) else {
            return Ok(false);
        };
        group.expire(now);
        if !group.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        share.groups.remove(group_id);
        Ok(true)
    }

    /// Whether share group `group_id` may have its offsets altered or deleted: served here,
    /// of no other type, and without members (NON_EMPTY_GROUP otherwise, as Kafka answers).
    pub fn share_group_is_idle(self: &Arc<Self>, group_id: &str) -> Result<(), ResponseError> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        if self.is_other_type(group_id) {
            return Err(ResponseError::GroupIdNotFound);
        }
        let now = self.now().mono;
        let mut share = self.share.lock();
        match share.groups.get_mut(group_id) {
            Some(group) => {
                group.expire(now);
                if group.is_empty() {
                    // Members joining later get their assignment from a new target.
                    group.bump_epoch();
                    Ok(())
                } else {
                    Err(ResponseError::NonEmptyGroup)
                }
            }
            None => Ok(()),
        }
    }

    /// Whether `group_id` is a share group served here.
    pub fn is_share_group(&self, group_id: &str) -> bool {
        self.share.lock().groups.contains_key(group_id)
    }

    /// The share groups served here with their states (ListGroups), sorted by id.
    pub fn list_share_groups(&self) -> Vec<(String, &'static str)> {
        let now = self.now().mono;
        let mut share = self.share.lock();
        let mut listed: Vec<(String, &'static str)> = share
            .groups
            .iter_mut()
            .map(|(id, group)| {
                group.expire(now);
                (id.clone(), state_of(group.is_empty()))
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
