//! The `__consumer_offsets` record schemas, encoded by hand (with the coordinators' shared
//! [`codec`](crate::codec) helpers) because kafka-protocol does not carry them:
//! keys `OffsetCommitKey` (v0/v1) and `GroupMetadataKey` (v2), values `OffsetCommitValue`
//! (v0-v4; written as v3, or v1 when an explicit expiry is set) and `GroupMetadataValue`
//! (v0-v4; written as v3). A null value is a tombstone. The byte layout is Kafka's, so the log
//! stays readable by Kafka's own tools.

use bytes::Bytes;

pub use crate::codec::RecordError;
use crate::codec::{Reader, Writer};

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// A committed offset of `group` for `topic`-`partition`.
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// The metadata of `group`.
    Group {
        /// Group id.
        group: String,
    },
    /// A record type of newer protocols (KIP-848 and later) this coordinator ignores.
    Other {
        /// Key version.
        version: i16,
    },
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch of the consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: String,
    /// When the commit happened (ms since epoch).
    pub commit_timestamp: i64,
    /// Explicit expiry of old clients (OffsetCommit v2-v4 retention time).
    pub expire_timestamp: Option<i64>,
}

/// A member inside [`GroupValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Metadata for the selected protocol.
    pub subscription: Bytes,
    /// Assignment of the generation.
    pub assignment: Bytes,
}

/// A group's metadata as of its last completed rebalance (or becoming empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type ("" for none).
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group last changed state (ms since epoch, -1 if unknown).
    pub current_state_timestamp: i64,
    /// Members with their assignments.
    pub members: Vec<MemberValue>,
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;

/// Encodes the key of `group`'s offset for `topic`-`partition`.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut w = Writer::new(false);
    w.i16(OFFSET_KEY_VERSION);
    w.string(group);
    w.string(topic);
    w.i32(partition);
    w.finish()
}

/// Encodes the key of `group`'s metadata.
pub fn group_key(group: &str) -> Bytes {
    let mut w = Writer::new(false);
    w.i16(GROUP_KEY_VERSION);
    w.string(group);
    w.finish()
}

/// Decodes any record key.
pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader::new(bytes, false);
    match r.i16()? {
        0 | 1 => Ok(RecordKey::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        }),
        2 => Ok(RecordKey::Group { group: r.string()? }),
        version => Ok(RecordKey::Other { version }),
    }
}

impl OffsetValue {
    /// Encodes as v3, or as v1 when an explicit expiry must be kept.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(false);
        match self.expire_timestamp {
            Some(expire) => {
                w.i16(1);
                w.i64(self.offset);
                w.string(&self.metadata);
                w.i64(self.commit_timestamp);
                w.i64(expire);
            }
            None => {
                w.i16(3);
                w.i64(self.offset);
                w.i32(self.leader_epoch);
                w.string(&self.metadata);
                w.i64(self.commit_timestamp);
            }
        }
        w.finish()
    }

    /// Decodes v0 to v4.
    pub fn decode(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
        let mut r = Reader::new(bytes, false);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownVersion {
                schema: "OffsetCommitValue",
                version,
            });
        }
        r.set_flexible(version >= 4);
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp = r.i64()?;
        let expire_timestamp = if version == 1 { Some(r.i64()?) } else { None };
        r.skip_tagged_fields()?;
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

