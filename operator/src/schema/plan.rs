//! The KafkaSchema decisions, pure: which registry a schema goes to (or why it cannot go
//! anywhere yet), what to ask of the registry given what it holds, and the status and Event
//! that the registry's answer makes. The reconciler does the reading and calling.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use tributary_crds::cluster::registry_url;
use tributary_crds::conditions::set_condition;
use tributary_crds::schema::{
    CompatibilityLevel, KafkaSchema, KafkaSchemaStatus, SCHEMA_INCOMPATIBLE, SCHEMA_READY,
};
use tributary_crds::KafkaCluster;

use super::client::{ReferenceBody, Registered, SchemaBody};

/// Ready reason: the registry holds the spec's schema under the subject.
pub const REGISTERED: &str = "Registered";
/// Ready and Incompatible reason: the registry refused the schema as incompatible.
pub const INCOMPATIBLE: &str = "Incompatible";
/// Ready reason: the registry refused the schema as unparseable (Confluent's 42201).
pub const INVALID_SCHEMA: &str = "InvalidSchema";
/// Ready reason: `spec.clusterRef` names no KafkaCluster.
pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
/// Ready reason: the cluster has no `spec.schemaRegistry`.
pub const REGISTRY_NOT_ENABLED: &str = "RegistryNotEnabled";
/// Ready reason: `spec.schemaFrom` names a ConfigMap or key that does not exist.
pub const SCHEMA_SOURCE_NOT_FOUND: &str = "SchemaSourceNotFound";
/// Ready reason: an older KafkaSchema already declares this subject of this cluster.
pub const SUBJECT_TAKEN: &str = "SubjectTaken";
/// Ready reason: the registry could not be reached or failed; retried soon.
pub const REGISTRY_UNAVAILABLE: &str = "RegistryUnavailable";

/// Why a schema cannot be registered now: the Ready reason and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The Ready condition's reason.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl Blocked {
    fn new(reason: &'static str, message: String) -> Self {
        Blocked { reason, message }
    }
}

/// The URL of a ready registry pod (the first by name), for the operator's own calls: a pod
/// IP is reached wherever the operator runs, Service names only where cluster DNS resolves
/// them (not on the local control plane). `None` while no pod is ready.
pub fn ready_pod_url(pods: &[Pod], port: i32, https: bool) -> Option<String> {
    let mut ready: Vec<(&str, &str)> = pods
        .iter()
        .filter_map(|p| {
            let status = p.status.as_ref()?;
            let is_ready = status
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ip = status.pod_ip.as_deref()?;
            is_ready.then_some((p.metadata.name.as_deref().unwrap_or_default(), ip))
        })
        .collect();
    ready.sort_unstable();
    let scheme = if https { "https" } else { "http" };
    ready
        .first()
        .map(|(_, ip)| format!("{scheme}://{ip}:{port}"))
}

/// The registry URL of `schema`'s cluster: `template` (the operator's override, with
/// `{namespace}`, `{cluster}` and `{port}` filled in) when given, else the URL the cluster's
/// status reports, else the one its Service has.
pub fn registry_url_of(
    schema: &KafkaSchema,
    cluster: Option<&KafkaCluster>,
    template: Option<&str>,
) -> Result<String, Blocked> {
    let cluster_name = &schema.spec.cluster_ref;
    let ns = schema.namespace().unwrap_or_default();
    let Some(cluster) = cluster else {
        return Err(Blocked::new(
            CLUSTER_NOT_FOUND,
            format!("KafkaCluster {ns}/{cluster_name} does not exist"),
        ));
    };
    let Some(registry) = &cluster.spec.schema_registry else {
        return Err(Blocked::new(
            REGISTRY_NOT_ENABLED,
            format!("KafkaCluster {ns}/{cluster_name} has no schema registry; set its spec.schemaRegistry"),
        ));
    };
    if let Some(t) = template {
        return Ok(t
            .replace("{namespace}", &ns)
            .replace("{cluster}", cluster_name)
            .replace("{port}", &registry.port.to_string()));
    }
    let reported = cluster
        .status
        .as_ref()
        .and_then(|s| s.schema_registry.as_ref())
        .map(|r| r.url.clone());
    Ok(reported
        .unwrap_or_else(|| registry_url(cluster_name, &ns, registry.port, registry.tls.is_some())))
}

