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

/// The KafkaTopic object name for Kafka topic `name`: any legal Kafka name (up to 249
/// characters of `[a-zA-Z0-9._-]`) maps to a valid object name within [`MAX_OBJECT_NAME`].
pub(super) fn object_name(name: &str) -> String {
    if is_object_name(name) {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let readable = readable_form(name, READABLE_LEN);
    if readable.is_empty() {
        format!("topic-{hash}")
    } else {
        format!("{readable}-{hash}")
    }
}

/// Most characters of a name's readable form before its hash.
const READABLE_LEN: usize = 200;

/// `name` lower-cased, other characters as `-`, each dot-separated label trimmed to start and
/// end alphanumeric and empty labels dropped, cut to `max` characters on a label end.
fn readable_form(name: &str, max: usize) -> String {
    let lowered: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let mut out = String::new();
    for label in lowered.split('.') {
        let label = label.trim_matches('-');
        if label.is_empty() {
            continue;
        }
        let room = max.saturating_sub(out.len() + usize::from(!out.is_empty()));
        let cut = label[..label.len().min(room)].trim_end_matches('-');
        if cut.is_empty() {
            break;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(cut);
    }
    out
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
        // librdkafka's test topics: one long dot-free run, as Kubernetes allows.
        let rdkafka = "rdkafkatest-rnd445fb81946020dd6-0090-idempotence-impl-ack-c9fc1974";
        assert_eq!(object_name(rdkafka), rdkafka);
        for name in ["a..b", "a._b", "_.a", "x.-y", "A.B_.C"] {
            assert!(
                is_object_name(&object_name(name)),
                "{name} -> {}",
                object_name(name)
            );
        }
    }

    #[test]
    fn every_legal_kafka_topic_name_maps_to_a_valid_object_name_within_kubernetes_limits() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let config = Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let names = prop_oneof!["[a-zA-Z0-9._-]{1,249}", "[a-z._-]{1,249}", "[._-]{1,20}"];
        runner
            .run(&names, |name| {
                prop_assume!(name != "." && name != "..");
                let object = object_name(&name);
                prop_assert!(is_object_name(&object), "{name} -> {object}");
                prop_assert!(object.len() <= MAX_OBJECT_NAME);
                let partition = format!("{object}-9999");
                prop_assert!(partition.len() <= 253);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
