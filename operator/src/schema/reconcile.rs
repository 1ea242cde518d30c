//! KafkaSchema reconcile: read the cluster, the other KafkaSchemas and the schema text, ask
//! the pure [`plan`](super::plan) which registry and which calls, make them, write the status
//! with a resourceVersion precondition and publish an Event on changes; on deletion, soft-delete
//! the subject when `deletionPolicy: Delete` says so.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use tributary_crds::schema::{KafkaSchema, SchemaDeletionPolicy, SCHEMA_FINALIZER};
use tributary_crds::{is_paused, KafkaCluster};

use super::client::{RegistryClient, RegistryError, RegistryTls, INCOMPATIBLE, INVALID_SCHEMA};
use super::plan::{
    body, ready_pod_url, registry_url_of, status_for, steps, subject_taken_by, Blocked, Outcome,
    RegistryState, REGISTRY_UNAVAILABLE, SCHEMA_SOURCE_NOT_FOUND, SUBJECT_TAKEN,
};
use super::tls::registry_tls;
use crate::builders::registry::selector_labels as registry_selector_labels;
use crate::builders::Names;
use crate::context::Context;
use crate::pause::set_paused;
use crate::{Error, Result};

/// Label value for metrics.
pub const CONTROLLER: &str = "kafkaschema";

/// How often a schema is checked against the registry: a subject deleted or changed behind
/// the operator's back is put right, and a changed `schemaFrom` ConfigMap key registered.
/// One lookup per schema per minute.
const RECHECK: Duration = Duration::from_secs(60);
/// How soon a schema the registry could not take (unreachable, starting) is tried again.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(5);
/// How soon a schema waiting for its cluster, registry or source is looked at again (the
/// cluster's changes also wake it).
const RETRY_BLOCKED: Duration = Duration::from_secs(30);

/// Reconciles one KafkaSchema through the finalizer wrapper.
pub async fn reconcile(schema: Arc<KafkaSchema>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = schema.namespace().unwrap_or_default();
    let api: Api<KafkaSchema> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, SCHEMA_FINALIZER, schema, |event| async {
        match event {
            Finalizer::Apply(s) => apply(&s, &ctx).await,
            Finalizer::Cleanup(s) => cleanup(&s, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::from_finalizer("KafkaSchema", e))
}

/// The schema's cluster, or `None` when it does not exist.
async fn read_cluster(schema: &KafkaSchema, ctx: &Context) -> Result<Option<KafkaCluster>> {
    let ns = schema.namespace().unwrap_or_default();
    let name = &schema.spec.cluster_ref;
    Api::<KafkaCluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("get KafkaCluster {ns}/{name}"), e))
}

/// The schema text: inline, or the ConfigMap key `schemaFrom` names.
async fn schema_text(schema: &KafkaSchema, ctx: &Context) -> Result<Result<String, Blocked>> {
    if let Some(text) = &schema.spec.schema {
        return Ok(Ok(text.clone()));
    }
    let Some(source) = &schema.spec.schema_from else {
        return Ok(Err(Blocked {
            reason: SCHEMA_SOURCE_NOT_FOUND,
            message: "neither schema nor schemaFrom is set".to_owned(),
        }));
    };
    let ns = schema.namespace().unwrap_or_default();
    let key = &source.config_map_key_ref;
    let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&key.name)
        .await
        .map_err(|e| Error::kube(format!("get ConfigMap {ns}/{}", key.name), e))?;
    let text = cm
        .and_then(|c| c.data)
        .and_then(|d| d.get(&key.key).cloned());
    Ok(text.ok_or_else(|| Blocked {
        reason: SCHEMA_SOURCE_NOT_FOUND,
        message: format!("ConfigMap {ns}/{} has no key {}", key.name, key.key),
    }))
}

