//! The kubeconfig that points `kubectl`, `helm`, the operator and the brokers at a served
//! control plane (`KUBECONFIG=<path>`; kube-rs reads it first in `Config::infer`).

use std::path::{Path, PathBuf};

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde_json::{json, Map, Value};

/// Name of the cluster, context and user in the kubeconfig.
pub const CONTEXT: &str = "tributary-e2e";

/// Where a kubeconfig's cluster is: the server's URL and the CA certificate (PEM) its
/// serving certificate chains to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// `certificate-authority-data`, when the server is served over TLS.
    pub ca_pem: Option<String>,
}

/// What a kubeconfig's user presents to the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing: the client acts as `system:anonymous`.
    Anonymous,
    /// A bearer token (`token:`), as the administrator's kubeconfig carries one.
    Token(String),
    /// A bearer token read from a file (`tokenFile:`) that client libraries read again as
    /// it is rotated, as a pod's projected ServiceAccount token.
    TokenFile(PathBuf),
}

/// The kubeconfig YAML for the server at `endpoint` presenting `credentials`, with
/// `namespace` as the default namespace.
pub fn render(endpoint: &Endpoint, namespace: &str, credentials: &Credentials) -> String {
    let mut auth = Map::new();
    match credentials {
        Credentials::Anonymous => {}
        Credentials::Token(t) => {
            auth.insert("token".into(), json!(t));
        }
        Credentials::TokenFile(path) => {
            auth.insert("tokenFile".into(), json!(path.to_string_lossy()));
        }
    }
    let mut cluster = json!({"server": endpoint.url});
    if let Some(ca) = &endpoint.ca_pem {
        cluster["certificate-authority-data"] = json!(BASE64_STANDARD.encode(ca));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": Value::Object(auth)}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Writes the kubeconfig for `endpoint` presenting `credentials` to `path` (mode 0600, as
/// kubectl expects of credentials).
pub fn write(
    path: &Path,
    endpoint: &Endpoint,
    namespace: &str,
    credentials: &Credentials,
) -> crate::Result<()> {
    let io = |source| crate::Error::Kubeconfig {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, render(endpoint, namespace, credentials)).map_err(io)?;
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
    fn kube_rs_reads_the_rendered_kubeconfig() {
        let endpoint = Endpoint {
            url: "https://127.0.0.1:1234".into(),
            ca_pem: Some("PEM".into()),
        };
        let text = render(&endpoint, "streaming", &Credentials::Token("t0k".into()));
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&text).expect("parses");
        assert_eq!(kc.current_context.as_deref(), Some(CONTEXT));
        let cluster = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1234"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("UEVN"));
        assert_eq!(
            kc.contexts[0]
                .context
                .as_ref()
                .and_then(|c| c.namespace.as_deref()),
            Some("streaming")
        );
        let user = kc.auth_infos[0].auth_info.as_ref().expect("user");
        assert!(user.token.is_some());
        assert!(text.contains("token: t0k"), "{text}");
    }

    #[test]
    fn kube_rs_reads_a_token_file_and_anonymous_has_no_credentials() {
        let file = PathBuf::from("/run/pod/serviceaccount/token");
        let endpoint = Endpoint {
            url: "https://h".into(),
            ca_pem: None,
        };
        let text = render(&endpoint, "ns", &Credentials::TokenFile(file.clone()));
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&text).expect("parses");
        let user = kc.auth_infos[0].auth_info.as_ref().expect("user");
        assert_eq!(
            user.token_file.as_deref(),
            Some("/run/pod/serviceaccount/token")
        );
        let text = render(&endpoint, "ns", &Credentials::Anonymous);
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&text).expect("parses");
        let user = kc.auth_infos[0].auth_info.as_ref().expect("user");
        assert!(user.token.is_none() && user.token_file.is_none());
    }
}
