//! The cluster image a broker in cluster mode serves, built from the Kubernetes objects it
//! watches: registered brokers from their Leases, topics from KafkaTopics, every partition's
//! replicas, leader, epochs and ISR from its KafkaPartition. A pure function of the objects, so
//! every broker watching the same objects serves the same metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use tributary_crds::registration::Registration;
use tributary_crds::{KafkaPartition, KafkaTopic};
use uuid::Uuid;

use crate::metadata::{BrokerInfo, ClusterImage, IsrMember, PartitionState, TopicImage, NO_LEADER};

/// The objects an image is made of.
pub struct Objects<'a> {
    /// The cluster id clients see.
    pub cluster_id: &'a str,
    /// KafkaTopics of the cluster.
    pub topics: &'a [Arc<KafkaTopic>],
    /// KafkaPartitions of the cluster.
    pub partitions: &'a [Arc<KafkaPartition>],
    /// Leases in the cluster's namespace.
    pub leases: &'a [Arc<Lease>],
    /// The KafkaCluster's name.
    pub cluster: &'a str,
    /// The image built before (empty at first): a topic keeps its partition count there while
    /// this broker's watch has not yet seen every partition the operator recorded placed.
    pub previous: &'a ClusterImage,
}

/// The image `objects` describe. Topics being deleted are left out (their replicas are
/// deleted). A topic shows the partition count the operator recorded placed
/// (`status.placedPartitions`, written once every object of a placement is) once this broker
/// sees all those KafkaPartitions, and the count it showed before until then (none while it is
/// created): so the count changes at once, as in Kafka, never one object at a time while a
/// topic is created or grown. Clients hashing keys, and coordinators hashing group and
/// transactional ids, would otherwise pick partitions by a count about to change.
pub fn build(objects: &Objects<'_>) -> ClusterImage {
    let (held, released): (Vec<_>, Vec<_>) = objects
        .leases
        .iter()
        .filter_map(|lease| {
            let registration = Registration::from_released_lease(objects.cluster, lease)?;
            let held = Registration::from_lease(objects.cluster, lease).is_some();
            Some((broker_info(registration), held))
        })
        .partition(|(_, held)| *held);
    let brokers: Vec<BrokerInfo> = held.into_iter().map(|(b, _)| b).collect();
    // A live broker: clients send controller-bound requests there (any broker serves them).
    let controller = brokers.iter().map(|b| b.id).min().unwrap_or(NO_LEADER);
    let mut by_topic: BTreeMap<(&str, &str), BTreeMap<i32, &KafkaPartition>> = BTreeMap::new();
    for p in objects.partitions {
        if p.metadata.deletion_timestamp.is_some() || p.spec.cluster_ref != objects.cluster {
            continue;
        }
        by_topic
            .entry((p.spec.topic.as_str(), p.spec.topic_id.as_str()))
            .or_default()
            .insert(p.spec.partition, p);
    }
    let mut image = ClusterImage::new(objects.cluster_id.to_string(), controller, brokers);
    image.fenced_brokers = released.into_iter().map(|(b, _)| (b.id, b)).collect();
    for topic in objects.topics {
        if topic.metadata.deletion_timestamp.is_some() || topic.spec.cluster_ref != objects.cluster
        {
            continue;
        }
        let Some(id) = topic_id(topic) else {
            continue;
        };
        let kafka_id = tributary_crds::ids::kafka_id_from_uid(&id.to_string()).unwrap_or_default();
        let name = topic.kafka_name();
        let placed = by_topic.get(&(name, kafka_id.as_str()));
        let seen: Vec<PartitionState> = (0..topic.spec.partitions)
            .map_while(|i| placed.and_then(|p| p.get(&i)).map(|p| state_of(p)))
            .collect();
        let recorded = topic.status.as_ref().map_or(0, |s| s.placed_partitions);
        let shown = shown_count(seen.len(), recorded, objects.previous.topic_by_id(&id));
        let partitions = seen.into_iter().take(shown).collect();
        image.put_topic(Arc::new(TopicImage {
            name: name.to_string(),
            id,
            configs: configs_of(topic),
            replication_factor: i16::try_from(topic.spec.replication_factor).unwrap_or(i16::MAX),
            partitions,
        }));
    }
    image
}

