//! The KafkaUser decision: given the user, what was read of its cluster, Secret, given
//! password and clients CA, what the user's Secret should hold, what its part of the shared
//! credential and ACL documents should be, and what the status says. Pure (apart from the key
//! a new certificate gets); the reconciler reads the inputs and writes the result.
//!
//! An invalid or not yet satisfiable user gets `Ready=False` with a reason and nothing else is
//! written: what the brokers hold for it stays as it was until the spec can be carried out.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::{Resource, ResourceExt};
use tributary_crds::acls::AclSet;
use tributary_crds::conditions::{set_condition, READY};
use tributary_crds::quotas::Values;
use tributary_crds::registration::{clients_ca_name, CA_CERT_KEY, NOT_AFTER_ANNOTATION};
use tributary_crds::user::{
    AuthenticationType, JAAS_CONFIG_KEY, PASSWORD_KEY, USER_CERT_KEY, USER_KEY_KEY,
};
use tributary_crds::KafkaCluster;
use tributary_crds::{KafkaUser, KafkaUserStatus, CLUSTER_LABEL};

use super::documents::{bindings, principal, quota_values};
use super::password::jaas_config;
use crate::certs::{
    plan_leaf, CaState, LeafRequest, LeafState, Lifetimes, Stored, ISSUER_ANNOTATION,
};
use crate::pki::Usage;

/// Keys and their text values (a Secret's data, an object's annotations).
type Texts = BTreeMap<String, String>;

/// Why a user cannot be carried out now: the `Ready=False` reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// PascalCase reason.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl Blocked {
    fn new(reason: &'static str, message: impl Into<String>) -> Blocked {
        Blocked {
            reason,
            message: message.into(),
        }
    }
}

/// The password `spec.authentication.password` names, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GivenPassword {
    /// No password given (none needed, or one is generated).
    NotGiven,
    /// The password read from the referenced Secret.
    Value(String),
    /// The reference cannot be resolved; why.
    Unavailable(String),
}

/// What the plan looks at.
#[derive(Clone, Copy, Debug)]
pub struct UserInput<'a> {
    /// The user as last read.
    pub user: &'a KafkaUser,
    /// The KafkaCluster its label names, if it exists (its certificate lifetimes apply to
    /// the user's certificate, as Strimzi's clients CA settings do).
    pub cluster: Option<&'a KafkaCluster>,
    /// The user's Secret, if one exists.
    pub secret: Option<&'a Secret>,
    /// The given password, when the spec names one.
    pub given_password: &'a GivenPassword,
    /// The cluster's clients CA Secret as read (TLS users only; `Missing` for others).
    pub clients_ca: &'a Stored<CaState>,
    /// A freshly generated password, used when the user needs one and has none yet.
    pub fresh_password: &'a str,
    /// The time, for certificate validity and renewal.
    pub now: SystemTime,
}

/// What becomes of the user's Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretChange {
    /// It holds what it should.
    Keep,
    /// Create it, or replace the one read, with this.
    Write(Box<Secret>),
    /// The user has no credentials: delete it (it is the user's own).
    Delete,
}

/// The user's SCRAM credential in the shared document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScramChange {
    /// A credential verifying this password.
    Ensure {
        /// The password.
        password: String,
    },
    /// No credential (TLS or no authentication).
    Remove,
}

/// Everything to write for a user that can be carried out.
#[derive(Clone, Debug, PartialEq)]
pub struct Writes {
    /// The user's Secret.
    pub secret: SecretChange,
    /// Its SCRAM credential.
    pub scram: ScramChange,
    /// Exactly the bindings its principal should have.
    pub acls: AclSet,
    /// Exactly the client quotas of entity `user=<name>`, by Kafka key.
    pub quotas: Values,
}

