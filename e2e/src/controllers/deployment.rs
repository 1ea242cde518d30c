//! The Deployment controller: one ReplicaSet per pod template (`<name>-<pod-template-hash>`,
//! the hash also in its selector and pod labels), rolled out by the strategy (Recreate, or
//! RollingUpdate within maxSurge and maxUnavailable), revision annotations
//! (`deployment.kubernetes.io/revision`; a ReplicaSet whose template the Deployment has again,
//! after `kubectl rollout undo`, becomes the newest revision with its former ones in
//! `deployment.kubernetes.io/revision-history`; the Deployment's own annotations, such as
//! `kubernetes.io/change-cause`, copied to its newest ReplicaSet), old ReplicaSets pruned past
//! `revisionHistoryLimit`, and the status `kubectl rollout status` and helm's readiness
//! checks read: observedGeneration, replicas, updated/ready/available/unavailable replicas,
//! and the Available and Progressing conditions (NewReplicaSetCreated, ReplicaSetUpdated,
//! NewReplicaSetAvailable, ProgressDeadlineExceeded).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::meta::{self, controlled_by, owner_ref};
use super::{logged, Snapshot};

/// Label and selector key distinguishing the ReplicaSets of one Deployment.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Annotation with a ReplicaSet's (and its Deployment's current) revision number.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Annotation of a ReplicaSet with the replicas its Deployment asked for when it was made.
const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";

/// Annotation of a ReplicaSet rolled back to, with the revisions it had before.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";

/// One pass over every Deployment.
pub(crate) async fn sync(client: &Client, snap: &Snapshot) {
    for d in &snap.deployments {
        if !meta::terminating(&d.metadata) {
            sync_one(client, snap, d).await;
        }
    }
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn status_of(rs: &ReplicaSet, f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32) -> i32 {
    rs.status.as_ref().map_or(0, f)
}

fn available_of(rs: &ReplicaSet) -> i32 {
    status_of(rs, |s| s.available_replicas.unwrap_or(0))
}

/// The annotations a ReplicaSet whose template the Deployment has again (after `kubectl
/// rollout undo`) gets, as the real controller's `SetNewReplicaSetAnnotations` gives them:
/// the revision after every other ReplicaSet's, and its former revision appended to its
/// revision history. None while it already is the newest.
fn promoted(new: &ReplicaSet, old: &[&ReplicaSet]) -> Option<BTreeMap<String, String>> {
    let next = old.iter().map(|r| revision(r)).max().unwrap_or(0) + 1;
    let current = revision(new);
    if current >= next {
        return None;
    }
    let mut annotations = BTreeMap::from([(REVISION_ANNOTATION.to_owned(), next.to_string())]);
    if current > 0 {
        let before = new
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_HISTORY_ANNOTATION))
            .filter(|h| !h.is_empty());
        let history = match before {
            Some(h) => format!("{h},{current}"),
            None => current.to_string(),
        };
        annotations.insert(REVISION_HISTORY_ANNOTATION.to_owned(), history);
    }
    Some(annotations)
}

