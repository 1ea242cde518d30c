//! A share group's membership as records of `__consumer_offsets` (KIP-932), in Kafka's
//! layout: key version = record type (10 member metadata, 11 group metadata, 12 target
//! assignment metadata, 13 target assignment member, 14 current member assignment), values
//! version 0 of flexible schemas. Type 15 (which share-partitions are initialized) is not
//! written: here the share coordinator initializes a share-partition's state on its first
//! fetch, so its own records say so; a type 15 record from a Kafka log is skipped on load.
//!
//! What is written is the difference between a group before and after a change
//! ([`changes`]), so every path that changes a group persists it the same way; a load
//! replays them ([`ShareReplay`]) into the groups the coordinator serves, so members keep
//! their ids, epochs and assignments when the coordinator moves or restarts.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::assignor::TopicPartition;
use super::group::{MemberClient, ShareGroup, ShareMember};
pub use crate::codec::RecordError;
use crate::codec::{Reader, Writer};
use crate::log::Entry;

/// `ShareGroupMemberMetadata`: one member's client and subscription.
pub const MEMBER_METADATA: i16 = 10;
/// `ShareGroupMetadata`: the group epoch.
pub const GROUP_METADATA: i16 = 11;
/// `ShareGroupTargetAssignmentMetadata`: the target assignment's epoch.
pub const TARGET_ASSIGNMENT_METADATA: i16 = 12;
/// `ShareGroupTargetAssignmentMember`: one member's target partitions.
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 13;
/// `ShareGroupCurrentMemberAssignment`: one member's epochs and current partitions.
pub const CURRENT_ASSIGNMENT: i16 = 14;
/// `ShareGroupStatePartitionMetadata`: recognized so a load skips it quietly.
pub const STATE_PARTITION_METADATA: i16 = 15;

/// Every schema of these types has only version 0.
const VALUE_VERSION: i16 = 0;
/// Kafka's `MemberState.STABLE`: a share member is always at its target.
const STABLE: i8 = 0;

/// The key of a share group record: its type and whom it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShareKey {
    /// Type 11.
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// Type 10.
    MemberMetadata {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// Type 12.
    TargetAssignmentMetadata {
        /// Group id.
        group: String,
    },
    /// Type 13.
    TargetAssignmentMember {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// Type 14.
    CurrentAssignment {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
}

/// A record's value, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareValue {
    /// The group epoch and the hash of the topics its members read then.
    GroupMetadata {
        /// Group epoch.
        epoch: i32,
        /// [`ShareGroup::metadata_hash`].
        metadata_hash: i64,
    },
    /// Who the member is and what it subscribes to.
    MemberMetadata {
        /// Client id, host and rack.
        client: MemberClient,
        /// Subscribed topic names.
        topics: BTreeSet<String>,
    },
    /// The epoch of the target assignment.
    TargetAssignmentMetadata {
        /// Assignment epoch.
        assignment_epoch: i32,
    },
    /// A member's target partitions.
    TargetAssignmentMember {
        /// Partitions by topic id.
        partitions: BTreeSet<TopicPartition>,
    },
    /// A member's epochs and the partitions it reads.
    CurrentAssignment {
        /// Member epoch.
        epoch: i32,
        /// The epoch before (a lost response's retry).
        previous_epoch: i32,
        /// Assigned partitions.
        partitions: BTreeSet<TopicPartition>,
    },
}

/// One record: a key and its value, or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    /// Whom it is about.
    pub key: ShareKey,
    /// The value; `None` deletes the key.
    pub value: Option<ShareValue>,
}

impl ShareKey {
    fn record_type(&self) -> i16 {
        match self {
            ShareKey::MemberMetadata { .. } => MEMBER_METADATA,
            ShareKey::GroupMetadata { .. } => GROUP_METADATA,
            ShareKey::TargetAssignmentMetadata { .. } => TARGET_ASSIGNMENT_METADATA,
            ShareKey::TargetAssignmentMember { .. } => TARGET_ASSIGNMENT_MEMBER,
            ShareKey::CurrentAssignment { .. } => CURRENT_ASSIGNMENT,
        }
    }

    /// The group the record is about.
    pub fn group(&self) -> &str {
        match self {
            ShareKey::GroupMetadata { group }
            | ShareKey::MemberMetadata { group, .. }
            | ShareKey::TargetAssignmentMetadata { group }
            | ShareKey::TargetAssignmentMember { group, .. }
            | ShareKey::CurrentAssignment { group, .. } => group,
        }
    }

    fn member(&self) -> Option<&str> {
        match self {
            ShareKey::MemberMetadata { member, .. }
            | ShareKey::TargetAssignmentMember { member, .. }
            | ShareKey::CurrentAssignment { member, .. } => Some(member),
            ShareKey::GroupMetadata { .. } | ShareKey::TargetAssignmentMetadata { .. } => None,
        }
    }