/// An older KafkaSchema (by creation time, then name) of the same cluster and subject, which
/// owns the subject; `schema` then leaves it alone.
pub fn subject_taken_by<'a>(schema: &KafkaSchema, others: &'a [KafkaSchema]) -> Option<&'a str> {
    let key = |s: &KafkaSchema| (s.metadata.creation_timestamp.clone(), s.name_any());
    let mine = key(schema);
    others
        .iter()
        .filter(|o| o.uid() != schema.uid() && o.namespace() == schema.namespace())
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .filter(|o| {
            o.spec.cluster_ref == schema.spec.cluster_ref && o.spec.subject == schema.spec.subject
        })
        .filter(|o| key(o) < mine)
        .map(|o| o.metadata.name.as_deref().unwrap_or_default())
        .min()
}

/// The register/lookup body of `schema` with its text.
pub fn body(schema: &KafkaSchema, text: String) -> SchemaBody {
    SchemaBody {
        schema: text,
        schema_type: schema.spec.schema_type.as_str().to_owned(),
        references: schema
            .spec
            .references
            .iter()
            .map(|r| ReferenceBody {
                name: r.name.clone(),
                subject: r.subject.clone(),
                version: r.version,
            })
            .collect(),
    }
}

/// What the registry holds for the subject.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RegistryState {
    /// The subject's own compatibility level, if it has one.
    pub subject_level: Option<String>,
    /// Where the spec's schema is registered under the subject, if it is.
    pub existing: Option<Registered>,
}

/// The calls to make, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Set the subject's compatibility level to this first.
    pub set_compatibility: Option<CompatibilityLevel>,
    /// Register the schema (it is not under the subject yet).
    pub register: bool,
}

/// What to ask of the registry: the level only when the spec sets one and it differs (a
/// level set by others is left alone when the spec has none), and a registration only when
/// the schema is not registered under the subject already (so a reconcile of an unchanged
/// KafkaSchema writes nothing).
pub fn steps(wanted_level: Option<CompatibilityLevel>, state: &RegistryState) -> Steps {
    Steps {
        set_compatibility: wanted_level
            .filter(|l| state.subject_level.as_deref() != Some(l.as_str())),
        register: state.existing.is_none(),
    }
}

/// What came of the reconcile, for the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The registry holds the schema; `new_version` when this reconcile registered it.
    Registered {
        /// Id and version.
        registered: Registered,
        /// The registry.
        url: String,
        /// Registered now (else found registered).
        new_version: bool,
    },
    /// The registry refused it as incompatible (409), with its message.
    Incompatible(String),
    /// The registry refused it as invalid (42201), with its message.
    Invalid(String),
    /// It could not be taken to the registry.
    Blocked(Blocked),
}

/// An Event to publish about the KafkaSchema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaEvent {
    /// Reason.
    pub reason: &'static str,
    /// Note.
    pub note: String,
    /// Warning (else Normal).
    pub warning: bool,
}

/// The status `outcome` makes from `old`, and the Event worth publishing: one per new version
/// and one per change of the reason it is not Ready (or per generation refused), so a
/// periodic re-check publishes nothing.
pub fn status_for(
    old: &KafkaSchemaStatus,
    outcome: &Outcome,
    generation: Option<i64>,
) -> (KafkaSchemaStatus, Option<SchemaEvent>) {
    let mut status = old.clone();
    status.observed_generation = generation;
    let old_reason = ready_reason(&old.conditions);
    let changed =
        |reason: &str| old_reason != Some(reason) || old.observed_generation != generation;
    let conditions = &mut status.conditions;
    let event = match outcome {
        Outcome::Registered {
            registered,
            url,
            new_version,
        } => {
            let message = format!(
                "version {} (id {}) in {url}",
                registered.version, registered.id
            );
            set_condition(
                conditions,
                SCHEMA_READY,
                true,
                REGISTERED,
                message.clone(),
                generation,
            );
            set_condition(
                conditions,
                SCHEMA_INCOMPATIBLE,
                false,
                "Compatible",
                "",
                generation,
            );
            status.id = Some(registered.id);
            status.version = Some(registered.version);
            status.registry_url = Some(url.clone());
            new_version.then(|| SchemaEvent {
                reason: REGISTERED,
                note: format!("registered {message}"),
                warning: false,
            })
        }
        Outcome::Incompatible(message) | Outcome::Invalid(message) => {
            // The registry refused the schema: (reason, Incompatible status, its message).
            let (reason, incompatible, detail) = match outcome {
                Outcome::Incompatible(_) => (INCOMPATIBLE, true, message.as_str()),
                _ => (
                    INVALID_SCHEMA,
                    false,
                    "the schema does not parse, so compatibility was not checked",
                ),
            };
            let emit = changed(reason);
            set_condition(
                conditions,
                SCHEMA_READY,
                false,
                reason,
                message.clone(),
                generation,
            );
            set_condition(
                conditions,
                SCHEMA_INCOMPATIBLE,
                incompatible,
                reason,
                detail,
                generation,
            );
            emit.then(|| SchemaEvent {
                reason,
                note: message.clone(),
                warning: true,
            })
        }
        Outcome::Blocked(blocked) => {
            let emit = old_reason != Some(blocked.reason);
            set_condition(
                conditions,
                SCHEMA_READY,
                false,
                blocked.reason,
                blocked.message.clone(),
                generation,
            );
            emit.then(|| SchemaEvent {
                reason: blocked.reason,
                note: blocked.message.clone(),
                warning: true,
            })
        }
    };
    (status, event)
}

