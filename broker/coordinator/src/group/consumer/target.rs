//! A new target assignment (Kafka's `TargetAssignmentBuilder`): when the group epoch has moved
//! past the target's, the group's assignor is run over the current members and subscribed
//! topics, and the records are the members whose target changed plus the new target epoch.

use std::collections::BTreeMap;

use super::assignor::{Assignor, GroupSpec, MemberSpec};
use super::config::ConsumerGroupConfig;
use super::group::ConsumerGroup;
use super::records::Record;
use super::subscription::member_topics;

impl ConsumerGroup {
    /// The assignor of the group: the one most members ask for (ties to the first name),
    /// else the configured default. Names the broker does not run are refused at heartbeat,
    /// so an unknown one here (from an old record) falls back to the default too.
    pub fn preferred_assignor(&self, config: &ConsumerGroupConfig) -> Assignor {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref() {
                *counts.entry(a).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, n) in counts {
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((name, n));
            }
        }
        best.and_then(|(name, _)| Assignor::from_name(name))
            .or_else(|| Assignor::from_name(config.default_assignor()))
            .unwrap_or(Assignor::Uniform)
    }

    /// The assignor's input for the group as it stands.
    pub fn assignment_spec(&self) -> GroupSpec {
        GroupSpec {
            members: self
                .members
                .values()
                .map(|m| MemberSpec {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    topics: member_topics(m, &self.subscribed_topics),
                    current: self.target(&m.member_id),
                })
                .collect(),
            partitions: self
                .subscribed_topics
                .values()
                .map(|t| (t.id, t.partitions))
                .collect(),
        }
    }

    /// The records of a new target assignment at the group epoch: one per member whose
    /// target changes (a new member's too, even when empty), then the target epoch.
    pub(super) fn new_target_records(&self, config: &ConsumerGroupConfig) -> Vec<Record> {
        let assignor = self.preferred_assignor(config);
        let assigned = assignor.assign(&self.assignment_spec());
        let mut records = Vec::new();
        for (member, partitions) in assigned {
            if self.target.get(&member) != Some(&partitions) {
                records.push(Record::target_member(&self.group_id, &member, partitions));
            }
        }
        records.push(Record::target_epoch(&self.group_id, self.group_epoch));
        records
    }
}
