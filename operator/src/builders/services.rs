//! The headless Service (stable per-broker DNS names, published before readiness so brokers
//! can find each other while starting) and the bootstrap Service clients connect to.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tributary_crds::KafkaCluster;

use super::{Names, ADMIN_PORT};

fn listener_ports(cluster: &KafkaCluster) -> Vec<ServicePort> {
    cluster
        .spec
        .listeners
        .iter()
        .map(|l| ServicePort {
            name: Some(l.name.to_lowercase().replace('_', "-")),
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