fn ready_reason(conditions: &[Condition]) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == SCHEMA_READY)
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tributary_crds::conditions::is_true;

    fn schema(name: &str, created: &str, spec: serde_json::Value) -> KafkaSchema {
        serde_json::from_value(json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaSchema",
            "metadata": {"name": name, "namespace": "kafka", "uid": format!("uid-{name}"),
                         "creationTimestamp": created},
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("bad schema: {e}"))
    }

    fn orders(name: &str, created: &str) -> KafkaSchema {
        schema(
            name,
            created,
            json!({"clusterRef": "demo", "subject": "orders-value", "schema": "\"string\""}),
        )
    }

    fn cluster(spec: serde_json::Value, status: serde_json::Value) -> KafkaCluster {
        serde_json::from_value(json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": "demo", "namespace": "kafka"},
            "spec": spec, "status": status,
        }))
        .unwrap_or_else(|e| panic!("bad cluster: {e}"))
    }

    #[test]
    fn the_url_comes_from_the_template_then_the_status_then_the_service() {
        let s = orders("a", "2026-01-01T00:00:00Z");
        let c = cluster(
            json!({"brokers": 1, "schemaRegistry": {"port": 8085}}),
            json!({}),
        );
        assert_eq!(
            registry_url_of(&s, Some(&c), None),
            Ok("http://demo-schema-registry.kafka.svc:8085".to_owned())
        );
        let reported = cluster(
            json!({"brokers": 1, "schemaRegistry": {}}),
            json!({"schemaRegistry": {"url": "http://elsewhere:1"}}),
        );
        assert_eq!(
            registry_url_of(&s, Some(&reported), None),
            Ok("http://elsewhere:1".to_owned())
        );
        assert_eq!(
            registry_url_of(
                &s,
                Some(&c),
                Some("http://127.0.0.1:{port}/{namespace}/{cluster}")
            ),
            Ok("http://127.0.0.1:8085/kafka/demo".to_owned())
        );
    }

    #[test]
    fn no_cluster_or_no_registry_blocks_with_a_reason() {
        let s = orders("a", "2026-01-01T00:00:00Z");
        let blocked = registry_url_of(&s, None, None).err();
        assert_eq!(blocked.map(|b| b.reason), Some(CLUSTER_NOT_FOUND));
        let bare = cluster(json!({"brokers": 1}), json!({}));
        let blocked = registry_url_of(&s, Some(&bare), Some("http://x")).err();
        assert_eq!(blocked.map(|b| b.reason), Some(REGISTRY_NOT_ENABLED));
    }

    #[test]
    fn the_older_schema_owns_a_subject() {
        let older = orders("b", "2026-01-01T00:00:00Z");
        let younger = orders("a", "2026-01-02T00:00:00Z");
        let other_subject = schema(
            "c",
            "2025-01-01T00:00:00Z",
            json!({"clusterRef": "demo", "subject": "payments-value", "schema": "\"int\""}),
        );
        let all = vec![older.clone(), younger.clone(), other_subject];
        assert_eq!(subject_taken_by(&younger, &all), Some("b"));
        assert_eq!(subject_taken_by(&older, &all), None);
    }

    #[test]
    fn unchanged_registrations_call_nothing() {
        let state = RegistryState {
            subject_level: Some("BACKWARD".into()),
            existing: Some(Registered { id: 1, version: 1 }),
        };
        assert_eq!(
            steps(Some(CompatibilityLevel::Backward), &state),
            Steps {
                set_compatibility: None,
                register: false
            }
        );
    }

    #[test]
    fn a_new_schema_is_registered_after_its_level_is_set() {
        let state = RegistryState {
            subject_level: None,
            existing: None,
        };
        assert_eq!(
            steps(Some(CompatibilityLevel::Full), &state),
            Steps {
                set_compatibility: Some(CompatibilityLevel::Full),
                register: true
            }
        );
        // Without a level in the spec, one set by others stays.
        let set_elsewhere = RegistryState {
            subject_level: Some("NONE".into()),
            existing: None,
        };
        assert_eq!(steps(None, &set_elsewhere).set_compatibility, None);
    }

    #[test]
    fn registration_sets_id_version_and_ready_and_announces_new_versions_only() {
        let outcome = Outcome::Registered {
            registered: Registered { id: 7, version: 2 },
            url: "http://r:8081".into(),
            new_version: true,
        };
        let (status, event) = status_for(&KafkaSchemaStatus::default(), &outcome, Some(3));
        assert_eq!((status.id, status.version), (Some(7), Some(2)));
        assert_eq!(status.observed_generation, Some(3));
        assert!(is_true(&status.conditions, SCHEMA_READY));
        assert!(!is_true(&status.conditions, SCHEMA_INCOMPATIBLE));
        assert_eq!(event.map(|e| e.reason), Some(REGISTERED));
        let recheck = Outcome::Registered {
            registered: Registered { id: 7, version: 2 },
            url: "http://r:8081".into(),
            new_version: false,
        };
        let (again, event) = status_for(&status, &recheck, Some(3));
        assert_eq!(event, None);
        assert_eq!(again.conditions, status.conditions);
    }

    #[test]
    fn an_incompatible_change_keeps_the_last_version_and_reports_the_message_once() {
        let registered = Outcome::Registered {
            registered: Registered { id: 1, version: 1 },
            url: "http://r".into(),
            new_version: true,
        };
        let (v1, _) = status_for(&KafkaSchemaStatus::default(), &registered, Some(1));
        let refused = Outcome::Incompatible("field x has no default".into());
        let (status, event) = status_for(&v1, &refused, Some(2));
        assert_eq!((status.id, status.version), (Some(1), Some(1)));
        assert!(!is_true(&status.conditions, SCHEMA_READY));
        assert!(is_true(&status.conditions, SCHEMA_INCOMPATIBLE));
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == SCHEMA_INCOMPATIBLE)
            .map(|c| c.message.clone());
        assert_eq!(c.as_deref(), Some("field x has no default"));
        assert_eq!(
            event.as_ref().map(|e| (e.reason, e.warning)),
            Some((INCOMPATIBLE, true))
        );
        let (_, repeat) = status_for(&status, &refused, Some(2));
        assert_eq!(repeat, None);
    }

    #[test]
    fn invalid_and_blocked_schemas_are_not_ready_with_their_reason() {
        let (status, event) = status_for(
            &KafkaSchemaStatus::default(),
            &Outcome::Invalid("unexpected token".into()),
            Some(1),
        );
        assert_eq!(ready_reason(&status.conditions), Some(INVALID_SCHEMA));
        assert!(event.is_some());
        let blocked = Outcome::Blocked(Blocked::new(SUBJECT_TAKEN, "owned by b".into()));
        let (status, event) = status_for(&status, &blocked, Some(1));
        assert_eq!(ready_reason(&status.conditions), Some(SUBJECT_TAKEN));
        assert_eq!(event.map(|e| e.note), Some("owned by b".to_owned()));
        let (_, again) = status_for(&status, &blocked, Some(1));
        assert_eq!(again, None);
    }

    #[test]
    fn the_operator_calls_the_first_ready_registry_pod() {
        use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
        let pod = |name: &str, ip: Option<&str>, ready: &str| Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            status: Some(PodStatus {
                pod_ip: ip.map(str::to_owned),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: ready.to_owned(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pods = [
            pod("r-c", Some("10.0.0.3"), "True"),
            pod("r-a", Some("10.0.0.1"), "False"),
            pod("r-b", Some("10.0.0.2"), "True"),
            pod("r-0", None, "True"),
        ];
        assert_eq!(
            ready_pod_url(&pods, 8081, false).as_deref(),
            Some("http://10.0.0.2:8081")
        );
        assert_eq!(
            ready_pod_url(&pods, 8081, true).as_deref(),
            Some("https://10.0.0.2:8081")
        );
        assert_eq!(ready_pod_url(&pods[1..2], 8081, false), None);
    }
}
