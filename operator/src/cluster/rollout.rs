//! The rolling update's I/O: reads the StatefulSet's revision, the broker pods, Leases and
//! the partitions, asks [`super::roll::decide`] what to do, deletes at most one pod, and says
//! what the KafkaCluster status, Events and metrics should show. The progress lives in
//! `status.roll`, so an operator restart resumes the roll where it stood.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, Preconditions, PropagationPolicy};
use kube::{Api, Resource, ResourceExt};
use tributary_crds::cluster::{RestartedBroker, RollStatus};
use tributary_crds::conditions::set_condition;
use tributary_crds::registration::Registration;
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaTopic};

use super::roll::{
    decide, min_insync_replicas, restart_order, Blocker, BrokerState, PartitionState, PodState,
    RestartKind, RollDecision, RollInput,
};
use crate::builders::Names;
use crate::context::Context;
use crate::{Error, Result};

/// Condition type: True while brokers run an older revision than the StatefulSet's, with the
/// reason the roll waits (or `RestartingBroker`); False once the last one rolled.
pub const ROLLING_UPDATE: &str = "RollingUpdate";
/// Pod label the StatefulSet controller sets to the revision a pod was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// What the roll did and what the status should say.
#[derive(Clone, Debug, PartialEq)]
pub struct RollOutcome {
    /// The new `status.roll`.
    pub roll: Option<RollStatus>,
    /// Whether a roll is under way (the reconcile comes back soon).
    pub rolling: bool,
    /// The `RollingUpdate` condition to set: (status, reason, message); `None` leaves it.
    condition: Option<(bool, &'static str, String)>,
}

impl RollOutcome {
    /// Sets the `RollingUpdate` condition, if the roll has anything to say.
    pub fn set_condition(&self, conditions: &mut Vec<Condition>, generation: Option<i64>) {
        if let Some((status, reason, message)) = &self.condition {
            set_condition(
                conditions,
                ROLLING_UPDATE,
                *status,
                reason,
                message.clone(),
                generation,
            );
        }
    }
}

/// The revision the StatefulSet rolls to, once its controller has seen the latest spec.
enum Target {
    /// No StatefulSet or no revision in its status (not created or never observed): no roll.
    Unknown,
    /// The spec changed and the StatefulSet controller has not caught up.
    Pending,
    /// `status.updateRevision`.
    Revision(String),
}

fn target(sts: Option<&StatefulSet>) -> Target {
    let Some(sts) = sts else {
        return Target::Unknown;
    };
    let Some(status) = sts.status.as_ref() else {
        return Target::Unknown;
    };
    let Some(revision) = status.update_revision.clone() else {
        return Target::Unknown;
    };
    if status.observed_generation < sts.metadata.generation {
        return Target::Pending;
    }
    Target::Revision(revision)
}

/// Everything the roll reads besides what the reconcile already has.
pub struct RollObserved<'a> {
    /// The cluster.
    pub cluster: &'a KafkaCluster,
    /// Its names.
    pub names: &'a Names,
    /// The broker StatefulSet as read after applying.
    pub stateful_set: Option<&'a StatefulSet>,
    /// Broker pods.
    pub pods: &'a [Pod],
    /// The cluster's topics.
    pub topics: &'a [KafkaTopic],
    /// The cluster's partitions.
    pub partitions: &'a [KafkaPartition],
    /// StatefulSet replicas (brokers `0..replicas`).
    pub replicas: i32,
}

