//! KafkaTopic reconcile: read the cluster and the topic's KafkaPartitions, run the pure
//! [`plan`], create (or reassign) the KafkaPartitions, write the summary status with a
//! resourceVersion precondition, and on deletion wait in the finalizer until the brokers have
//! dropped the data.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt, TryStreamExt};
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Api, Resource, ResourceExt};
use tributary_crds::topic::{DeletionPolicy, TOPIC_FINALIZER};
use tributary_crds::{
    is_paused, KafkaCluster, KafkaPartition, KafkaTopic, KafkaTopicStatus, TopicPhase,
};

use super::partitions::{selector, TOPIC_UID_LABEL};
use super::plan::{plan, TopicInput};
use crate::context::Context;
use crate::pause::set_paused;
use crate::{Error, Result};

/// KafkaPartition creations in flight at once when a topic is created or grows.
const CREATE_CONCURRENCY: usize = 16;

/// Label value for metrics.
pub const CONTROLLER: &str = "kafkatopic";

/// Reconciles one KafkaTopic through the finalizer wrapper.
pub async fn reconcile(topic: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = topic.namespace().unwrap_or_default();
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, TOPIC_FINALIZER, topic, |event| async {
        match event {
            Finalizer::Apply(t) => apply(&t, &ctx).await,
            Finalizer::Cleanup(t) => cleanup(&t, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::from_finalizer("KafkaTopic", e))
}

/// The topic's cluster and KafkaPartitions.
struct TopicView {
    cluster: Option<KafkaCluster>,
    partitions: Vec<KafkaPartition>,
    /// The cluster's other KafkaPartitions, whose load guides placement.
    others: Vec<KafkaPartition>,
}

async fn read(topic: &KafkaTopic, ctx: &Context) -> Result<TopicView> {
    let ns = topic.namespace().unwrap_or_default();
    let cluster_name = &topic.spec.cluster_ref;
    let cluster = Api::<KafkaCluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(cluster_name)
        .await
        .map_err(|e| Error::kube(format!("get KafkaCluster {ns}/{cluster_name}"), e))?;
    let uid = topic.uid().ok_or_else(|| Error::MissingField {
        what: format!("KafkaTopic {ns}/{}", topic.name_any()),
        field: "metadata.uid",
    })?;
    let api = Api::<KafkaPartition>::namespaced(ctx.client.clone(), &ns);
    let list_error = |e| {
        Error::kube(
            format!("list kafkapartitions of {ns}/{}", topic.name_any()),
            e,
        )
    };
    let partitions = api
        .list(&ListParams::default().labels(&selector(&uid)))
        .await
        .map_err(list_error)?
        .items;
    // The cluster's other partitions guide placement; they are read only when this topic has
    // partitions to place (listing every partition at each reconcile would cost the most
    // where there are most topics).
    let placed: BTreeSet<i32> = partitions.iter().map(|p| p.spec.partition).collect();
    let unplaced = (0..topic.spec.partitions).any(|n| !placed.contains(&n));
    let others = if unplaced {
        let in_cluster = format!("{}={cluster_name}", tributary_crds::CLUSTER_LABEL);
        api.list(&ListParams::default().labels(&in_cluster))
            .await
            .map_err(list_error)?
            .items
            .into_iter()
            .filter(|p| p.labels().get(TOPIC_UID_LABEL) != Some(&uid))
            .collect()
    } else {
        Vec::new()
    };
    Ok(TopicView {
        cluster,
        partitions,
        others,
    })
}

/// Creates the new KafkaPartitions (concurrently) and replaces reassigned ones on the
/// resourceVersion read. An object of the same name left by an earlier topic of that name is
/// waited for, never taken over.
async fn write_partitions(
    topic: &KafkaTopic,
    ctx: &Context,
    changes: super::partitions::PartitionChanges,
) -> Result<()> {
    let ns = topic.namespace().unwrap_or_default();
    let api: Api<KafkaPartition> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = topic.uid().unwrap_or_default();
    stream::iter(changes.create)
        .map(|p| create_partition(&api, &ns, &uid, p))
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Creates one KafkaPartition; finding it already created by this topic is success.
async fn create_partition(
    api: &Api<KafkaPartition>,
    ns: &str,
    topic_uid: &str,
    p: KafkaPartition,
) -> Result<()> {
    let name = p.name_any();
    match api.create(&PostParams::default(), &p).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api
                .get_opt(&name)
                .await
                .map_err(|e| Error::kube(format!("get KafkaPartition {ns}/{name}"), e))?;
            let ours =
                existing.is_some_and(|e| e.owner_references().iter().any(|r| r.uid == topic_uid));
            if ours {
                Ok(())
            } else {
                Err(Error::PartitionNameTaken { name })
            }
        }
        Err(e) => Err(Error::kube(format!("create KafkaPartition {ns}/{name}"), e)),
    }
}

async fn apply(topic: &KafkaTopic, ctx: &Context) -> Result<Action> {
    if is_paused(&topic.metadata) {
        let mut status = topic.status.clone().unwrap_or_default();
        if set_paused(&mut status.conditions, true, topic.metadata.generation) {
            write_status(topic, ctx, &status).await?;
        }
        return Ok(Action::await_change());
    }
    let view = read(topic, ctx).await?;
    let mut planned = plan(TopicInput {
        topic,
        cluster: view.cluster.as_ref(),
        partitions: &view.partitions,
        others: &view.others,
    })?;
    write_partitions(topic, ctx, std::mem::take(&mut planned.partitions)).await?;
    set_paused(
        &mut planned.status.conditions,
        false,
        topic.metadata.generation,
    );
    let old = topic.status.clone().unwrap_or_default();
    if planned.status != old {
        write_status(topic, ctx, &planned.status).await?;
    }
    let reference = topic.object_ref(&());
    for ev in planned.events {
        ctx.event(&reference, ev.reason, ev.note, ev.warning).await;
    }
    Ok(match planned.status.phase {
        // KafkaPartition changes wake the topic (it owns them); this is the fallback.
        Some(TopicPhase::Provisioned) => Action::requeue(Duration::from_secs(60)),
        Some(TopicPhase::Pending) => Action::requeue(Duration::from_secs(10)),
        // Invalid or unsatisfiable: wait for a spec change (or the cluster to grow), slowly.
        _ => Action::requeue(Duration::from_secs(120)),
    })
}

/// Writes the topic's status with a resourceVersion precondition.
async fn write_status(topic: &KafkaTopic, ctx: &Context, status: &KafkaTopicStatus) -> Result<()> {
    crate::apply::write_status(&ctx.client, topic, status).await
}

/// Deletion: Retain, or a vanished cluster, lets the object go at once. Otherwise list the
/// brokers holding replicas in `status.pendingDeletion` and wait until they have removed
/// themselves (brokers that left the cluster are not waited for).
async fn cleanup(topic: &KafkaTopic, ctx: &Context) -> Result<Action> {
    let reference = topic.object_ref(&());
    if topic.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            &reference,
            "Retained",
            "topic data kept on the brokers (deletionPolicy: Retain)".into(),
            false,
        )
        .await;
        return Ok(Action::await_change());
    }
    let view = read(topic, ctx).await?;
    let Some(cluster) = view.cluster else {
        return Ok(Action::await_change());
    };
    let members: BTreeSet<i32> = (0..cluster.spec.brokers).collect();
    let mut status = topic.status.clone().unwrap_or_default();
    let pending: Vec<i32> = match &status.pending_deletion {
        Some(p) => p
            .iter()
            .copied()
            .filter(|id| members.contains(id))
            .collect(),
        None => {
            let holders: BTreeSet<i32> = view
                .partitions
                .iter()
                .flat_map(|p| p.spec.replicas.iter().copied())
                .collect();
            let pending: Vec<i32> = holders.intersection(&members).copied().collect();
            status.phase = Some(TopicPhase::Deleting);
            status.pending_deletion = Some(pending.clone());
            write_status(topic, ctx, &status).await?;
            let note = format!("waiting for brokers {pending:?} to delete the partitions");
            ctx.event(&reference, "Deleting", note, false).await;
            pending
        }
    };
    if pending.is_empty() {
        ctx.event(
            &reference,
            "Deleted",
            "every broker dropped the topic's data".into(),
            false,
        )
        .await;
        Ok(Action::await_change())
    } else {
        Err(Error::DeletionPending {
            topic: topic.name_any(),
            brokers: pending,
        })
    }
}

/// Counts the failure, publishes a Warning Event (at most one per backoff period), and backs
/// off; conflicts and pending deletions retry soon.
pub fn error_policy(topic: Arc<KafkaTopic>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error);
    ctx.report_failure(topic.object_ref(&()), error);
    match error {
        Error::Conflict { .. } => Action::requeue(Duration::from_millis(200)),
        Error::PartitionNameTaken { .. } => Action::requeue(Duration::from_secs(2)),
        Error::DeletionPending { .. } => Action::requeue(Duration::from_secs(5)),
        _ => {
            tracing::warn!(topic = %topic.name_any(), %error, "reconcile failed");
            Action::requeue(ctx.settings.error_backoff)
        }
    }
}
