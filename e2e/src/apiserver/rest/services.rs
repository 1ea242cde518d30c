//! What the API server itself fills in for Services: the type and port protocol defaults, a
//! cluster IP from the service range (headless `None` excepted), node ports for NodePort and
//! LoadBalancer Services; on update, allocated values the client left out are kept.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::apiserver::error::{ApiError, FieldError};
use crate::apiserver::state::State;

/// The service cluster IP range, `10.96.0.0/16` (a kind cluster's default is `/12`).
const CLUSTER_IP_BASE: u32 = 0x0a60_0000;
const CLUSTER_IP_SIZE: u32 = 1 << 16;
const NODE_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

fn ip(n: u32) -> String {
    std::net::Ipv4Addr::from(CLUSTER_IP_BASE + n).to_string()
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    )
}

impl State {
    fn allocated(&self) -> (BTreeSet<String>, BTreeSet<u64>) {
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for (_, svc) in self.store.scan("/services", None) {
            if let Some(i) = svc["spec"]["clusterIP"].as_str() {
                ips.insert(i.to_owned());
            }
            for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(n) = p["nodePort"].as_u64() {
                    ports.insert(n);
                }
            }
        }
        (ips, ports)
    }

    /// Defaults and allocations of a new Service; a requested cluster IP or node port that is
    /// taken is a 422.
    pub(super) fn allocate_service(&self, svc: &mut Value) -> Result<(), ApiError> {
        let name = svc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let invalid = |e: FieldError| ApiError::invalid("Service", "", &name, &[e]);
        if !svc["spec"].is_object() {
            svc["spec"] = json!({});
        }
        let spec = &mut svc["spec"];
        if spec["type"].as_str().is_none_or(str::is_empty) {
            spec["type"] = json!("ClusterIP");
        }
        if let Some(ports) = spec["ports"].as_array_mut() {
            for p in ports.iter_mut().filter(|p| p.is_object()) {
                if p["protocol"].is_null() {
                    p["protocol"] = json!("TCP");
                }
                if p["targetPort"].is_null() {
                    p["targetPort"] = p["port"].clone();
                }
            }
        }
        if spec["type"] == "ExternalName" {
            return Ok(());
        }
        let (taken_ips, taken_ports) = self.allocated();
        let chosen = match spec["clusterIP"].as_str() {
            Some("None") => "None".to_owned(),
            Some(wanted) if !wanted.is_empty() => {
                if taken_ips.contains(wanted) {
                    return Err(invalid(FieldError::invalid(
                        "spec.clusterIPs",
                        &json!(wanted),
                        format!("failed to allocate IP {wanted}: provided IP is already allocated"),
                    )));
                }
                wanted.to_owned()
            }
            _ => (10..CLUSTER_IP_SIZE - 1)
                .map(ip)
                .find(|candidate| !taken_ips.contains(candidate))
                .ok_or_else(|| ApiError::internal("the service cluster IP range is full"))?,
        };
        spec["clusterIP"] = json!(chosen);
        spec["clusterIPs"] = json!([chosen]);
        if chosen != "None" {
            spec["ipFamilies"] = json!(["IPv4"]);
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if spec["sessionAffinity"].is_null() {
            spec["sessionAffinity"] = json!("None");
        }
        if needs_node_ports(svc) {
            let mut used = taken_ports;
            let ports = svc["spec"]["ports"].as_array_mut().into_iter().flatten();
            for p in ports.filter(|p| p.is_object()) {
                match p["nodePort"].as_u64() {
                    Some(n) if used.contains(&n) => {
                        return Err(invalid(FieldError::invalid(
                            "spec.ports.nodePort",
                            &json!(n),
                            "provided port is already allocated",
                        )))
                    }
                    Some(n) => {
                        used.insert(n);
                    }
                    None => {
                        let free = NODE_PORTS
                            .clone()
                            .find(|n| !used.contains(n))
                            .ok_or_else(|| ApiError::internal("the node port range is full"))?;
                        used.insert(free);
                        p["nodePort"] = json!(free);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Keeps the allocated cluster IPs and node ports an update left out.
pub(super) fn keep_allocations(old: &Value, new: &mut Value) {
    if !new["spec"].is_object() {
        return;
    }
    for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        if new["spec"][field].is_null() && !old["spec"][field].is_null() {
            new["spec"][field] = old["spec"][field].clone();
        }
    }
    if !needs_node_ports(new) {
        return;
    }
    let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
    for p in new["spec"]["ports"].as_array_mut().into_iter().flatten() {
        if p.is_object() && p["nodePort"].is_null() {
            if let Some(n) = old_ports
                .iter()
                .find(|o| o["port"] == p["port"])
                .and_then(|o| o["nodePort"].as_u64())
            {
                p["nodePort"] = json!(n);
            }
        }
    }
}