/// Runs one step of the roll: decides, deletes at most one pod, publishes Events and metrics.
pub async fn step(ctx: &Context, o: RollObserved<'_>) -> Result<RollOutcome> {
    let old = recorded_roll(ctx, o.names).await?;
    let revision = match target(o.stateful_set) {
        Target::Unknown => return Ok(unchanged(old, false)),
        Target::Pending => return Ok(unchanged(old, true)),
        Target::Revision(r) => r,
    };
    let ns = o.names.namespace.as_str();
    let cluster = o.names.cluster.as_str();
    let incarnations = incarnations(ctx, ns, cluster).await?;
    let live = ctx.live_brokers.judged(ns, cluster);
    let brokers = broker_states(&o, &incarnations, live.as_ref());
    let partitions = partition_states(o.cluster, o.topics, o.partitions);
    let restarting = old.as_ref().and_then(|r| r.restarting.clone());
    let decision = decide(&RollInput {
        revision: &revision,
        brokers: &brokers,
        partitions: &partitions,
        restarting: restarting.as_ref(),
    });
    let progress = progress(&brokers, revision);
    match decision {
        RollDecision::Done => Ok(complete(ctx, &o, old.is_some(), progress.revision).await),
        RollDecision::Restart {
            broker,
            pod_uid,
            kind,
        } => {
            let restart = Restart {
                broker,
                incarnation: incarnations.get(&broker).copied(),
                pod_uid,
                kind,
            };
            restart_broker(ctx, &o, progress, restart).await
        }
        RollDecision::Wait(blockers) => Ok(wait(ctx, &o, progress, restarting, &blockers).await),
    }
}

/// No roll to step (no target revision known, or the StatefulSet has not caught up yet): the
/// recorded roll stays as it is.
fn unchanged(roll: Option<RollStatus>, rolling: bool) -> RollOutcome {
    RollOutcome {
        roll,
        rolling,
        condition: None,
    }
}

/// The target revision and which brokers run it, for `status.roll`.
struct Progress {
    /// The StatefulSet's update revision.
    revision: String,
    /// Brokers whose pod runs the revision.
    updated: Vec<i32>,
    /// Outdated brokers: in restart order, then any the order leaves out.
    pending: Vec<i32>,
}

/// Which brokers run `revision` and which still have to roll, in the order they will.
fn progress(brokers: &[BrokerState], revision: String) -> Progress {
    let updated: Vec<i32> = brokers
        .iter()
        .filter(|b| matches!(&b.pod, PodState::Present { revision: r, .. } if *r == revision))
        .map(|b| b.id)
        .collect();
    let mut pending: Vec<i32> = restart_order(brokers, &revision)
        .iter()
        .map(|b| b.id)
        .collect();
    for b in brokers {
        let outdated = matches!(&b.pod, PodState::Present { revision: r, .. } if *r != revision);
        if outdated && !pending.contains(&b.id) {
            pending.push(b.id);
        }
    }
    Progress {
        revision,
        updated,
        pending,
    }
}

/// Every broker runs the revision: clears `status.roll`, says so in an Event if a roll was
/// recorded, and turns the condition False if the cluster had one.
async fn complete(
    ctx: &Context,
    o: &RollObserved<'_>,
    was_rolling: bool,
    revision: String,
) -> RollOutcome {
    ctx.metrics
        .set_roll(&o.names.namespace, &o.names.cluster, 0, &[]);
    let message = format!("every broker runs StatefulSet revision {revision}");
    if was_rolling {
        let reference = o.cluster.object_ref(&());
        ctx.event(&reference, "RollComplete", message.clone(), false)
            .await;
    }
    let had_condition = rolling_update_reason(o.cluster).is_some();
    RollOutcome {
        roll: None,
        rolling: false,
        condition: had_condition.then_some((false, "RollComplete", message)),
    }
}

/// The reason of the cluster's `RollingUpdate` condition, if it has one.
fn rolling_update_reason(cluster: &KafkaCluster) -> Option<String> {
    cluster.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == ROLLING_UPDATE)
            .map(|c| c.reason.clone())
    })
}

/// The broker the roll restarts now.
struct Restart {
    /// Broker id.
    broker: i32,
    /// Its incarnation before the restart, to tell when it is back.
    incarnation: Option<i64>,
    /// UID of the pod to delete.
    pod_uid: String,
    /// Why this one.
    kind: RestartKind,
}

