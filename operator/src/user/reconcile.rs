//! KafkaUser reconcile: read the user's cluster, Secret, given password and clients CA, run
//! the pure [`plan`], write the Secret, then the user's parts of the shared SCRAM credential,
//! ACL and client-quota documents (each a conditional update, and only when the part
//! changed), then the status. On deletion the finalizer removes the credential, the bindings
//! and the quotas; the Secret is garbage collected.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use tributary_crds::acls::AclSet;
use tributary_crds::quotas::{ClientQuotaDocument, Values};
use tributary_crds::registration::{
    acls_name, client_quotas_name, clients_ca_name, scram_credentials_name, ACLS_KEY,
    CLIENT_QUOTAS_KEY, SCRAM_CREDENTIALS_KEY,
};
use tributary_crds::scram::Users;
use tributary_crds::update::{ConditionalUpdate, Decision, RetryPolicy};
use tributary_crds::user::{AuthenticationType, USER_FINALIZER};
use tributary_crds::{is_paused, KafkaCluster, KafkaUser};

use super::documents::{
    ensure_credential, principal, remove_credentials, replace_bindings, replace_user_quotas,
};
use super::password::{generate_password, generate_salt};
use super::plan::{
    block, cluster_of, plan, text, Blocked, GivenPassword, ScramChange, SecretChange, UserInput,
    Writes,
};
use crate::apply::write_status;
use crate::certs::{CaState, Stored};
use crate::context::Context;
use crate::pause::set_paused;
use crate::shared_documents::{update_document, Updated};
use crate::{Error, Result};

/// Label value for metrics.
pub const CONTROLLER: &str = "kafkauser";

