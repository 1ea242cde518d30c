//! The `__share_group_state` record schemas, encoded by hand with the coordinators' shared
//! [`codec`](crate::codec) helpers in Kafka's layout: the key is a type (0 ShareSnapshot,
//! 1 ShareUpdate) and the share-partition (group id, topic id, partition); the values are
//! the flexible version 0 of ShareSnapshotValue and ShareUpdateValue.

use bytes::Bytes;
use uuid::Uuid;

use super::partition::{RecordState, StateRange};
use super::state::StateRecord;
pub use crate::codec::RecordError;
use crate::codec::{Reader, Writer};

/// Name of the internal topic holding the share-partitions' state.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

const SNAPSHOT: i16 = 0;
const UPDATE: i16 = 1;
const VALUE_VERSION: i16 = 0;

/// Which share-partition a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharePartitionKey {
    /// Share group id.
    pub group: String,
    /// Topic id.
    pub topic: Uuid,
    /// Partition index.
    pub partition: i32,
}

impl SharePartitionKey {
    /// Kafka's share coordinator key string (`group:topicId:partition`), which FindCoordinator
    /// key type 2 carries and the state topic's partition is hashed from.
    pub fn coordinator_key(&self) -> String {
        format!("{}:{}:{}", self.group, self.topic, self.partition)
    }

    /// The key a coordinator key string names; `None` unless it is
    /// `<non-empty group>:<topic id>:<partition >= 0>` (the group may hold colons).
    pub fn parse(text: &str) -> Option<SharePartitionKey> {
        let mut parts = text.rsplitn(3, ':');
        let partition = parts.next()?.parse::<i32>().ok().filter(|p| *p >= 0)?;
        let topic = Uuid::parse_str(parts.next()?).ok()?;
        let group = parts.next().filter(|g| !g.is_empty())?;
        Some(SharePartitionKey {
            group: group.to_owned(),
            topic,
            partition,
        })
    }
}

/// The key of `key`'s snapshots, which a tombstone (the state deleted) carries too.
pub fn key_bytes(key: &SharePartitionKey) -> Bytes {
    typed_key(key, SNAPSHOT)
}

fn typed_key(key: &SharePartitionKey, kind: i16) -> Bytes {
    let mut k = Writer::new(false);
    k.i16(kind);
    k.string(&key.group);
    k.uuid(key.topic);
    k.i32(key.partition);
    k.finish()
}

/// Encodes `record` of `key` as the state topic's key and value.
pub fn encode(key: &SharePartitionKey, record: &StateRecord) -> (Bytes, Bytes) {
    let kind = match record {
        StateRecord::Snapshot { .. } => SNAPSHOT,
        StateRecord::Update { .. } => UPDATE,
    };
    let mut v = Writer::new(true);
    v.i16(VALUE_VERSION);
    match record {
        StateRecord::Snapshot {
            snapshot_epoch,
            state_epoch,
            leader_epoch,
            start_offset,
            ranges,
        } => {
            v.i16(i16::from_be_bytes(snapshot_epoch.to_be_bytes()));
            v.i32(*state_epoch);
            v.i32(*leader_epoch);
            v.i64(*start_offset);
            write_ranges(&mut v, ranges);
        }
        StateRecord::Update {
            snapshot_epoch,
            leader_epoch,
            start_offset,
            ranges,
        } => {
            v.i16(i16::from_be_bytes(snapshot_epoch.to_be_bytes()));
            v.i32(*leader_epoch);
            v.i64(start_offset.unwrap_or(-1));
            write_ranges(&mut v, ranges);
        }
    }
    v.no_tagged_fields();
    (typed_key(key, kind), v.finish())
}

