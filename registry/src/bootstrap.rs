//! Where the registry finds its cluster when the operator runs it: the addresses the
//! KafkaCluster's `status.listeners` gives for one listener, which the operator keeps current.
//! Brokers advertising their pod IPs are reached there even where Service names do not
//! resolve (the local control plane runs pods as processes, without cluster DNS); a listener
//! advertising DNS names lists its bootstrap Service, as `--bootstrap` would.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// How often the status is read again while it lists no address yet.
const RETRY: Duration = Duration::from_millis(500);

/// Why the cluster's bootstrap addresses could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// `--cluster` is not `namespace/name`.
    #[error("--cluster takes namespace/name, got {0:?}")]
    BadReference(String),
    /// The status listed no address for the listener in time.
    #[error("KafkaCluster {namespace}/{name} listed no address for listener {listener} within {waited:?} (last error: {last})")]
    NotListed {
        /// Namespace.
        namespace: String,
        /// Cluster name.
        name: String,
        /// Listener name.
        listener: String,
        /// How long it waited.
        waited: Duration,
        /// The last API error, or "none".
        last: String,
    },
}

/// `namespace/name` of a KafkaCluster.
pub fn parse_cluster_ref(value: &str) -> Result<(String, String), BootstrapError> {
    match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(BootstrapError::BadReference(value.to_owned())),
    }
}

/// The `bootstrapServers` of `listener` in a KafkaCluster's status, if listed.
pub fn listed(cluster: &Value, listener: &str) -> Option<String> {
    cluster["status"]["listeners"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == listener)?["bootstrapServers"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads KafkaCluster `namespace/name` until its status lists addresses for `listener`, for
/// at most `wait`.
pub async fn from_cluster(
    client: kube::Client,
    (namespace, name): (&str, &str),
    listener: &str,
    wait: Duration,
) -> Result<String, BootstrapError> {
    let gvk = GroupVersionKind::gvk("tributary.dev", "v1alpha1", "KafkaCluster");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, namespace, &ApiResource::from_gvk(&gvk));
    let deadline = tokio::time::Instant::now() + wait;
    let mut last = "none".to_owned();
    loop {
        match api.get(name).await {
            Ok(object) => {
                let value = serde_json::to_value(&object).unwrap_or(Value::Null);
                if let Some(servers) = listed(&value, listener) {
                    return Ok(servers);
                }
            }
            Err(error) => last = error.to_string(),
        }
        if tokio::time::Instant::now() + RETRY > deadline {
            return Err(BootstrapError::NotListed {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                listener: listener.to_owned(),
                waited: wait,
                last,
            });
        }
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_listed_addresses_of_the_named_listener() {
        let cluster = json!({"status": {"listeners": [
            {"name": "tls", "type": "internal", "bootstrapServers": "a:9093"},
            {"name": "plain", "type": "internal", "bootstrapServers": "10.0.0.1:9092,10.0.0.2:9092"},
            {"name": "empty", "type": "internal", "bootstrapServers": ""},
        ]}});
        assert_eq!(
            listed(&cluster, "plain").as_deref(),
            Some("10.0.0.1:9092,10.0.0.2:9092")
        );
        assert_eq!(listed(&cluster, "empty"), None);
        assert_eq!(listed(&cluster, "other"), None);
        assert_eq!(listed(&json!({}), "plain"), None);
    }

    #[test]
    fn cluster_references_are_namespace_slash_name() {
        assert_eq!(
            parse_cluster_ref("ns/demo").ok(),
            Some(("ns".to_owned(), "demo".to_owned()))
        );
        for bad in ["demo", "/demo", "ns/", "a/b/c"] {
            assert!(parse_cluster_ref(bad).is_err(), "{bad}");
        }
    }
}
