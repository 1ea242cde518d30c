//! The consumer group records of `__consumer_offsets` (KIP-848), with Kafka's schemas: record
//! types 3 to 8, whose key version is the record type (classic layout) and whose values are
//! version 0 of a flexible schema (compact lengths, tagged fields) after a classic version
//! number. Encoded with the coordinators' shared [`codec`](crate::codec), so the
//! log stays readable by Kafka's own tools and a Kafka log by us. A record without a value
//! is a tombstone.

use bytes::Bytes;

use super::assignment::Assignment;
use super::member::{Member, MemberState};
use super::topics::TopicMetadata;
pub use crate::codec::RecordError;
use crate::codec::{Reader, Writer};

/// `ConsumerGroupMetadata`: the group epoch.
pub const GROUP_METADATA: i16 = 3;
/// `ConsumerGroupPartitionMetadata`: the subscribed topics' metadata.
pub const PARTITION_METADATA: i16 = 4;
/// `ConsumerGroupMemberMetadata`: one member's subscription.
pub const MEMBER_METADATA: i16 = 5;
/// `ConsumerGroupTargetAssignmentMetadata`: the target assignment epoch.
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
/// `ConsumerGroupTargetAssignmentMember`: one member's target partitions.
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
/// `ConsumerGroupCurrentMemberAssignment`: one member's epoch and current partitions.
pub const CURRENT_ASSIGNMENT: i16 = 8;

/// The key of a consumer group record: its type and whom it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// Type 3.
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// Type 4.
    PartitionMetadata {
        /// Group id.
        group: String,
    },
    /// Type 5.
    MemberMetadata {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// Type 6.
    TargetAssignmentMetadata {
        /// Group id.
        group: String,
    },
    /// Type 7.
    TargetAssignmentMember {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// Type 8.
    CurrentAssignment {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
}

/// The classic protocol metadata of a member that joined a migrated group with JoinGroup
/// (tagged field 0 of the member metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberMetadata {
    /// Session timeout of the classic member.
    pub session_timeout_ms: i32,
    /// Supported protocols: (name, metadata).
    pub supported_protocols: Vec<(String, Bytes)>,
}

/// `ConsumerGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Topics subscribed by name.
    pub subscribed_topic_names: Vec<String>,
    /// Topics subscribed by regular expression.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout (-1 when unknown).
    pub rebalance_timeout_ms: i32,
    /// Server assignor asked for.
    pub server_assignor: Option<String>,
    /// Classic protocol metadata (tagged field 0), for classic members of migrated groups.
    pub classic: Option<ClassicMemberMetadata>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignmentValue {
    /// Member epoch.
    pub member_epoch: i32,
    /// Previous member epoch.
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Assigned partitions.
    pub assigned: Assignment,
    /// Partitions pending revocation.
    pub pending_revocation: Assignment,
}

/// The value of a consumer group record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// The group epoch.
    GroupMetadata {
        /// Group epoch.
        epoch: i32,
    },
    /// The metadata of the subscribed topics.
    PartitionMetadata {
        /// Topics by name order.
        topics: Vec<TopicMetadata>,
    },
    /// A member's subscription (boxed: by far the largest value).
    MemberMetadata(Box<MemberMetadataValue>),
    /// The target assignment epoch.
    TargetAssignmentMetadata {
        /// Assignment epoch.
        assignment_epoch: i32,
    },
    /// A member's target partitions.
    TargetAssignmentMember {
        /// Target partitions.
        partitions: Assignment,
    },
    /// A member's epoch and current partitions.
    CurrentAssignment(CurrentAssignmentValue),
}

/// One consumer group record; `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the record is about.
    pub key: RecordKey,
    /// The new value, or `None` to delete.
    pub value: Option<RecordValue>,
}

impl Record {
    /// The group epoch record.
    pub fn group_epoch(group: &str, epoch: i32) -> Record {
        Record {
            key: RecordKey::GroupMetadata {
                group: group.into(),
            },
            value: Some(RecordValue::GroupMetadata { epoch }),
        }
    }

    /// The subscribed topics' metadata record.
    pub fn partition_metadata(group: &str, topics: Vec<TopicMetadata>) -> Record {
        Record {
            key: RecordKey::PartitionMetadata {
                group: group.into(),
            },
            value: Some(RecordValue::PartitionMetadata { topics }),
        }
    }

