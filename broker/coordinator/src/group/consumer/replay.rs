//! Records into state: [`ConsumerGroup::apply`] is the one place a group changes, used both
//! when a coordinator loads its partition and for the records a heartbeat writes, so a
//! reloaded coordinator always rebuilds exactly the state the live one had.
//! [`ConsumerGroups::replay`] routes records to groups and creates and deletes them.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::assignment::Assignment;
use super::group::ConsumerGroup;
use super::member::{Member, LEAVE_GROUP_MEMBER_EPOCH};
use super::records::{Record, RecordKey, RecordValue};

impl ConsumerGroup {
    /// Applies one record of this group (the key's group id is not checked: route with
    /// [`ConsumerGroups::replay`]). The group epoch tombstone is left to the caller, which
    /// deletes the group.
    pub fn apply(&mut self, record: &Record) {
        match (&record.key, &record.value) {
            (RecordKey::GroupMetadata { .. }, Some(RecordValue::GroupMetadata { epoch })) => {
                self.group_epoch = *epoch;
            }
            (RecordKey::PartitionMetadata { .. }, value) => {
                self.subscribed_topics = match value {
                    Some(RecordValue::PartitionMetadata { topics }) => {
                        topics.iter().map(|t| (t.name.clone(), t.clone())).collect()
                    }
                    _ => BTreeMap::new(),
                };
            }
            (RecordKey::MemberMetadata { member, .. }, Some(RecordValue::MemberMetadata(v))) => {
                let m = self
                    .members
                    .entry(member.clone())
                    .or_insert_with(|| Member::new(member));
                let old_instance = m.instance_id.take();
                m.instance_id = v.instance_id.clone();
                m.rack_id = v.rack_id.clone();
                m.client_id = v.client_id.clone();
                m.client_host = v.client_host.clone();
                m.subscribed_topic_names = v.subscribed_topic_names.iter().cloned().collect();
                m.subscribed_topic_regex = v.subscribed_topic_regex.clone();
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.server_assignor = v.server_assignor.clone();
                m.classic = v.classic.clone();
                if let Some(old) = old_instance {
                    if self.static_members.get(&old) == Some(member) {
                        self.static_members.remove(&old);
                    }
                }
                if let Some(instance) = &v.instance_id {
                    self.static_members.insert(instance.clone(), member.clone());
                }
            }
            (RecordKey::MemberMetadata { member, .. }, None) => self.remove_member(member),
            (
                RecordKey::TargetAssignmentMetadata { .. },
                Some(RecordValue::TargetAssignmentMetadata { assignment_epoch }),
            ) => self.assignment_epoch = *assignment_epoch,
            (RecordKey::TargetAssignmentMetadata { .. }, None) => self.assignment_epoch = -1,
            (
                RecordKey::TargetAssignmentMember { member, .. },
                Some(RecordValue::TargetAssignmentMember { partitions }),
            ) => {
                self.target.insert(member.clone(), partitions.clone());
            }
            (RecordKey::TargetAssignmentMember { member, .. }, None) => {
                self.target.remove(member);
            }
            (
                RecordKey::CurrentAssignment { member, .. },
                Some(RecordValue::CurrentAssignment(v)),
            ) => {
                let earlier = self.release(member);
                let m = self
                    .members
                    .entry(member.clone())
                    .or_insert_with(|| Member::new(member));
                m.member_epoch = v.member_epoch;
                m.previous_member_epoch = v.previous_member_epoch;
                m.state = v.state;
                m.assigned = v.assigned.clone();
                m.pending_revocation = v.pending_revocation.clone();
                self.claim(member, &earlier);
            }
            (RecordKey::CurrentAssignment { member, .. }, None) => {
                self.release(member);
                if let Some(m) = self.members.get_mut(member) {
                    m.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                    m.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                    m.assigned = Assignment::new();
                    m.pending_revocation = Assignment::new();
                }
            }
            // The group tombstone (handled by the caller) and a value of another type under
            // a key, which the codec cannot produce.
            _ => {}
        }
    }

    /// Drops `member_id` with everything it owned.
    fn remove_member(&mut self, member_id: &str) {
        self.release(member_id);
        if let Some(m) = self.members.remove(member_id) {
            if let Some(instance) = m.instance_id {
                if self.static_members.get(&instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(&instance);
                }
            }
        }
        self.forget_timers(member_id);
    }