/// The Deployment's annotations its newest ReplicaSet carries too (`kubernetes.io/change-cause`,
/// which `kubectl rollout history` prints, among them): all but the controller's own and
/// kubectl's last-applied configuration, as the real controller's
/// `copyDeploymentAnnotationsToReplicaSet` copies them.
fn copied_annotations(d: &Deployment) -> BTreeMap<String, String> {
    const SKIPPED: [&str; 6] = [
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    ];
    let all = d.metadata.annotations.iter().flatten();
    all.filter(|(k, _)| !SKIPPED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The annotations of the newest ReplicaSet `new` to change: the Deployment's it lacks or
/// holds otherwise, and its revision when rolled back to ([`promoted`]).
fn new_annotations(
    d: &Deployment,
    new: &ReplicaSet,
    old: &[&ReplicaSet],
) -> BTreeMap<String, String> {
    let held = new.metadata.annotations.as_ref();
    let mut changed: BTreeMap<String, String> = copied_annotations(d)
        .into_iter()
        .filter(|(k, v)| held.and_then(|a| a.get(k)) != Some(v))
        .collect();
    changed.extend(promoted(new, old).unwrap_or_default());
    changed
}

/// The rollout step: new spec.replicas per ReplicaSet name, when they change.
struct Plan {
    scale: BTreeMap<String, i32>,
}

impl Plan {
    fn set(&mut self, rs: &ReplicaSet, replicas: i32) {
        if spec_replicas(rs) != replicas {
            self.scale
                .insert(meta::name(&rs.metadata).to_owned(), replicas);
        }
    }
}

/// How the ReplicaSets of a Deployment should be scaled now (the real controller's
/// `rolloutRolling` / `rolloutRecreate` and scaling rules).
fn plan(d: &Deployment, new: &ReplicaSet, old: &[&ReplicaSet]) -> Plan {
    let mut plan = Plan {
        scale: BTreeMap::new(),
    };
    let spec = &d.spec;
    let replicas = spec.replicas.unwrap_or(1);
    let strategy = spec.strategy.as_ref();
    let old_spec: i32 = old.iter().map(|r| spec_replicas(r)).sum();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        if old_spec > 0 {
            for rs in old {
                plan.set(rs, 0);
            }
        } else if old.iter().all(|r| status_of(r, |s| s.replicas) == 0) {
            plan.set(new, replicas);
        }
        return plan;
    }
    if old_spec == 0 {
        plan.set(new, replicas);
        return plan;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let surge = meta::scaled(
        rolling.and_then(|r| r.max_surge.as_ref()),
        replicas,
        "25%",
        true,
    );
    let mut unavailable = meta::scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let new_spec = spec_replicas(new);
    if new_spec > replicas {
        plan.set(new, replicas);
        return plan;
    }
    let all_spec = old_spec + new_spec;
    let max_total = replicas + surge;
    if new_spec < replicas && all_spec < max_total {
        plan.set(new, (new_spec + max_total - all_spec).min(replicas));
        return plan;
    }
    // Scale old ReplicaSets down as far as availability allows: unhealthy replicas first.
    let min_available = replicas - unavailable;
    let new_unavailable = new_spec - available_of(new);
    let mut budget = all_spec - min_available - new_unavailable;
    if budget <= 0 {
        return plan;
    }
    let mut sorted: Vec<&ReplicaSet> = old.to_vec();
    sorted.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let mut target: BTreeMap<String, i32> = sorted
        .iter()
        .map(|r| (meta::name(&r.metadata).to_owned(), spec_replicas(r)))
        .collect();
    for rs in &sorted {
        let name = meta::name(&rs.metadata);
        let current = target.get(name).copied().unwrap_or(0);
        let unhealthy = (current - available_of(rs)).max(0).min(budget);
        if unhealthy > 0 {
            target.insert(name.to_owned(), current - unhealthy);
            budget -= unhealthy;
        }
    }
    let all_available: i32 = old.iter().map(|r| available_of(r)).sum::<i32>() + available_of(new);
    let mut healthy_budget = all_available - min_available;
    for rs in &sorted {
        if healthy_budget <= 0 {
            break;
        }
        let name = meta::name(&rs.metadata);
        let current = target.get(name).copied().unwrap_or(0);
        let down = current.min(healthy_budget);
        target.insert(name.to_owned(), current - down);
        healthy_budget -= down;
    }
    for rs in sorted {
        if let Some(n) = target.get(meta::name(&rs.metadata)) {
            plan.set(rs, *n);
        }
    }
    plan
}

async fn sync_one(client: &Client, snap: &Snapshot, d: &Deployment) {
    let ns = meta::namespace(&d.metadata);
    let name = meta::name(&d.metadata);
    let uid = meta::uid(&d.metadata);
    let spec = &d.spec;
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let owned: Vec<&ReplicaSet> = snap
        .replica_sets
        .iter()
        .filter(|r| meta::namespace(&r.metadata) == ns && controlled_by(&r.metadata, uid))
        .collect();
    let hash = meta::hash(&spec.template);
    let new = owned.iter().copied().find(|r| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(TEMPLATE_HASH_LABEL))
            == Some(&hash)
    });
    let old: Vec<&ReplicaSet> = owned
        .iter()
        .copied()
        .filter(|r| new.is_none_or(|n| n.metadata.uid != r.metadata.uid))
        .collect();
    let paused = spec.paused == Some(true);
    let Some(new) = new else {
        if paused {
            // As kube-controller-manager: a paused Deployment's change makes no ReplicaSet,
            // yet its status says the change was observed, and that it is paused.
            write_status(client, snap, d, None, &owned).await;
        } else {
            create_replica_set(client, d, &hash, &old).await;
        }
        return;
    };
    let mut rev = revision(new).to_string();
    let annotations = new_annotations(d, new, &old);
    if !annotations.is_empty() {
        let rs_name = meta::name(&new.metadata);
        let patch = json!({"metadata": {"annotations": annotations}});
        let written = rs_api
            .patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        if logged(
            &format!("annotations of ReplicaSet {ns}/{rs_name}"),
            written,
        )
        .is_none()
        {
            return;
        }
        if let Some(promoted) = annotations.get(REVISION_ANNOTATION) {
            rev.clone_from(promoted);
        }
    }
    if !paused {
        let plan = plan(d, new, &old);
        for (rs_name, replicas) in &plan.scale {
            let patch = json!({"spec": {"replicas": replicas}});
            logged(
                &format!("scale ReplicaSet {ns}/{rs_name}"),
                rs_api
                    .patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await,
            );
        }
        prune_history(&rs_api, spec.revision_history_limit.unwrap_or(10), &old).await;
    }
    let current_rev = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION));
    if current_rev != Some(&rev) {
        let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: rev}}});
        logged(
            &format!("revision of Deployment {ns}/{name}"),
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await,
        );
    }
    write_status(client, snap, d, Some(new), &owned).await;
}