/// Decodes a key and its value (`None`: a tombstone, the share-partition's state deleted).
pub fn decode(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(SharePartitionKey, Option<StateRecord>), RecordError> {
    let mut k = Reader::new(key, false);
    let kind = k.i16()?;
    if kind != SNAPSHOT && kind != UPDATE {
        return Err(RecordError::UnknownVersion {
            schema: "ShareGroupStateKey",
            version: kind,
        });
    }
    let key = SharePartitionKey {
        group: k.string()?,
        topic: k.uuid()?,
        partition: k.i32()?,
    };
    let Some(value) = value else {
        return Ok((key, None));
    };
    let mut v = Reader::new(value, true);
    let version = v.i16()?;
    if version != VALUE_VERSION {
        return Err(RecordError::UnknownVersion {
            schema: if kind == SNAPSHOT {
                "ShareSnapshotValue"
            } else {
                "ShareUpdateValue"
            },
            version,
        });
    }
    let snapshot_epoch = u16::from_be_bytes(v.i16()?.to_be_bytes());
    let record = if kind == SNAPSHOT {
        StateRecord::Snapshot {
            snapshot_epoch,
            state_epoch: v.i32()?,
            leader_epoch: v.i32()?,
            start_offset: v.i64()?,
            ranges: read_ranges(&mut v)?,
        }
    } else {
        let leader_epoch = v.i32()?;
        let start = v.i64()?;
        StateRecord::Update {
            snapshot_epoch,
            leader_epoch,
            start_offset: (start >= 0).then_some(start),
            ranges: read_ranges(&mut v)?,
        }
    };
    v.skip_tagged_fields()?;
    Ok((key, Some(record)))
}

fn write_ranges(w: &mut Writer, ranges: &[StateRange]) {
    w.array_len(ranges.len());
    for r in ranges {
        w.i64(r.first);
        w.i64(r.last);
        w.i8(r.state.code());
        w.i16(i16::try_from(r.delivery_count).unwrap_or(i16::MAX));
        w.no_tagged_fields();
    }
}

fn read_ranges(r: &mut Reader<'_>) -> Result<Vec<StateRange>, RecordError> {
    let count = r.array_len()?.unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let first = r.i64()?;
        let last = r.i64()?;
        let code = r.i8()?;
        let state = RecordState::stored(code).ok_or(RecordError::UnknownState(code))?;
        let count = r.i16()?;
        let delivery_count =
            u16::try_from(count).map_err(|_| RecordError::InvalidLength(i64::from(count)))?;
        r.skip_tagged_fields()?;
        out.push(StateRange {
            first,
            last,
            state,
            delivery_count,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SharePartitionKey {
        SharePartitionKey {
            group: "queue".into(),
            topic: Uuid::from_u128(0xabc),
            partition: 3,
        }
    }

    #[test]
    fn coordinator_keys_parse_back_and_malformed_ones_do_not() {
        assert_eq!(
            SharePartitionKey::parse(&key().coordinator_key()),
            Some(key())
        );
        let colons = SharePartitionKey {
            group: "a:b".into(),
            ..key()
        };
        assert_eq!(
            SharePartitionKey::parse(&colons.coordinator_key()),
            Some(colons)
        );
        let topic = Uuid::from_u128(0xabc);
        for bad in [
            String::new(),
            format!(":{topic}:0"),
            format!("g:{topic}:-1"),
            format!("g:{topic}:x"),
            "g:not-a-uuid:0".to_owned(),
            format!("g:{topic}"),
        ] {
            assert_eq!(SharePartitionKey::parse(&bad), None, "{bad}");
        }
    }

    fn ranges() -> Vec<StateRange> {
        vec![
            StateRange {
                first: 5,
                last: 9,
                state: RecordState::Acknowledged,
                delivery_count: 1,
            },
            StateRange {
                first: 10,
                last: 10,
                state: RecordState::Archived,
                delivery_count: 5,
            },
        ]
    }

    #[test]
    fn snapshots_and_updates_round_trip() {
        let records = [
            StateRecord::Snapshot {
                snapshot_epoch: u16::MAX,
                state_epoch: 2,
                leader_epoch: 7,
                start_offset: 5,
                ranges: ranges(),
            },
            StateRecord::Update {
                snapshot_epoch: 1,
                leader_epoch: 8,
                start_offset: None,
                ranges: ranges(),
            },
            StateRecord::Update {
                snapshot_epoch: 1,
                leader_epoch: 8,
                start_offset: Some(11),
                ranges: Vec::new(),
            },
        ];
        for record in records {
            let (k, v) = encode(&key(), &record);
            assert_eq!(decode(&k, Some(&v)), Ok((key(), Some(record))));
        }
    }

    #[test]
    fn the_layout_is_kafkas() {
        let (k, v) = encode(
            &key(),
            &StateRecord::Update {
                snapshot_epoch: 1,
                leader_epoch: 8,
                start_offset: None,
                ranges: Vec::new(),
            },
        );
        let mut expected_key = vec![0, 1, 0, 5];
        expected_key.extend_from_slice(b"queue");
        expected_key.extend_from_slice(&0xabc_u128.to_be_bytes());
        expected_key.extend_from_slice(&3_i32.to_be_bytes());
        assert_eq!(&k[..], &expected_key[..]);
        let mut expected_value = vec![0, 0, 0, 1];
        expected_value.extend_from_slice(&8_i32.to_be_bytes());
        expected_value.extend_from_slice(&(-1_i64).to_be_bytes());
        expected_value.extend_from_slice(&[1, 0]); // empty compact array, no tagged fields
        assert_eq!(&v[..], &expected_value[..]);
        assert_eq!(
            key().coordinator_key(),
            format!("queue:{}:3", Uuid::from_u128(0xabc))
        );
    }

    #[test]
    fn a_tombstone_and_hostile_bytes_decode_without_panic() {
        let (k, v) = encode(
            &key(),
            &StateRecord::Snapshot {
                snapshot_epoch: 0,
                state_epoch: 0,
                leader_epoch: 0,
                start_offset: 0,
                ranges: ranges(),
            },
        );
        assert_eq!(decode(&k, None), Ok((key(), None)));
        for cut in 0..v.len() {
            assert!(decode(&k, Some(&v[..cut])).is_err(), "cut at {cut}");
        }
        assert!(decode(&[0, 9], None).is_err());
        let mut bad_state = v.to_vec();
        // The first range's state byte: after version, epochs, start, array length, two offsets.
        bad_state[2 + 2 + 4 + 4 + 8 + 1 + 16] = 3;
        assert_eq!(
            decode(&k, Some(&bad_state)),
            Err(RecordError::UnknownState(3))
        );
    }
}