    /// The member metadata record of `member`.
    pub fn member_metadata(group: &str, member: &Member) -> Record {
        Record {
            key: RecordKey::MemberMetadata {
                group: group.into(),
                member: member.member_id.clone(),
            },
            value: Some(RecordValue::MemberMetadata(Box::new(MemberMetadataValue {
                instance_id: member.instance_id.clone(),
                rack_id: member.rack_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                subscribed_topic_names: member.subscribed_topic_names.iter().cloned().collect(),
                subscribed_topic_regex: member.subscribed_topic_regex.clone(),
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                server_assignor: member.server_assignor.clone(),
                classic: member.classic.clone(),
            }))),
        }
    }

    /// The target assignment epoch record.
    pub fn target_epoch(group: &str, assignment_epoch: i32) -> Record {
        Record {
            key: RecordKey::TargetAssignmentMetadata {
                group: group.into(),
            },
            value: Some(RecordValue::TargetAssignmentMetadata { assignment_epoch }),
        }
    }

    /// The target assignment record of one member.
    pub fn target_member(group: &str, member: &str, partitions: Assignment) -> Record {
        Record {
            key: RecordKey::TargetAssignmentMember {
                group: group.into(),
                member: member.into(),
            },
            value: Some(RecordValue::TargetAssignmentMember { partitions }),
        }
    }

    /// The current assignment record of `member`.
    pub fn current_assignment(group: &str, member: &Member) -> Record {
        Record {
            key: RecordKey::CurrentAssignment {
                group: group.into(),
                member: member.member_id.clone(),
            },
            value: Some(RecordValue::CurrentAssignment(CurrentAssignmentValue {
                member_epoch: member.member_epoch,
                previous_member_epoch: member.previous_member_epoch,
                state: member.state,
                assigned: member.assigned.clone(),
                pending_revocation: member.pending_revocation.clone(),
            })),
        }
    }

    /// A tombstone for `key`.
    pub fn tombstone(key: RecordKey) -> Record {
        Record { key, value: None }
    }

    /// The three tombstones that remove a member, in the order Kafka writes them (current
    /// assignment, target assignment, subscription), so a replay never sees a member without
    /// its subscription.
    pub fn member_tombstones(group: &str, member: &str) -> [Record; 3] {
        let (group, member) = (group.to_string(), member.to_string());
        [
            Record::tombstone(RecordKey::CurrentAssignment {
                group: group.clone(),
                member: member.clone(),
            }),
            Record::tombstone(RecordKey::TargetAssignmentMember {
                group: group.clone(),
                member: member.clone(),
            }),
            Record::tombstone(RecordKey::MemberMetadata { group, member }),
        ]
    }

    /// The key and value bytes as Kafka lays them out (no value for a tombstone).
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        (
            self.key.encode(),
            self.value.as_ref().map(RecordValue::encode),
        )
    }

    /// Decodes a record; `Ok(None)` for a key of another record type (offsets, classic
    /// groups, types of later protocols), which other parts of the coordinator own.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Record>, RecordError> {
        let Some(key) = RecordKey::decode(key)? else {
            return Ok(None);
        };
        let value = match value {
            Some(bytes) => Some(RecordValue::decode(key.record_type(), bytes)?),
            None => None,
        };
        Ok(Some(Record { key, value }))
    }
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::GroupMetadata { group }
            | RecordKey::PartitionMetadata { group }
            | RecordKey::MemberMetadata { group, .. }
            | RecordKey::TargetAssignmentMetadata { group }
            | RecordKey::TargetAssignmentMember { group, .. }
            | RecordKey::CurrentAssignment { group, .. } => group,
        }
    }

    /// The record type (also the key's version).
    pub fn record_type(&self) -> i16 {
        match self {
            RecordKey::GroupMetadata { .. } => GROUP_METADATA,
            RecordKey::PartitionMetadata { .. } => PARTITION_METADATA,
            RecordKey::MemberMetadata { .. } => MEMBER_METADATA,
            RecordKey::TargetAssignmentMetadata { .. } => TARGET_ASSIGNMENT_METADATA,
            RecordKey::TargetAssignmentMember { .. } => TARGET_ASSIGNMENT_MEMBER,
            RecordKey::CurrentAssignment { .. } => CURRENT_ASSIGNMENT,
        }
    }

    /// The key bytes: the record type as version, then the group id and member id if any.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(false);
        w.i16(self.record_type());
        w.string(self.group());
        match self {
            RecordKey::MemberMetadata { member, .. }
            | RecordKey::TargetAssignmentMember { member, .. }
            | RecordKey::CurrentAssignment { member, .. } => w.string(member),
            _ => {}
        }
        w.finish()
    }

    /// Decodes a key; `Ok(None)` when its type is not one of 3 to 8.
    pub fn decode(bytes: &[u8]) -> Result<Option<RecordKey>, RecordError> {
        let mut r = Reader::new(bytes, false);
        let record_type = r.i16()?;
        if !(GROUP_METADATA..=CURRENT_ASSIGNMENT).contains(&record_type) {
            return Ok(None);
        }
        let group = r.string()?;
        Ok(Some(match record_type {
            GROUP_METADATA => RecordKey::GroupMetadata { group },
            PARTITION_METADATA => RecordKey::PartitionMetadata { group },
            TARGET_ASSIGNMENT_METADATA => RecordKey::TargetAssignmentMetadata { group },
            MEMBER_METADATA => RecordKey::MemberMetadata {
                group,
                member: r.string()?,
            },
            TARGET_ASSIGNMENT_MEMBER => RecordKey::TargetAssignmentMember {
                group,
                member: r.string()?,
            },
            _ => RecordKey::CurrentAssignment {
                group,
                member: r.string()?,
            },
        }))
    }
}

