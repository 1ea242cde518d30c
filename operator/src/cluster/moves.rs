//! Carrying out the rebalance plan: the cluster's KafkaPartitions and KafkaTopics in, the
//! plan's reassignments started (each a conditional update of the listed copy, with one try:
//! the plan was made from the whole cluster as listed, so a partition that changed since
//! waits for the next reconcile to be planned again), one Event per pass.

use std::collections::{BTreeMap, BTreeSet};

use kube::{Api, Resource, ResourceExt};
use tributary_crds::update::{ConditionalUpdate, Decision, RetryPolicy};
use tributary_crds::{AssignmentError, KafkaCluster, KafkaPartition, KafkaTopic};

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

/// What starting a move to `target` makes of the partition as listed: the object with the
/// reassignment started by the contract's one checked function, or nothing to write.
pub fn start(
    partition: Option<&KafkaPartition>,
    target: &[i32],
) -> Decision<KafkaPartition, (), AssignmentError> {
    let Some(partition) = partition else {
        return Decision::Keep(());
    };
    let mut next = partition.clone();
    match next.spec.start_reassignment(target) {
        Ok(true) => {
            next.metadata.managed_fields = None;
            Decision::Replace(next, ())
        }
        Ok(false) => Decision::Keep(()),
        Err(refused) => Decision::Abort(refused),
    }
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
        let started_move = ConditionalUpdate::new(&api, &m.partition)
            .policy(RetryPolicy::once())
            .starting_from((*current).clone())
            .run(|p| start(p, &m.target))
            .await;
        match started_move {
            Ok(updated) if updated.written => started.push(format!(
                "{} {:?}→{:?} ({})",
                m.partition,
                current.spec.replicas,
                m.target,
                m.reason.as_str()
            )),
            Ok(_) => {}
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

    #[test]
    fn a_move_starts_by_the_checked_contract_and_only_once() {
        let listed = partition("a", 0, &[0, 1, 2], &[]);
        let Decision::Replace(next, ()) = start(Some(&listed), &[1, 2, 3]) else {
            panic!("expected a write");
        };
        assert_eq!(
            (
                next.spec.replicas.clone(),
                next.spec.adding_replicas.clone(),
                next.spec.removing_replicas.clone()
            ),
            (vec![1, 2, 3, 0], vec![3], vec![0])
        );
        assert!(
            matches!(start(Some(&next), &[1, 2, 3]), Decision::Keep(())),
            "already moving there"
        );
        assert!(matches!(
            start(Some(&listed), &[1, 1]),
            Decision::Abort(AssignmentError::Duplicate(1))
        ));
        assert!(matches!(start(None, &[1]), Decision::Keep(())));
    }
}
