//! The load-balancer stand-in, after MetalLB: LoadBalancer Services of no class (or of
//! [`LOAD_BALANCER_CLASS`]) get an address from an [`AddressPool`] of loopback IPs, written as
//! `status.loadBalancer.ingress: [{ip}]` through the status subresource with the
//! resourceVersion it read (a conflict waits for the next pass). The allocations live only in
//! the Services' status, so a restarted control plane finds them there, as MetalLB does.
//! `spec.loadBalancerIP` asks for one address of the pool (the deprecated field MetalLB still
//! honours); an address the pool lacks or another Service holds leaves the Service pending.
//! An address is released when its Service is deleted (it is simply no longer held) or stops
//! being a LoadBalancer (its ingress is removed). Services of another class are left to
//! their implementation; the addresses of ours they hold are not handed out again.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::controllers::{logged, meta};

/// The `spec.loadBalancerClass` this load balancer answers to, besides no class at all (a
/// Service naming another class belongs to another implementation).
pub const LOAD_BALANCER_CLASS: &str = "tributary.dev/loopback";

/// Why an address pool was refused.
#[derive(Debug, thiserror::Error)]
#[error("the load-balancer pool {first}-{last} must be loopback addresses (127.0.0.0/8), first to last in order, and none a pod's or a node's")]
pub struct InvalidPool {
    /// The first address asked for.
    pub first: Ipv4Addr,
    /// The last address asked for.
    pub last: Ipv4Addr,
}

/// The addresses LoadBalancer Services get, `first` to `last`: loopback addresses, so they
/// are bindable and reachable on this machine without any configuration, as a layer-2 pool's
/// addresses are on the node's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressPool {
    first: Ipv4Addr,
    last: Ipv4Addr,
}

impl AddressPool {
    /// The pool `first..=last`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Result<AddressPool, InvalidPool> {
        if first.is_loopback() && last.is_loopback() && first <= last {
            Ok(AddressPool { first, last })
        } else {
            Err(InvalidPool { first, last })
        }
    }

    /// The pool of the node `127.0.S.1`: `127.1.S.1` to `127.1.S.254`. Pods and nodes live in
    /// `127.0.0.0/16` (see the kubelet's network), and a node's `S` is claimed by one kubelet
    /// on this machine at a time, so two local clusters never hand out the same address.
    pub fn for_node(node_ip: Ipv4Addr) -> AddressPool {
        let s = node_ip.octets()[2];
        AddressPool {
            first: Ipv4Addr::new(127, 1, s, 1),
            last: Ipv4Addr::new(127, 1, s, 254),
        }
    }

    /// Whether `ip` is one of the pool's.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&ip)
    }

    /// The pool's addresses, lowest first.
    fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }
}

/// A new `status.loadBalancer.ingress` for one Service (empty: none).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IngressUpdate {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) ingress: Vec<LoadBalancerIngress>,
}

fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

/// A LoadBalancer Service this implementation serves.
fn ours(svc: &Service) -> bool {
    is_load_balancer(svc)
        && svc
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_class.as_deref())
            .is_none_or(|c| c == LOAD_BALANCER_CLASS)
}

fn ingress(svc: &Service) -> &[LoadBalancerIngress] {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default()
}

fn pool_ip(pool: &AddressPool, i: &LoadBalancerIngress) -> Option<Ipv4Addr> {
    i.ip.as_deref()?
        .parse()
        .ok()
        .filter(|ip| pool.contains(*ip))
}

fn update(svc: &Service, ingress: Vec<LoadBalancerIngress>) -> IngressUpdate {
    IngressUpdate {
        namespace: meta::namespace(&svc.metadata).to_owned(),
        name: meta::name(&svc.metadata).to_owned(),
        ingress,
    }
}