/// The schema name of a record type, for errors.
fn schema_name(record_type: i16) -> &'static str {
    match record_type {
        GROUP_METADATA => "ConsumerGroupMetadataValue",
        PARTITION_METADATA => "ConsumerGroupPartitionMetadataValue",
        MEMBER_METADATA => "ConsumerGroupMemberMetadataValue",
        TARGET_ASSIGNMENT_METADATA => "ConsumerGroupTargetAssignmentMetadataValue",
        TARGET_ASSIGNMENT_MEMBER => "ConsumerGroupTargetAssignmentMemberValue",
        _ => "ConsumerGroupCurrentMemberAssignmentValue",
    }
}

/// The value version written and read: every schema of types 3 to 8 has only version 0.
const VALUE_VERSION: i16 = 0;

fn write_partitions(w: &mut Writer, a: &Assignment) {
    let topics: Vec<_> = a.topics().collect();
    w.array_len(topics.len());
    for (topic, partitions) in topics {
        w.uuid(topic);
        w.array_len(partitions.len());
        for p in partitions {
            w.i32(*p);
        }
        w.no_tagged_fields();
    }
}

fn read_partitions(r: &mut Reader<'_>) -> Result<Assignment, RecordError> {
    let mut out = Assignment::new();
    for _ in 0..r.array_len()?.unwrap_or(0) {
        let topic = r.uuid()?;
        for _ in 0..r.array_len()?.unwrap_or(0) {
            out.insert(topic, r.i32()?);
        }
        r.skip_tagged_fields()?;
    }
    Ok(out)
}

fn write_strings(w: &mut Writer, strings: &[String]) {
    w.array_len(strings.len());
    for s in strings {
        w.string(s);
    }
}

fn read_strings(r: &mut Reader<'_>) -> Result<Vec<String>, RecordError> {
    let count = r.array_len()?.unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        out.push(r.string()?);
    }
    Ok(out)
}

fn encode_classic(c: &ClassicMemberMetadata) -> Bytes {
    let mut w = Writer::new(true);
    w.i32(c.session_timeout_ms);
    w.array_len(c.supported_protocols.len());
    for (name, metadata) in &c.supported_protocols {
        w.string(name);
        w.bytes(metadata);
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    w.finish()
}

fn decode_classic(bytes: &[u8]) -> Result<ClassicMemberMetadata, RecordError> {
    let mut r = Reader::new(bytes, true);
    let session_timeout_ms = r.i32()?;
    let count = r.array_len()?.unwrap_or(0);
    let mut supported_protocols = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = r.string()?;
        let metadata = r.bytes()?;
        r.skip_tagged_fields()?;
        supported_protocols.push((name, metadata));
    }
    r.skip_tagged_fields()?;
    Ok(ClassicMemberMetadata {
        session_timeout_ms,
        supported_protocols,
    })
}