impl GroupValue {
    /// Encodes as v3.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(false);
        w.i16(3);
        w.string(&self.protocol_type);
        w.i32(self.generation);
        w.nullable_string(self.protocol.as_deref());
        w.nullable_string(self.leader.as_deref());
        w.i64(self.current_state_timestamp);
        w.array_len(self.members.len());
        for m in &self.members {
            w.string(&m.member_id);
            w.nullable_string(m.instance_id.as_deref());
            w.string(&m.client_id);
            w.string(&m.client_host);
            w.i32(m.rebalance_timeout_ms);
            w.i32(m.session_timeout_ms);
            w.bytes(&m.subscription);
            w.bytes(&m.assignment);
        }
        w.finish()
    }

    /// Decodes v0 to v4.
    pub fn decode(bytes: &[u8]) -> Result<GroupValue, RecordError> {
        let mut r = Reader::new(bytes, false);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownVersion {
                schema: "GroupMetadataValue",
                version,
            });
        }
        r.set_flexible(version >= 4);
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let count = r.array_len()?.unwrap_or(0);
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let member_id = r.string()?;
            let instance_id = if version >= 3 {
                r.nullable_string()?
            } else {
                None
            };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout_ms = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            r.skip_tagged_fields()?;
            members.push(MemberValue {
                member_id,
                instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                    session_timeout_ms
                } else {
                    rebalance_timeout_ms
                },
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        r.skip_tagged_fields()?;
        Ok(GroupValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_value() -> GroupValue {
        GroupValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 1_700_000_000_000,
            members: vec![
                MemberValue {
                    member_id: "m-1".into(),
                    instance_id: None,
                    client_id: "client".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"assign"),
                },
                MemberValue {
                    member_id: "i-2-x".into(),
                    instance_id: Some("i-2".into()),
                    client_id: "client".into(),
                    client_host: "/127.0.0.2".into(),
                    rebalance_timeout_ms: 60_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    #[test]
    fn offset_key_has_kafkas_layout() {
        let key = offset_key("g", "t", 3);
        assert_eq!(
            &key[..],
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3],
            "version 1, group, topic, partition"
        );
        assert_eq!(
            decode_key(&key),
            Ok(RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3
            })
        );
    }

    #[test]
    fn group_key_round_trips_and_unknown_keys_are_other() {
        assert_eq!(&group_key("g")[..], &[0, 2, 0, 1, b'g']);
        assert_eq!(
            decode_key(&group_key("grp")),
            Ok(RecordKey::Group {
                group: "grp".into()
            })
        );
        assert_eq!(decode_key(&[0, 5, 1]), Ok(RecordKey::Other { version: 5 }));
        assert!(matches!(
            decode_key(&[0, 1, 0]),
            Err(RecordError::Truncated { .. })
        ));
    }

    #[test]
    fn offset_value_v3_round_trips_with_kafkas_layout() {
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: None,
        };
        let bytes = value.encode();
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&5i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'm']);
        expected.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(OffsetValue::decode(&bytes), Ok(value));
    }

    #[test]
    fn offset_value_with_expiry_is_v1() {
        let value = OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 10,
            expire_timestamp: Some(20),
        };
        let bytes = value.encode();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(OffsetValue::decode(&bytes), Ok(value));
    }

    #[test]
    fn offset_value_old_and_flexible_versions_decode() {
        // v0: offset, metadata, timestamp.
        let mut v0 = vec![0, 0];
        v0.extend_from_slice(&9i64.to_be_bytes());
        v0.extend_from_slice(&[0, 0]);
        v0.extend_from_slice(&77i64.to_be_bytes());
        let d = OffsetValue::decode(&v0).unwrap();
        assert_eq!((d.offset, d.leader_epoch, d.commit_timestamp), (9, -1, 77));
        // v4: compact string and a tagged field section holding one unknown tag.
        let mut v4 = vec![0, 4];
        v4.extend_from_slice(&9i64.to_be_bytes());
        v4.extend_from_slice(&3i32.to_be_bytes());
        v4.extend_from_slice(&[3, b'a', b'b']);
        v4.extend_from_slice(&77i64.to_be_bytes());
        v4.extend_from_slice(&[1, 0, 2, 0xaa, 0xbb]);
        let d = OffsetValue::decode(&v4).unwrap();
        assert_eq!(
            (d.offset, d.leader_epoch, d.metadata.as_str()),
            (9, 3, "ab")
        );
        assert!(matches!(
            OffsetValue::decode(&[0, 9]),
            Err(RecordError::UnknownVersion { .. })
        ));
    }

    #[test]
    fn group_value_v3_round_trips() {
        let value = group_value();
        assert_eq!(GroupValue::decode(&value.encode()), Ok(value));
    }

    #[test]
    fn empty_group_value_round_trips_with_nulls() {
        let value = GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: None,
            leader: None,
            current_state_timestamp: 5,
            members: vec![],
        };
        let bytes = value.encode();
        let mut expected = vec![0, 3, 0, 8];
        expected.extend_from_slice(b"consumer");
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(GroupValue::decode(&bytes), Ok(value));
    }

    #[test]
    fn group_value_v0_decodes_without_newer_fields() {
        let mut v0 = vec![0, 0, 0, 1, b'c'];
        v0.extend_from_slice(&2i32.to_be_bytes());
        v0.extend_from_slice(&[0, 1, b'p', 0, 1, b'm']);
        v0.extend_from_slice(&1i32.to_be_bytes());
        v0.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
        v0.extend_from_slice(&6000i32.to_be_bytes());
        v0.extend_from_slice(&0i32.to_be_bytes());
        v0.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let d = GroupValue::decode(&v0).unwrap();
        assert_eq!(d.generation, 2);
        assert_eq!(d.current_state_timestamp, -1);
        assert_eq!(d.members[0].rebalance_timeout_ms, 6000);
        assert_eq!(d.members[0].instance_id, None);
        assert!(d.members[0].assignment.is_empty());
    }

    #[test]
    fn hostile_keys_and_values_are_errors_never_panics() {
        use tributary_storage::hostile::{never_panics, unsealed};

        let offset = OffsetValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: None,
        };
        let expiring = OffsetValue {
            expire_timestamp: Some(2000),
            ..offset.clone()
        };
        let mut flexible = vec![0, 4];
        flexible.extend_from_slice(&9i64.to_be_bytes());
        flexible.extend_from_slice(&3i32.to_be_bytes());
        flexible.extend_from_slice(&[3, b'a', b'b']);
        flexible.extend_from_slice(&77i64.to_be_bytes());
        flexible.extend_from_slice(&[1, 0, 2, 0xaa, 0xbb]);
        let samples = vec![
            offset_key("g", "t", 3).to_vec(),
            group_key("g").to_vec(),
            offset.encode().to_vec(),
            expiring.encode().to_vec(),
            flexible,
            group_value().encode().to_vec(),
        ];
        never_panics(samples, unsealed, |bytes| {
            let _ = decode_key(bytes);
            let _ = OffsetValue::decode(bytes);
            let _ = GroupValue::decode(bytes);
        });
    }

    #[test]
    fn truncated_values_fail_cleanly() {
        let bytes = group_value().encode();
        for cut in 0..bytes.len() {
            assert!(GroupValue::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
