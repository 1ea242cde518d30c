//! The kubeconfig that points `kubectl`, `helm`, the operator and the brokers at a served
//! control plane (`KUBECONFIG=<path>`; kube-rs reads it first in `Config::infer`).

use std::path::Path;

use serde_json::json;

/// Name of the cluster, context and user in the kubeconfig.
pub const CONTEXT: &str = "tributary-e2e";

/// The kubeconfig YAML for a server at `url`, with `namespace` as the default namespace.
pub fn render(url: &str, namespace: &str) -> String {
    render_as(url, namespace, None)
}

/// [`render`] for a client that acts as `user` (`as:`, the `Impersonate-User` header client
/// libraries send), as a pod acts as its ServiceAccount.
pub fn render_as(url: &str, namespace: &str, user: Option<&str>) -> String {
    let credentials = match user {
        Some(u) => json!({"as": u}),
        None => json!({}),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Writes the kubeconfig for `url` to `path` (mode 0600, as kubectl expects of credentials).
pub fn write(path: &Path, url: &str, namespace: &str) -> crate::Result<()> {
    write_as(path, url, namespace, None)
}

/// [`write`] for a client that acts as `user` ([`render_as`]).
pub fn write_as(path: &Path, url: &str, namespace: &str, user: Option<&str>) -> crate::Result<()> {
    let io = |source| crate::Error::Kubeconfig {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, render_as(url, namespace, user)).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_rs_impersonates_the_rendered_user() {
        let text = render_as(
            "http://127.0.0.1:1234",
            "kafka",
            Some("system:serviceaccount:kafka:demo-broker"),
        );
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&text).expect("parses");
        let user = kc.auth_infos[0].auth_info.as_ref().expect("user");
        assert_eq!(
            user.impersonate.as_deref(),
            Some("system:serviceaccount:kafka:demo-broker")
        );
    }

    #[test]
    fn kube_rs_reads_the_rendered_kubeconfig() {
        let text = render("http://127.0.0.1:1234", "streaming");
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&text).expect("parses");
        assert_eq!(kc.current_context.as_deref(), Some(CONTEXT));
        let cluster = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("http://127.0.0.1:1234"));
        assert_eq!(
            kc.contexts[0]
                .context
                .as_ref()
                .and_then(|c| c.namespace.as_deref()),
            Some("streaming")
        );
    }
}
