//! Checks on topic changes that do not depend on where metadata lives: names (and the
//! `.`/`_` collisions Kafka refuses), partition counts against the per-request limit,
//! replication factors against the registered brokers, manual assignments, configs. Pure
//! functions of the request, the current image and the broker's settings.

use std::collections::BTreeMap;

use super::source::{MetadataError, TopicSpec};
use super::ClusterImage;
use crate::config::BrokerConfig;
use crate::topics::config;
use crate::topics::names::validate_topic_name;

/// A topic creation with the broker's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTopic {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
    /// Replicas per partition chosen by the client; empty when the cluster places them.
    pub assignments: Vec<Vec<i32>>,
}

/// Checks a creation against the cluster `image` shows.
pub fn validate_create(
    spec: &TopicSpec,
    image: &ClusterImage,
    config: &BrokerConfig,
) -> Result<ValidTopic, MetadataError> {
    validate_topic_name(&spec.name).map_err(MetadataError::InvalidName)?;
    if image.topic(&spec.name).is_some() {
        return Err(MetadataError::TopicExists(spec.name.clone()));
    }
    let normalized = |s: &str| s.replace('.', "_");
    let wanted = normalized(&spec.name);
    if let Some(clash) = image.topics().find(|t| normalized(&t.name) == wanted) {
        return Err(MetadataError::InvalidName(format!(
            "topic `{}` collides with existing topic `{}`: `.` and `_` are interchangeable in metric names",
            spec.name, clash.name
        )));
    }
    let (partitions, replication_factor) = if spec.assignments.is_empty() {
        let partitions = match spec.partitions {
            -1 => config.num_partitions,
            n if n >= 1 => n,
            n => {
                return Err(MetadataError::InvalidPartitions(format!(
                    "number of partitions must be at least 1, got {n}"
                )))
            }
        };
        let replication_factor = match spec.replication_factor {
            -1 => config.default_replication_factor,
            n => n,
        };
        (partitions, replication_factor)
    } else {
        if spec.partitions != -1 || spec.replication_factor != -1 {
            return Err(MetadataError::InvalidReplicaAssignment(
                "give either replica assignments or partitions and replication factor, not both"
                    .into(),
            ));
        }
        check_assignments(&spec.assignments, image)?;
        let rf = spec.assignments.first().map_or(0, Vec::len);
        (
            i32::try_from(spec.assignments.len()).unwrap_or(i32::MAX),
            i16::try_from(rf).unwrap_or(i16::MAX),
        )
    };
    check_request_limit(partitions, config)?;
    if replication_factor < 1 {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "replication factor must be at least 1, got {replication_factor}"
        )));
    }
    let brokers = image.brokers.len();
    if usize::try_from(replication_factor).unwrap_or(usize::MAX) > brokers {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "replication factor {replication_factor} is larger than the {brokers} available broker(s)"
        )));
    }
    config::validate_all(config, &spec.configs).map_err(MetadataError::InvalidConfig)?;
    Ok(ValidTopic {
        name: spec.name.clone(),
        partitions,
        replication_factor,
        configs: spec.configs.clone(),
        assignments: spec.assignments.clone(),
    })
}

/// Checks growing topic `name` to `count` partitions (placed as `assignments` say, if given).
pub fn validate_growth(
    name: &str,
    count: i32,
    assignments: &[Vec<i32>],
    image: &ClusterImage,
    config: &BrokerConfig,
) -> Result<i32, MetadataError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
    let current = topic.partition_count();
    if count <= current {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic `{name}` has {current} partitions; the new count must be larger, got {count}"
        )));
    }
    if !assignments.is_empty() {
        if i64::try_from(assignments.len()).unwrap_or(i64::MAX) != i64::from(count - current) {
            return Err(MetadataError::InvalidReplicaAssignment(format!(
                "{} assignments for {} new partitions",
                assignments.len(),
                count - current
            )));
        }
        check_assignments(assignments, image)?;
    }
    check_request_limit(count - current, config)?;
    Ok(current)
}

/// Refuses `adding` partition replicas the cluster's brokers cannot host within their
/// `max.broker.partitions` each (KIP-578, which Kafka's controller checks for the whole
/// cluster): the replicas already placed plus the new ones must fit every registered broker's
/// budget, as the operator spreads them evenly.
pub fn check_cluster_budget(
    image: &ClusterImage,
    config: &BrokerConfig,
    adding: usize,
) -> Result<(), MetadataError> {
    let limit = config.partition_limits.per_broker;
    let brokers = image.broker_count();
    let hosted: usize = image
        .topics()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.replicas.len())
        .sum();
    if hosted.saturating_add(adding) > brokers.saturating_mul(limit) {
        return Err(MetadataError::PolicyViolation(format!(
            "the cluster's {brokers} brokers host {hosted} partition replicas; {adding} more would \
             pass their limit of {limit} each (max.broker.partitions)"
        )));
    }
    Ok(())
}

/// Refuses creating more partitions at once than one request may.
pub fn check_request_limit(adding: i32, config: &BrokerConfig) -> Result<(), MetadataError> {
    let limit = config.partition_limits.per_request;
    let adding = usize::try_from(adding).unwrap_or(0);
    if adding > limit {
        return Err(MetadataError::PolicyViolation(format!(
            "Excessively large number of partitions per request: {adding} requested, limit {limit} \
             (max.partitions.per.request)"
        )));
    }
    Ok(())
}

