//! The ReplicaSet controller: keeps `spec.replicas` active pods from the template (created
//! with `generateName`, controlled by the ReplicaSet), deletes the surplus in the real
//! controller's order (unscheduled, then pending, then not ready, then the youngest), and
//! reports replica, ready and available counts. Orphaned pods matching the selector are not
//! adopted.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::meta::{self, active, available, controlled_by, owner_ref, ready};
use super::{events, logged, Snapshot};

/// The reason of a refused pod creation, in the event and the ReplicaFailure condition.
const FAILED_CREATE: &str = "FailedCreate";

/// Pod creations per ReplicaSet and pass (the real controller's slow-start batches).
const BURST: i32 = 50;

/// One pass over every ReplicaSet.
pub(crate) async fn sync(client: &Client, snap: &Snapshot) {
    for rs in &snap.replica_sets {
        if meta::terminating(&rs.metadata) {
            continue;
        }
        sync_one(client, snap, rs).await;
    }
}

/// The pods `rs` controls.
pub(crate) fn pods_of<'a>(snap: &'a Snapshot, rs: &ReplicaSet) -> Vec<&'a Pod> {
    let ns = meta::namespace(&rs.metadata);
    let uid = meta::uid(&rs.metadata);
    snap.pods
        .iter()
        .filter(|p| meta::namespace(&p.metadata) == ns && controlled_by(&p.metadata, uid))
        .collect()
}

/// The ReplicaSet's conditions after a pass: `ReplicaFailure` (reason FailedCreate) set while
/// pods cannot be created, removed once a pass creates what it needs.
fn replica_failure(rs: &ReplicaSet, failure: Option<String>) -> Option<Vec<ReplicaSetCondition>> {
    let mut conditions = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let had = conditions
        .iter()
        .position(|c| c.type_.as_deref() == Some("ReplicaFailure"));
    match (failure, had) {
        (Some(message), Some(i)) => {
            conditions[i].message = Some(message);
        }
        (Some(message), None) => conditions.push(ReplicaSetCondition {
            type_: Some("ReplicaFailure".to_owned()),
            status: Some("True".to_owned()),
            reason: Some(FAILED_CREATE.to_owned()),
            message: Some(message),
            last_transition_time: Some(Time(Timestamp::now())),
        }),
        (None, Some(i)) => {
            conditions.remove(i);
        }
        (None, None) => {}
    }
    let had_list = rs.status.as_ref().is_some_and(|s| s.conditions.is_some());
    (had_list || !conditions.is_empty()).then_some(conditions)
}

/// The status a pass leaves: the ReplicaSet's active pods less those the pass `deleted`. A
/// deleted pod is no longer a replica, and counting it as available would let the Deployment
/// controller scale old ReplicaSets below maxUnavailable on its next pass.
fn counted_status(
    rs: &ReplicaSet,
    pods: &[&Pod],
    deleted: &BTreeSet<&str>,
    now: Timestamp,
    conditions: Option<Vec<ReplicaSetCondition>>,
) -> ReplicaSetStatus {
    let spec = &rs.spec;
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let live: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| active(p) && !deleted.contains(meta::name(&p.metadata)))
        .collect();
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(live.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })),
        ready_replicas: Some(count(&ready)),
        available_replicas: Some(count(&|p| available(p, min_ready, now))),
        observed_generation: rs.metadata.generation,
        conditions,
        terminating_replicas: rs.status.as_ref().and_then(|s| s.terminating_replicas),
    }
}

/// Deletion preference: lower goes first.
fn deletion_rank(pod: &Pod) -> (u8, u8, u8, std::cmp::Reverse<i64>) {
    let unscheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_none_or(str::is_empty);
    let phase = match meta::phase(pod) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_second());
    (
        u8::from(!unscheduled),
        phase,
        u8::from(ready(pod)),
        std::cmp::Reverse(created),
    )
}

