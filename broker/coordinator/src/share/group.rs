//! A share group's membership (KIP-932's ShareGroupHeartbeat), as pure decisions: members
//! join with their subscription, heartbeat within their session, and leave or expire; the
//! group epoch counts every change of who reads what, and the target assignment (the
//! [`assignor`](super::assignor)'s) is recomputed at most every assignment interval. Unlike a
//! consumer group there is no revocation: partitions are shared, so a member moves straight
//! to its target and its epoch becomes the assignment's.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::assignor::{assign, MemberSpec, TopicPartition};

/// The member epoch of a heartbeat joining the group.
pub const JOIN_EPOCH: i32 = 0;
/// The member epoch of a heartbeat leaving the group.
pub const LEAVE_EPOCH: i32 = -1;

/// The group's settings (group configs over broker defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareGroupConfig {
    /// `share.session.timeout.ms`.
    pub session_timeout_ms: i64,
    /// `share.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `share.assignment.interval.ms`: the target is recomputed at most this often.
    pub assignment_interval_ms: i64,
    /// `group.share.max.size`.
    pub max_size: usize,
}

impl Default for ShareGroupConfig {
    /// Kafka 4.3's defaults.
    fn default() -> ShareGroupConfig {
        ShareGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            assignment_interval_ms: 1_000,
            max_size: 200,
        }
    }
}

/// The topics a group's members may read now: by name, the topic id and the partitions
/// whose share-partition state is initialized (only those are assigned).
pub type TopicsView = BTreeMap<String, (Uuid, Vec<i32>)>;

/// Who a member is, as ShareGroupDescribe shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberClient {
    /// The client's `client.id`.
    pub client_id: String,
    /// The address it connected from.
    pub client_host: String,
    /// Its rack, if it names one.
    pub rack_id: Option<String>,
}

/// A ShareGroupHeartbeat as the decision sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Member id, made by the client.
    pub member_id: String,
    /// 0 to join, -1 to leave, else the member's epoch.
    pub member_epoch: i32,
    /// Topics subscribed to (`None`: unchanged).
    pub topics: Option<Vec<String>>,
    /// The client sending it.
    pub client: MemberClient,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The member's epoch (-1 once it left).
    pub member_epoch: i32,
    /// When to heartbeat again.
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, sent when it joins or the assignment changes.
    pub assignment: Option<BTreeSet<TopicPartition>>,
}

/// Why a heartbeat was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareHeartbeatError {
    /// A malformed heartbeat (librdkafka treats it as fatal, so only for true misuse).
    #[error("invalid share group heartbeat: {0}")]
    InvalidRequest(&'static str),
    /// A member the group does not have.
    #[error("unknown member {0}")]
    UnknownMember(String),
    /// An epoch that is neither the member's nor its previous one.
    #[error("member epoch {0} is fenced")]
    FencedEpoch(i32),
    /// The group is full.
    #[error("the group has its maximum of {0} members")]
    GroupFull(usize),
}

impl ShareHeartbeatError {
    /// The Kafka error answered.
    pub fn code(&self) -> ResponseError {
        match self {
            ShareHeartbeatError::InvalidRequest(_) => ResponseError::InvalidRequest,
            ShareHeartbeatError::UnknownMember(_) => ResponseError::UnknownMemberId,
            ShareHeartbeatError::FencedEpoch(_) => ResponseError::FencedMemberEpoch,
            ShareHeartbeatError::GroupFull(_) => ResponseError::GroupMaxSizeReached,
        }
    }
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMember {
    /// Its epoch: the assignment epoch it was last moved to.
    pub epoch: i32,
    /// The epoch before, still accepted once (a lost response).
    pub previous_epoch: i32,
    /// Topics it subscribes to, by name.
    pub topics: BTreeSet<String>,
    /// Its current assignment.
    pub assignment: BTreeSet<TopicPartition>,
    /// When its session ends unless it heartbeats.
    pub deadline_ms: i64,
    /// The client, as of its last heartbeat.
    pub client: MemberClient,
}

/// A share group's membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareGroup {
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, ShareMember>,
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// The subscribed topics as last seen, to notice partitions added or initialized.
    topics_seen: TopicsView,
    /// After a load: the [`topics_hash`] of `topics_seen` when the group was written, which
    /// the first heartbeat compares the topics it sees with.
    restored_hash: Option<i64>,
    last_assignment_ms: Option<i64>,
}

