//! The pod's ServiceAccount token, as the kubelet projects it into the `kube-api-access-*`
//! volume every pod gets unless automounting is off: `token` (from a TokenRequest bound to the
//! pod), `ca.crt` (the CA the API server's certificate chains to) and `namespace`, each file
//! replaced atomically (written aside, then renamed) so a reader never sees half a token. The
//! token is requested again by the kubelet's rule ([`Lifetime::needs_refresh`]): once 80% of
//! its lifetime has passed or it is older than 24 hours, up to [`MAX_JITTER`] earlier so that
//! pods started together do not all ask at once.

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
/// The kubelet's bound on how much earlier than its rule a token may be refreshed (its token
/// manager's `maxJitter`, 10 s): each check draws whole seconds in `[0, MAX_JITTER)`.
pub(crate) const MAX_JITTER: i64 = 10;
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
    /// Whether the kubelet requests a new token at `now` given this check's `jitter` (whole
    /// seconds, clamped to `[0, MAX_JITTER)`): once `now` is past 24 hours after issue, or
    /// past the last 20% of the lifetime, each moved `jitter` earlier, as the kubelet's token
    /// manager decides (`requiresRefresh`).
    pub(crate) fn needs_refresh(&self, now: i64, jitter: i64) -> bool {
        let jitter = jitter.clamp(0, MAX_JITTER - 1);
        let ttl = self.expires - self.issued;
        now > self.issued + MAX_AGE - jitter || now > self.expires - ttl * 20 / 100 - jitter
    }
}

/// The jitter of successive checks: a splitmix64 sequence seeded from a text (the pod's uid),
/// so pods draw different jitters while a test that names its seed sees the same draws on
/// every run, whatever the machine's speed.
pub(crate) struct Jitter(u64);

impl Jitter {
    /// The sequence for `seed` (its FNV-1a hash as the starting state).
    pub(crate) fn seeded(seed: &str) -> Jitter {
        Jitter(seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }))
    }

    /// The next check's jitter, whole seconds in `[0, MAX_JITTER)`.
    pub(crate) fn next(&mut self) -> i64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The remainder is below MAX_JITTER, so it fits.
        (z % MAX_JITTER.unsigned_abs()) as i64
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

    /// Requests a new token whenever `lifetime` says so by `clock` with a jitter drawn for
    /// each check from the pod's uid, until aborted (failures
    /// are retried at the next check, the current token staying in place).
    pub(crate) async fn keep_fresh(self, clock: Clock, mut lifetime: Lifetime) {
        let mut jitter = Jitter::seeded(&self.pod_uid);
        loop {
            tokio::time::sleep(CHECK).await;
            if !lifetime.needs_refresh(clock.now(), jitter.next()) {
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

    /// A token of the kubelet's lifetime issued at `issued`.
    fn issued_at(issued: i64) -> Lifetime {
        Lifetime {
            issued,
            expires: issued + EXPIRATION,
        }
    }

    /// Steps a clock a second at a time from the token's issue, drawing a jitter per check
    /// as `keep_fresh` does, until the token needs refreshing; the seconds since issue.
    fn first_refresh(lifetime: Lifetime, jitter: &mut Jitter) -> i64 {
        let mut now = lifetime.issued;
        while now <= lifetime.issued + MAX_AGE + 1 {
            if lifetime.needs_refresh(now, jitter.next()) {
                return now - lifetime.issued;
            }
            now += 1;
        }
        panic!("a token was never refreshed within a day of checks");
    }

    #[test]
    fn a_token_is_refreshed_past_80_percent_of_its_life_or_a_day_moved_by_the_jitter() {
        let hour = Lifetime {
            issued: 1000,
            expires: 1000 + 3600,
        };
        // Without jitter, the second after 80% (2880 s); with the most, 9 s before that.
        assert!(!hour.needs_refresh(1000 + 2880, 0));
        assert!(hour.needs_refresh(1000 + 2881, 0));
        assert!(!hour.needs_refresh(1000 + 2871, MAX_JITTER - 1));
        assert!(hour.needs_refresh(1000 + 2872, MAX_JITTER - 1));
        // A jitter out of bounds is clamped, never moving the refresh further.
        assert!(!hour.needs_refresh(1000 + 2871, 3600));
        assert!(!hour.needs_refresh(1000 + 2880, -5));
        // The kubelet's 3607 s: 20% is 721 s (whole seconds).
        let kubelet = Lifetime {
            issued: 0,
            expires: EXPIRATION,
        };
        assert!(!kubelet.needs_refresh(EXPIRATION - 721, 0));
        assert!(kubelet.needs_refresh(EXPIRATION - 720, 0));
        let year = Lifetime {
            issued: 0,
            expires: 365 * 24 * 3600,
        };
        assert!(!year.needs_refresh(MAX_AGE, 0));
        assert!(year.needs_refresh(MAX_AGE + 1, 0));
        assert!(!year.needs_refresh(MAX_AGE - 9, MAX_JITTER - 1));
        assert!(year.needs_refresh(MAX_AGE - 8, MAX_JITTER - 1));
    }

    #[test]
    fn jitter_is_bounded_and_the_same_for_the_same_seed() {
        let mut a = Jitter::seeded("pod-a");
        let mut again = Jitter::seeded("pod-a");
        let draws: Vec<i64> = (0..1000).map(|_| a.next()).collect();
        assert!(draws.iter().all(|j| (0..MAX_JITTER).contains(j)));
        assert!(draws
            .iter()
            .eq((0..1000).map(|_| again.next()).collect::<Vec<_>>().iter()));
        // Every value in the range is drawn.
        assert!((0..MAX_JITTER).all(|j| draws.contains(&j)), "{draws:?}");
    }

    #[test]
    fn pods_started_together_refresh_within_the_jitter_and_not_all_at_once() {
        let threshold = EXPIRATION - EXPIRATION * 20 / 100;
        let mut seconds = Vec::new();
        for pod in 0..20 {
            let issued = 1_700_000_000 + pod;
            let mut jitter = Jitter::seeded(&format!("uid-{pod}"));
            let at = first_refresh(issued_at(issued), &mut jitter);
            assert!(
                (threshold - MAX_JITTER + 2..=threshold + 1).contains(&at),
                "pod {pod} refreshed {at} s after issue"
            );
            // The same pod's checks decide the same again.
            let mut jitter = Jitter::seeded(&format!("uid-{pod}"));
            assert_eq!(
                first_refresh(issued_at(issued), &mut jitter),
                at,
                "pod {pod}"
            );
            seconds.push(at);
        }
        seconds.sort_unstable();
        seconds.dedup();
        assert!(seconds.len() > 1, "every pod refreshed at {seconds:?}");
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