/// Where the operator calls the schema's registry: the URL override of its settings, else a
/// ready registry pod, else the URL the cluster reports (its Service).
async fn reach(
    schema: &KafkaSchema,
    ctx: &Context,
) -> Result<std::result::Result<(String, Option<RegistryTls>), Blocked>> {
    let cluster = read_cluster(schema, ctx).await?;
    let template = ctx.settings.schema_registry_url.as_deref();
    let url = match registry_url_of(schema, cluster.as_ref(), template) {
        Ok(url) => url,
        Err(blocked) => return Ok(Err(blocked)),
    };
    let tls = match &cluster {
        Some(c) => match registry_tls(ctx, c).await? {
            Ok(tls) => tls,
            Err(blocked) => return Ok(Err(blocked)),
        },
        None => None,
    };
    let Some((cluster, registry)) = cluster
        .as_ref()
        .and_then(|c| Some((c, c.spec.schema_registry.as_ref()?)))
        .filter(|_| template.is_none())
    else {
        return Ok(Ok((url, tls)));
    };
    let ns = schema.namespace().unwrap_or_default();
    let names = Names::of(cluster)?;
    let selector = registry_selector_labels(&names)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::kube(format!("list the schema registry pods in {ns}"), e))?;
    let https = registry.tls.is_some();
    let url = ready_pod_url(&pods.items, registry.port, https).unwrap_or(url);
    Ok(Ok((url, tls)))
}

/// Takes the schema to the registry: the decisions are [`steps`]'s, the answers become an
/// [`Outcome`]. An unreachable registry is an outcome too (the status says so), not an error.
async fn register(schema: &KafkaSchema, ctx: &Context) -> Result<Outcome> {
    let (url, tls) = match reach(schema, ctx).await? {
        Ok(reached) => reached,
        Err(blocked) => return Ok(Outcome::Blocked(blocked)),
    };
    let ns = schema.namespace().unwrap_or_default();
    let others = Api::<KafkaSchema>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("list kafkaschemas in {ns}"), e))?
        .items;
    if let Some(owner) = subject_taken_by(schema, &others) {
        return Ok(Outcome::Blocked(Blocked {
            reason: SUBJECT_TAKEN,
            message: format!(
                "KafkaSchema {owner} already declares subject {} of cluster {}; this one is left alone",
                schema.spec.subject, schema.spec.cluster_ref
            ),
        }));
    }
    let text = match schema_text(schema, ctx).await? {
        Ok(text) => text,
        Err(blocked) => return Ok(Outcome::Blocked(blocked)),
    };
    let request = body(schema, text);
    let outcome = match RegistryClient::new(&url, tls) {
        Ok(client) => talk(&client, schema, &request).await,
        Err(e) => Err(e),
    };
    Ok(match outcome {
        Ok(outcome) => outcome,
        Err(e) if e.code() == Some(INCOMPATIBLE) => Outcome::Incompatible(api_message(&e)),
        Err(e) if e.code() == Some(INVALID_SCHEMA) => Outcome::Invalid(api_message(&e)),
        Err(e) => {
            tracing::warn!(schema = %schema.name_any(), error = %e, "schema registry call failed");
            Outcome::Blocked(Blocked {
                reason: REGISTRY_UNAVAILABLE,
                message: e.to_string(),
            })
        }
    })
}