impl ShareGroup {
    /// The group epoch.
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// The epoch of the current target assignment.
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    /// The members by id.
    pub fn members(&self) -> &BTreeMap<String, ShareMember> {
        &self.members
    }

    /// The target assignment by member id.
    pub fn target(&self) -> &BTreeMap<String, BTreeSet<TopicPartition>> {
        &self.target
    }

    /// The [`topics_hash`] of the subscribed topics as last seen (Kafka's metadata hash).
    pub fn metadata_hash(&self) -> i64 {
        self.restored_hash
            .unwrap_or_else(|| topics_hash(&self.topics_seen))
    }

    /// A group as its records left it, `metadata_hash` being what [`Self::metadata_hash`]
    /// was: the first heartbeat takes the topics it sees as unchanged if they hash alike, and
    /// starts a new group epoch otherwise.
    pub fn restored(
        group_epoch: i32,
        assignment_epoch: i32,
        metadata_hash: i64,
        members: BTreeMap<String, ShareMember>,
        target: BTreeMap<String, BTreeSet<TopicPartition>>,
    ) -> ShareGroup {
        ShareGroup {
            group_epoch,
            assignment_epoch,
            members,
            target,
            topics_seen: TopicsView::new(),
            restored_hash: Some(metadata_hash),
            last_assignment_ms: None,
        }
    }

    /// Whether the group has no member (it may be deleted, its offsets altered).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A group change outside heartbeats (AlterShareGroupOffsets): the next heartbeat
    /// recomputes the target.
    pub fn bump_epoch(&mut self) {
        self.group_epoch += 1;
    }