async fn create_replica_set(client: &Client, d: &Deployment, hash: &str, old: &[&ReplicaSet]) {
    let ns = meta::namespace(&d.metadata);
    let name = meta::name(&d.metadata);
    let spec = &d.spec;
    let replicas = spec.replicas.unwrap_or(1);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let old_spec: i32 = old.iter().map(|r| spec_replicas(r)).sum();
    let initial = if old_spec == 0 {
        replicas
    } else if recreate {
        0
    } else {
        let surge = meta::scaled(
            spec.strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_surge.as_ref()),
            replicas,
            "25%",
            true,
        );
        (replicas + surge - old_spec).clamp(0, replicas)
    };
    let mut template = spec.template.clone();
    let mut template_meta = template.metadata.take().unwrap_or_default();
    template_meta
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_HASH_LABEL.to_owned(), hash.to_owned());
    let labels = template_meta.labels.clone();
    template.metadata = Some(template_meta);
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_HASH_LABEL.to_owned(), hash.to_owned());
    let next_revision = old.iter().map(|r| revision(r)).max().unwrap_or(0) + 1;
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: Some(ns.to_owned()),
            labels,
            annotations: Some(
                copied_annotations(d)
                    .into_iter()
                    .chain([
                        (REVISION_ANNOTATION.to_owned(), next_revision.to_string()),
                        (DESIRED_REPLICAS_ANNOTATION.to_owned(), replicas.to_string()),
                    ])
                    .collect(),
            ),
            owner_references: owner_ref(d, true).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(initial),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    };
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    logged(
        &format!("create the ReplicaSet of Deployment {ns}/{name}"),
        api.create(&PostParams::default(), &rs).await,
    );
}

/// Deletes scaled-down old ReplicaSets beyond the history limit, oldest revisions first.
async fn prune_history(api: &Api<ReplicaSet>, limit: i32, old: &[&ReplicaSet]) {
    let mut idle: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|r| spec_replicas(r) == 0 && status_of(r, |s| s.replicas) == 0)
        .filter(|r| !meta::terminating(&r.metadata))
        .collect();
    let keep = usize::try_from(limit).unwrap_or(0);
    if idle.len() <= keep {
        return;
    }
    idle.sort_by_key(|r| revision(r));
    for rs in &idle[..idle.len() - keep] {
        let name = meta::name(&rs.metadata);
        logged(
            &format!("prune ReplicaSet {name}"),
            api.delete(name, &DeleteParams::default()).await,
        );
    }
}