/// The registry's own message of an error it answered with.
fn api_message(e: &RegistryError) -> String {
    match e {
        RegistryError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The calls: read the subject's level and look the schema up, then set the level and
/// register as [`steps`] says, then look it up again for the version.
async fn talk(
    client: &RegistryClient,
    schema: &KafkaSchema,
    request: &super::client::SchemaBody,
) -> Result<Outcome, RegistryError> {
    let subject = &schema.spec.subject;
    let normalize = schema.spec.normalize;
    let wanted = schema.spec.compatibility;
    let state = RegistryState {
        subject_level: match wanted {
            Some(_) => client.subject_compatibility(subject).await?,
            None => None,
        },
        existing: client.lookup(subject, request, normalize).await?,
    };
    let todo = steps(wanted, &state);
    if let Some(level) = todo.set_compatibility {
        client
            .set_subject_compatibility(subject, level.as_str())
            .await?;
    }
    let registered = match state.existing {
        Some(found) if !todo.register => found,
        _ => {
            let id = client.register(subject, request, normalize).await?;
            let found = client.lookup(subject, request, normalize).await?;
            found.ok_or_else(|| RegistryError::Api {
                status: 404,
                code: super::client::SCHEMA_NOT_FOUND,
                message: format!(
                    "schema id {id} was registered under {subject} but a lookup does not find it"
                ),
            })?
        }
    };
    Ok(Outcome::Registered {
        registered,
        url: client.url().to_owned(),
        new_version: todo.register,
    })
}

async fn apply(schema: &KafkaSchema, ctx: &Context) -> Result<Action> {
    if is_paused(&schema.metadata) {
        let mut status = schema.status.clone().unwrap_or_default();
        if set_paused(&mut status.conditions, true, schema.metadata.generation) {
            crate::apply::write_status(&ctx.client, schema, &status).await?;
        }
        return Ok(Action::await_change());
    }
    let outcome = register(schema, ctx).await?;
    let old = schema.status.clone().unwrap_or_default();
    let (mut status, event) = status_for(&old, &outcome, schema.metadata.generation);
    set_paused(&mut status.conditions, false, schema.metadata.generation);
    if status != old {
        crate::apply::write_status(&ctx.client, schema, &status).await?;
    }
    if let Some(ev) = event {
        ctx.event(&schema.object_ref(&()), ev.reason, ev.note, ev.warning)
            .await;
    }
    Ok(Action::requeue(match &outcome {
        Outcome::Registered { .. } | Outcome::Incompatible(_) | Outcome::Invalid(_) => RECHECK,
        Outcome::Blocked(b) if b.reason == REGISTRY_UNAVAILABLE => RETRY_UNAVAILABLE,
        Outcome::Blocked(_) => RETRY_BLOCKED,
    }))
}

/// Deletion: `Retain` lets the object go and keeps the subject. `Delete` soft-deletes the
/// subject first; with no cluster or no registry left there is nothing to delete, and an
/// unreachable registry keeps the finalizer (retried) rather than forgetting the subject.
async fn cleanup(schema: &KafkaSchema, ctx: &Context) -> Result<Action> {
    let reference = schema.object_ref(&());
    let subject = &schema.spec.subject;
    if schema.spec.deletion_policy == SchemaDeletionPolicy::Retain {
        let note = format!("subject {subject} kept in the registry (deletionPolicy: Retain)");
        ctx.event(&reference, "Retained", note, false).await;
        return Ok(Action::await_change());
    }
    let (url, tls) = match reach(schema, ctx).await? {
        Ok(reached) => reached,
        Err(blocked) => {
            let note = format!("subject {subject} not deleted: {}", blocked.message);
            ctx.event(&reference, "SubjectNotDeleted", note, true).await;
            return Ok(Action::await_change());
        }
    };
    let client = RegistryClient::new(&url, tls).map_err(|source| Error::Registry {
        what: format!("soft-delete subject {subject}"),
        source,
    })?;
    client
        .soft_delete_subject(subject)
        .await
        .map_err(|source| Error::Registry {
            what: format!("soft-delete subject {subject} in {url}"),
            source,
        })?;
    let note = format!("subject {subject} soft-deleted in {url} (deletionPolicy: Delete)");
    ctx.event(&reference, "SubjectDeleted", note, false).await;
    Ok(Action::await_change())
}

/// Counts the failure, publishes a Warning Event (at most one per backoff period), and backs
/// off; conflicts retry soon.
pub fn error_policy(schema: Arc<KafkaSchema>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error);
    ctx.report_failure(schema.object_ref(&()), error);
    match error {
        Error::Conflict { .. } => Action::requeue(Duration::from_millis(200)),
        _ => {
            tracing::warn!(schema = %schema.name_any(), %error, "reconcile failed");
            Action::requeue(ctx.settings.error_backoff)
        }
    }
}

/// The KafkaSchemas of cluster `cluster` in `ns` (a cluster change wakes them: its registry
/// appeared, moved or went).
pub fn schemas_of(
    store: &Store<KafkaSchema>,
    ns: Option<String>,
    cluster: &str,
) -> Vec<ObjectRef<KafkaSchema>> {
    store
        .state()
        .iter()
        .filter(|s| s.namespace() == ns && s.spec.cluster_ref == cluster)
        .map(|s| ObjectRef::from(s.as_ref()))
        .collect()
}