/// Deletes the broker's pod, counts the restart, publishes an Event on the pod and records the
/// restart in `status.roll`.
async fn restart_broker(
    ctx: &Context,
    o: &RollObserved<'_>,
    progress: Progress,
    restart: Restart,
) -> Result<RollOutcome> {
    let ns = o.names.namespace.as_str();
    let cluster = o.names.cluster.as_str();
    let Restart {
        broker,
        incarnation,
        pod_uid,
        kind,
    } = restart;
    delete_pod(ctx, o.names, broker, &pod_uid).await?;
    let Progress {
        revision,
        updated,
        mut pending,
    } = progress;
    pending.retain(|id| *id != broker);
    ctx.metrics
        .broker_restarted(ns, cluster, restart_kind_label(kind));
    ctx.metrics.set_roll(ns, cluster, pending.len(), &[]);
    let message = restart_message(broker, &revision, kind, pending.len());
    let pod = pod_reference(o.names, broker, &pod_uid);
    ctx.event_related(
        &o.cluster.object_ref(&()),
        Some(pod),
        "RestartingBroker",
        message.clone(),
        false,
    )
    .await;
    Ok(RollOutcome {
        roll: Some(RollStatus {
            revision,
            updated,
            pending,
            restarting: Some(RestartedBroker {
                id: broker,
                pod_uid,
                incarnation,
            }),
            waiting_for: None,
        }),
        rolling: true,
        condition: Some((true, "RestartingBroker", message)),
    })
}

/// The `kind` label of the broker-restarts metric.
fn restart_kind_label(kind: RestartKind) -> &'static str {
    match kind {
        RestartKind::Stuck => "stuck",
        RestartKind::Outdated => "outdated",
    }
}

/// The condition message and Event note of a restart: which broker, why, and how many remain.
fn restart_message(broker: i32, revision: &str, kind: RestartKind, remaining: usize) -> String {
    let why = match kind {
        RestartKind::Stuck => "it is neither Ready nor renewing its Lease",
        RestartKind::Outdated => {
            "no partition it is in sync for would fall below min.insync.replicas"
        }
    };
    format!(
        "restarting broker {broker} to roll it to StatefulSet revision {revision} ({why}); {remaining} more to go"
    )
}

/// The restarted broker's pod, as the Event's related object.
fn pod_reference(names: &Names, broker: i32, pod_uid: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        name: Some(names.broker_pod(broker)),
        namespace: Some(names.namespace.clone()),
        uid: Some(pod_uid.to_owned()),
        ..ObjectReference::default()
    }
}

/// No broker may restart now: records why in metrics and `status.roll`, and warns with an
/// Event when the most telling reason is new and not routine.
async fn wait(
    ctx: &Context,
    o: &RollObserved<'_>,
    progress: Progress,
    restarting: Option<RestartedBroker>,
    blockers: &[Blocker],
) -> RollOutcome {
    let reasons: Vec<&str> = blockers.iter().map(Blocker::reason).collect();
    ctx.metrics.set_roll(
        &o.names.namespace,
        &o.names.cluster,
        progress.pending.len(),
        &reasons,
    );
    let message = blockers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let reason = telling_reason(blockers);
    let routine = blockers.iter().all(Blocker::is_routine);
    if !routine && rolling_update_reason(o.cluster).as_deref() != Some(reason) {
        let revision = &progress.revision;
        let note = format!("rolling update to revision {revision} waits: {message}");
        ctx.event(&o.cluster.object_ref(&()), "RollBlocked", note, true)
            .await;
    }
    RollOutcome {
        roll: Some(RollStatus {
            revision: progress.revision,
            updated: progress.updated,
            pending: progress.pending,
            restarting,
            waiting_for: Some(message.clone()),
        }),
        rolling: true,
        condition: Some((true, reason, message)),
    }
}