async fn sync_one(client: &Client, snap: &Snapshot, rs: &ReplicaSet) {
    let ns = meta::namespace(&rs.metadata);
    let name = meta::name(&rs.metadata);
    let spec = &rs.spec;
    let want = spec.replicas.unwrap_or(1);
    let pods = pods_of(snap, rs);
    let mut live: Vec<&Pod> = pods.iter().copied().filter(|p| active(p)).collect();
    let have = i32::try_from(live.len()).unwrap_or(i32::MAX);
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut failure = None;
    let mut deleted = BTreeSet::new();
    if have < want {
        let Some(template) = spec.template.as_ref() else {
            return;
        };
        let template_meta = template.metadata.clone().unwrap_or_default();
        for _ in 0..(want - have).min(BURST) {
            let pod = Pod {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{name}-")),
                    namespace: Some(ns.to_owned()),
                    labels: template_meta.labels.clone(),
                    annotations: template_meta.annotations.clone(),
                    owner_references: owner_ref(rs, true).map(|r| vec![r]),
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            };
            match api.create(&PostParams::default(), &pod).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => break,
                Err(e) => {
                    // As the real controller: an event, and the ReplicaFailure condition.
                    let message = format!("Error creating: {}", events::refusal(&e));
                    events::warn(
                        client,
                        rs,
                        "replicaset-controller",
                        FAILED_CREATE,
                        message.clone(),
                    )
                    .await;
                    failure = Some(message);
                    break;
                }
            }
        }
    } else if have > want {
        live.sort_by_key(|p| deletion_rank(p));
        let surplus = usize::try_from(have - want).unwrap_or(0);
        for pod in live.iter().take(surplus) {
            let pod_name = meta::name(&pod.metadata);
            if logged(
                &format!("delete pod {ns}/{pod_name}"),
                api.delete(pod_name, &DeleteParams::default()).await,
            )
            .is_some()
            {
                deleted.insert(pod_name);
            }
        }
    }
    let status = counted_status(rs, &pods, &deleted, snap.now, replica_failure(rs, failure));
    if rs.status.as_ref() != Some(&status) {
        let mut updated = rs.clone();
        updated.status = Some(status);
        let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        logged(
            &format!("status of ReplicaSet {ns}/{name}"),
            rs_api
                .replace_status(name, &PostParams::default(), &updated)
                .await,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool) -> Pod {
        let status = if ready { "True" } else { "False" };
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn a_pod_the_pass_deleted_is_neither_a_replica_nor_available() {
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "generation": 2},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}}}
        }))
        .unwrap_or_default();
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        let pods: Vec<&Pod> = pods.iter().collect();
        let none = BTreeSet::new();
        let before = counted_status(&rs, &pods, &none, Timestamp::now(), None);
        assert_eq!(
            (
                before.replicas,
                before.ready_replicas,
                before.available_replicas
            ),
            (3, Some(2), Some(2))
        );
        let deleted = BTreeSet::from(["a"]);
        let after = counted_status(&rs, &pods, &deleted, Timestamp::now(), None);
        assert_eq!(
            (
                after.replicas,
                after.ready_replicas,
                after.available_replicas
            ),
            (2, Some(1), Some(1))
        );
        assert_eq!(after.fully_labeled_replicas, Some(2));
        assert_eq!(after.observed_generation, Some(2));
    }

    #[test]
    fn the_replica_failure_condition_comes_and_goes_without_touching_an_empty_list() {
        let mut rs = ReplicaSet::default();
        assert_eq!(replica_failure(&rs, None), None);
        let failed = replica_failure(&rs, Some("Error creating: forbidden".to_owned()));
        let condition = failed.as_ref().and_then(|c| c.first()).cloned();
        assert_eq!(
            condition.as_ref().and_then(|c| c.reason.as_deref()),
            Some(FAILED_CREATE)
        );
        rs.status = Some(ReplicaSetStatus {
            conditions: failed,
            ..ReplicaSetStatus::default()
        });
        assert_eq!(replica_failure(&rs, None), Some(Vec::new()));
        rs.status = Some(ReplicaSetStatus::default());
        assert_eq!(replica_failure(&rs, None), None);
    }
}
