//! A consumer group's state (Kafka's `ConsumerGroup`): its epochs, members, the metadata of
//! the topics it subscribes to and its target assignment, all rebuilt from records by
//! [`ConsumerGroup::apply`]; plus the soft state a coordinator keeps only while it leads
//! (session and rebalance deadlines, the metadata refresh deadline), which is never persisted
//! and re-armed by [`ConsumerGroup::on_loaded`].

use std::collections::BTreeMap;

use uuid::Uuid;

use super::assignment::Assignment;
use super::member::{Member, MemberState};
use super::topics::TopicMetadata;

/// A consumer group's state as ListGroups and DescribeGroups report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The group epoch moved past the target assignment: a new one is due.
    Assigning,
    /// Some members have not reached the target assignment yet.
    Reconciling,
    /// Every member is at the target assignment.
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name of the state (ListGroups, ConsumerGroupDescribe).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A deadline by which a member in `UNREVOKED_PARTITIONS` must have revoked, armed for the
/// epoch it was given at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalanceDeadline {
    /// When the member is fenced (ms, the caller's clock).
    pub at: i64,
    /// The member epoch the deadline belongs to: a member that moved on is not fenced.
    pub member_epoch: i32,
}

/// A consumer group (the KIP-848 protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroup {
    pub(super) group_id: String,
    /// Bumped whenever the assignment must be recomputed (membership or metadata change).
    pub(super) group_epoch: i32,
    /// The group epoch the target assignment was computed at (-1 once deleted).
    pub(super) assignment_epoch: i32,
    pub(super) members: BTreeMap<String, Member>,
    /// Instance id → member id of static members.
    pub(super) static_members: BTreeMap<String, String>,
    /// The subscribed topics' metadata the target assignment was computed from, by name.
    pub(super) subscribed_topics: BTreeMap<String, TopicMetadata>,
    /// Target partitions by member id.
    pub(super) target: BTreeMap<String, Assignment>,
    /// Who owns each partition (assigned or pending revocation) and at which epoch: a
    /// partition is given to a new owner only when it has none.
    pub(super) owners: BTreeMap<(Uuid, i32), (String, i32)>,
    /// The member each assigned partition (not one pending revocation) belongs to and the
    /// member epoch it was assigned at (KIP-1251's assignment epoch), derived from the
    /// current assignment records in order.
    pub(super) assigned_at: BTreeMap<(Uuid, i32), (String, i32)>,
    /// Soft state: when each member's session ends.
    pub(super) session_deadlines: BTreeMap<String, i64>,
    /// Soft state: members that must finish revoking by a deadline.
    pub(super) rebalance_deadlines: BTreeMap<String, RebalanceDeadline>,
    /// Soft state: when the subscribed topics' metadata is next compared with the cluster's,
    /// and at which group epoch that deadline was set.
    pub(super) metadata_refresh: Option<(i64, i32)>,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            subscribed_topics: BTreeMap::new(),
            target: BTreeMap::new(),
            owners: BTreeMap::new(),
            assigned_at: BTreeMap::new(),
            session_deadlines: BTreeMap::new(),
            rebalance_deadlines: BTreeMap::new(),
            metadata_refresh: None,
        }
    }

    /// Group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The group epoch.
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// The epoch of the target assignment.
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    /// Members by id.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// The member `member_id`.
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    /// The member holding static `instance_id`.
    pub fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.static_members
            .get(instance_id)
            .and_then(|id| self.members.get(id))
    }

    /// The subscribed topics' metadata, by name.
    pub fn subscribed_topics(&self) -> &BTreeMap<String, TopicMetadata> {
        &self.subscribed_topics
    }

    /// The target partitions of `member_id` (empty if it has none).
    pub fn target(&self, member_id: &str) -> Assignment {
        self.target.get(member_id).cloned().unwrap_or_default()
    }

    /// The whole target assignment, by member id.
    pub fn target_assignment(&self) -> &BTreeMap<String, Assignment> {
        &self.target
    }

    /// The member that owns `topic`-`partition` and at which epoch, if any.
    pub fn owner(&self, topic: Uuid, partition: i32) -> Option<(&str, i32)> {
        self.owners
            .get(&(topic, partition))
            .map(|(m, e)| (m.as_str(), *e))
    }

    /// Whether `member_id` may commit offsets of `partitions` (topic name, partition) with
    /// `epoch`, older than its current member epoch (KIP-1251): each partition must still be
    /// assigned to it, and have been since `epoch` or before. A commit sent before the
    /// heartbeat response that bumped the epoch reached the client is taken; one for a
    /// partition the member gave up, or got only later, is not.
    pub fn assigned_since<'a>(
        &self,
        member_id: &str,
        epoch: i32,
        mut partitions: impl Iterator<Item = (&'a str, i32)>,
    ) -> bool {
        partitions.all(|(topic, partition)| {
            self.subscribed_topics
                .get(topic)
                .and_then(|t| self.assigned_at.get(&(t.id, partition)))
                .is_some_and(|(owner, at)| owner == member_id && *at <= epoch)
        })
    }

    /// The group's state, derived as Kafka derives it.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Whether the group holds nothing worth keeping (may be deleted with its tombstones).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When `member_id`'s session ends, if it is being timed.
    pub fn session_deadline(&self, member_id: &str) -> Option<i64> {
        self.session_deadlines.get(member_id).copied()
    }

    /// The rebalance deadline of `member_id`, if it is revoking.
    pub fn rebalance_deadline(&self, member_id: &str) -> Option<RebalanceDeadline> {
        self.rebalance_deadlines.get(member_id).copied()
    }

    /// Re-arms the soft state after a load: every member gets a fresh session, and members
    /// caught revoking get a fresh rebalance deadline (Kafka's `onLoaded`).
    pub fn on_loaded(&mut self, now: i64, session_timeout_ms: i32) {
        self.session_deadlines.clear();
        self.rebalance_deadlines.clear();
        self.metadata_refresh = None;
        for m in self.members.values() {
            self.session_deadlines.insert(
                m.member_id.clone(),
                now + i64::from(m.session_timeout_ms(session_timeout_ms)),
            );
            if m.state == MemberState::UnrevokedPartitions {
                self.rebalance_deadlines.insert(
                    m.member_id.clone(),
                    RebalanceDeadline {
                        at: now + i64::from(m.rebalance_timeout_ms.max(0)),
                        member_epoch: m.member_epoch,
                    },
                );
            }
        }
    }

    /// Stops timing a member that is gone.
    pub(super) fn forget_timers(&mut self, member_id: &str) {
        self.session_deadlines.remove(member_id);
        self.rebalance_deadlines.remove(member_id);
    }

    /// The records that delete the whole group (DeleteGroups of an empty group), in Kafka's
    /// order: members' assignments, targets, the target epoch, subscriptions, metadata, epoch.
    pub fn tombstones(&self) -> Vec<super::records::Record> {
        use super::records::{Record, RecordKey};
        let group = self.group_id.clone();
        let mut out = Vec::new();
        for m in self.members.keys() {
            out.push(Record::tombstone(RecordKey::CurrentAssignment {
                group: group.clone(),
                member: m.clone(),
            }));
        }
        for m in self.members.keys() {
            out.push(Record::tombstone(RecordKey::TargetAssignmentMember {
                group: group.clone(),
                member: m.clone(),
            }));
        }
        out.push(Record::tombstone(RecordKey::TargetAssignmentMetadata {
            group: group.clone(),
        }));
        for m in self.members.keys() {
            out.push(Record::tombstone(RecordKey::MemberMetadata {
                group: group.clone(),
                member: m.clone(),
            }));
        }
        out.push(Record::tombstone(RecordKey::PartitionMetadata {
            group: group.clone(),
        }));
        out.push(Record::tombstone(RecordKey::GroupMetadata { group }));
        out
    }
}