/// The most telling reason to wait: min ISR (the rule a user may have to act on), else the
/// first held up by the cluster's state, else the restart in progress.
fn telling_reason(blockers: &[Blocker]) -> &'static str {
    blockers
        .iter()
        .find(|b| matches!(b, Blocker::MinIsr { .. }))
        .or_else(|| blockers.iter().find(|b| !b.is_routine()))
        .or(blockers.first())
        .map_or("Waiting", Blocker::reason)
}

/// `status.roll` as the API server holds it now. The reconciled object comes from the
/// controller's cache, which may not show the previous reconcile's write yet: deciding from it
/// would forget the broker just restarted and write that forgetting back.
async fn recorded_roll(ctx: &Context, names: &Names) -> Result<Option<RollStatus>> {
    let ns = names.namespace.as_str();
    let cluster = Api::<KafkaCluster>::namespaced(ctx.client.clone(), ns)
        .get_opt(&names.cluster)
        .await
        .map_err(|e| Error::kube(format!("get KafkaCluster {ns}/{}", names.cluster), e))?;
    Ok(cluster.and_then(|c| c.status?.roll))
}

/// Deletes broker `id`'s pod if it is still the one with `uid` (in the background: foreground
/// deletion has cut networking mid-shutdown elsewhere, Strimzi #12212). Gone already is fine.
async fn delete_pod(ctx: &Context, names: &Names, id: i32, uid: &str) -> Result<()> {
    let ns = names.namespace.as_str();
    let name = names.broker_pod(id);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    match pods.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(format!("delete pod {ns}/{name} to roll it"), e)),
    }
}

/// Each registered broker's incarnation, from its Lease.
async fn incarnations(ctx: &Context, ns: &str, cluster: &str) -> Result<BTreeMap<i32, i64>> {
    let leases = Api::<Lease>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("list leases in {ns}"), e))?;
    Ok(leases
        .items
        .iter()
        .filter_map(|l| Registration::from_lease(cluster, l))
        .map(|r| (r.id, r.incarnation))
        .collect())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_state(pod: Option<&Pod>) -> PodState {
    let Some(pod) = pod else {
        return PodState::Missing;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return PodState::Terminating;
    }
    PodState::Present {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        revision: pod
            .labels()
            .get(REVISION_LABEL)
            .cloned()
            .unwrap_or_default(),
        ready: pod_ready(pod),
    }
}

fn broker_states(
    o: &RollObserved<'_>,
    incarnations: &BTreeMap<i32, i64>,
    live: Option<&BTreeSet<i32>>,
) -> Vec<BrokerState> {
    let pods: BTreeMap<String, &Pod> = o.pods.iter().map(|p| (p.name_any(), p)).collect();
    (0..o.replicas)
        .map(|id| BrokerState {
            id,
            pod: pod_state(pods.get(&o.names.broker_pod(id)).copied()),
            incarnation: incarnations.get(&id).copied(),
            live: live.map(|l| l.contains(&id)),
        })
        .collect()
}

/// The partitions with a status (the others have no leader or ISR to protect yet), each with
/// its topic's min ISR.
fn partition_states(
    cluster: &KafkaCluster,
    topics: &[KafkaTopic],
    partitions: &[KafkaPartition],
) -> Vec<PartitionState> {
    let by_name: BTreeMap<&str, &KafkaTopic> = topics.iter().map(|t| (t.kafka_name(), t)).collect();
    partitions
        .iter()
        .filter_map(|p| {
            let status = p.status.as_ref()?;
            let topic = by_name.get(p.spec.topic.as_str());
            Some(PartitionState {
                name: p.name_any(),
                replicas: p.spec.replicas.clone(),
                isr: status.isr.clone(),
                min_isr: min_insync_replicas(
                    topic
                        .and_then(|t| t.status.as_ref())
                        .map(|s| &s.effective_config),
                    topic.map(|t| &t.spec.config),
                    &cluster.spec.config,
                ),
            })
        })
        .collect()
}
