//! The pod's ServiceAccount token, as the kubelet projects it into the `kube-api-access-*`
//! volume every pod gets unless automounting is off: `token` (from a TokenRequest bound to the
//! pod), `ca.crt` (the CA the API server's certificate chains to) and `namespace`, the token requested again once 80% of its lifetime has
//! passed or it is older than 24 hours, each file replaced atomically (written aside, then
//! renamed) so a reader never sees half a token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::clock::Clock;

/// Where containers find the token, as client libraries look for it.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The lifetime the kubelet asks for (the kube-api-access volume's 3607 s).
const EXPIRATION: i64 = 3607;
/// A token older than this is requested again whatever its lifetime.
const MAX_AGE: i64 = 24 * 3600;
/// How often a running pod's token is checked.
const CHECK: Duration = Duration::from_secs(1);

/// Why a pod's token could not be projected.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The TokenRequest failed (its ServiceAccount missing, the API unreachable).
    #[error("failed to fetch token: {0}")]
    Request(#[source] kube::Error),
    /// The answer held no token.
    #[error("failed to fetch token: the TokenRequest answer has no token")]
    Empty,
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// The ServiceAccount pod `pod` runs as (`default` unless named).
pub(crate) fn account_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| {
            s.service_account_name
                .as_deref()
                .or(s.service_account.as_deref())
        })
        .filter(|a| !a.is_empty())
        .unwrap_or("default")
}

/// Whether `pod` gets its token: the pod's `automountServiceAccountToken`, else its
/// ServiceAccount's, else yes.
pub(crate) fn automount(pod: &Pod, account: Option<&ServiceAccount>) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .or_else(|| account.and_then(|a| a.automount_service_account_token))
        .unwrap_or(true)
}

/// When a token was issued and when it expires (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub(crate) issued: i64,
    pub(crate) expires: i64,
}

impl Lifetime {
    /// Whether the kubelet requests a new token at `now`: once 80% of the lifetime has
    /// passed, or 24 hours after issue.
    pub(crate) fn needs_refresh(&self, now: i64) -> bool {
        let ttl = self.expires - self.issued;
        now >= self.issued + MAX_AGE || now >= self.expires - ttl / 5
    }
}

/// One pod's projected token: the pod it is bound to and the directory it is written to.
pub(crate) struct Projection {
    pub(crate) client: Client,
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) pod_uid: String,
    pub(crate) account: String,
    pub(crate) dir: PathBuf,
    /// The CA the API server's certificate chains to (`ca.crt`), if it is served over TLS.
    pub(crate) ca_pem: Option<String>,
}

impl Projection {
    /// The token file.
    pub(crate) fn token_file(&self) -> PathBuf {
        self.dir.join("token")
    }

    /// Requests a token bound to the pod and writes the volume's files.
    pub(crate) async fn project(&self) -> Result<Lifetime, TokenError> {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(EXPIRATION),
                bound_object_ref: Some(BoundObjectReference {
                    kind: Some("Pod".into()),
                    api_version: Some("v1".into()),
                    name: Some(self.pod.clone()),
                    uid: Some(self.pod_uid.clone()),
                }),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &self.namespace);
        let answer = api
            .create_token_request(&self.account, &PostParams::default(), &request)
            .await
            .map_err(TokenError::Request)?;
        let status = answer.status.unwrap_or_default();
        let token = status
            .token
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Empty)?;
        let expires = status.expiration_timestamp.map_or(0, |t| t.0.as_second());
        let lifetime = answer
            .spec
            .and_then(|s| s.expiration_seconds)
            .unwrap_or(EXPIRATION);
        if let Some(ca) = &self.ca_pem {
            write_atomically(&self.dir, "ca.crt", ca.as_bytes())?;
        }
        write_atomically(&self.dir, "namespace", self.namespace.as_bytes())?;
        write_atomically(&self.dir, "token", token.as_bytes())?;
        Ok(Lifetime {
            issued: expires - lifetime,
            expires,
        })
    }

    /// Requests a new token whenever `lifetime` says so by `clock`, until aborted (failures
    /// are retried at the next check, the current token staying in place).
    pub(crate) async fn keep_fresh(self, clock: Clock, mut lifetime: Lifetime) {
        loop {
            tokio::time::sleep(CHECK).await;
            if !lifetime.needs_refresh(clock.now()) {
                continue;
            }
            match self.project().await {
                Ok(fresh) => lifetime = fresh,
                Err(e) => tracing::warn!(pod = %self.pod, "token rotation: {e}"),
            }
        }
    }
}

/// Replaces `dir/name` with `bytes` by writing a temporary file and renaming it over.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TokenError> {
    let path = dir.join(name);
    let write = |source| TokenError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let aside = dir.join(format!(".{name}.tmp"));
    std::fs::write(&aside, bytes).map_err(write)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600)).map_err(write)?;
    }
    std::fs::rename(&aside, &path).map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap_or_default()
    }

    fn account(automount: Option<bool>) -> ServiceAccount {
        ServiceAccount {
            automount_service_account_token: automount,
            ..ServiceAccount::default()
        }
    }

    #[test]
    fn the_pod_decides_automounting_then_its_service_account_then_yes() {
        let unset = pod(json!({"containers": []}));
        let off = pod(json!({"containers": [], "automountServiceAccountToken": false}));
        let on = pod(json!({"containers": [], "automountServiceAccountToken": true}));
        let cases = [
            (&unset, None, true),
            (&unset, Some(account(None)), true),
            (&unset, Some(account(Some(false))), false),
            (&on, Some(account(Some(false))), true),
            (&off, Some(account(Some(true))), false),
            (&off, None, false),
        ];
        for (pod, account, expected) in cases {
            assert_eq!(automount(pod, account.as_ref()), expected, "{account:?}");
        }
    }

    #[test]
    fn the_account_is_named_or_default() {
        assert_eq!(account_name(&pod(json!({"containers": []}))), "default");
        let named = pod(json!({"containers": [], "serviceAccountName": "broker"}));
        assert_eq!(account_name(&named), "broker");
    }

    #[test]
    fn a_token_is_refreshed_after_80_percent_of_its_life_or_a_day() {
        let hour = Lifetime {
            issued: 1000,
            expires: 1000 + 3600,
        };
        assert!(!hour.needs_refresh(1000));
        assert!(!hour.needs_refresh(1000 + 2879));
        assert!(hour.needs_refresh(1000 + 2880));
        let year = Lifetime {
            issued: 0,
            expires: 365 * 24 * 3600,
        };
        assert!(!year.needs_refresh(24 * 3600 - 1));
        assert!(year.needs_refresh(24 * 3600));
    }

    #[test]
    fn files_are_replaced_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sa = dir.path().join("sa");
        write_atomically(&sa, "token", b"one").expect("write");
        write_atomically(&sa, "token", b"two").expect("write");
        assert_eq!(std::fs::read(sa.join("token")).ok(), Some(b"two".to_vec()));
        let names: Vec<_> = std::fs::read_dir(&sa)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["token"], "no temporary file left");
    }
}
