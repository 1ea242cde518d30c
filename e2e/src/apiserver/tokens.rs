//! The bearer tokens the server knows, as kube-apiserver's token authenticators know them: one
//! static admin token per server (what `--token-auth-file` gives a kubeadm or kind
//! administrator), and the ServiceAccount tokens TokenRequest issues, bound to their
//! ServiceAccount and optionally to a pod, valid until they expire.
//!
//! Tokens are opaque random strings kept in the server's state, not signed JWTs: only this
//! server reads them, and looking one up answers what the real server reads from a JWT's
//! claims (whom, until when, bound to which objects), then checks the same way that those
//! objects still exist with the same uid.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use serde_json::Value;

use super::rbac::UserInfo;
use super::store::{Key, Store};

/// Who the admin token authenticates as.
pub const ADMIN: &str = "kubernetes-admin";

/// The audience of tokens for this API server (a TokenRequest's default; a token for other
/// audiences does not authenticate here), as a kind cluster's issuer names it.
pub(crate) const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// How long a terminating pod's tokens stay valid past its deletionTimestamp, as the real
/// server allows (so a pod can still talk to the API during its grace period and a little
/// after).
const DELETED_POD_GRACE: i64 = 60;

/// The pod a token is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BoundPod {
    pub(crate) name: String,
    pub(crate) uid: String,
    /// The node the pod was scheduled to when the token was issued, as the real server
    /// records it in a pod-bound token.
    pub(crate) node: Option<PodNode>,
}

/// A pod's node as a token records it: its name, and its uid when the Node object exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodNode {
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
}

/// What a ServiceAccount token stands for: the claims a real token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claims {
    /// The token's own id (a JWT's `jti`), which its user carries as `credential-id`.
    pub(crate) id: String,
    pub(crate) namespace: String,
    pub(crate) account: String,
    pub(crate) account_uid: String,
    pub(crate) pod: Option<BoundPod>,
    /// Whom it is for: only tokens for [`API_AUDIENCE`] authenticate to this server.
    pub(crate) audiences: Vec<String>,
    /// Seconds since the epoch when it was issued and when it stops being valid.
    pub(crate) issued: i64,
    pub(crate) expires: i64,
}

/// Why a presented token does not authenticate (logged, and a TokenReview's `status.error`;
/// a request presenting it only sees 401).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Unknown,
    /// Its audiences and those it was presented for have nothing in common.
    OtherAudience {
        token: Vec<String>,
        wanted: Vec<String>,
    },
    Expired,
    AccountGone,
    PodGone,
}

impl Refusal {
    /// What a TokenReview reports as `status.error`: nothing for a token no authenticator
    /// recognises (as Kubernetes' authenticators pass over a string that is not their
    /// token), the service-account authenticator's words otherwise.
    pub(crate) fn review_error(&self) -> Option<String> {
        (*self != Refusal::Unknown).then(|| self.to_string())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unknown => f.write_str("invalid bearer token"),
            Refusal::OtherAudience { token, wanted } => write!(
                f,
                "token audiences {token:?} is invalid for the target audiences {wanted:?}"
            ),
            Refusal::Expired => f.write_str("service account token has expired"),
            Refusal::AccountGone | Refusal::PodGone => {
                f.write_str("service account token has been invalidated")
            }
        }
    }
}

/// Whom a token authenticates as, and for which of the audiences asked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Authenticated {
    pub(crate) user: UserInfo,
    pub(crate) audiences: Vec<String>,
}

/// The tokens of one server.
pub(crate) struct Tokens {
    admin: String,
    issued: HashMap<String, Claims>,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            admin: random_token(),
            issued: HashMap::new(),
        }
    }
}

/// 256 unpredictable bits, hex: std's `RandomState` keys come from the operating system's
/// random source, and each state hashes differently.
fn random_token() -> String {
    (0..4)
        .map(|i: u64| format!("{:016x}", RandomState::new().hash_one(i)))
        .collect()
}

impl Tokens {
    /// The administrator's token.
    pub(crate) fn admin(&self) -> &str {
        &self.admin
    }

    /// A new token standing for `claims`; tokens expired by `now` are forgotten.
    pub(crate) fn issue(&mut self, claims: Claims, now: i64) -> String {
        self.issued.retain(|_, c| c.expires > now);
        let token = random_token();
        self.issued.insert(token.clone(), claims);
        token
    }

    /// Whom `token` authenticates as at `now` to this server, given the objects in `store`.
    pub(crate) fn authenticate(
        &self,
        token: &str,
        store: &Store,
        now: i64,
    ) -> Result<UserInfo, Refusal> {
        let here = [API_AUDIENCE.to_owned()];
        self.authenticate_for(token, store, now, &here)
            .map(|a| a.user)
    }