    fn encode(&self) -> Bytes {
        let mut w = Writer::new(false);
        w.i16(self.record_type());
        w.string(self.group());
        if let Some(member) = self.member() {
            w.string(member);
        }
        w.finish()
    }

    /// Decodes a key; `Ok(None)` for a type that is not a share group's (10 to 15), and
    /// for type 15, which is skipped.
    fn decode(bytes: &[u8]) -> Result<Option<ShareKey>, RecordError> {
        let mut r = Reader::new(bytes, false);
        let record_type = r.i16()?;
        if !(MEMBER_METADATA..=CURRENT_ASSIGNMENT).contains(&record_type) {
            return Ok(None);
        }
        let group = r.string()?;
        Ok(Some(match record_type {
            GROUP_METADATA => ShareKey::GroupMetadata { group },
            TARGET_ASSIGNMENT_METADATA => ShareKey::TargetAssignmentMetadata { group },
            MEMBER_METADATA => ShareKey::MemberMetadata {
                group,
                member: r.string()?,
            },
            TARGET_ASSIGNMENT_MEMBER => ShareKey::TargetAssignmentMember {
                group,
                member: r.string()?,
            },
            _ => ShareKey::CurrentAssignment {
                group,
                member: r.string()?,
            },
        }))
    }
}

/// Whether a `__consumer_offsets` key is one of a share group's records (types 10 to 15).
pub fn is_share_key(key: &[u8]) -> bool {
    key.get(..2)
        .map(|v| i16::from_be_bytes([v[0], v[1]]))
        .is_some_and(|t| (MEMBER_METADATA..=STATE_PARTITION_METADATA).contains(&t))
}

impl ShareValue {
    fn encode(&self) -> Bytes {
        let mut w = Writer::new(true);
        w.i16(VALUE_VERSION);
        match self {
            ShareValue::GroupMetadata {
                epoch,
                metadata_hash,
            } => {
                w.i32(*epoch);
                w.i64(*metadata_hash);
            }
            ShareValue::MemberMetadata { client, topics } => {
                w.nullable_string(client.rack_id.as_deref());
                w.string(&client.client_id);
                w.string(&client.client_host);
                w.array_len(topics.len());
                for topic in topics {
                    w.string(topic);
                }
            }
            ShareValue::TargetAssignmentMetadata { assignment_epoch } => w.i32(*assignment_epoch),
            ShareValue::TargetAssignmentMember { partitions } => {
                write_partitions(&mut w, partitions)
            }
            ShareValue::CurrentAssignment {
                epoch,
                previous_epoch,
                partitions,
            } => {
                w.i32(*epoch);
                w.i32(*previous_epoch);
                w.i8(STABLE);
                write_partitions(&mut w, partitions);
            }
        }
        w.no_tagged_fields();
        w.finish()
    }

    fn decode(key: &ShareKey, bytes: &[u8]) -> Result<ShareValue, RecordError> {
        let mut r = Reader::new(bytes, false);
        let version = r.i16()?;
        if version != VALUE_VERSION {
            return Err(RecordError::UnknownVersion {
                schema: schema_name(key),
                version,
            });
        }
        r.set_flexible(true);
        let value = match key {
            ShareKey::GroupMetadata { .. } => ShareValue::GroupMetadata {
                epoch: r.i32()?,
                metadata_hash: r.i64()?,
            },
            ShareKey::MemberMetadata { .. } => {
                let rack_id = r.nullable_string()?;
                let client_id = r.string()?;
                let client_host = r.string()?;
                let mut topics = BTreeSet::new();
                for _ in 0..r.array_len()?.unwrap_or(0) {
                    topics.insert(r.string()?);
                }
                ShareValue::MemberMetadata {
                    client: MemberClient {
                        client_id,
                        client_host,
                        rack_id,
                    },
                    topics,
                }
            }
            ShareKey::TargetAssignmentMetadata { .. } => ShareValue::TargetAssignmentMetadata {
                assignment_epoch: r.i32()?,
            },
            ShareKey::TargetAssignmentMember { .. } => ShareValue::TargetAssignmentMember {
                partitions: read_partitions(&mut r)?,
            },
            ShareKey::CurrentAssignment { .. } => {
                let epoch = r.i32()?;
                let previous_epoch = r.i32()?;
                let _state = r.i8()?;
                ShareValue::CurrentAssignment {
                    epoch,
                    previous_epoch,
                    partitions: read_partitions(&mut r)?,
                }
            }
        };
        r.skip_tagged_fields()?;
        Ok(value)
    }
}