    /// Removes `member_id`'s partitions from the owner and assignment indexes; answers the
    /// epochs its assigned partitions were assigned at.
    fn release(&mut self, member_id: &str) -> BTreeMap<(Uuid, i32), i32> {
        let mut earlier = BTreeMap::new();
        let Some(m) = self.members.get(member_id) else {
            return earlier;
        };
        for (t, p) in m.owned().iter() {
            if self.owners.get(&(t, p)).map(|(o, _)| o.as_str()) == Some(member_id) {
                self.owners.remove(&(t, p));
            }
        }
        for (t, p) in m.assigned.iter() {
            if let Some((owner, at)) = self.assigned_at.remove(&(t, p)) {
                match owner == member_id {
                    true => _ = earlier.insert((t, p), at),
                    false => _ = self.assigned_at.insert((t, p), (owner, at)),
                }
            }
        }
        earlier
    }

    /// Adds `member_id`'s partitions to the owner index at its epoch, and its assigned ones
    /// to the assignment index: at the epoch of `earlier` for those it kept, else at its
    /// current epoch.
    fn claim(&mut self, member_id: &str, earlier: &BTreeMap<(Uuid, i32), i32>) {
        let Some(m) = self.members.get(member_id) else {
            return;
        };
        for (t, p) in m.owned().iter() {
            self.owners
                .insert((t, p), (member_id.to_string(), m.member_epoch));
        }
        for (t, p) in m.assigned.iter() {
            let at = earlier.get(&(t, p)).copied().unwrap_or(m.member_epoch);
            self.assigned_at.insert((t, p), (member_id.to_string(), at));
        }
    }
}

/// Every consumer group of one `__consumer_offsets` partition, as its records build them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroups {
    groups: BTreeMap<String, ConsumerGroup>,
}

impl ConsumerGroups {
    /// No groups.
    pub fn new() -> ConsumerGroups {
        ConsumerGroups::default()
    }

    /// Applies one record: a value creates its group if needed, the group epoch tombstone
    /// deletes the group, and a tombstone for a group that does not exist is ignored.
    pub fn replay(&mut self, record: &Record) {
        let group = record.key.group();
        match (&record.key, &record.value) {
            (RecordKey::GroupMetadata { .. }, None) => {
                self.groups.remove(group);
            }
            (_, Some(_)) => self
                .groups
                .entry(group.to_string())
                .or_insert_with(|| ConsumerGroup::new(group))
                .apply(record),
            (_, None) => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.apply(record);
                }
            }
        }
    }

    /// The group `group_id`.
    pub fn get(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(group_id)
    }

    /// The group `group_id`, to run an operation on.
    pub fn get_mut(&mut self, group_id: &str) -> Option<&mut ConsumerGroup> {
        self.groups.get_mut(group_id)
    }

    /// The group `group_id`, created empty if it does not exist (a member joining with epoch
    /// 0 creates its group).
    pub fn get_or_create(&mut self, group_id: &str) -> &mut ConsumerGroup {
        self.groups
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id))
    }

    /// Drops the in-memory group `group_id` (no records: for a group that was never
    /// written).
    pub(super) fn remove(&mut self, group_id: &str) {
        self.groups.remove(group_id);
    }

    /// Puts `group` back as it was before an operation whose records could not be written
    /// (`None`: the group did not exist).
    pub fn restore(&mut self, group_id: &str, group: Option<ConsumerGroup>) {
        match group {
            Some(group) => {
                self.groups.insert(group_id.to_string(), group);
            }
            None => {
                self.groups.remove(group_id);
            }
        }
    }

    /// Moves every group of `other` in (a loaded partition's groups).
    pub fn extend(&mut self, other: ConsumerGroups) {
        self.groups.extend(other.groups);
    }

    /// Drops the groups whose id `unloaded` accepts (a partition that is no longer led
    /// here); returns how many.
    pub fn unload(&mut self, unloaded: impl Fn(&str) -> bool) -> usize {
        let before = self.groups.len();
        self.groups.retain(|id, _| !unloaded(id));
        before - self.groups.len()
    }

    /// Every group, to re-arm its timers after a load.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut ConsumerGroup> + '_ {
        self.groups.values_mut()
    }

    /// Every group, by id.
    pub fn iter(&self) -> impl Iterator<Item = &ConsumerGroup> + '_ {
        self.groups.values()
    }
}