/// A condition with the times kept when nothing but the update time changes.
fn condition(
    old: Option<&DeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &Time,
    progressed: bool,
) -> DeploymentCondition {
    let status = status.to_owned();
    let same = old.is_some_and(|o| {
        o.status.as_deref() == Some(status.as_str()) && o.reason.as_deref() == Some(reason)
    });
    let transition = old
        .filter(|o| o.status.as_deref() == Some(status.as_str()))
        .and_then(|o| o.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    let update = match old.and_then(|o| o.last_update_time.clone()) {
        Some(t) if same && !progressed => t,
        _ => now.clone(),
    };
    DeploymentCondition {
        type_: Some(type_.to_owned()),
        status: Some(status),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: Some(transition),
        last_update_time: Some(update),
    }
}

/// Writes the Deployment's status when it changed (only then, so an idle pass costs nothing
/// and does not bump the resourceVersion that watchers see).
async fn write_status(
    client: &Client,
    snap: &Snapshot,
    d: &Deployment,
    new: Option<&ReplicaSet>,
    owned: &[&ReplicaSet],
) {
    let status = desired_status(d, new, owned, snap.now);
    if d.status.as_ref() == Some(&status) {
        return;
    }
    let ns = meta::namespace(&d.metadata);
    let name = meta::name(&d.metadata);
    let mut updated_d = d.clone();
    updated_d.status = Some(status);
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    logged(
        &format!("status of Deployment {ns}/{name}"),
        api.replace_status(name, &PostParams::default(), &updated_d)
            .await,
    );
}

/// The status `kubectl rollout status` and helm read: the replica counts of every owned
/// ReplicaSet, and the Available and Progressing conditions derived from them.
fn desired_status(
    d: &Deployment,
    new: Option<&ReplicaSet>,
    owned: &[&ReplicaSet],
    now: Timestamp,
) -> DeploymentStatus {
    let old_status = d.status.clone().unwrap_or_default();
    let mut status = counted_status(d, new, owned);
    let progressed = counts_changed(&status, &old_status);
    let old_conditions = old_status.conditions.unwrap_or_default();
    let find = |t: &str| {
        old_conditions
            .iter()
            .find(|c| c.type_.as_deref() == Some(t))
    };
    let now_time = Time(now);
    let available = available_condition(
        find("Available"),
        has_minimum_availability(d, status.available_replicas.unwrap_or(0)),
        &now_time,
    );
    let previous = find("Progressing");
    let rollout = rollout_state(
        rollout_complete(d, new, owned),
        progressed,
        stalled(d, previous, now),
        d.spec.paused == Some(true),
    );
    let progressing = progressing_condition(
        previous,
        rollout,
        progressed,
        new.map_or("", |n| meta::name(&n.metadata)),
        &now_time,
    );
    status.conditions = Some(vec![available, progressing]);
    status
}

/// The replica counts summed over every owned ReplicaSet (old ones too, as their pods still
/// serve), without conditions; fields this controller does not count are kept as they were.
fn counted_status(
    d: &Deployment,
    new: Option<&ReplicaSet>,
    owned: &[&ReplicaSet],
) -> DeploymentStatus {
    let old_status = d.status.as_ref();
    let sum = |f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32| -> i32 {
        owned.iter().map(|r| status_of(r, f)).sum()
    };
    let total_spec: i32 = owned.iter().map(|r| spec_replicas(r)).sum();
    let available = sum(|s| s.available_replicas.unwrap_or(0));
    DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(|s| s.replicas)),
        updated_replicas: Some(new.map_or(0, |n| status_of(n, |s| s.replicas))),
        ready_replicas: Some(sum(|s| s.ready_replicas.unwrap_or(0))),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        collision_count: old_status.and_then(|s| s.collision_count),
        terminating_replicas: old_status.and_then(|s| s.terminating_replicas),
        conditions: None,
    }
}

/// Whether any count the rollout makes progress on changed; progress refreshes the
/// Progressing condition's update time, which the progress deadline is measured from.
fn counts_changed(status: &DeploymentStatus, old: &DeploymentStatus) -> bool {
    status.replicas != old.replicas
        || status.updated_replicas != old.updated_replicas
        || status.ready_replicas != old.ready_replicas
        || status.available_replicas != old.available_replicas
}

/// Whether enough replicas are available for the strategy: Recreate allows none missing,
/// RollingUpdate its maxUnavailable (default 25%, rounded down).
fn has_minimum_availability(d: &Deployment, available: i32) -> bool {
    let spec = &d.spec;
    let replicas = spec.replicas.unwrap_or(1);
    let unavailable_allowed =
        if spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate") {
            0
        } else {
            meta::scaled(
                spec.strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref())
                    .and_then(|r| r.max_unavailable.as_ref()),
                replicas,
                "25%",
                false,
            )
        };
    available >= replicas - unavailable_allowed
}