/// A registration as the image keeps it.
fn broker_info(r: Registration) -> BrokerInfo {
    BrokerInfo {
        id: r.id,
        host: r.host,
        port: r.port,
        rack: r.rack,
        incarnation: r.incarnation,
        endpoints: r
            .listeners
            .into_iter()
            .map(|e| crate::metadata::Endpoint {
                listener: e.name,
                host: e.host,
                port: e.port,
            })
            .collect(),
    }
}

/// How many of a topic's `seen` partitions (0 onwards, objects this broker has) to show: the
/// `recorded` count once all are seen, else what `before` showed (never more than is seen).
fn shown_count(seen: usize, recorded: i32, before: Option<&Arc<TopicImage>>) -> usize {
    let recorded = usize::try_from(recorded).unwrap_or(0);
    if seen >= recorded {
        recorded
    } else {
        before.map_or(0, |t| t.partitions.len()).min(seen)
    }
}

/// The topic id: the KafkaTopic's UID.
pub fn topic_id(topic: &KafkaTopic) -> Option<Uuid> {
    topic
        .metadata
        .uid
        .as_deref()
        .and_then(|u| Uuid::parse_str(u).ok())
}

/// The configs brokers apply: what the operator validated (`status.effectiveConfig`) once it
/// has, else the spec's managed values.
fn configs_of(topic: &KafkaTopic) -> BTreeMap<String, String> {
    let effective = topic.status.as_ref().map(|s| &s.effective_config);
    match effective {
        Some(effective) if !effective.is_empty() => effective.clone(),
        _ => topic
            .spec
            .config
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect(),
    }
}