impl RecordValue {
    /// The value bytes: version 0 (classic i16), then the flexible fields.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(true);
        w.i16(VALUE_VERSION);
        match self {
            RecordValue::GroupMetadata { epoch } => w.i32(*epoch),
            RecordValue::PartitionMetadata { topics } => {
                w.array_len(topics.len());
                for t in topics {
                    w.uuid(t.id);
                    w.string(&t.name);
                    w.i32(t.partitions);
                    // Partition racks: deprecated by Kafka 4 and never written by it.
                    w.array_len(0);
                    w.no_tagged_fields();
                }
            }
            RecordValue::MemberMetadata(m) => {
                w.nullable_string(m.instance_id.as_deref());
                w.nullable_string(m.rack_id.as_deref());
                w.string(&m.client_id);
                w.string(&m.client_host);
                write_strings(&mut w, &m.subscribed_topic_names);
                w.nullable_string(m.subscribed_topic_regex.as_deref());
                w.i32(m.rebalance_timeout_ms);
                w.nullable_string(m.server_assignor.as_deref());
                if let Some(classic) = &m.classic {
                    w.tagged_fields(&[(0, &encode_classic(classic))]);
                    return w.finish();
                }
            }
            RecordValue::TargetAssignmentMetadata { assignment_epoch } => w.i32(*assignment_epoch),
            RecordValue::TargetAssignmentMember { partitions } => {
                write_partitions(&mut w, partitions)
            }
            RecordValue::CurrentAssignment(c) => {
                w.i32(c.member_epoch);
                w.i32(c.previous_member_epoch);
                w.i8(c.state.value());
                write_partitions(&mut w, &c.assigned);
                write_partitions(&mut w, &c.pending_revocation);
            }
        }
        w.no_tagged_fields();
        w.finish()
    }

    /// Decodes the value of a record of `record_type`; unknown tagged fields are skipped, as
    /// Kafka does, so fields a later version adds that way do not stop a load.
    pub fn decode(record_type: i16, bytes: &[u8]) -> Result<RecordValue, RecordError> {
        let mut r = Reader::new(bytes, false);
        let version = r.i16()?;
        if version != VALUE_VERSION {
            return Err(RecordError::UnknownVersion {
                schema: schema_name(record_type),
                version,
            });
        }
        r.set_flexible(true);
        let value = match record_type {
            GROUP_METADATA => RecordValue::GroupMetadata { epoch: r.i32()? },
            PARTITION_METADATA => {
                let count = r.array_len()?.unwrap_or(0);
                let mut topics = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let id = r.uuid()?;
                    let name = r.string()?;
                    let partitions = r.i32()?;
                    for _ in 0..r.array_len()?.unwrap_or(0) {
                        r.i32()?;
                        read_strings(&mut r)?;
                        r.skip_tagged_fields()?;
                    }
                    r.skip_tagged_fields()?;
                    topics.push(TopicMetadata {
                        id,
                        name,
                        partitions,
                    });
                }
                RecordValue::PartitionMetadata { topics }
            }
            MEMBER_METADATA => {
                let mut m = MemberMetadataValue {
                    instance_id: r.nullable_string()?,
                    rack_id: r.nullable_string()?,
                    client_id: r.string()?,
                    client_host: r.string()?,
                    subscribed_topic_names: read_strings(&mut r)?,
                    subscribed_topic_regex: r.nullable_string()?,
                    rebalance_timeout_ms: r.i32()?,
                    server_assignor: r.nullable_string()?,
                    classic: None,
                };
                for (tag, data) in r.tagged_fields()? {
                    if tag == 0 {
                        m.classic = Some(decode_classic(data)?);
                    }
                }
                return Ok(RecordValue::MemberMetadata(Box::new(m)));
            }
            TARGET_ASSIGNMENT_METADATA => RecordValue::TargetAssignmentMetadata {
                assignment_epoch: r.i32()?,
            },
            TARGET_ASSIGNMENT_MEMBER => RecordValue::TargetAssignmentMember {
                partitions: read_partitions(&mut r)?,
            },
            CURRENT_ASSIGNMENT => RecordValue::CurrentAssignment(CurrentAssignmentValue {
                member_epoch: r.i32()?,
                previous_member_epoch: r.i32()?,
                state: MemberState::from_value(r.i8()?),
                assigned: read_partitions(&mut r)?,
                pending_revocation: read_partitions(&mut r)?,
            }),
            other => {
                return Err(RecordError::UnknownVersion {
                    schema: "consumer group record key",
                    version: other,
                })
            }
        };
        r.skip_tagged_fields()?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