/// The outcome: the status, and the writes unless the user is blocked.
#[derive(Clone, Debug, PartialEq)]
pub struct UserPlan {
    /// The status to write once the writes succeeded.
    pub status: KafkaUserStatus,
    /// `None`: blocked (the status says why); nothing else is written.
    pub writes: Option<Writes>,
}

/// The cluster a KafkaUser belongs to: its [`CLUSTER_LABEL`].
pub fn cluster_of(user: &KafkaUser) -> Option<&str> {
    user.labels()
        .get(CLUSTER_LABEL)
        .map(String::as_str)
        .filter(|c| !c.is_empty())
}

/// Sets `Ready=False` for `blocked` in `status`.
pub fn block(status: &mut KafkaUserStatus, blocked: &Blocked, generation: Option<i64>) {
    set_condition(
        &mut status.conditions,
        READY,
        false,
        blocked.reason,
        blocked.message.clone(),
        generation,
    );
}

/// Computes the user's writes and next status.
pub fn plan(input: UserInput<'_>) -> UserPlan {
    let user = input.user;
    let generation = user.metadata.generation;
    let mut status = user.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    status.username = Some(user.name_any());
    match writes(input) {
        Ok(writes) => {
            status.secret = match writes.secret {
                SecretChange::Delete => None,
                _ => Some(user.name_any()),
            };
            set_condition(
                &mut status.conditions,
                READY,
                true,
                "Ready",
                "credentials and ACLs are in place",
                generation,
            );
            UserPlan {
                status,
                writes: Some(writes),
            }
        }
        Err(blocked) => {
            block(&mut status, &blocked, generation);
            UserPlan {
                status,
                writes: None,
            }
        }
    }
}

fn writes(input: UserInput<'_>) -> Result<Writes, Blocked> {
    let user = input.user;
    let name = user.name_any();
    let Some(cluster) = cluster_of(user) else {
        return Err(Blocked::new(
            "ClusterLabelMissing",
            format!("label the KafkaUser with {CLUSTER_LABEL}=<KafkaCluster name>"),
        ));
    };
    let Some(kafka_cluster) = input.cluster else {
        return Err(Blocked::new(
            "ClusterNotFound",
            format!("KafkaCluster {cluster:?} not found in this namespace"),
        ));
    };
    let acls = bindings(&principal(&name), user.spec.authorization.as_ref())
        .map_err(|e| Blocked::new("InvalidAcl", format!("an ACL rule is invalid: {e}")))?;
    let quotas = quota_values(user.spec.quotas.as_ref());
    if let Some(secret) = input.secret {
        let ours = user
            .uid()
            .is_some_and(|uid| secret.owner_references().iter().any(|o| o.uid == uid));
        if !ours {
            return Err(Blocked::new(
                "SecretNameTaken",
                format!("Secret {name} exists and is not this KafkaUser's; delete or rename it"),
            ));
        }
    }
    let authentication = user.spec.authentication.as_ref().map(|a| a.type_);
    let (data, annotations, scram) = match authentication {
        None => {
            let secret = if input.secret.is_some() {
                SecretChange::Delete
            } else {
                SecretChange::Keep
            };
            return Ok(Writes {
                secret,
                scram: ScramChange::Remove,
                acls,
                quotas,
            });
        }
        Some(AuthenticationType::ScramSha512) => {
            let password = scram_password(input, &name)?;
            let data = BTreeMap::from([
                (PASSWORD_KEY.to_owned(), password.clone()),
                (JAAS_CONFIG_KEY.to_owned(), jaas_config(&name, &password)),
            ]);
            (data, BTreeMap::new(), ScramChange::Ensure { password })
        }
        Some(AuthenticationType::Tls) => {
            let lifetimes = Lifetimes::of(&kafka_cluster.spec.certificate_authority);
            let (data, annotations) = certificate(input, cluster, &name, lifetimes)?;
            (data, annotations, ScramChange::Remove)
        }
    };
    let wanted = user_secret(user, cluster, data, annotations);
    let secret = match input.secret {
        Some(existing) if same_secret(existing, &wanted) => SecretChange::Keep,
        _ => SecretChange::Write(Box::new(wanted)),
    };
    Ok(Writes {
        secret,
        scram,
        acls,
        quotas,
    })
}