fn state_of(partition: &KafkaPartition) -> PartitionState {
    let status = partition
        .status
        .clone()
        .unwrap_or_else(|| tributary_crds::KafkaPartitionStatus {
            leader: NO_LEADER,
            ..Default::default()
        });
    PartitionState {
        replicas: partition.spec.replicas.clone(),
        leader: status.leader,
        leader_epoch: status.leader_epoch,
        partition_epoch: status.partition_epoch,
        isr: status
            .isr
            .iter()
            .map(|m| IsrMember {
                broker: m.broker_id,
                incarnation: m.broker_epoch,
            })
            .collect(),
        adding: partition.spec.adding_replicas.clone(),
        removing: partition.spec.removing_replicas.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use tributary_crds::{
        IsrEntry, KafkaPartitionSpec, KafkaPartitionStatus, KafkaTopicSpec, KafkaTopicStatus,
    };

    const UID: &str = "fb2e7c4a-1d3f-4a8b-9c2e-0123456789ab";

    fn lease(id: i32, holder: Option<&str>) -> Arc<Lease> {
        let r = Registration {
            id,
            host: format!("b{id}"),
            port: 9092,
            rack: None,
            incarnation: 3,
            shutting_down: false,
            directory_epoch: Some(1),
            listeners: Vec::new(),
            refused: Default::default(),
        };
        Arc::new(Lease {
            metadata: ObjectMeta {
                name: Some(format!("c-broker-{id}")),
                annotations: Some(r.annotations()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                ..LeaseSpec::default()
            }),
        })
    }

    /// KafkaTopic `orders` of `partitions`, `placed` of them recorded placed by the operator.
    fn placed_topic(partitions: i32, placed: i32) -> Arc<KafkaTopic> {
        let mut t = KafkaTopic::new(
            "orders",
            KafkaTopicSpec {
                cluster_ref: "c".into(),
                topic_name: None,
                partitions,
                replication_factor: 2,
                config: [("retention.ms".to_string(), Some("1000".to_string()))].into(),
                deletion_policy: Default::default(),
                replica_assignments: Vec::new(),
            },
        );
        t.metadata.uid = Some(UID.into());
        t.status = Some(KafkaTopicStatus {
            placed_partitions: placed,
            ..KafkaTopicStatus::default()
        });
        Arc::new(t)
    }

    /// KafkaTopic `orders` with every partition recorded placed.
    fn topic(partitions: i32) -> Arc<KafkaTopic> {
        placed_topic(partitions, partitions)
    }

    fn partition(index: i32, leader: Option<i32>) -> Arc<KafkaPartition> {
        let mut p = KafkaPartition::new(
            &format!("orders-{index}"),
            KafkaPartitionSpec {
                cluster_ref: "c".into(),
                topic: "orders".into(),
                topic_id: tributary_crds::ids::kafka_id_from_uid(UID).unwrap_or_default(),
                partition: index,
                replicas: vec![0, 1],
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        );
        p.status = leader.map(|leader| KafkaPartitionStatus {
            leader,
            leader_epoch: 4,
            partition_epoch: 6,
            isr: vec![IsrEntry {
                broker_id: leader,
                broker_epoch: 3,
            }],
        });
        Arc::new(p)
    }

    fn build_with(
        topics: &[Arc<KafkaTopic>],
        partitions: &[Arc<KafkaPartition>],
        leases: &[Arc<Lease>],
    ) -> ClusterImage {
        build_after(&ClusterImage::default(), topics, partitions, leases)
    }

    fn build_after(
        previous: &ClusterImage,
        topics: &[Arc<KafkaTopic>],
        partitions: &[Arc<KafkaPartition>],
        leases: &[Arc<Lease>],
    ) -> ClusterImage {
        build(&Objects {
            cluster_id: "id",
            topics,
            partitions,
            leases,
            cluster: "c",
            previous,
        })
    }

    #[test]
    fn brokers_topics_and_partition_states_come_from_their_objects() {
        let image = build_with(
            &[topic(2)],
            &[partition(0, Some(1)), partition(1, None)],
            &[
                lease(1, Some("c-broker-1")),
                lease(0, Some("c-broker-0")),
                lease(2, None),
            ],
        );
        assert_eq!(image.brokers.keys().copied().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(image.controller_id, 0, "the lowest registered broker");
        let t = image.topic("orders").expect("topic");
        assert_eq!(t.id.to_string(), UID);
        assert_eq!(
            t.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        let p0 = t.partition(0).expect("p0");
        assert_eq!((p0.leader, p0.leader_epoch, p0.partition_epoch), (1, 4, 6));
        assert_eq!(
            p0.isr[0],
            IsrMember {
                broker: 1,
                incarnation: 3
            }
        );
        let p1 = t.partition(1).expect("p1");
        assert!(!p1.has_leader(), "no status yet: no leader");
    }

    #[test]
    fn a_partition_not_seen_holds_back_those_after_it_and_deleted_topics_vanish() {
        let image = build_with(
            &[topic(3)],
            &[partition(0, Some(0)), partition(2, Some(0))],
            &[],
        );
        assert_eq!(image.topic("orders").map(|t| t.partition_count()), Some(0));
        let mut deleting = KafkaTopic::clone(&topic(1));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        let image = build_with(&[Arc::new(deleting)], &[partition(0, Some(0))], &[]);
        assert!(image.topic("orders").is_none());
    }

    #[test]
    fn a_topic_shows_the_count_recorded_placed_once_every_partition_of_it_is_seen() {
        let objects = |n: i32| (0..n).map(|i| partition(i, Some(0))).collect::<Vec<_>>();
        let after = |previous: &ClusterImage, topic, seen: i32| {
            build_after(previous, &[topic], &objects(seen), &[])
        };
        let count = |image: &ClusterImage| image.topic("orders").map(|t| t.partition_count());
        let none = ClusterImage::default();
        // Created: the objects appear one by one before the status says they all exist, and
        // the status can reach this broker before the last objects do.
        assert_eq!(count(&after(&none, placed_topic(4, 0), 3)), Some(0));
        assert_eq!(count(&after(&none, placed_topic(4, 4), 3)), Some(0));
        let created = after(&none, placed_topic(4, 4), 4);
        assert_eq!(count(&created), Some(4));
        // Grown from 4 to 6: the old count until the status and every new object are seen.
        let grown = |seen| after(&created, placed_topic(6, 4), seen);
        assert_eq!(count(&grown(5)), Some(4));
        let recorded = after(&created, placed_topic(6, 6), 5);
        assert_eq!(count(&recorded), Some(4), "recorded but not all seen");
        assert_eq!(count(&after(&recorded, placed_topic(6, 6), 6)), Some(6));
        let without_status = {
            let mut t = KafkaTopic::clone(&topic(4));
            t.status = None;
            Arc::new(t)
        };
        assert_eq!(count(&after(&none, without_status, 4)), Some(0));
    }
}
