//! The EndpointSlice controller: one slice per Service with a selector (labels
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the
//! Service) listing the selected pods that have an IP, with the ready/serving/terminating
//! conditions (`publishNotReadyAddresses` makes every endpoint ready), hostnames for pods of
//! the Service's subdomain, and the Service's ports resolved against the pods' named
//! container ports. Core v1 Endpoints are not written.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::PostParams;
use kube::{Api, Client};

use super::meta::{self, owner_ref, ready};
use super::{logged, Snapshot};

/// Label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages a slice.
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller, as the real one names itself.
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// One pass over every Service.
pub(crate) async fn sync(client: &Client, snap: &Snapshot) {
    for svc in &snap.services {
        if !meta::terminating(&svc.metadata) {
            sync_one(client, snap, svc).await;
        }
    }
}

/// The container port a Service port's targetPort names on `pod`.
fn target_port(pod: &Pod, target: Option<&IntOrString>, port: i32) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// Makes the Service's slice list what its selector selects now, writing only on a change
/// (a Service without a selector has its endpoints managed by someone else).
async fn sync_one(client: &Client, snap: &Snapshot, svc: &Service) {
    let ns = meta::namespace(&svc.metadata);
    let name = meta::name(&svc.metadata);
    let Some(spec) = svc.spec.as_ref() else {
        return;
    };
    let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        return;
    };
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let pods = selected_pods(snap, ns, selector);
    let endpoints: Vec<Endpoint> = pods
        .iter()
        .map(|p| endpoint(p, ns, name, publish_not_ready))
        .collect();
    let ports = endpoint_ports(spec.ports.iter().flatten(), &pods);
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    match managed_slice(snap, ns, name) {
        Some(slice) if lists_match(slice, &endpoints, &ports) => {}
        Some(slice) => update_slice(&api, slice, endpoints, ports).await,
        None => {
            let slice = new_slice(svc, endpoints, ports);
            logged(
                &format!("create the EndpointSlice of {ns}/{name}"),
                api.create(&PostParams::default(), &slice).await,
            );
        }
    }
}

/// The pods that can take the Service's traffic (selected, not finished, with an IP), sorted
/// by name so that an unchanged set gives an unchanged slice and no write.
fn selected_pods<'a>(
    snap: &'a Snapshot,
    ns: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<&'a Pod> {
    let mut pods: Vec<&Pod> = snap
        .pods
        .iter()
        .filter(|p| meta::namespace(&p.metadata) == ns)
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .filter(|p| !matches!(meta::phase(p), "Succeeded" | "Failed"))
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .is_some()
        })
        .collect();
    pods.sort_by_key(|p| meta::name(&p.metadata).to_owned());
    pods
}

/// A pod's endpoint: ready only while serving (or when the Service publishes not-ready
/// addresses) and never while terminating, so clients drain away from pods that are going;
/// the hostname only for pods of the Service's subdomain, as their DNS names need.
fn endpoint(p: &Pod, ns: &str, service: &str, publish_not_ready: bool) -> Endpoint {
    let terminating = meta::terminating(&p.metadata);
    let serving = ready(p);
    let pod_spec = p.spec.as_ref();
    let hostname = pod_spec
        .filter(|s| s.subdomain.as_deref() == Some(service))
        .and_then(|s| s.hostname.clone());
    Endpoint {
        addresses: p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .into_iter()
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some((serving || publish_not_ready) && !terminating),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname,
        node_name: pod_spec.and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: Some(ns.to_owned()),
            name: p.metadata.name.clone(),
            uid: p.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

/// The Service's ports as container port numbers (the first pod that resolves a named
/// targetPort decides); a port no pod resolves is left out rather than guessed.
fn endpoint_ports<'a>(
    service_ports: impl Iterator<Item = &'a ServicePort>,
    pods: &[&Pod],
) -> Vec<EndpointPort> {
    service_ports
        .filter_map(|sp| {
            let port = pods
                .iter()
                .find_map(|p| target_port(p, sp.target_port.as_ref(), sp.port))?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".to_owned())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The slice this controller keeps for Service `name` (slices others manage are left alone).
fn managed_slice<'a>(snap: &'a Snapshot, ns: &str, name: &str) -> Option<&'a EndpointSlice> {
    snap.slices.iter().find(|s| {
        meta::namespace(&s.metadata) == ns
            && s.metadata.labels.as_ref().is_some_and(|l| {
                l.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
                    && l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            })
    })
}

/// Whether `slice` already lists exactly these endpoints and ports, so nothing is written.
fn lists_match(slice: &EndpointSlice, endpoints: &[Endpoint], ports: &[EndpointPort]) -> bool {
    slice.endpoints.as_deref().unwrap_or_default() == endpoints
        && slice.ports.as_deref().unwrap_or_default() == ports
}

/// Replaces a slice's lists (a conflict is retried on the next pass).
async fn update_slice(
    api: &Api<EndpointSlice>,
    slice: &EndpointSlice,
    endpoints: Vec<Endpoint>,
    ports: Vec<EndpointPort>,
) {
    let mut updated = slice.clone();
    updated.endpoints = Some(endpoints);
    updated.ports = Some(ports);
    let ns = meta::namespace(&slice.metadata);
    let slice_name = meta::name(&slice.metadata);
    logged(
        &format!("update EndpointSlice {ns}/{slice_name}"),
        api.replace(slice_name, &PostParams::default(), &updated)
            .await,
    );
}

/// A Service's first slice: its labels plus the two that find it again, owned by it so it
/// goes with the Service.
fn new_slice(svc: &Service, endpoints: Vec<Endpoint>, ports: Vec<EndpointPort>) -> EndpointSlice {
    let ns = meta::namespace(&svc.metadata);
    let name = meta::name(&svc.metadata);
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.extend(BTreeMap::from([
        (SERVICE_NAME_LABEL.to_owned(), name.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
    ]));
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: Some(ns.to_owned()),
            labels: Some(labels),
            owner_references: owner_ref(svc, true).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".to_owned(),
        endpoints: Some(endpoints),
        ports: Some(ports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    #[test]
    fn a_terminating_pod_still_serves_but_is_not_ready() {
        let p = pod(json!({
            "metadata": {"name": "web-0", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"containers": [], "subdomain": "web", "hostname": "web-0"},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}]},
        }));
        let ep = endpoint(&p, "default", "web", true);
        let conditions = ep.conditions.expect("conditions");
        assert_eq!(conditions.ready, Some(false));
        assert_eq!(conditions.serving, Some(true));
        assert_eq!(conditions.terminating, Some(true));
        assert_eq!(ep.hostname.as_deref(), Some("web-0"));
        assert_eq!(ep.addresses, vec!["10.0.0.1".to_owned()]);
    }

    #[test]
    fn named_target_ports_resolve_and_unresolved_ones_are_left_out() {
        let p = pod(
            json!({"metadata": {"name": "web-0"}, "spec": {"containers": [
            {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}]}}),
        );
        let service_ports: Vec<ServicePort> = serde_json::from_value(json!([
            {"name": "web", "port": 80, "targetPort": "http"},
            {"name": "admin", "port": 81, "targetPort": "admin"},
        ]))
        .expect("ports");
        let ports = endpoint_ports(service_ports.iter(), &[&p]);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(8080));
        assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    }
}