/// Whether the rollout is done: the new ReplicaSet has every replica, all available, and no
/// old pod is left.
fn rollout_complete(d: &Deployment, new: Option<&ReplicaSet>, owned: &[&ReplicaSet]) -> bool {
    let Some(new) = new else {
        return false;
    };
    let replicas = d.spec.replicas.unwrap_or(1);
    let old_pods: i32 = owned
        .iter()
        .filter(|r| r.metadata.uid != new.metadata.uid)
        .map(|r| status_of(r, |s| s.replicas))
        .sum();
    status_of(new, |s| s.replicas) == replicas
        && spec_replicas(new) == replicas
        && available_of(new) == replicas
        && old_pods == 0
}

/// Whether the rollout made no progress for longer than `progressDeadlineSeconds` (default
/// 600), counted from the Progressing condition's last update.
fn stalled(d: &Deployment, previous: Option<&DeploymentCondition>, now: Timestamp) -> bool {
    let deadline = i64::from(d.spec.progress_deadline_seconds.unwrap_or(600));
    previous
        .and_then(|c| c.last_update_time.as_ref())
        .is_some_and(|t| now.as_second() - t.0.as_second() > deadline)
}

/// Where a rollout stands, as the Progressing condition reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rollout {
    Complete,
    Progressing,
    TimedOut,
    Paused,
}

/// The rollout's state: a paused one is reported paused and never times out, as in the real
/// controller, so only a rollout stuck past its deadline is reported as failed.
fn rollout_state(complete: bool, progressed: bool, stalled: bool, paused: bool) -> Rollout {
    if paused {
        Rollout::Paused
    } else if complete {
        Rollout::Complete
    } else if progressed || !stalled {
        Rollout::Progressing
    } else {
        Rollout::TimedOut
    }
}

