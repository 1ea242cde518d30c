//! External listeners: a listener reached from outside Kubernetes through this broker's own
//! Service (`<cluster>-broker-<id>-<listener>`, NodePort or LoadBalancer). The address it
//! advertises there is only known once Kubernetes has given the Service a node port or the
//! load balancer an ingress, and it may change (a recreated load balancer), so the broker
//! follows its Service and republishes the address in its Lease, from which every broker
//! answers Metadata. Until the address is known the listener is left out of the Lease, and
//! Metadata on that listener leaves this broker out, as Kafka leaves out brokers that lack the
//! listener a client came in on.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tributary_crds::cluster::external_service_name;
use tributary_crds::registration::{HOST_ANNOTATION, PORT_ANNOTATION};

use super::registration::Registrar;
use crate::config::ClusterSettings;

/// The `host:port` a broker advertises on the external listener `service` serves: the
/// Service's advertised-host and -port annotations (the KafkaCluster's per-broker
/// overrides) when set, else the node's address and the node port (NodePort), or the load
/// balancer's first ingress and the Service port (LoadBalancer). `None` while not known.
pub fn advertised_address(service: &Service, host_ip: Option<&str>) -> Option<(String, i32)> {
    let annotation = |key: &str| {
        service
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .filter(|v| !v.is_empty())
    };
    let spec = service.spec.as_ref()?;
    let port = spec.ports.as_ref()?.first()?;
    let ingress = || {
        let first = service
            .status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?
            .first()?
            .clone();
        first.ip.or(first.hostname).filter(|h| !h.is_empty())
    };
    let (host, default_port) = match spec.type_.as_deref() {
        Some("NodePort") => (host_ip.map(str::to_string), port.node_port),
        Some("LoadBalancer") => (ingress(), Some(port.port)),
        _ => (None, None),
    };
    let host = annotation(HOST_ANNOTATION).cloned().or(host)?;
    let port = match annotation(PORT_ANNOTATION) {
        Some(text) => text.parse().ok().filter(|p| (1..=65535).contains(p))?,
        None => default_port?,
    };
    Some((host, port))
}

/// Follows this broker's Service of each external listener and publishes the address it
/// gives through `registrar`, for as long as the returned tasks run and the registrar lives
/// (the tasks hold it weakly, so a broker dropped without releasing still goes away).
pub fn spawn(
    client: Client,
    settings: &ClusterSettings,
    broker_id: i32,
    registrar: &Arc<Registrar>,
) -> Vec<tokio::task::JoinHandle<()>> {
    settings
        .external_listeners
        .iter()
        .map(|listener| {
            let name = external_service_name(&settings.name, broker_id, listener);
            let api: Api<Service> = Api::namespaced(client.clone(), &settings.namespace);
            let host_ip = settings.host_ip.clone();
            let listener = listener.clone();
            let registrar = Arc::downgrade(registrar);
            tokio::spawn(async move {
                let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
                let mut events = watcher(api, config).default_backoff().boxed();
                // Whether the listing in progress (after a start or a lost watch) found the
                // Service: one deleted while the watch was down sends no Delete.
                let mut listed = false;
                while let Some(event) = events.next().await {
                    let address = match event {
                        Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                            listed = true;
                            advertised_address(&s, host_ip.as_deref())
                        }
                        Ok(watcher::Event::Delete(_)) => None,
                        Ok(watcher::Event::Init) => {
                            listed = false;
                            continue;
                        }
                        Ok(watcher::Event::InitDone) if !listed => None,
                        Ok(watcher::Event::InitDone) => continue,
                        Err(error) => {
                            tracing::warn!(service = name, %error, "watching the external listener's Service");
                            continue;
                        }
                    };
                    if address.is_none() {
                        tracing::info!(service = name, listener, "the external listener's address is not known (yet)");
                    }
                    let Some(registrar) = registrar.upgrade() else {
                        return;
                    };
                    registrar.advertise(&listener, address).await;
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServicePort, ServiceSpec, ServiceStatus,
    };
    use std::collections::BTreeMap;

    fn service(
        type_: &str,
        node_port: Option<i32>,
        ingress: Option<LoadBalancerIngress>,
    ) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                ports: Some(vec![ServicePort {
                    port: 9094,
                    node_port,
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: ingress.map(|i| ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![i]),
                }),
                ..ServiceStatus::default()
            }),
            ..Service::default()
        }
    }

    fn overridden(mut s: Service, host: Option<&str>, port: Option<&str>) -> Service {
        let mut annotations = BTreeMap::new();
        if let Some(host) = host {
            annotations.insert(HOST_ANNOTATION.to_string(), host.to_string());
        }
        if let Some(port) = port {
            annotations.insert(PORT_ANNOTATION.to_string(), port.to_string());
        }
        s.metadata.annotations = Some(annotations);
        s
    }

    #[test]
    fn a_node_port_listener_advertises_the_node_and_its_node_port() {
        let s = service("NodePort", Some(31_234), None);
        assert_eq!(
            advertised_address(&s, Some("10.0.0.7")),
            Some(("10.0.0.7".into(), 31_234))
        );
        assert_eq!(advertised_address(&s, None), None, "node unknown");
        let unallocated = service("NodePort", None, None);
        assert_eq!(advertised_address(&unallocated, Some("10.0.0.7")), None);
    }

    #[test]
    fn a_load_balancer_listener_advertises_its_ingress_and_the_service_port() {
        let pending = service("LoadBalancer", Some(31_000), None);
        assert_eq!(advertised_address(&pending, Some("10.0.0.7")), None);
        let by_ip = service(
            "LoadBalancer",
            Some(31_000),
            Some(LoadBalancerIngress {
                ip: Some("203.0.113.9".into()),
                ..LoadBalancerIngress::default()
            }),
        );
        assert_eq!(
            advertised_address(&by_ip, None),
            Some(("203.0.113.9".into(), 9094))
        );
        let by_name = service(
            "LoadBalancer",
            None,
            Some(LoadBalancerIngress {
                hostname: Some("lb.example.com".into()),
                ..LoadBalancerIngress::default()
            }),
        );
        assert_eq!(
            advertised_address(&by_name, None),
            Some(("lb.example.com".into(), 9094))
        );
    }

    #[test]
    fn overrides_take_the_place_of_what_kubernetes_gives() {
        let s = overridden(
            service("NodePort", Some(31_234), None),
            Some("kafka-0.example.com"),
            Some("443"),
        );
        assert_eq!(
            advertised_address(&s, None),
            Some(("kafka-0.example.com".into(), 443))
        );
        let pending = overridden(
            service("LoadBalancer", None, None),
            Some("b0.example.com"),
            None,
        );
        assert_eq!(
            advertised_address(&pending, None),
            Some(("b0.example.com".into(), 9094)),
            "a host override needs no ingress"
        );
        let bad_port = overridden(service("NodePort", Some(31_234), None), None, Some("99999"));
        assert_eq!(advertised_address(&bad_port, Some("10.0.0.7")), None);
        assert_eq!(
            advertised_address(&service("ClusterIP", None, None), Some("h")),
            None
        );
    }
}