    /// Whom `token` authenticates as at `now` for a client of `wanted` audiences (a
    /// TokenReview's), and which of them it is for. The admin token, like any static token,
    /// has no audiences of its own and is good for whatever is asked.
    pub(crate) fn authenticate_for(
        &self,
        token: &str,
        store: &Store,
        now: i64,
        wanted: &[String],
    ) -> Result<Authenticated, Refusal> {
        if token == self.admin {
            return Ok(Authenticated {
                user: UserInfo::new(ADMIN, &["system:masters", "system:authenticated"]),
                audiences: wanted.to_vec(),
            });
        }
        let claims = self.issued.get(token).ok_or(Refusal::Unknown)?;
        let audiences: Vec<String> = claims
            .audiences
            .iter()
            .filter(|a| wanted.contains(a))
            .cloned()
            .collect();
        if audiences.is_empty() {
            return Err(Refusal::OtherAudience {
                token: claims.audiences.clone(),
                wanted: wanted.to_vec(),
            });
        }
        if now >= claims.expires {
            return Err(Refusal::Expired);
        }
        let account = Key::new("/serviceaccounts", &claims.namespace, &claims.account);
        if uid(store.get(&account)) != Some(&claims.account_uid) {
            return Err(Refusal::AccountGone);
        }
        if let Some(pod) = &claims.pod {
            let stored = store.get(&Key::new("/pods", &claims.namespace, &pod.name));
            if uid(stored) != Some(&pod.uid) || deleted_long_ago(stored, now) {
                return Err(Refusal::PodGone);
            }
        }
        let mut user = UserInfo::service_account(&claims.namespace, &claims.account);
        user.uid = claims.account_uid.clone();
        user.extra = extra(claims);
        Ok(Authenticated { user, audiences })
    }
}

/// The extra a ServiceAccount token's user carries, as Kubernetes' authenticator gives it:
/// the token's id, and for a pod-bound token the pod's name and uid and its node's.
fn extra(claims: &Claims) -> BTreeMap<String, Vec<String>> {
    let mut extra = BTreeMap::new();
    let mut add = |key: &str, value: &str| {
        extra.insert(
            format!("authentication.kubernetes.io/{key}"),
            vec![value.to_owned()],
        );
    };
    add("credential-id", &format!("JTI={}", claims.id));
    if let Some(pod) = &claims.pod {
        add("pod-name", &pod.name);
        add("pod-uid", &pod.uid);
        if let Some(node) = &pod.node {
            add("node-name", &node.name);
            if let Some(uid) = &node.uid {
                add("node-uid", uid);
            }
        }
    }
    extra
}

fn uid(obj: Option<&Value>) -> Option<&str> {
    obj?["metadata"]["uid"].as_str()
}

