//! The pod subresources a scheduler and `kubectl logs` use: `pods/binding` (POST a Binding to
//! assign a pod to a node, once) and `pods/log` (the container's output, which the real server
//! proxies from the node's kubelet and this one reads through [`PodLogs`]).

use serde_json::{json, Value};

use super::{Target, Written};
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::state::{now, State};

/// Where `pods/log` reads a container's output: the kubelet that runs it.
pub trait PodLogs: Send + Sync {
    /// The output of `container` of pod `namespace/pod` (its previous instance when
    /// `previous`), or `None` when the kubelet has none.
    fn read(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<String>;
}

impl State {
    /// POST `pods/<name>/binding`: sets `spec.nodeName` and the PodScheduled condition, as the
    /// real server's binding storage does; a pod already assigned or being deleted is a 409.
    pub(crate) fn bind(
        &mut self,
        target: &Target,
        name: &str,
        binding: &Value,
    ) -> ApiResult<Written> {
        let node = binding["target"]["name"].as_str().unwrap_or_default();
        if node.is_empty() {
            return Err(ApiError::bad_request("Binding target.name is required"));
        }
        let key = target.key(name);
        let mut pod = self
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found("pods", "", name))?;
        if pod["metadata"].get("deletionTimestamp").is_some() {
            let why = format!("pod {name} is being deleted, cannot be assigned to a host");
            return Err(ApiError::conflict("pods/binding", "", name, &why));
        }
        if let Some(assigned) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            let why = format!("pod {name} is already assigned to node {assigned:?}");
            return Err(ApiError::conflict("pods/binding", "", name, &why));
        }
        pod["spec"]["nodeName"] = json!(node);
        let mut conditions: Vec<Value> = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "PodScheduled");
        conditions.push(
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": now()}),
        );
        pod["status"]["conditions"] = json!(conditions);
        self.store.put(&key, pod);
        self.settle();
        Ok(Written::new(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            201,
        ))
    }

    /// The container `pods/log` reads: the one named, or the only one.
    pub(crate) fn log_container(
        &self,
        target: &Target,
        name: &str,
        asked: Option<&str>,
    ) -> ApiResult<String> {
        let pod = self
            .store
            .get(&target.key(name))
            .ok_or_else(|| ApiError::not_found("pods", "", name))?;
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        match asked {
            Some(c) if names.contains(&c) => Ok(c.to_owned()),
            Some(c) => Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            ))),
            None if names.len() == 1 => Ok(names[0].to_owned()),
            None => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            ))),
        }
    }
}
