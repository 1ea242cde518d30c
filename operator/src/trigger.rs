//! Which watch events wake a reconcile. A controller that maps every event of a related
//! object onto its own objects does work that grows with the cluster on every renewal and
//! status write: a KafkaCluster status write re-ran every topic's reconcile, a broker Lease
//! renewal every cluster reconcile. A [`ChangeFilter`] passes an event on only when the part
//! of the object the reconcile reads has changed since the last event of that object; the
//! `*_inputs` functions name those parts.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tributary_crds::{KafkaCluster, KafkaPartition};

/// Remembers, per object, a hash of the part a reconcile reads, and says whether an event
/// changed it. The first event of an object always passes, so a restarted watch (which
/// starts with every object) wakes nothing that has not changed since.
#[derive(Default)]
pub struct ChangeFilter {
    seen: Mutex<HashMap<String, u64>>,
}

impl ChangeFilter {
    /// True when `inputs` of `obj` differ from what its previous event carried (or there was
    /// none). Objects are told apart by namespace, name and uid, so a recreated object is new.
    pub fn changed<K: Resource>(&self, obj: &K, inputs: &serde_json::Value) -> bool {
        let key = format!(
            "{}/{}/{}",
            obj.namespace().unwrap_or_default(),
            obj.name_any(),
            obj.uid().unwrap_or_default()
        );
        let mut hasher = DefaultHasher::new();
        inputs.to_string().hash(&mut hasher);
        let hash = hasher.finish();
        // A poisoned lock only means another mapper panicked mid-insert; the map is still a
        // valid cache, and passing the event on is always safe.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(key, hash) != Some(hash)
    }
}

/// What a topic's placement reads of its cluster: the broker count and each broker's rack,
/// and whether the cluster is being deleted. Status writes of counts and conditions, which
/// every topic creation makes, leave it unchanged.
pub fn cluster_placement_inputs(cluster: &KafkaCluster) -> serde_json::Value {
    let racks: Vec<_> = cluster
        .status
        .iter()
        .flat_map(|s| s.brokers.iter())
        .map(|b| json!([b.id, b.rack]))
        .collect();
    json!({
        "brokers": cluster.spec.brokers,
        "racks": racks,
        "deleting": cluster.metadata.deletion_timestamp.is_some(),
    })
}

/// What a cluster reconcile reads of a broker's Lease: its registration (annotations and
/// labels), who holds it and since when, and its duration. Renewals (`renewTime`) are left
/// out: liveness is the controller role's judgement, which wakes the cluster reconcile itself
/// when it changes.
pub fn lease_registration_inputs(lease: &Lease) -> serde_json::Value {
    let spec = lease.spec.as_ref();
    json!({
        "annotations": lease.metadata.annotations,
        "labels": lease.metadata.labels,
        "holder": spec.and_then(|s| s.holder_identity.as_ref()),
        "acquired": spec.and_then(|s| s.acquire_time.as_ref()),
        "duration": spec.and_then(|s| s.lease_duration_seconds),
        "deleting": lease.metadata.deletion_timestamp.is_some(),
    })
}

/// What a cluster reconcile reads of a KafkaPartition: its assignment (a reassignment starts
/// or completes), its ISR (a moved replica catches up) and its annotations (requests to the
/// controller). Leader changes alone wake nothing here.
pub fn partition_assignment_inputs(partition: &KafkaPartition) -> serde_json::Value {
    json!({
        "spec": partition.spec,
        "isr": partition.status.as_ref().map(|s| &s.isr),
        "annotations": partition.metadata.annotations,
        "deleting": partition.metadata.deletion_timestamp.is_some(),
    })
}

#[cfg(test)]
mod tests;