/// Whether `obj` has been terminating for longer than its tokens stay valid.
fn deleted_long_ago(obj: Option<&Value>, now: i64) -> bool {
    obj.and_then(|o| o["metadata"]["deletionTimestamp"].as_str())
        .and_then(crate::clock::parse_rfc3339)
        .is_some_and(|at| at + DELETED_POD_GRACE < now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn store() -> Store {
        let mut store = Store::new(10);
        let sa = json!({"metadata": {"name": "broker", "namespace": "kafka", "uid": "sa-1"}});
        store.put(&Key::new("/serviceaccounts", "kafka", "broker"), sa);
        let pod = json!({"metadata": {"name": "b-0", "namespace": "kafka", "uid": "pod-1"}});
        store.put(&Key::new("/pods", "kafka", "b-0"), pod);
        store
    }

    fn claims(pod: Option<(&str, &str)>) -> Claims {
        Claims {
            id: "token-1".into(),
            namespace: "kafka".into(),
            account: "broker".into(),
            account_uid: "sa-1".into(),
            pod: pod.map(|(name, uid)| BoundPod {
                name: name.into(),
                uid: uid.into(),
                node: None,
            }),
            audiences: vec![API_AUDIENCE.into()],
            issued: NOW,
            expires: NOW + 3600,
        }
    }

    #[test]
    fn the_admin_token_is_the_admin_in_system_masters() {
        let tokens = Tokens::default();
        let admin = tokens.admin().to_owned();
        let user = tokens.authenticate(&admin, &store(), NOW);
        assert_eq!(
            user,
            Ok(UserInfo::new(
                ADMIN,
                &["system:masters", "system:authenticated"]
            ))
        );
        assert_eq!(admin.len(), 64);
        assert_ne!(Tokens::default().admin(), admin, "a token per server");
    }

    #[test]
    fn a_service_account_token_is_the_account_with_its_groups() {
        let mut tokens = Tokens::default();
        let token = tokens.issue(claims(Some(("b-0", "pod-1"))), NOW);
        let user = tokens.authenticate(&token, &store(), NOW + 10);
        let user = user.unwrap_or_default();
        assert_eq!(user.name, "system:serviceaccount:kafka:broker");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kafka",
                "system:authenticated"
            ]
        );
        assert_eq!(user.uid, "sa-1");
        let extra = |k: &str| {
            user.extra
                .get(&format!("authentication.kubernetes.io/{k}"))
                .cloned()
        };
        assert_eq!(extra("pod-name"), Some(vec!["b-0".to_owned()]));
        assert_eq!(extra("pod-uid"), Some(vec!["pod-1".to_owned()]));
        assert_eq!(extra("credential-id"), Some(vec!["JTI=token-1".to_owned()]));
        assert_eq!(extra("node-name"), None, "the pod had no node");
    }

    #[test]
    fn a_token_bound_to_a_scheduled_pod_names_its_node() {
        let mut c = claims(Some(("b-0", "pod-1")));
        if let Some(pod) = c.pod.as_mut() {
            pod.node = Some(PodNode {
                name: "node-a".into(),
                uid: Some("node-uid-1".into()),
            });
        }
        let all = extra(&c);
        let get = |k: &str| {
            all.get(&format!("authentication.kubernetes.io/{k}"))
                .cloned()
        };
        assert_eq!(get("node-name"), Some(vec!["node-a".to_owned()]));
        assert_eq!(get("node-uid"), Some(vec!["node-uid-1".to_owned()]));
        let unbound = extra(&claims(None));
        assert_eq!(
            unbound.keys().collect::<Vec<_>>(),
            ["authentication.kubernetes.io/credential-id"]
        );
    }

    #[test]
    fn tokens_are_refused_once_what_they_stand_for_is_gone() {
        let mut tokens = Tokens::default();
        let unbound = tokens.issue(claims(None), NOW);
        let bound = tokens.issue(claims(Some(("b-0", "pod-1"))), NOW);
        let mut s = store();
        let at = |tokens: &Tokens, t: &str, s: &Store, now| tokens.authenticate(t, s, now).err();
        assert_eq!(at(&tokens, "bogus", &s, NOW), Some(Refusal::Unknown));
        assert_eq!(at(&tokens, &unbound, &s, NOW + 3599), None);
        assert_eq!(
            at(&tokens, &unbound, &s, NOW + 3600),
            Some(Refusal::Expired)
        );

        // The pod recreated under its name (a StatefulSet's) is another pod.
        let again = json!({"metadata": {"name": "b-0", "namespace": "kafka", "uid": "pod-2"}});
        s.put(&Key::new("/pods", "kafka", "b-0"), again);
        assert_eq!(at(&tokens, &bound, &s, NOW), Some(Refusal::PodGone));
        assert_eq!(at(&tokens, &unbound, &s, NOW), None);
        s.remove(&Key::new("/pods", "kafka", "b-0"));
        assert_eq!(at(&tokens, &bound, &s, NOW), Some(Refusal::PodGone));

        let sa = Key::new("/serviceaccounts", "kafka", "broker");
        s.put(&sa, json!({"metadata": {"name": "broker", "uid": "sa-2"}}));
        assert_eq!(at(&tokens, &unbound, &s, NOW), Some(Refusal::AccountGone));
        s.remove(&sa);
        assert_eq!(at(&tokens, &unbound, &s, NOW), Some(Refusal::AccountGone));
    }

    #[test]
    fn a_terminating_pods_token_lasts_a_minute_past_its_deletion_timestamp() {
        let mut tokens = Tokens::default();
        let bound = tokens.issue(claims(Some(("b-0", "pod-1"))), NOW);
        let mut s = store();
        let deleting = json!({"metadata": {"name": "b-0", "uid": "pod-1",
            "deletionTimestamp": crate::clock::rfc3339(NOW + 30)}});
        s.put(&Key::new("/pods", "kafka", "b-0"), deleting);
        assert!(tokens.authenticate(&bound, &s, NOW + 90).is_ok());
        assert_eq!(
            tokens.authenticate(&bound, &s, NOW + 91).err(),
            Some(Refusal::PodGone)
        );
    }

    #[test]
    fn a_token_for_another_audience_does_not_authenticate_here() {
        let mut tokens = Tokens::default();
        let mut for_vault = claims(None);
        for_vault.audiences = vec!["vault".into()];
        let token = tokens.issue(for_vault, NOW);
        assert_eq!(
            tokens.authenticate(&token, &store(), NOW).err(),
            Some(Refusal::OtherAudience {
                token: vec!["vault".into()],
                wanted: vec![API_AUDIENCE.into()]
            })
        );
        let vault = ["vault".to_owned(), "other".to_owned()];
        let answer = tokens.authenticate_for(&token, &store(), NOW, &vault);
        assert_eq!(answer.map(|a| a.audiences), Ok(vec!["vault".to_owned()]));
    }

    #[test]
    fn issuing_forgets_expired_tokens() {
        let mut tokens = Tokens::default();
        let old = tokens.issue(claims(None), NOW);
        tokens.issue(claims(None), NOW + 3600);
        assert_eq!(
            tokens.authenticate(&old, &store(), NOW).err(),
            Some(Refusal::Unknown)
        );
    }
}