fn schema_name(key: &ShareKey) -> &'static str {
    match key {
        ShareKey::GroupMetadata { .. } => "ShareGroupMetadataValue",
        ShareKey::MemberMetadata { .. } => "ShareGroupMemberMetadataValue",
        ShareKey::TargetAssignmentMetadata { .. } => "ShareGroupTargetAssignmentMetadataValue",
        ShareKey::TargetAssignmentMember { .. } => "ShareGroupTargetAssignmentMemberValue",
        ShareKey::CurrentAssignment { .. } => "ShareGroupCurrentMemberAssignmentValue",
    }
}

fn write_partitions(w: &mut Writer, partitions: &BTreeSet<TopicPartition>) {
    let mut by_topic: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(*topic).or_default().push(*partition);
    }
    w.array_len(by_topic.len());
    for (topic, partitions) in by_topic {
        w.uuid(topic);
        w.array_len(partitions.len());
        for p in partitions {
            w.i32(p);
        }
        w.no_tagged_fields();
    }
}

fn read_partitions(r: &mut Reader<'_>) -> Result<BTreeSet<TopicPartition>, RecordError> {
    let mut out = BTreeSet::new();
    for _ in 0..r.array_len()?.unwrap_or(0) {
        let topic = r.uuid()?;
        for _ in 0..r.array_len()?.unwrap_or(0) {
            out.insert((topic, r.i32()?));
        }
        r.skip_tagged_fields()?;
    }
    Ok(out)
}

impl ShareRecord {
    /// The record as a log entry (key, value or tombstone).
    pub fn entry(&self) -> Entry {
        (
            self.key.encode(),
            self.value.as_ref().map(ShareValue::encode),
        )
    }

    /// Decodes a `__consumer_offsets` record; `Ok(None)` unless it is a share group's (types
    /// 10 to 14).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<ShareRecord>, RecordError> {
        let Some(key) = ShareKey::decode(key)? else {
            return Ok(None);
        };
        let value = value.map(|v| ShareValue::decode(&key, v)).transpose()?;
        Ok(Some(ShareRecord { key, value }))
    }
}

/// The records that take group `group` from `before` to `after` (`None`: no such group;
/// from a group to none writes its tombstones, group metadata last as Kafka deletes a group).
pub fn changes(
    group: &str,
    before: Option<&ShareGroup>,
    after: Option<&ShareGroup>,
) -> Vec<ShareRecord> {
    let empty = ShareGroup::default();
    let (old, new) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    let mut out = Vec::new();
    let set = |out: &mut Vec<ShareRecord>, key: ShareKey, value: Option<ShareValue>| {
        out.push(ShareRecord { key, value });
    };
    let member_key = |member: &str| (group.to_owned(), member.to_owned());
    for (id, member) in new.members() {
        let (group, member_id) = member_key(id);
        let was = old.members().get(id);
        if was.is_none_or(|w| w.client != member.client || w.topics != member.topics) {
            let key = ShareKey::MemberMetadata {
                group,
                member: member_id,
            };
            set(&mut out, key, Some(member_metadata(member)));
        }
    }
    let metadata = |g: &ShareGroup| (g.group_epoch(), g.metadata_hash());
    if after.is_some() && (before.is_none() || metadata(old) != metadata(new)) {
        let key = ShareKey::GroupMetadata {
            group: group.to_owned(),
        };
        let value = ShareValue::GroupMetadata {
            epoch: new.group_epoch(),
            metadata_hash: new.metadata_hash(),
        };
        set(&mut out, key, Some(value));
    }
    for (id, partitions) in new.target() {
        if old.target().get(id) != Some(partitions) {
            let (group, member) = member_key(id);
            let key = ShareKey::TargetAssignmentMember { group, member };
            let value = ShareValue::TargetAssignmentMember {
                partitions: partitions.clone(),
            };
            set(&mut out, key, Some(value));
        }
    }
    if after.is_some() && (before.is_none() || old.assignment_epoch() != new.assignment_epoch()) {
        let key = ShareKey::TargetAssignmentMetadata {
            group: group.to_owned(),
        };
        let value = ShareValue::TargetAssignmentMetadata {
            assignment_epoch: new.assignment_epoch(),
        };
        set(&mut out, key, Some(value));
    }
    for (id, member) in new.members() {
        let was = old.members().get(id);
        if was.is_none_or(|w| {
            (w.epoch, w.previous_epoch, &w.assignment)
                != (member.epoch, member.previous_epoch, &member.assignment)
        }) {
            let (group, member_id) = member_key(id);
            let key = ShareKey::CurrentAssignment {
                group,
                member: member_id,
            };
            let value = ShareValue::CurrentAssignment {
                epoch: member.epoch,
                previous_epoch: member.previous_epoch,
                partitions: member.assignment.clone(),
            };
            set(&mut out, key, Some(value));
        }
    }
    // Targets and members gone, as Kafka removes a member: current assignment, target,
    // metadata.
    let tombstone = |out: &mut Vec<ShareRecord>, key: ShareKey| set(out, key, None);
    for id in old
        .members()
        .keys()
        .filter(|id| !new.members().contains_key(*id))
    {
        let (group, member) = member_key(id);
        tombstone(&mut out, ShareKey::CurrentAssignment { group, member });
    }
    for id in old
        .target()
        .keys()
        .filter(|id| !new.target().contains_key(*id))
    {
        let (group, member) = member_key(id);
        tombstone(&mut out, ShareKey::TargetAssignmentMember { group, member });
    }
    for id in old
        .members()
        .keys()
        .filter(|id| !new.members().contains_key(*id))
    {
        let (group, member) = member_key(id);
        tombstone(&mut out, ShareKey::MemberMetadata { group, member });
    }
    if before.is_some() && after.is_none() {
        let group = group.to_owned();
        tombstone(
            &mut out,
            ShareKey::TargetAssignmentMetadata {
                group: group.clone(),
            },
        );
        tombstone(&mut out, ShareKey::GroupMetadata { group });
    }
    out
}