    /// Decides one heartbeat at `now` against the topics readable now.
    pub fn heartbeat(
        &mut self,
        hb: &Heartbeat,
        topics: &TopicsView,
        config: &ShareGroupConfig,
        now: i64,
    ) -> Result<HeartbeatAnswer, ShareHeartbeatError> {
        if hb.member_id.is_empty() {
            return Err(ShareHeartbeatError::InvalidRequest("member id is empty"));
        }
        if hb.member_epoch < LEAVE_EPOCH {
            return Err(ShareHeartbeatError::InvalidRequest("member epoch below -1"));
        }
        let known = self.members.get(&hb.member_id);
        match (hb.member_epoch, known) {
            (LEAVE_EPOCH, None) => {
                return Err(ShareHeartbeatError::UnknownMember(hb.member_id.clone()))
            }
            (LEAVE_EPOCH, Some(_)) => {
                self.remove(&hb.member_id);
                return Ok(HeartbeatAnswer {
                    member_epoch: LEAVE_EPOCH,
                    heartbeat_interval_ms: 0,
                    assignment: None,
                });
            }
            (JOIN_EPOCH, None) => {
                if hb.topics.as_ref().is_none_or(Vec::is_empty) {
                    return Err(ShareHeartbeatError::InvalidRequest(
                        "a joining member subscribes to at least one topic",
                    ));
                }
                if self.members.len() >= config.max_size {
                    return Err(ShareHeartbeatError::GroupFull(config.max_size));
                }
            }
            (JOIN_EPOCH, Some(_)) => {}
            (_, None) => return Err(ShareHeartbeatError::UnknownMember(hb.member_id.clone())),
            (epoch, Some(m)) => {
                if epoch != m.epoch && epoch != m.previous_epoch {
                    return Err(ShareHeartbeatError::FencedEpoch(epoch));
                }
            }
        }
        // Every check passed: the changes.
        let joining = hb.member_epoch == JOIN_EPOCH;
        let member = self
            .members
            .entry(hb.member_id.clone())
            .or_insert_with(|| ShareMember {
                epoch: JOIN_EPOCH,
                previous_epoch: JOIN_EPOCH,
                topics: BTreeSet::new(),
                assignment: BTreeSet::new(),
                deadline_ms: now,
                client: MemberClient::default(),
            });
        member.deadline_ms = now.saturating_add(config.session_timeout_ms);
        member.client = hb.client.clone();
        let mut changed = joining && member.epoch == JOIN_EPOCH;
        if let Some(names) = &hb.topics {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            if names != member.topics {
                member.topics = names;
                changed = true;
            }
        }
        let seen = self.subscribed_view(topics);
        let restored = self.restored_hash.take();
        if seen != self.topics_seen {
            changed |= restored != Some(topics_hash(&seen));
            self.topics_seen = seen;
        }
        if changed {
            // One new epoch per heartbeat, whatever changed.
            self.group_epoch += 1;
        }
        let due = self
            .last_assignment_ms
            .is_none_or(|last| now.saturating_sub(last) >= config.assignment_interval_ms);
        if self.group_epoch > self.assignment_epoch && due {
            self.target = self.compute_target();
            self.assignment_epoch = self.group_epoch;
            self.last_assignment_ms = Some(now);
        }
        let assignment_epoch = self.assignment_epoch.max(1);
        let Some(member) = self.members.get_mut(&hb.member_id) else {
            return Err(ShareHeartbeatError::UnknownMember(hb.member_id.clone()));
        };
        // A member stops reading a topic it no longer subscribes to at once, not at the next
        // target (which may wait for the assignment interval and its next heartbeat).
        let subscribed: BTreeSet<Uuid> = member
            .topics
            .iter()
            .filter_map(|name| topics.get(name).map(|(id, _)| *id))
            .collect();
        let mut target = self.target.get(&hb.member_id).cloned().unwrap_or_default();
        target.retain(|(topic, _)| subscribed.contains(topic));
        let moved = member.epoch != assignment_epoch || member.assignment != target;
        if moved {
            member.previous_epoch = member.epoch;
            member.epoch = assignment_epoch;
            member.assignment = target;
        }
        Ok(HeartbeatAnswer {
            member_epoch: member.epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: (moved || joining).then(|| member.assignment.clone()),
        })
    }

    /// Drops the members whose session ended by `now`; returns their ids (their share
    /// sessions end and their records go back when their locks end).
    pub fn expire(&mut self, now: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.deadline_ms <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        gone
    }

    fn remove(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    /// The readable topics any member subscribes to.
    fn subscribed_view(&self, topics: &TopicsView) -> TopicsView {
        let names: BTreeSet<&String> = self.members.values().flat_map(|m| &m.topics).collect();
        topics
            .iter()
            .filter(|(name, _)| names.contains(name))
            .map(|(name, view)| (name.clone(), view.clone()))
            .collect()
    }

    fn compute_target(&self) -> BTreeMap<String, BTreeSet<TopicPartition>> {
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .iter()
            .map(|(id, m)| {
                let topics = m
                    .topics
                    .iter()
                    .filter_map(|name| self.topics_seen.get(name).map(|(topic, _)| *topic))
                    .collect();
                let previous = self.target.get(id).cloned().unwrap_or_default();
                (id.clone(), MemberSpec { topics, previous })
            })
            .collect();
        let partitions: BTreeMap<Uuid, Vec<i32>> = self.topics_seen.values().cloned().collect();
        assign(&specs, &partitions)
    }
}

/// A hash of the topics a group reads (names, ids, partitions), the same in every process,
/// so a group loaded from its records can tell whether they changed meanwhile (FNV-1a).
pub fn topics_hash(topics: &TopicsView) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, (id, partitions)) in topics {
        feed(name.as_bytes());
        feed(id.as_bytes());
        for p in partitions {
            feed(&p.to_be_bytes());
        }
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests;
