//! Carrying out the rebalance plan: the cluster's KafkaPartitions and KafkaTopics in, the
//! plan's reassignments written (each a spec replace conditional on the resourceVersion
//! read; a conflict waits for the next reconcile), one Event per pass.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::PostParams;
use kube::{Api, Resource, ResourceExt};
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaTopic};

use super::rebalance::{plan, PartitionView, RebalanceInput, RebalancePlan};
use crate::context::Context;
use crate::placement::Broker;

/// The plan's views of `partitions`: each with its topic's replication factor (partitions of
/// topics not found, e.g. being deleted, are left out).
pub fn views(topics: &[KafkaTopic], partitions: &[KafkaPartition]) -> Vec<PartitionView> {
    let factors: BTreeMap<&str, usize> = topics
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .filter_map(|t| {
            Some((
                t.kafka_name(),
                usize::try_from(t.spec.replication_factor).ok()?,
            ))
        })
        .collect();
    partitions
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            Some(PartitionView {
                name: p.name_any(),
                replicas: p.spec.target_replicas(),
                reassigning: p.spec.is_reassigning(),
                replication_factor: *factors.get(p.spec.topic.as_str())?,
            })
        })
        .collect()
}

/// Plans the moves for `cluster` and starts them; returns the plan.
pub async fn rebalance(
    ctx: &Context,
    cluster: &KafkaCluster,
    topics: &[KafkaTopic],
    partitions: &[KafkaPartition],
    live: &BTreeSet<i32>,
) -> RebalancePlan {
    let brokers = Broker::of_cluster(cluster);
    let views = views(topics, partitions);
    let settings = &cluster.spec.rebalance;
    let planned = plan(RebalanceInput {
        brokers: &brokers,
        live,
        partitions: &views,
        max_moves: usize::try_from(settings.max_concurrent_moves.max(1)).unwrap_or(1),
        balance: settings.enabled,
    });
    let ns = cluster.namespace().unwrap_or_default();
    let api: Api<KafkaPartition> = Api::namespaced(ctx.client.clone(), &ns);
    let by_name: BTreeMap<String, &KafkaPartition> =
        partitions.iter().map(|p| (p.name_any(), p)).collect();
    let mut started = Vec::new();
    for m in &planned.moves {
        let Some(current) = by_name.get(&m.partition) else {
            continue;
        };
        let mut next = (*current).clone();
        let assignment = next.spec.reassigned_to(&m.target);
        next.spec.replicas = assignment.replicas;
        next.spec.adding_replicas = assignment.adding;
        next.spec.removing_replicas = assignment.removing;
        next.metadata.managed_fields = None;
        match api
            .replace(&m.partition, &PostParams::default(), &next)
            .await
        {
            Ok(_) => started.push(format!(
                "{} {:?}→{:?} ({})",
                m.partition,
                current.spec.replicas,
                m.target,
                m.reason.as_str()
            )),
            Err(e) => tracing::info!(
                partition = %m.partition,
                error = %e,
                "could not start a reassignment; the next reconcile decides again"
            ),
        }
    }
    if !started.is_empty() {
        tracing::info!(cluster = %cluster.name_any(), moves = ?started, "reassignments started");
        ctx.event(
            &cluster.object_ref(&()),
            "ReassignmentsStarted",
            format!(
                "moving replicas ({} already in progress): {}",
                planned.in_progress,
                started.join(", ")
            ),
            false,
        )
        .await;
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, rf: i32) -> KafkaTopic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": name, "namespace": "kafka"},
            "spec": {"clusterRef": "demo", "partitions": 1, "replicationFactor": rf},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn partition(topic: &str, n: i32, replicas: &[i32], removing: &[i32]) -> KafkaPartition {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaPartition",
            "metadata": {"name": format!("{topic}-{n}"), "namespace": "kafka"},
            "spec": {"clusterRef": "demo", "topic": topic, "topicId": "AAAAAAAAAAAAAAAAAAAAAA",
                     "partition": n, "replicas": replicas, "removingReplicas": removing},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn views_carry_the_target_replicas_and_the_topics_replication_factor() {
        let topics = [topic("a", 3)];
        let parts = [
            partition("a", 0, &[1, 2, 3, 0], &[0]),
            partition("a", 1, &[0, 1, 2], &[]),
            partition("gone", 0, &[0], &[]),
        ];
        let v = views(&topics, &parts);
        assert_eq!(
            v,
            vec![
                PartitionView {
                    name: "a-0".into(),
                    replicas: vec![1, 2, 3],
                    reassigning: true,
                    replication_factor: 3
                },
                PartitionView {
                    name: "a-1".into(),
                    replicas: vec![0, 1, 2],
                    reassigning: false,
                    replication_factor: 3
                },
            ]
        );
    }
}