/// The password: the given one, else the one the user's Secret holds, else a fresh one.
fn scram_password(input: UserInput<'_>, name: &str) -> Result<String, Blocked> {
    let reference = input
        .user
        .spec
        .authentication
        .as_ref()
        .and_then(|a| a.password.as_ref())
        .map(|p| &p.value_from.secret_key_ref);
    if reference.is_some_and(|r| r.name == name) {
        return Err(Blocked::new(
            "InvalidPassword",
            format!("the password cannot come from Secret {name}: the operator writes the user's credentials there; keep it in another Secret"),
        ));
    }
    match input.given_password {
        GivenPassword::Value(p) if p.is_empty() => Err(Blocked::new(
            "InvalidPassword",
            "the given password is empty",
        )),
        GivenPassword::Value(p) => Ok(p.clone()),
        GivenPassword::Unavailable(why) => Err(Blocked::new("PasswordSecretNotFound", why.clone())),
        GivenPassword::NotGiven => Ok(input
            .secret
            .and_then(|s| text(s, PASSWORD_KEY))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| input.fresh_password.to_owned())),
    }
}

/// The certificate data: the one in the user's Secret while it is not due for renewal and
/// its CA was not renewed since (with `ca.crt` brought up to date), else a new one.
fn certificate(
    input: UserInput<'_>,
    cluster: &str,
    name: &str,
    lifetimes: Lifetimes,
) -> Result<(Texts, Texts), Blocked> {
    let ca_name = clients_ca_name(cluster);
    let ca = match input.clients_ca {
        Stored::Found(ca) => ca,
        Stored::Missing => {
            return Err(Blocked::new(
                "ClientsCaNotReady",
                format!("the clients CA Secret {ca_name} does not exist yet (the KafkaCluster reconciler creates it)"),
            ))
        }
        Stored::Unusable(why) => {
            return Err(Blocked::new(
                "ClientsCaNotReady",
                format!("the clients CA Secret {ca_name} cannot be used yet: {why}"),
            ))
        }
    };
    let request = LeafRequest {
        common_name: name,
        dns_names: &[],
        usage: Usage::Client,
        ca,
        ca_name: &ca_name,
    };
    let (leaf, _) = plan_leaf(
        stored_certificate(input.secret),
        &request,
        lifetimes,
        input.now,
    )
    .map_err(|e| Blocked::new("CertificateFailed", e.to_string()))?;
    let data = BTreeMap::from([
        (USER_CERT_KEY.to_owned(), leaf.cert_pem),
        (USER_KEY_KEY.to_owned(), leaf.key_pem),
        (CA_CERT_KEY.to_owned(), leaf.ca_bundle),
    ]);
    let annotations = BTreeMap::from([
        (NOT_AFTER_ANNOTATION.to_owned(), leaf.not_after.to_string()),
        (ISSUER_ANNOTATION.to_owned(), leaf.issuer),
    ]);
    Ok((data, annotations))
}

/// The certificate a user's Secret holds (`user.crt`, `user.key`, `ca.crt`, and the
/// annotations saying when it ends and which CA signed it).
fn stored_certificate(secret: Option<&Secret>) -> Stored<LeafState> {
    let Some(secret) = secret else {
        return Stored::Missing;
    };
    let annotation = |key: &str| secret.annotations().get(key).cloned();
    let leaf = (|| {
        Some(LeafState {
            cert_pem: text(secret, USER_CERT_KEY)?,
            key_pem: text(secret, USER_KEY_KEY)?,
            ca_bundle: text(secret, CA_CERT_KEY)?,
            not_after: annotation(NOT_AFTER_ANNOTATION)?.parse().ok()?,
            issuer: annotation(ISSUER_ANNOTATION)?,
            dns_names: Vec::new(),
        })
    })();
    match leaf {
        Some(leaf) => Stored::Found(leaf),
        None => Stored::Unusable("no complete client certificate".to_owned()),
    }
}