fn member_metadata(member: &ShareMember) -> ShareValue {
    ShareValue::MemberMetadata {
        client: member.client.clone(),
        topics: member.topics.clone(),
    }
}

/// What one group's records add up to so far.
#[derive(Debug, Default)]
struct Replayed {
    /// The group epoch and metadata hash.
    epoch: Option<(i32, i64)>,
    assignment_epoch: i32,
    metadata: BTreeMap<String, (MemberClient, BTreeSet<String>)>,
    current: BTreeMap<String, (i32, i32, BTreeSet<TopicPartition>)>,
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
}

/// Rebuilds share groups from their records in log order, the latest per key winning and
/// tombstones removing.
#[derive(Debug, Default)]
pub struct ShareReplay {
    groups: BTreeMap<String, Replayed>,
}

impl ShareReplay {
    /// Applies one record.
    pub fn apply(&mut self, record: ShareRecord) {
        let group = self
            .groups
            .entry(record.key.group().to_owned())
            .or_default();
        match (record.key, record.value) {
            (
                ShareKey::GroupMetadata { .. },
                Some(ShareValue::GroupMetadata {
                    epoch,
                    metadata_hash,
                }),
            ) => group.epoch = Some((epoch, metadata_hash)),
            (ShareKey::GroupMetadata { .. }, _) => group.epoch = None,
            (
                ShareKey::TargetAssignmentMetadata { .. },
                Some(ShareValue::TargetAssignmentMetadata { assignment_epoch }),
            ) => group.assignment_epoch = assignment_epoch,
            (ShareKey::TargetAssignmentMetadata { .. }, _) => group.assignment_epoch = 0,
            (
                ShareKey::MemberMetadata { member, .. },
                Some(ShareValue::MemberMetadata { client, topics }),
            ) => {
                group.metadata.insert(member, (client, topics));
            }
            (ShareKey::MemberMetadata { member, .. }, _) => {
                group.metadata.remove(&member);
            }
            (
                ShareKey::TargetAssignmentMember { member, .. },
                Some(ShareValue::TargetAssignmentMember { partitions }),
            ) => {
                group.target.insert(member, partitions);
            }
            (ShareKey::TargetAssignmentMember { member, .. }, _) => {
                group.target.remove(&member);
            }
            (
                ShareKey::CurrentAssignment { member, .. },
                Some(ShareValue::CurrentAssignment {
                    epoch,
                    previous_epoch,
                    partitions,
                }),
            ) => {
                group
                    .current
                    .insert(member, (epoch, previous_epoch, partitions));
            }
            (ShareKey::CurrentAssignment { member, .. }, _) => {
                group.current.remove(&member);
            }
        }
    }

    /// The groups standing (with group metadata), by id; each member's session starts anew
    /// at `now` and lasts `session_timeout_ms`, as Kafka restarts session timers on a load.
    pub fn into_groups(self, now: i64, session_timeout_ms: i64) -> Vec<(String, ShareGroup)> {
        self.groups
            .into_iter()
            .filter_map(|(id, mut r)| {
                let (epoch, metadata_hash) = r.epoch?;
                let deadline_ms = now.saturating_add(session_timeout_ms);
                let members = std::mem::take(&mut r.metadata)
                    .into_iter()
                    .map(|(member, (client, topics))| {
                        let (epoch, previous_epoch, assignment) =
                            r.current.remove(&member).unwrap_or_default();
                        let state = ShareMember {
                            epoch,
                            previous_epoch,
                            topics,
                            assignment,
                            deadline_ms,
                            client,
                        };
                        (member, state)
                    })
                    .collect();
                let group = ShareGroup::restored(
                    epoch,
                    r.assignment_epoch,
                    metadata_hash,
                    members,
                    r.target,
                );
                Some((id, group))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