/// The status writes that make every Service's ingress what the pool says: held addresses
/// kept (the oldest Service wins an address two claim), new ones for our LoadBalancers
/// without one, ours removed from Services that are no longer LoadBalancers.
pub(crate) fn plan(pool: &AddressPool, services: &[Service]) -> Vec<IngressUpdate> {
    let mut order: Vec<&Service> = services.iter().collect();
    order.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.as_ref().map(|t| t.0),
            meta::namespace(&s.metadata),
            meta::name(&s.metadata),
        )
    });
    let mut taken = BTreeSet::new();
    let mut pending = Vec::new();
    let mut updates = Vec::new();
    for svc in order {
        let held: Vec<Ipv4Addr> = ingress(svc)
            .iter()
            .filter_map(|i| pool_ip(pool, i))
            .collect();
        if meta::terminating(&svc.metadata) || (is_load_balancer(svc) && !ours(svc)) {
            taken.extend(held);
        } else if !is_load_balancer(svc) {
            if !held.is_empty() {
                let rest = ingress(svc).iter().filter(|i| pool_ip(pool, i).is_none());
                updates.push(update(svc, rest.cloned().collect()));
            }
        } else if let Some(ip) = held.iter().find(|ip| !taken.contains(*ip)) {
            taken.insert(*ip);
        } else if ingress(svc).iter().all(|i| pool_ip(pool, i).is_some()) {
            // No ingress, or only addresses an older Service holds. An ingress someone else
            // wrote (a hostname, an outside address) is left alone.
            pending.push(svc);
        }
    }
    for svc in pending {
        let wanted = svc
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.as_deref())
            .filter(|ip| !ip.is_empty());
        let ip = match wanted {
            Some(w) => w
                .parse()
                .ok()
                .filter(|ip| pool.contains(*ip) && !taken.contains(ip)),
            None => pool.addresses().find(|ip| !taken.contains(ip)),
        };
        let Some(ip) = ip else {
            tracing::debug!(
                "load balancer: no address for {}/{} (pool exhausted or loadBalancerIP {wanted:?} unavailable)",
                meta::namespace(&svc.metadata),
                meta::name(&svc.metadata)
            );
            continue;
        };
        taken.insert(ip);
        updates.push(update(
            svc,
            vec![LoadBalancerIngress {
                ip: Some(ip.to_string()),
                ..LoadBalancerIngress::default()
            }],
        ));
    }
    updates
}