/// The Available condition, with the reasons and messages the real controller writes.
fn available_condition(
    previous: Option<&DeploymentCondition>,
    minimum: bool,
    now: &Time,
) -> DeploymentCondition {
    let (reason, message) = if minimum {
        (
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    condition(
        previous,
        "Available",
        if minimum { "True" } else { "False" },
        reason,
        message.to_owned(),
        now,
        false,
    )
}

/// The Progressing condition for `rollout`, with the real controller's reasons and messages
/// (tools match on `NewReplicaSetAvailable` and `ProgressDeadlineExceeded`); `progressed`
/// refreshes its update time.
fn progressing_condition(
    previous: Option<&DeploymentCondition>,
    rollout: Rollout,
    progressed: bool,
    new_name: &str,
    now: &Time,
) -> DeploymentCondition {
    let (status, reason, message) = match rollout {
        Rollout::Complete => (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet {new_name:?} has successfully progressed."),
        ),
        Rollout::Progressing if previous.is_none() => (
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set {new_name:?}"),
        ),
        Rollout::Progressing => (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet {new_name:?} is progressing."),
        ),
        Rollout::TimedOut => (
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet {new_name:?} has timed out progressing."),
        ),
        Rollout::Paused => (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".to_owned(),
        ),
    };
    condition(
        previous,
        "Progressing",
        status,
        reason,
        message,
        now,
        progressed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(spec: serde_json::Value) -> Deployment {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
        )
        .expect("deployment")
    }

    fn replica_set(revision: &str, history: Option<&str>) -> ReplicaSet {
        let mut annotations = json!({REVISION_ANNOTATION: revision});
        if let Some(h) = history {
            annotations[REVISION_HISTORY_ANNOTATION] = json!(h);
        }
        serde_json::from_value(json!({"metadata": {"annotations": annotations}})).expect("rs")
    }

    #[test]
    fn a_replica_set_rolled_back_to_becomes_the_newest_revision_and_keeps_its_former_ones() {
        let (one, two, three) = (
            replica_set("1", None),
            replica_set("2", None),
            replica_set("3", None),
        );
        // The newest already: nothing to change.
        assert_eq!(promoted(&three, &[&one, &two]), None);
        // `rollout undo` to revision 2 from 3.
        let got = promoted(&two, &[&one, &three]).expect("promoted");
        assert_eq!(got[REVISION_ANNOTATION], "4");
        assert_eq!(got[REVISION_HISTORY_ANNOTATION], "2");
        // Then back to it again from 5: its history grows.
        let four = replica_set("4", Some("2"));
        let five = replica_set("5", None);
        let got = promoted(&four, &[&one, &five]).expect("promoted");
        assert_eq!(got[REVISION_ANNOTATION], "6");
        assert_eq!(got[REVISION_HISTORY_ANNOTATION], "2,4");
    }

    #[test]
    fn the_newest_replica_set_gets_the_deployments_own_annotations_but_not_the_controllers() {
        let mut d = deployment(json!({"selector": {}, "template": {}}));
        d.metadata.annotations = Some(BTreeMap::from([
            ("kubernetes.io/change-cause".into(), "image 2".into()),
            ("team".into(), "web".into()),
            (REVISION_ANNOTATION.into(), "7".into()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{}".into(),
            ),
        ]));
        let mut three = replica_set("3", None);
        if let Some(a) = three.metadata.annotations.as_mut() {
            a.insert("team".into(), "web".into());
        }
        let one = replica_set("1", None);
        assert_eq!(
            new_annotations(&d, &three, &[&one]),
            BTreeMap::from([("kubernetes.io/change-cause".into(), "image 2".into())])
        );
        // Rolled back to: the revision too.
        let got = new_annotations(&d, &one, &[&three]);
        assert_eq!(got[REVISION_ANNOTATION], "4");
        assert_eq!(got["kubernetes.io/change-cause"], "image 2");
    }

    #[test]
    fn only_a_stalled_unpaused_rollout_times_out() {
        assert_eq!(rollout_state(true, false, true, false), Rollout::Complete);
        assert_eq!(rollout_state(false, false, true, false), Rollout::TimedOut);
        assert_eq!(
            rollout_state(false, true, true, false),
            Rollout::Progressing
        );
        assert_eq!(rollout_state(false, false, true, true), Rollout::Paused);
        assert_eq!(rollout_state(true, false, false, true), Rollout::Paused);
        assert_eq!(
            rollout_state(false, false, false, false),
            Rollout::Progressing
        );
    }

    #[test]
    fn progressing_reasons_follow_the_rollout() {
        let now = Time(Timestamp::from_second(1_000).expect("time"));
        let first = progressing_condition(None, Rollout::Progressing, true, "web-1", &now);
        assert_eq!(first.reason.as_deref(), Some("NewReplicaSetCreated"));
        let next = progressing_condition(Some(&first), Rollout::Progressing, true, "web-1", &now);
        assert_eq!(next.reason.as_deref(), Some("ReplicaSetUpdated"));
        let stuck = progressing_condition(Some(&next), Rollout::TimedOut, false, "web-1", &now);
        assert_eq!(stuck.status.as_deref(), Some("False"));
        assert_eq!(stuck.reason.as_deref(), Some("ProgressDeadlineExceeded"));
        let paused = progressing_condition(Some(&next), Rollout::Paused, false, "", &now);
        assert_eq!(paused.status.as_deref(), Some("Unknown"));
        assert_eq!(paused.reason.as_deref(), Some("DeploymentPaused"));
    }

    #[test]
    fn recreate_allows_no_replica_unavailable_and_rolling_update_a_quarter() {
        let template = json!({"selector": {}, "template": {}, "replicas": 4});
        let mut recreate = template.clone();
        recreate["strategy"] = json!({"type": "Recreate"});
        assert!(!has_minimum_availability(&deployment(recreate), 3));
        assert!(has_minimum_availability(&deployment(template.clone()), 3));
        assert!(!has_minimum_availability(&deployment(template), 2));
    }

    #[test]
    fn a_rollout_stalls_only_past_its_deadline() {
        let d = deployment(json!({"selector": {}, "template": {}, "progressDeadlineSeconds": 60}));
        let updated = Timestamp::from_second(1_000).expect("time");
        let previous = DeploymentCondition {
            last_update_time: Some(Time(updated)),
            ..DeploymentCondition::default()
        };
        let at = |s| Timestamp::from_second(s).expect("time");
        assert!(!stalled(&d, Some(&previous), at(1_060)));
        assert!(stalled(&d, Some(&previous), at(1_061)));
        assert!(!stalled(&d, None, at(9_999)));
    }
}
