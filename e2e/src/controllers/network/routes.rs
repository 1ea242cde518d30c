//! Which listeners kube-proxy's stand-in should have, as a pure function of the Services and
//! EndpointSlices: `node IP:nodePort` for every TCP port of a NodePort or LoadBalancer
//! Service, and `ingress IP:port` for every TCP port of a LoadBalancer Service whose status
//! has a loopback ingress IP (`ipMode: Proxy` excepted: such a load balancer proxies to the
//! node ports itself, so kube-proxy leaves its IP alone). Each goes to the ready endpoints of
//! the Service port, found as kube-proxy finds them: the slices labelled with the Service's
//! name, the slice port of the same name and protocol (so a named targetPort is the number
//! the endpoints controller resolved), each endpoint's first address; when no endpoint is
//! ready, the serving ones that are terminating (kube-proxy's fallback, so a rollout's last
//! pod keeps taking connections while it drains).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::controllers::endpoints::SERVICE_NAME_LABEL;
use crate::controllers::meta;

/// Where one listener sends its connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Route {
    /// `namespace/name:port`, for logs.
    pub(crate) service: String,
    /// The endpoints that get new connections, sorted; empty: connections are refused.
    pub(crate) backends: Vec<SocketAddr>,
}

/// Every listener that should exist, by the address it listens on.
pub(crate) fn routes(
    node_ip: Ipv4Addr,
    services: &[Service],
    slices: &[EndpointSlice],
) -> BTreeMap<SocketAddr, Route> {
    let mut out = BTreeMap::new();
    for svc in services {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
        if !matches!(type_, "NodePort" | "LoadBalancer") {
            continue;
        }
        let ingress_ips = if type_ == "LoadBalancer" {
            ingress_ips(svc)
        } else {
            Vec::new()
        };
        let tcp = spec
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP");
        for port in tcp {
            let route = Route {
                service: format!(
                    "{}/{}:{}",
                    meta::namespace(&svc.metadata),
                    meta::name(&svc.metadata),
                    port.name.as_deref().unwrap_or_default()
                ),
                backends: backends(svc, port, slices),
            };
            let node_port = port.node_port.and_then(|n| u16::try_from(n).ok());
            let Ok(service_port) = u16::try_from(port.port) else {
                continue;
            };
            let addrs = node_port
                .map(|n| SocketAddr::from((node_ip, n)))
                .into_iter()
                .chain(
                    ingress_ips
                        .iter()
                        .map(|ip| SocketAddr::from((*ip, service_port))),
                );
            for addr in addrs {
                out.entry(addr).or_insert_with(|| route.clone());
            }
        }
    }
    out
}

/// The loopback ingress IPs of a LoadBalancer Service that kube-proxy captures (VIP mode, the
/// default); other addresses cannot be bound here.
fn ingress_ips(svc: &Service) -> Vec<Ipv4Addr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
        .filter_map(|i| i.ip.as_deref()?.parse::<Ipv4Addr>().ok())
        .filter(Ipv4Addr::is_loopback)
        .collect()
}