/// Every assignment names distinct registered brokers, and all have one replication factor.
fn check_assignments(assignments: &[Vec<i32>], image: &ClusterImage) -> Result<(), MetadataError> {
    let rf = assignments.first().map_or(0, Vec::len);
    for (index, replicas) in assignments.iter().enumerate() {
        let invalid = |why: String| {
            MetadataError::InvalidReplicaAssignment(format!("partition {index}: {why}"))
        };
        if replicas.is_empty() || replicas.len() != rf {
            return Err(invalid(format!(
                "{} replicas where the first partition has {rf}",
                replicas.len()
            )));
        }
        if let Some(unknown) = replicas.iter().find(|b| image.broker(**b).is_none()) {
            let known: Vec<i32> = image.brokers.keys().copied().collect();
            return Err(invalid(format!(
                "broker {unknown} is not registered (brokers: {known:?})"
            )));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != replicas.len() {
            return Err(invalid(format!("duplicate brokers in {replicas:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;
    use crate::metadata::{BrokerInfo, PartitionState, TopicImage};

    fn config() -> BrokerConfig {
        BrokerConfig::resolve(Flags {
            max_partitions_per_request: Some(100),
            ..Flags::default()
        })
        .expect("config")
    }

    fn image(brokers: i32) -> ClusterImage {
        let brokers = (0..brokers)
            .map(|id| BrokerInfo {
                id,
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation: 1,
                endpoints: Vec::new(),
            })
            .collect();
        ClusterImage::new("c".into(), 0, brokers).with_topic(TopicImage {
            name: "orders.eu".into(),
            id: uuid::Uuid::new_v4(),
            configs: BTreeMap::new(),
            replication_factor: 1,
            partitions: vec![PartitionState::sole(0, 1, 0)],
        })
    }

    fn spec(name: &str, partitions: i32, rf: i16) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor: rf,
            ..TopicSpec::default()
        }
    }

    #[test]
    fn defaults_fill_in_and_names_are_checked() {
        let valid = validate_create(&spec("t", -1, -1), &image(1), &config()).expect("valid");
        assert_eq!((valid.partitions, valid.replication_factor), (1, 1));
        for (bad, what) in [("", "empty"), ("a b", "space"), ("orders_eu", "collides")] {
            assert!(
                matches!(
                    validate_create(&spec(bad, 1, 1), &image(1), &config()),
                    Err(MetadataError::InvalidName(_))
                ),
                "{what}"
            );
        }
        assert!(matches!(
            validate_create(&spec("orders.eu", 1, 1), &image(1), &config()),
            Err(MetadataError::TopicExists(_))
        ));
    }

    #[test]
    fn replication_factor_is_bounded_by_the_registered_brokers() {
        assert!(validate_create(&spec("t", 3, 3), &image(3), &config()).is_ok());
        let err = validate_create(&spec("t", 3, 3), &image(1), &config()).expect_err("too few");
        assert!(
            err.to_string()
                .contains("larger than the 1 available broker"),
            "{err}"
        );
        assert!(matches!(
            validate_create(&spec("t", 3, 0), &image(3), &config()),
            Err(MetadataError::InvalidReplicationFactor(_))
        ));
    }

    #[test]
    fn per_request_limits_and_growth_are_checked() {
        assert!(matches!(
            validate_create(&spec("t", 101, 1), &image(1), &config()),
            Err(MetadataError::PolicyViolation(_))
        ));
        assert_eq!(
            validate_growth("orders.eu", 4, &[], &image(1), &config()).ok(),
            Some(1)
        );
        assert!(matches!(
            validate_growth("orders.eu", 1, &[], &image(1), &config()),
            Err(MetadataError::InvalidPartitions(_))
        ));
        assert!(matches!(
            validate_growth("missing", 3, &[], &image(1), &config()),
            Err(MetadataError::UnknownTopic(_))
        ));
    }

    #[test]
    fn manual_assignments_name_distinct_registered_brokers() {
        let with = |assignments: Vec<Vec<i32>>| TopicSpec {
            name: "t".into(),
            partitions: -1,
            replication_factor: -1,
            assignments,
            ..TopicSpec::default()
        };
        let valid = validate_create(&with(vec![vec![0, 1], vec![1, 2]]), &image(3), &config());
        assert_eq!(
            valid.map(|v| (v.partitions, v.replication_factor)).ok(),
            Some((2, 2))
        );
        for bad in [
            vec![vec![0, 7]],
            vec![vec![1, 1]],
            vec![vec![0, 1], vec![2]],
            vec![vec![]],
        ] {
            assert!(
                matches!(
                    validate_create(&with(bad.clone()), &image(3), &config()),
                    Err(MetadataError::InvalidReplicaAssignment(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_cluster_budget_counts_every_replica_against_every_brokers_limit() {
        let limited = BrokerConfig::resolve(Flags {
            max_broker_partitions: Some(8),
            ..Flags::default()
        })
        .expect("config");
        let three = ClusterImage::new("c".into(), 0, Vec::new());
        let refused = check_cluster_budget(&three, &limited, 1).expect_err("no brokers, no room");
        assert!(
            refused.to_string().contains("max.broker.partitions"),
            "{refused}"
        );

        // image(3) has 3 brokers; its one topic's replicas count too.
        let cluster = image(3);
        let hosted: usize = cluster
            .topics()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.replicas.len())
            .sum();
        assert!(check_cluster_budget(&cluster, &limited, 24 - hosted).is_ok());
        let over = check_cluster_budget(&cluster, &limited, 25 - hosted).expect_err("over");
        assert!(
            over.to_string()
                .contains("limit of 8 each (max.broker.partitions)"),
            "{over}"
        );
    }
}