/// Reconciles one KafkaUser through the finalizer wrapper.
pub async fn reconcile(user: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = user.namespace().unwrap_or_default();
    let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, USER_FINALIZER, user, |event| async {
        match event {
            Finalizer::Apply(u) => apply(&u, &ctx).await,
            Finalizer::Cleanup(u) => cleanup(&u, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::from_finalizer("KafkaUser", e))
}

/// What the plan needs from the API.
struct UserView {
    cluster: Option<KafkaCluster>,
    secret: Option<Secret>,
    given_password: GivenPassword,
    clients_ca: Stored<CaState>,
}

async fn read(user: &KafkaUser, ctx: &Context) -> Result<UserView> {
    let ns = user.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let get_secret = |name: String| {
        let secrets = secrets.clone();
        let ns = ns.clone();
        async move {
            secrets
                .get_opt(&name)
                .await
                .map_err(|e| Error::kube(format!("get Secret {ns}/{name}"), e))
        }
    };
    let cluster = cluster_of(user);
    let kafka_cluster = match cluster {
        Some(name) => Api::<KafkaCluster>::namespaced(ctx.client.clone(), &ns)
            .get_opt(name)
            .await
            .map_err(|e| Error::kube(format!("get KafkaCluster {ns}/{name}"), e))?,
        None => None,
    };
    let secret = get_secret(user.name_any()).await?;
    let authentication = user.spec.authentication.as_ref();
    let given_password = match authentication
        .and_then(|a| a.password.as_ref())
        .map(|p| &p.value_from.secret_key_ref)
    {
        None => GivenPassword::NotGiven,
        Some(r) => match get_secret(r.name.clone()).await? {
            None => {
                GivenPassword::Unavailable(format!("the password Secret {} does not exist", r.name))
            }
            Some(s) => match text(&s, &r.key) {
                Some(p) => GivenPassword::Value(p),
                None => GivenPassword::Unavailable(format!(
                    "the password Secret {} has no UTF-8 key {}",
                    r.name, r.key
                )),
            },
        },
    };
    let wants_tls = authentication.is_some_and(|a| a.type_ == AuthenticationType::Tls);
    let clients_ca = match cluster.filter(|_| wants_tls) {
        Some(cluster) => CaState::from_secret(get_secret(clients_ca_name(cluster)).await?.as_ref()),
        None => Stored::Missing,
    };
    Ok(UserView {
        cluster: kafka_cluster,
        secret,
        given_password,
        clients_ca,
    })
}

async fn apply(user: &KafkaUser, ctx: &Context) -> Result<Action> {
    let generation = user.metadata.generation;
    if is_paused(&user.metadata) {
        let mut status = user.status.clone().unwrap_or_default();
        if set_paused(&mut status.conditions, true, generation) {
            write_status(&ctx.client, user, &status).await?;
        }
        return Ok(Action::await_change());
    }
    let view = read(user, ctx).await?;
    let scram = user
        .spec
        .authentication
        .as_ref()
        .is_some_and(|a| a.type_ == AuthenticationType::ScramSha512);
    let fresh_password = if scram {
        generate_password()?
    } else {
        String::new()
    };
    let mut planned = plan(UserInput {
        user,
        cluster: view.cluster.as_ref(),
        secret: view.secret.as_ref(),
        given_password: &view.given_password,
        clients_ca: &view.clients_ca,
        fresh_password: &fresh_password,
        now: SystemTime::now(),
    });
    set_paused(&mut planned.status.conditions, false, generation);
    let requeue = match planned.writes.take() {
        Some(writes) => match carry_out(user, ctx, view.secret.as_ref(), writes).await? {
            None => Action::requeue(Duration::from_secs(300)),
            Some(blocked) => {
                block(&mut planned.status, &blocked, generation);
                Action::requeue(Duration::from_secs(10))
            }
        },
        None => Action::requeue(Duration::from_secs(30)),
    };
    if user.status.as_ref() != Some(&planned.status) {
        write_status(&ctx.client, user, &planned.status).await?;
    }
    Ok(requeue)
}

/// Writes the Secret and the user's parts of the shared documents; `Some` when a shared
/// document does not exist yet (the KafkaCluster reconciler creates them).
async fn carry_out(
    user: &KafkaUser,
    ctx: &Context,
    existing: Option<&Secret>,
    writes: Writes,
) -> Result<Option<Blocked>> {
    let ns = user.namespace().unwrap_or_default();
    let name = user.name_any();
    let reference = user.object_ref(&());
    let Some(cluster) = cluster_of(user) else {
        return Ok(None);
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    match writes.secret {
        SecretChange::Keep => {}
        SecretChange::Write(secret) => {
            // Planned on the copy read at the start: a race lost retries the reconcile.
            let mut write = ConditionalUpdate::new(&secrets, &name).policy(RetryPolicy::once());
            if let Some(old) = existing {
                write = write.starting_from(old.clone());
            }
            write
                .run(|_| Decision::<_, _>::Replace((*secret).clone(), ()))
                .await
                .map_err(|e| {
                    Error::from_update(&format!("Secret {ns}/{name}"), e, |n| match n {})
                })?;
            let note = format!("wrote the credentials into Secret {name}");
            ctx.event(&reference, "SecretWritten", note, false).await;
        }
        SecretChange::Delete => {
            crate::apply::delete_if_exists::<Secret>(&ctx.client, &ns, &name).await?;
        }
    }
    let scram_name = scram_credentials_name(cluster);
    let scram = match &writes.scram {
        ScramChange::Ensure { password } => {
            let salt = generate_salt()?;
            let ensure = |users: &mut Users| ensure_credential(users, &name, password, &salt);
            update_document::<Secret, Users>(ctx, &ns, &scram_name, SCRAM_CREDENTIALS_KEY, &ensure)
                .await?
        }
        ScramChange::Remove => {
            let remove = |users: &mut Users| remove_credentials(users, &name);
            update_document::<Secret, Users>(ctx, &ns, &scram_name, SCRAM_CREDENTIALS_KEY, &remove)
                .await?
        }
    };
    let acls_object = acls_name(cluster);
    let who = principal(&name);
    let replace = |acls: &mut AclSet| replace_bindings(acls, &who, &writes.acls);
    let acls =
        update_document::<ConfigMap, AclSet>(ctx, &ns, &acls_object, ACLS_KEY, &replace).await?;
    let quotas_object = client_quotas_name(cluster);
    let set_quotas =
        |document: &mut ClientQuotaDocument| replace_user_quotas(document, &name, &writes.quotas);
    let quotas = update_document::<ConfigMap, ClientQuotaDocument>(
        ctx,
        &ns,
        &quotas_object,
        CLIENT_QUOTAS_KEY,
        &set_quotas,
    )
    .await?;
    if quotas == Updated::Written {
        let note = format!("client quotas of user={name} written to {quotas_object}");
        ctx.event(&reference, "QuotasWritten", note, false).await;
    }
    if scram == Updated::Written {
        let note = format!("SCRAM-SHA-512 credential of {name} written to {scram_name}");
        ctx.event(&reference, "CredentialWritten", note, false)
            .await;
    }
    if acls == Updated::Written {
        let note = format!("ACLs of {who} written to {acls_object}");
        ctx.event(&reference, "AclsWritten", note, false).await;
    }
    let missing = |object: &str| {
        Some(Blocked {
            reason: "ClusterNotReady",
            message: format!(
                "{object} does not exist yet (the KafkaCluster reconciler creates it)"
            ),
        })
    };
    let needs_scram = matches!(writes.scram, ScramChange::Ensure { .. });
    Ok(if scram == Updated::Missing && needs_scram {
        missing(&scram_name)
    } else if acls == Updated::Missing && !writes.acls.is_empty() {
        missing(&acls_object)
    } else if quotas == Updated::Missing && !writes.quotas.is_empty() {
        missing(&quotas_object)
    } else {
        None
    })
}

/// Deletion: the user's SCRAM credentials, ACL bindings and client quotas leave the shared
/// documents (a missing document has nothing to remove); the Secret goes by garbage
/// collection.
async fn cleanup(user: &KafkaUser, ctx: &Context) -> Result<Action> {
    let Some(cluster) = cluster_of(user) else {
        return Ok(Action::await_change());
    };
    let ns = user.namespace().unwrap_or_default();
    let name = user.name_any();
    let remove = |users: &mut Users| remove_credentials(users, &name);
    let scram_name = scram_credentials_name(cluster);
    update_document::<Secret, Users>(ctx, &ns, &scram_name, SCRAM_CREDENTIALS_KEY, &remove).await?;
    let who = principal(&name);
    let none = AclSet::new();
    let replace = |acls: &mut AclSet| replace_bindings(acls, &who, &none);
    update_document::<ConfigMap, AclSet>(ctx, &ns, &acls_name(cluster), ACLS_KEY, &replace).await?;
    let no_quotas = Values::new();
    let unset =
        |document: &mut ClientQuotaDocument| replace_user_quotas(document, &name, &no_quotas);
    let quotas_object = client_quotas_name(cluster);
    update_document::<ConfigMap, ClientQuotaDocument>(
        ctx,
        &ns,
        &quotas_object,
        CLIENT_QUOTAS_KEY,
        &unset,
    )
    .await?;
    let note = format!("removed the credentials, ACLs and quotas of {who}");
    ctx.event(&user.object_ref(&()), "Deleted", note, false)
        .await;
    Ok(Action::await_change())
}

/// Counts the failure, publishes a Warning Event (at most one per backoff period), and backs
/// off; conflicts retry soon.
pub fn error_policy(user: Arc<KafkaUser>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error);
    ctx.report_failure(user.object_ref(&()), error);
    match error {
        Error::Conflict { .. } => Action::requeue(Duration::from_millis(200)),
        _ => {
            tracing::warn!(user = %user.name_any(), %error, "reconcile failed");
            Action::requeue(ctx.settings.error_backoff)
        }
    }
}

/// The KafkaUsers of cluster `cluster` in namespace `ns`, to reconcile when the cluster or its
/// clients CA changes.
pub fn users_of(
    store: &Store<KafkaUser>,
    ns: Option<String>,
    cluster: &str,
) -> Vec<ObjectRef<KafkaUser>> {
    store
        .state()
        .iter()
        .filter(|u| u.namespace() == ns && cluster_of(u) == Some(cluster))
        .map(|u| ObjectRef::from(u.as_ref()))
        .collect()
}
