//! The headless Service (stable per-broker DNS names, published before readiness so brokers
//! can find each other while starting), the bootstrap Service clients connect to, and the
//! Services of external listeners: one per broker (its address outside the cluster, which the
//! broker reads and advertises) and a bootstrap one, of the listener's type.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tributary_crds::cluster::{
    external_bootstrap_name, external_service_name, listener_dns_name, Listener,
    EXTERNAL_LISTENER_LABEL,
};
use tributary_crds::registration::{HOST_ANNOTATION, PORT_ANNOTATION};
use tributary_crds::KafkaCluster;

use super::{Names, ADMIN_PORT};

/// The label the StatefulSet controller puts on each pod with the pod's name.
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

fn listener_ports(cluster: &KafkaCluster) -> Vec<ServicePort> {
    cluster
        .spec
        .listeners
        .iter()
        .map(|l| ServicePort {
            name: Some(listener_dns_name(&l.name)),
            port: l.port,
            target_port: Some(IntOrString::Int(l.port)),
            protocol: Some("TCP".to_owned()),
            ..ServicePort::default()
        })
        .collect()
}

pub(super) fn headless(cluster: &KafkaCluster, names: &Names) -> Service {
    let mut ports = listener_ports(cluster);
    ports.push(ServicePort {
        name: Some("admin".to_owned()),
        port: ADMIN_PORT,
        target_port: Some(IntOrString::Int(ADMIN_PORT)),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    });
    Service {
        metadata: names.meta(names.headless()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names.selector_labels()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub(super) fn bootstrap(cluster: &KafkaCluster, names: &Names) -> Service {
    Service {
        metadata: names.meta(names.bootstrap()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(names.selector_labels()),
            ports: Some(listener_ports(cluster)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Services of every external listener: a bootstrap Service and one per broker, in that
/// order per listener. A broker's Service selects its pod alone, carries the advertised-address
/// overrides of `configuration.brokers` as annotations (so changing them rolls nothing: the
/// broker follows its Service) and forwards the listener port to the pod.
pub(super) fn external(cluster: &KafkaCluster, names: &Names) -> Vec<Service> {
    let mut out = Vec::new();
    for listener in &cluster.spec.listeners {
        let Some(type_) = listener.type_.service_type() else {
            continue;
        };
        let config = listener.configuration.clone().unwrap_or_default();
        let bootstrap = config.bootstrap.unwrap_or_default();
        out.push(external_service(
            names,
            listener,
            external_bootstrap_name(&names.cluster, &listener.name),
            type_,
            names.selector_labels(),
            bootstrap.node_port,
            bootstrap.annotations,
        ));
        for id in 0..cluster.spec.brokers {
            let overrides = config.brokers.iter().find(|b| b.broker == id);
            let mut annotations = overrides.map(|b| b.annotations.clone()).unwrap_or_default();
            if let Some(host) = overrides.and_then(|b| b.advertised_host.clone()) {
                annotations.insert(HOST_ANNOTATION.to_owned(), host);
            }
            if let Some(port) = overrides.and_then(|b| b.advertised_port) {
                annotations.insert(PORT_ANNOTATION.to_owned(), port.to_string());
            }
            let mut selector = names.selector_labels();
            selector.insert(POD_NAME_LABEL.to_owned(), names.broker_pod(id));
            out.push(external_service(
                names,
                listener,
                external_service_name(&names.cluster, id, &listener.name),
                type_,
                selector,
                overrides.and_then(|b| b.node_port),
                annotations,
            ));
        }
    }
    out
}

fn external_service(
    names: &Names,
    listener: &Listener,
    name: String,
    type_: &str,
    selector: BTreeMap<String, String>,
    node_port: Option<i32>,
    annotations: BTreeMap<String, String>,
) -> Service {
    let mut metadata = names.meta(name);
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(EXTERNAL_LISTENER_LABEL.to_owned(), listener.name.clone());
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(type_.to_owned()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(listener_dns_name(&listener.name)),
                port: listener.port,
                target_port: Some(IntOrString::Int(listener.port)),
                node_port,
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
