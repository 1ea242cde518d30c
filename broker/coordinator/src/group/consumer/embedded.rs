//! The consumer protocol embedded in classic JoinGroup and SyncGroup (Kafka's
//! `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`, versions 0 to 3, never
//! flexible): what a classic member of a consumer group subscribes to and owns, and the
//! assignment the coordinator hands it. Parsed by hand with bounds checks: the bytes come
//! straight from clients, and the generated decoder preallocates whatever lengths they claim.

use bytes::{BufMut, Bytes, BytesMut};

/// Partitions by topic name, as the embedded protocol lists them.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// A classic member's subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The version the member encoded it with (its assignment is answered in the same).
    pub version: i16,
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Partitions the member owns (v1+; cooperative members report them, eager ones none).
    pub owned: TopicPartitions,
    /// `client.rack` (v3+).
    pub rack: Option<String>,
}

/// Reads big-endian fields, refusing anything that runs past the end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn bytes(&mut self, len: usize) -> Option<&[u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let raw = self.bytes(usize::try_from(len).ok()?)?;
        String::from_utf8(raw.to_vec()).ok().map(Some)
    }

    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }

    /// An array's length, refused when it claims more elements of at least `min_size`
    /// bytes than are left.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Some(0);
        }
        let n = usize::try_from(n).ok()?;
        (n <= self.0.len() / min_size.max(1)).then_some(n)
    }

    fn skip_nullable_bytes(&mut self) -> Option<()> {
        let len = self.i32()?;
        if len >= 0 {
            self.bytes(usize::try_from(len).ok()?)?;
        }
        Some(())
    }

    fn topic_partitions(&mut self) -> Option<TopicPartitions> {
        let topics = self.count(6)?;
        let mut out = Vec::with_capacity(topics);
        for _ in 0..topics {
            let name = self.string()?;
            let n = self.count(4)?;
            let mut partitions = Vec::with_capacity(n);
            for _ in 0..n {
                partitions.push(self.i32()?);
            }
            out.push((name, partitions));
        }
        Some(out)
    }
}

/// Decodes a `ConsumerProtocolSubscription`; `None` when it is malformed.
pub fn decode_subscription(metadata: &[u8]) -> Option<Subscription> {
    let mut r = Reader(metadata);
    let version = r.i16()?;
    if version < 0 {
        return None;
    }
    let count = r.count(2)?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.string()?);
    }
    let mut sub = Subscription {
        version,
        topics,
        ..Subscription::default()
    };
    if version >= 1 {
        r.skip_nullable_bytes()?;
        sub.owned = r.topic_partitions()?;
    }
    if version >= 2 {
        r.i32()?;
    }
    if version >= 3 {
        sub.rack = r.nullable_string()?;
    }
    Some(sub)
}

/// Decodes a `ConsumerProtocolAssignment` (what a classic group's leader handed a member);
/// `None` when it is malformed. An empty buffer is no assignment.
pub fn decode_assignment(assignment: &[u8]) -> Option<TopicPartitions> {
    if assignment.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader(assignment);
    r.i16().filter(|v| *v >= 0)?;
    r.topic_partitions()
}

/// Encodes a `ConsumerProtocolAssignment` at `version` (every version 0 to 3 has the same
/// fields: the partitions, then user data, left null). Versions above 3 are answered as 3.
pub fn encode_assignment(version: i16, partitions: &TopicPartitions) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version.clamp(0, 3));
    put_len(&mut buf, partitions.len());
    for (topic, ps) in partitions {
        put_len16(&mut buf, topic.len());
        buf.put_slice(topic.as_bytes());
        put_len(&mut buf, ps.len());
        for p in ps {
            buf.put_i32(*p);
        }
    }
    buf.put_i32(-1);
    buf.freeze()
}

/// The version of an embedded subscription (0 when unreadable), which a classic member's
/// assignment is encoded with.
pub fn subscription_version(metadata: &[u8]) -> i16 {
    Reader(metadata).i16().unwrap_or(0).max(0)
}

/// A `ConsumerProtocolSubscription` as a client encodes it (tests build classic members'
/// metadata with it).
#[cfg(test)]
pub(crate) fn encode_subscription(version: i16, topics: &[&str], owned: &TopicPartitions) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.to_string()))
                .collect(),
        )
        .with_owned_partitions(
            owned
                .iter()
                .map(|(t, ps)| {
                    TopicPartition::default()
                        .with_topic(StrBytes::from_string(t.clone()).into())
                        .with_partitions(ps.clone())
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    if sub.encode(&mut buf, version).is_err() {
        return Bytes::new();
    }
    buf.freeze()
}

fn put_len(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn put_len16(buf: &mut BytesMut, len: usize) {
    buf.put_i16(i16::try_from(len).unwrap_or(i16::MAX));
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    use super::*;

    fn subscription(version: i16) -> Bytes {
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_owned_partitions(vec![TopicPartition::default()
                .with_topic(StrBytes::from_static_str("t").into())
                .with_partitions(vec![0, 2])])
            .with_rack_id(Some(StrBytes::from_static_str("r")));
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        sub.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn subscriptions_of_every_version_decode() {
        for version in 0..=3 {
            let sub = decode_subscription(&subscription(version)).unwrap();
            assert_eq!(sub.version, version);
            assert_eq!(sub.topics, vec!["t".to_string()]);
            let owned = if version >= 1 {
                vec![("t".to_string(), vec![0, 2])]
            } else {
                vec![]
            };
            assert_eq!(sub.owned, owned, "v{version}");
            assert_eq!(sub.rack.is_some(), version >= 3);
        }
    }

    #[test]
    fn an_encoded_assignment_is_what_kafkas_decoder_reads() {
        let partitions = vec![("t".to_string(), vec![1, 3]), ("u".to_string(), vec![0])];
        for version in 0..=3 {
            let mut bytes = encode_assignment(version, &partitions);
            assert_eq!(decode_assignment(&bytes).unwrap(), partitions);
            let v = i16::from_be_bytes([bytes[0], bytes[1]]);
            let _ = bytes::Buf::copy_to_bytes(&mut bytes, 2);
            let decoded = ConsumerProtocolAssignment::decode(&mut bytes, v).unwrap();
            assert_eq!(decoded.assigned_partitions.len(), 2);
            assert_eq!(decoded.assigned_partitions[0].partitions, vec![1, 3]);
        }
    }

    #[test]
    fn hostile_bytes_are_refused() {
        assert_eq!(decode_subscription(&[]), None);
        assert_eq!(decode_subscription(&[0, 1, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        let full = subscription(3);
        for cut in 0..full.len() {
            let _ = decode_subscription(&full[..cut]);
        }
    }
}
