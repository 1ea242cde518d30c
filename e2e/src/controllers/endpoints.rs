//! The EndpointSlice controller: one slice per Service with a selector (labels
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the
//! Service) listing the selected pods that have an IP, with the ready/serving/terminating
//! conditions (`publishNotReadyAddresses` makes every endpoint ready), hostnames for pods of
//! the Service's subdomain, and the Service's ports resolved against the pods' named
//! container ports. Core v1 Endpoints are not written.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
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
    let endpoints: Vec<Endpoint> = pods
        .iter()
        .map(|p| {
            let terminating = meta::terminating(&p.metadata);
            let serving = ready(p);
            let pod_spec = p.spec.as_ref();
            let hostname = pod_spec
                .filter(|s| s.subdomain.as_deref() == Some(name))
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
        })
        .collect();
    let ports: Vec<EndpointPort> = spec
        .ports
        .iter()
        .flatten()
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
        .collect();
    let existing = snap.slices.iter().find(|s| {
        meta::namespace(&s.metadata) == ns
            && s.metadata.labels.as_ref().is_some_and(|l| {
                l.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
                    && l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            })
    });
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    match existing {
        Some(slice) => {
            if slice.endpoints.as_deref().unwrap_or_default() == endpoints.as_slice()
                && slice.ports.as_deref().unwrap_or_default() == ports
            {
                return;
            }
            let mut updated = slice.clone();
            updated.endpoints = Some(endpoints);
            updated.ports = Some(ports);
            let slice_name = meta::name(&slice.metadata);
            logged(
                &format!("update EndpointSlice {ns}/{slice_name}"),
                api.replace(slice_name, &PostParams::default(), &updated)
                    .await,
            );
        }
        None => {
            let mut labels = svc.metadata.labels.clone().unwrap_or_default();
            labels.extend(BTreeMap::from([
                (SERVICE_NAME_LABEL.to_owned(), name.to_owned()),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            ]));
            let slice = EndpointSlice {
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
            };
            logged(
                &format!("create the EndpointSlice of {ns}/{name}"),
                api.create(&PostParams::default(), &slice).await,
            );
        }
    }
}