/// Writes the planned ingresses through `services/status`, each conditional on the
/// resourceVersion the pass read.
pub(crate) async fn write(client: &Client, services: &[Service], updates: Vec<IngressUpdate>) {
    for u in updates {
        let Some(svc) = services.iter().find(|s| {
            meta::namespace(&s.metadata) == u.namespace && meta::name(&s.metadata) == u.name
        }) else {
            continue;
        };
        let mut updated = svc.clone();
        updated
            .status
            .get_or_insert_with(Default::default)
            .load_balancer = Some(LoadBalancerStatus {
            ingress: (!u.ingress.is_empty()).then_some(u.ingress),
        });
        let api: Api<Service> = Api::namespaced(client.clone(), &u.namespace);
        logged(
            &format!(
                "load balancer: status of Service {}/{}",
                u.namespace, u.name
            ),
            api.replace_status(&u.name, &PostParams::default(), &updated)
                .await,
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn pool() -> AddressPool {
        AddressPool::new(Ipv4Addr::new(127, 1, 9, 1), Ipv4Addr::new(127, 1, 9, 3))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A Service created at second `created`, with `spec` merged into a LoadBalancer spec.
    fn service(name: &str, created: u32, spec: Value, ingress: &[&str]) -> Service {
        let mut s = json!({"type": "LoadBalancer", "ports": [{"port": 9094, "nodePort": 30001}]});
        for (k, v) in spec.as_object().into_iter().flatten() {
            s[k] = v.clone();
        }
        let ingress: Vec<Value> = ingress.iter().map(|ip| json!({"ip": ip})).collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns",
                         "creationTimestamp": format!("2025-01-01T00:00:{created:02}Z")},
            "spec": s,
            "status": {"loadBalancer": {"ingress": ingress}},
        }))
        .unwrap_or_else(|e| panic!("bad test object: {e}"))
    }

    fn set(name: &str, ip: &str) -> IngressUpdate {
        IngressUpdate {
            namespace: "ns".into(),
            name: name.into(),
            ingress: vec![LoadBalancerIngress {
                ip: Some(ip.into()),
                ..LoadBalancerIngress::default()
            }],
        }
    }

    #[test]
    fn new_load_balancers_get_the_lowest_free_addresses_and_held_ones_are_kept() {
        let services = [
            service("a", 1, json!({}), &["127.1.9.1"]),
            service("b", 2, json!({}), &[]),
            service("c", 3, json!({}), &[]),
        ];
        assert_eq!(
            plan(&pool(), &services),
            [set("b", "127.1.9.2"), set("c", "127.1.9.3")]
        );
    }

    #[test]
    fn an_exhausted_pool_leaves_the_newest_service_pending() {
        let services = [
            service("a", 1, json!({}), &[]),
            service("b", 2, json!({}), &[]),
            service("c", 3, json!({}), &[]),
            service("d", 4, json!({}), &[]),
        ];
        let updates = plan(&pool(), &services);
        assert_eq!(updates.len(), 3);
        assert!(updates.iter().all(|u| u.name != "d"));
    }

    #[test]
    fn a_service_that_stops_being_a_load_balancer_releases_its_address() {
        let services = [
            service("a", 1, json!({"type": "NodePort"}), &["127.1.9.1"]),
            service("b", 2, json!({}), &[]),
        ];
        let updates = plan(&pool(), &services);
        assert_eq!(
            updates,
            [
                IngressUpdate {
                    namespace: "ns".into(),
                    name: "a".into(),
                    ingress: Vec::new(),
                },
                set("b", "127.1.9.1"),
            ],
            "the released address is free again at once"
        );
    }

    #[test]
    fn other_classes_are_left_alone_but_their_addresses_of_our_pool_are_not_reused() {
        let services = [
            service(
                "theirs",
                1,
                json!({"loadBalancerClass": "example.com/lb"}),
                &[],
            ),
            service(
                "squatter",
                2,
                json!({"loadBalancerClass": "example.com/lb"}),
                &["127.1.9.1"],
            ),
            service(
                "mine",
                3,
                json!({"loadBalancerClass": LOAD_BALANCER_CLASS}),
                &[],
            ),
        ];
        assert_eq!(plan(&pool(), &services), [set("mine", "127.1.9.2")]);
    }

    #[test]
    fn the_older_of_two_services_claiming_an_address_keeps_it() {
        let services = [
            service("new", 2, json!({}), &["127.1.9.1"]),
            service("old", 1, json!({}), &["127.1.9.1"]),
        ];
        assert_eq!(plan(&pool(), &services), [set("new", "127.1.9.2")]);
    }

    #[test]
    fn a_requested_address_is_given_only_when_the_pool_has_it_free() {
        let services = [
            service("a", 1, json!({}), &["127.1.9.1"]),
            service("wants-free", 2, json!({"loadBalancerIP": "127.1.9.3"}), &[]),
            service(
                "wants-taken",
                3,
                json!({"loadBalancerIP": "127.1.9.1"}),
                &[],
            ),
            service(
                "wants-outside",
                4,
                json!({"loadBalancerIP": "10.0.0.1"}),
                &[],
            ),
        ];
        assert_eq!(plan(&pool(), &services), [set("wants-free", "127.1.9.3")]);
    }

    #[test]
    fn an_ingress_written_by_someone_else_is_left_alone() {
        let mut s = service("a", 1, json!({}), &[]);
        s.status = serde_json::from_value(
            json!({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(plan(&pool(), &[s]).is_empty());
    }

    #[test]
    fn pools_are_loopback_and_per_node() {
        assert!(AddressPool::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9)).is_err());
        assert!(
            AddressPool::new(Ipv4Addr::new(127, 1, 0, 9), Ipv4Addr::new(127, 1, 0, 1)).is_err()
        );
        let p = AddressPool::for_node(Ipv4Addr::new(127, 0, 7, 1));
        assert!(
            p.contains(Ipv4Addr::new(127, 1, 7, 1)) && p.contains(Ipv4Addr::new(127, 1, 7, 254))
        );
        assert!(!p.contains(Ipv4Addr::new(127, 0, 7, 2)));
        assert_eq!(p.addresses().count(), 254);
    }
}
