//! KafkaTopic object names for Kafka topic names. Kafka allows upper case and `_`; Kubernetes
//! object names are lower-case DNS subdomains. A Kafka name that is a valid object name is
//! used as is; any other becomes a readable lower-case form plus a hash of the original (so
//! `Orders` and `orders` never collide), and the KafkaTopic carries the real name in
//! `spec.topicName`. KafkaPartitions are found by the Kafka topic and index they hold.

use kube::runtime::reflector::Store;
use kube::ResourceExt;
use sha2::{Digest, Sha256};
use tributary_crds::KafkaPartition;

/// The name of the KafkaPartition of cluster `cluster` in `partitions` that holds partition
/// `index` of Kafka topic `topic`.
pub(super) fn partition_object(
    partitions: &Store<KafkaPartition>,
    cluster: &str,
    topic: &str,
    index: i32,
) -> Option<String> {
    partitions
        .state()
        .iter()
        .find(|p| {
            p.spec.cluster_ref == cluster && p.spec.topic == topic && p.spec.partition == index
        })
        .map(|p| p.name_any())
}

/// The KafkaTopic object name for Kafka topic `name`.
pub(super) fn object_name(name: &str) -> String {
    if is_object_name(name) {
        return name.to_string();
    }
    let readable: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let readable = readable.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let readable: String = readable.chars().take(200).collect();
    if readable.is_empty() {
        format!("topic-{hash}")
    } else {
        format!("{readable}-{hash}")
    }
}

/// Longest object name the broker gives a KafkaTopic: its KafkaPartitions are named
/// `<object>-<n>` (n up to 9999) and must stay within Kubernetes' 253 characters.
const MAX_OBJECT_NAME: usize = 240;

/// Whether `name` is a valid Kubernetes object name (Kubernetes' DNS-1123 subdomain check:
/// lower-case alphanumeric labels with inner `-`, joined by `.`) short enough for its
/// KafkaPartitions' names.
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_OBJECT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.split('.').all(|label| {
            label.starts_with(|c: char| c.is_ascii_alphanumeric())
                && label.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_object_names_stay_and_others_get_a_readable_hashed_form() {
        assert_eq!(object_name("orders.eu-1"), "orders.eu-1");
        let offsets = object_name("__consumer_offsets");
        assert!(offsets.starts_with("consumer-offsets-"), "{offsets}");
        assert_ne!(object_name("Orders"), object_name("orders"));
        assert!(object_name("Orders").starts_with("orders-"));
        for name in ["__consumer_offsets", "A_B", "..", "x_", "-a-"] {
            assert!(
                is_object_name(&object_name(name)),
                "{name} -> {}",
                object_name(name)
            );
        }
        let long = object_name(&"x".repeat(249));
        assert!(
            is_object_name(&long) && long.len() <= MAX_OBJECT_NAME,
            "{long}"
        );
    }
}