/// The text under `key` of `secret`, if it is UTF-8.
pub fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// The user's Secret holding `data`, owned by the user (so it goes with it) and labelled with
/// its cluster.
fn user_secret(
    user: &KafkaUser,
    cluster: &str,
    data: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Secret {
    let labels = BTreeMap::from([
        (CLUSTER_LABEL.to_owned(), cluster.to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            crate::FIELD_MANAGER.to_owned(),
        ),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(user.name_any()),
            namespace: user.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: user.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

/// Whether `existing` already holds what `wanted` does (data, our labels and annotations).
fn same_secret(existing: &Secret, wanted: &Secret) -> bool {
    let contains = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    existing.data == wanted.data
        && contains(existing.labels(), wanted.labels())
        && contains(existing.annotations(), wanted.annotations())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pki::new_ca;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use tributary_crds::conditions::FALSE;

    const NOW_SECS: u64 = 1_800_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    fn user(spec: serde_json::Value, labelled: bool) -> KafkaUser {
        let labels = if labelled {
            serde_json::json!({ CLUSTER_LABEL: "demo" })
        } else {
            serde_json::json!({})
        };
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaUser",
            "metadata": { "name": "alice", "namespace": "ns", "uid": "u-1", "generation": 3, "labels": labels },
            "spec": spec,
        }))
        .unwrap()
    }

    fn demo() -> &'static KafkaCluster {
        static DEMO: std::sync::OnceLock<KafkaCluster> = std::sync::OnceLock::new();
        DEMO.get_or_init(|| {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
                "metadata": { "name": "demo", "namespace": "ns" },
                "spec": { "brokers": 1 },
            }))
            .unwrap()
        })
    }

    fn input<'a>(user: &'a KafkaUser, secret: Option<&'a Secret>) -> UserInput<'a> {
        UserInput {
            user,
            cluster: Some(demo()),
            secret,
            given_password: &GivenPassword::NotGiven,
            clients_ca: &Stored::Missing,
            fresh_password: "fresh",
            now: now(),
        }
    }

    fn ready(plan: &UserPlan) -> (&str, &str) {
        let c = plan
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    fn written(plan: &UserPlan) -> Secret {
        match &plan.writes.as_ref().unwrap().secret {
            SecretChange::Write(s) => (**s).clone(),
            other => panic!("expected a Secret write, got {other:?}"),
        }
    }

    fn scram() -> serde_json::Value {
        serde_json::json!({ "authentication": { "type": "scram-sha-512" } })
    }

    #[test]
    fn a_scram_user_gets_a_generated_password_that_stays() {
        let u = user(scram(), true);
        let first = plan(input(&u, None));
        assert_eq!(ready(&first), ("True", "Ready"));
        assert_eq!(first.status.username.as_deref(), Some("alice"));
        assert_eq!(first.status.secret.as_deref(), Some("alice"));
        assert_eq!(first.status.observed_generation, Some(3));
        let secret = written(&first);
        assert_eq!(text(&secret, PASSWORD_KEY).as_deref(), Some("fresh"));
        assert_eq!(
            text(&secret, JAAS_CONFIG_KEY).as_deref(),
            Some("org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"fresh\";")
        );
        assert_eq!(
            secret.labels().get(CLUSTER_LABEL).map(String::as_str),
            Some("demo")
        );
        assert_eq!(secret.owner_references()[0].uid, "u-1");
        assert_eq!(
            first.writes.as_ref().unwrap().scram,
            ScramChange::Ensure {
                password: "fresh".into()
            }
        );

        // Next reconcile: another fresh candidate, but the Secret's password is kept.
        let mut again = input(&u, Some(&secret));
        again.fresh_password = "other";
        let second = plan(again);
        let w = second.writes.unwrap();
        assert_eq!(w.secret, SecretChange::Keep);
        assert_eq!(
            w.scram,
            ScramChange::Ensure {
                password: "fresh".into()
            }
        );
    }

    #[test]
    fn a_given_password_is_used_and_its_absence_is_reported() {
        let u = user(
            serde_json::json!({ "authentication": { "type": "scram-sha-512",
                "password": { "valueFrom": { "secretKeyRef": { "name": "pw", "key": "k" } } } } }),
            true,
        );
        let given = GivenPassword::Value("chosen".into());
        let mut i = input(&u, None);
        i.given_password = &given;
        let p = plan(i);
        assert_eq!(text(&written(&p), PASSWORD_KEY).as_deref(), Some("chosen"));

        let missing = GivenPassword::Unavailable("the password Secret pw does not exist".into());
        let mut i = input(&u, None);
        i.given_password = &missing;
        let p = plan(i);
        assert_eq!(ready(&p), (FALSE, "PasswordSecretNotFound"));
        assert!(p.writes.is_none(), "nothing written while blocked");
    }

    #[test]
    fn invalid_or_unsatisfiable_users_are_not_ready_with_a_reason() {
        let unlabelled = user(scram(), false);
        assert_eq!(
            ready(&plan(input(&unlabelled, None))),
            (FALSE, "ClusterLabelMissing")
        );

        let u = user(scram(), true);
        let mut i = input(&u, None);
        i.cluster = None;
        assert_eq!(ready(&plan(i)), (FALSE, "ClusterNotFound"));

        // A rule Kafka would refuse that reached the operator unvalidated (an empty name).
        let bad_acl = user(
            serde_json::json!({ "authorization": { "type": "simple", "acls": [
                { "resource": { "type": "topic", "name": "" }, "operations": ["Read"] } ] } }),
            true,
        );
        assert_eq!(ready(&plan(input(&bad_acl, None))), (FALSE, "InvalidAcl"));

        // Someone else's Secret of the user's name is not taken over.
        let mut foreign = Secret::default();
        foreign.metadata.name = Some("alice".into());
        foreign.metadata.owner_references = Some(vec![OwnerReference {
            uid: "other".into(),
            ..OwnerReference::default()
        }]);
        assert_eq!(
            ready(&plan(input(&u, Some(&foreign)))),
            (FALSE, "SecretNameTaken")
        );

        let self_ref = user(
            serde_json::json!({ "authentication": { "type": "scram-sha-512",
                "password": { "valueFrom": { "secretKeyRef": { "name": "alice", "key": "k" } } } } }),
            true,
        );
        let given = GivenPassword::Value("x".into());
        let mut i = input(&self_ref, None);
        i.given_password = &given;
        assert_eq!(ready(&plan(i)), (FALSE, "InvalidPassword"));

        let tls = user(
            serde_json::json!({ "authentication": { "type": "tls" } }),
            true,
        );
        let p = plan(input(&tls, None));
        assert_eq!(ready(&p), (FALSE, "ClientsCaNotReady"));
        assert!(p.status.conditions[0].message.contains("demo-clients-ca"));
    }

    #[test]
    fn acls_are_the_principals_and_no_authentication_means_no_secret_and_no_credential() {
        let u = user(
            serde_json::json!({ "authorization": { "type": "simple", "acls": [
                { "resource": { "type": "topic", "name": "orders", "patternType": "prefix" },
                  "operations": ["Read", "Describe"], "host": "*", "type": "allow" } ] } }),
            true,
        );
        let w = plan(input(&u, None)).writes.unwrap();
        assert_eq!(w.secret, SecretChange::Keep);
        assert_eq!(w.scram, ScramChange::Remove);
        assert_eq!(w.acls.len(), 2);
        assert!(w.acls.iter().all(|b| b.entry.principal == "User:alice"));

        // A user that had a Secret (it was SCRAM) and now has no authentication loses it.
        let had = written(&plan(input(&user(scram(), true), None)));
        let w = plan(input(&u, Some(&had))).writes.unwrap();
        assert_eq!(w.secret, SecretChange::Delete);
    }

    /// A clients CA Secret as the KafkaCluster reconciler keeps it.
    fn clients_ca(now: SystemTime) -> Stored<CaState> {
        let ca = new_ca(
            "demo-clients-ca",
            Duration::from_secs(5 * 365 * 86_400),
            now,
        )
        .unwrap();
        Stored::Found(CaState {
            cert_pem: ca.cert_pem,
            key_pem: ca.key_pem,
            not_after: ca.not_after,
            previous: None,
        })
    }

    #[test]
    fn a_tls_certificate_is_kept_until_due_or_until_the_ca_changes() {
        let ca = clients_ca(now());
        let Stored::Found(ca_state) = &ca else {
            unreachable!()
        };
        let lifetimes = Lifetimes::of(&demo().spec.certificate_authority);
        let u = user(
            serde_json::json!({ "authentication": { "type": "tls" } }),
            true,
        );
        let mut i = input(&u, None);
        i.clients_ca = &ca;
        let p = plan(i);
        assert_eq!(ready(&p), ("True", "Ready"));
        assert_eq!(p.writes.as_ref().unwrap().scram, ScramChange::Remove);
        let secret = written(&p);
        assert_eq!(text(&secret, CA_CERT_KEY), Some(ca_state.bundle()));
        assert!(text(&secret, USER_CERT_KEY)
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        assert!(text(&secret, USER_KEY_KEY).unwrap().contains("PRIVATE KEY"));
        assert_eq!(
            secret.annotations()[ISSUER_ANNOTATION],
            ca_state.fingerprint()
        );
        let not_after: i64 = secret.annotations()[NOT_AFTER_ANNOTATION].parse().unwrap();
        let expected = i64::try_from(NOW_SECS + lifetimes.validity.as_secs()).unwrap();
        assert!(
            (not_after - expected).abs() < 600,
            "{not_after} vs {expected}"
        );

        // Later, still before renewal: kept as is.
        let mut i = input(&u, Some(&secret));
        i.clients_ca = &ca;
        i.now = now() + Duration::from_secs(86_400);
        assert_eq!(plan(i).writes.unwrap().secret, SecretChange::Keep);

        // Within the renewal window: a new certificate.
        let mut i = input(&u, Some(&secret));
        i.clients_ca = &ca;
        i.now = now() + lifetimes.validity - lifetimes.renew_before / 2;
        let renewed = written(&plan(i));
        assert_ne!(text(&renewed, USER_CERT_KEY), text(&secret, USER_CERT_KEY));

        // A renewed CA: a new certificate from it, and its bundle in ca.crt.
        let ca2 = clients_ca(now());
        let Stored::Found(ca2_state) = &ca2 else {
            unreachable!()
        };
        let mut i = input(&u, Some(&secret));
        i.clients_ca = &ca2;
        let reissued = written(&plan(i));
        assert_eq!(text(&reissued, CA_CERT_KEY), Some(ca2_state.bundle()));
        assert_eq!(
            reissued.annotations()[ISSUER_ANNOTATION],
            ca2_state.fingerprint()
        );
        assert_ne!(text(&reissued, USER_CERT_KEY), text(&secret, USER_CERT_KEY));

        // An unusable CA Secret is reported, not used.
        let broken = Stored::Unusable("no numeric tributary.dev/not-after annotation".into());
        let mut i = input(&u, Some(&secret));
        i.clients_ca = &broken;
        assert_eq!(ready(&plan(i)), (FALSE, "ClientsCaNotReady"));
    }
}