/// The endpoints of one Service port that take new connections.
fn backends(svc: &Service, port: &ServicePort, slices: &[EndpointSlice]) -> Vec<SocketAddr> {
    let namespace = meta::namespace(&svc.metadata);
    let name = meta::name(&svc.metadata);
    let port_name = port.name.as_deref().unwrap_or_default();
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    let own = slices.iter().filter(|s| {
        meta::namespace(&s.metadata) == namespace
            && s.address_type == "IPv4"
            && s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .is_some_and(|n| n == name)
    });
    for slice in own {
        let number = slice
            .ports
            .iter()
            .flatten()
            .find(|p| {
                p.name.as_deref().unwrap_or_default() == port_name
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .and_then(|p| p.port)
            .and_then(|n| u16::try_from(n).ok());
        let Some(number) = number else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let c = endpoint.conditions.clone().unwrap_or_default();
            // Unset conditions mean ready, serving as ready, not terminating (the API's docs).
            let is_ready = c.ready.unwrap_or(true);
            let serving = c.serving.unwrap_or(is_ready);
            let addr = SocketAddr::new(ip, number);
            if is_ready {
                ready.push(addr);
            } else if serving && c.terminating == Some(true) {
                terminating.push(addr);
            }
        }
    }
    let mut chosen = if ready.is_empty() { terminating } else { ready };
    chosen.sort_unstable();
    chosen.dedup();
    chosen
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const NODE: Ipv4Addr = Ipv4Addr::new(127, 0, 9, 1);

    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
    }

    fn service(name: &str, type_: &str, status: Value) -> Service {
        typed(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"type": type_, "ports": [
                {"name": "kafka", "port": 9094, "targetPort": "external", "nodePort": 30001},
                {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30002},
            ]},
            "status": status,
        }))
    }

    fn endpoint(ip: &str, ready: bool, serving: bool, terminating: bool) -> Value {
        json!({"addresses": [ip], "conditions":
            {"ready": ready, "serving": serving, "terminating": terminating}})
    }

    fn slice(service: &str, endpoints: Vec<Value>) -> EndpointSlice {
        typed(json!({
            "metadata": {"name": format!("{service}-abc"), "namespace": "ns",
                         "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4",
            "ports": [{"name": "kafka", "port": 9095, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_node_port_service_listens_on_the_node_port_for_tcp_ports_only() {
        let svc = service("b0", "NodePort", json!({}));
        let slices = [slice("b0", vec![endpoint("127.0.9.2", true, true, false)])];
        let r = routes(NODE, &[svc], &slices);
        assert_eq!(
            r.keys().copied().collect::<Vec<_>>(),
            [addr("127.0.9.1:30001")]
        );
        let route = &r[&addr("127.0.9.1:30001")];
        assert_eq!(route.service, "ns/b0:kafka");
        assert_eq!(
            route.backends,
            [addr("127.0.9.2:9095")],
            "the named targetPort is the slice's resolved number"
        );
    }

    #[test]
    fn cluster_ip_services_get_no_listener() {
        let svc = service("b0", "ClusterIP", json!({}));
        assert!(routes(NODE, &[svc], &[]).is_empty());
    }

    #[test]
    fn a_load_balancer_listens_on_its_node_port_and_loopback_ingress_ips_in_vip_mode() {
        let svc = service(
            "b0",
            "LoadBalancer",
            json!({"loadBalancer": {"ingress": [
                {"ip": "127.1.9.1"},
                {"ip": "127.1.9.2", "ipMode": "Proxy"},
                {"ip": "203.0.113.7"},
                {"hostname": "lb.example"},
            ]}}),
        );
        let r = routes(NODE, &[svc], &[]);
        assert_eq!(
            r.keys().copied().collect::<Vec<_>>(),
            [addr("127.0.9.1:30001"), addr("127.1.9.1:9094")]
        );
        assert!(
            r.values().all(|route| route.backends.is_empty()),
            "no endpoints yet"
        );
    }

    #[test]
    fn only_ready_endpoints_of_the_services_own_slices_get_connections() {
        let svc = service("b0", "NodePort", json!({}));
        let mut other_namespace = slice("b0", vec![endpoint("127.0.9.7", true, true, false)]);
        other_namespace.metadata.namespace = Some("elsewhere".into());
        let slices = [
            slice(
                "b0",
                vec![
                    endpoint("127.0.9.3", true, true, false),
                    endpoint("127.0.9.4", false, false, false),
                    endpoint("127.0.9.5", false, true, true),
                ],
            ),
            slice("b0", vec![endpoint("127.0.9.2", true, true, false)]),
            slice("b1", vec![endpoint("127.0.9.6", true, true, false)]),
            other_namespace,
        ];
        let r = routes(NODE, &[svc], &slices);
        assert_eq!(
            r[&addr("127.0.9.1:30001")].backends,
            [addr("127.0.9.2:9095"), addr("127.0.9.3:9095")]
        );
    }

    #[test]
    fn without_ready_endpoints_serving_terminating_ones_take_over() {
        let svc = service("b0", "NodePort", json!({}));
        let slices = [slice(
            "b0",
            vec![
                endpoint("127.0.9.4", false, false, false),
                endpoint("127.0.9.5", false, true, true),
                endpoint("127.0.9.6", false, false, true),
            ],
        )];
        let r = routes(NODE, &[svc], &slices);
        assert_eq!(
            r[&addr("127.0.9.1:30001")].backends,
            [addr("127.0.9.5:9095")]
        );
    }

    #[test]
    fn a_slice_without_the_ports_name_contributes_nothing() {
        let svc = service("b0", "NodePort", json!({}));
        let mut s = slice("b0", vec![endpoint("127.0.9.2", true, true, false)]);
        s.ports = Some(typed(json!([{"name": "metrics", "port": 9100}])));
        let r = routes(NODE, &[svc], &[s]);
        assert!(r[&addr("127.0.9.1:30001")].backends.is_empty());
    }
}
