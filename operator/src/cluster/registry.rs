//! The schema registry of `spec.schemaRegistry`: apply what [`crate::builders::registry`]
//! renders, remove it when the field goes, and report its URL and readiness in the status
//! (`status.schemaRegistry` and the `SchemaRegistry` condition). With `tls` and no Secret
//! named, it first keeps the registry's certificate (Secret `<cluster>-schema-registry-tls`,
//! issued from the cluster CA for the Service's names) current, as the brokers' is.

use k8s_openapi::api::apps::v1::Deployment;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use tributary_crds::cluster::{registry_name, registry_url, SchemaRegistryStatus};
use tributary_crds::conditions::set_condition;
use tributary_crds::registration::cluster_ca_name;
use tributary_crds::schema_registry::registry_tls_name;
use tributary_crds::{KafkaCluster, KafkaClusterStatus, KafkaUser};

use super::certificates::{ensure_leaf, get};
use crate::apply::{apply, delete_if_exists};
use crate::builders::registry::{schema_registry, RegistryPlan};
use crate::builders::registry_security::{operator_issues_certificate, registry_dns_names};
use crate::builders::{network_policy, Names};
use crate::certs::{CaState, LeafRequest, Lifetimes, Stored};
use crate::context::Context;
use crate::pki::Usage;
use crate::Result;

/// Condition type reporting the schema registry of `spec.schemaRegistry`.
pub const SCHEMA_REGISTRY: &str = "SchemaRegistry";

/// What became of the schema registry this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryOutcome {
    /// Not asked for (an earlier one was removed).
    Disabled,
    /// Asked for but cannot work; why.
    Unsupported(String),
    /// Applied: where it serves, and how many of its pods are ready out of how many.
    Applied {
        /// The in-cluster URL.
        url: String,
        /// Pods asked for.
        replicas: i32,
        /// Pods ready.
        ready: i32,
    },
}

/// Records `outcome` in `status`: the URL and ready pods, and the `SchemaRegistry`
/// condition (removed, with the URL, when no registry is asked for).
pub fn set_registry_status(
    status: &mut KafkaClusterStatus,
    outcome: &RegistryOutcome,
    generation: Option<i64>,
) {
    let conditions: &mut Vec<Condition> = &mut status.conditions;
    match outcome {
        RegistryOutcome::Disabled => {
            conditions.retain(|c| c.type_ != SCHEMA_REGISTRY);
            status.schema_registry = None;
        }
        RegistryOutcome::Unsupported(why) => {
            set_condition(
                conditions,
                SCHEMA_REGISTRY,
                false,
                "Unsupported",
                why.clone(),
                generation,
            );
            status.schema_registry = None;
        }
        RegistryOutcome::Applied {
            url,
            replicas,
            ready,
        } => {
            let serving = *ready > 0 && ready >= replicas;
            let (reason, message) = if serving {
                ("Ready", format!("{ready} registry pods ready at {url}"))
            } else {
                (
                    "Starting",
                    format!("{ready} of {replicas} registry pods ready"),
                )
            };
            set_condition(
                conditions,
                SCHEMA_REGISTRY,
                serving,
                reason,
                message,
                generation,
            );
            status.schema_registry = Some(SchemaRegistryStatus {
                url: url.clone(),
                ready_replicas: *ready,
            });
        }
    }
}

/// Applies the registry `cluster` asks for, or removes one it no longer asks for (only when
/// the status says one was managed, so clusters without a registry make no calls).
pub async fn reconcile_registry(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
) -> Result<RegistryOutcome> {
    let c = &ctx.client;
    match schema_registry(cluster, names) {
        RegistryPlan::Deploy(o) => {
            if cluster
                .spec
                .schema_registry
                .as_ref()
                .is_some_and(operator_issues_certificate)
            {
                // Before the Deployment: its pods wait for the Secret they mount.
                ensure_registry_certificate(ctx, cluster, names, SystemTime::now()).await?;
            }
            // Its KafkaUser, when the listener authenticates clients (kept, if the listener
            // changes to one that does not, until the registry goes: no call per reconcile).
            if let Some(user) = &o.user {
                apply::<KafkaUser>(c, user).await?;
            }
            if let Some(policy) =
                network_policy::registry(cluster, names, &ctx.settings.lease_namespace)
            {
                apply::<NetworkPolicy>(c, &policy).await?;
            }
            apply::<ServiceAccount>(c, &o.service_account).await?;
            apply::<Role>(c, &o.role).await?;
            apply::<RoleBinding>(c, &o.role_binding).await?;
            apply::<Service>(c, &o.service).await?;
            let applied = apply::<Deployment>(c, &o.deployment).await?;
            let (port, tls) = cluster.spec.schema_registry.as_ref().map_or(
                (
                    tributary_crds::schema_registry::DEFAULT_REGISTRY_PORT,
                    false,
                ),
                |r| (r.port, r.tls.is_some()),
            );
            Ok(RegistryOutcome::Applied {
                url: registry_url(&names.cluster, &names.namespace, port, tls),
                replicas: o.deployment.spec.replicas.unwrap_or(1),
                ready: applied.status.and_then(|s| s.ready_replicas).unwrap_or(0),
            })
        }
        plan => {
            if managed_before(cluster) {
                remove(ctx, names).await?;
            }
            Ok(match plan {
                RegistryPlan::Unsupported(why) => RegistryOutcome::Unsupported(why),
                _ => RegistryOutcome::Disabled,
            })
        }
    }
}

/// Issues or renews the registry's serving certificate from the cluster CA as due at `now`
/// (server and client usage: instances present it to each other when forwarding writes).
async fn ensure_registry_certificate(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    now: SystemTime,
) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let ca_name = cluster_ca_name(&names.cluster);
    let Stored::Found(ca) = CaState::from_secret(get(&api, names, &ca_name).await?.as_ref()) else {
        // The cluster's certificates are kept before the registry; a CA not usable yet is
        // issued then, and the next reconcile issues this certificate.
        return Ok(());
    };
    let name = registry_tls_name(&names.cluster);
    let dns_names = registry_dns_names(names);
    let common_name = registry_name(&names.cluster);
    let request = LeafRequest {
        common_name: &common_name,
        dns_names: &dns_names,
        usage: Usage::Broker,
        ca: &ca,
        ca_name: &ca_name,
    };
    let lifetimes = Lifetimes::of(&cluster.spec.certificate_authority);
    ensure_leaf(&api, names, &name, &request, lifetimes, now).await?;
    Ok(())
}

/// Whether the status shows a registry this operator ran (or tried to).
fn managed_before(cluster: &KafkaCluster) -> bool {
    cluster.status.as_ref().is_some_and(|s| {
        s.schema_registry.is_some() || s.conditions.iter().any(|c| c.type_ == SCHEMA_REGISTRY)
    })
}

/// Deletes every object of the registry; the topic and its schemas stay.
async fn remove(ctx: &Context, names: &Names) -> Result<()> {
    let (c, ns) = (&ctx.client, names.namespace.as_str());
    let name = registry_name(&names.cluster);
    delete_if_exists::<Deployment>(c, ns, &name).await?;
    delete_if_exists::<Service>(c, ns, &name).await?;
    delete_if_exists::<RoleBinding>(c, ns, &name).await?;
    delete_if_exists::<Role>(c, ns, &name).await?;
    delete_if_exists::<ServiceAccount>(c, ns, &name).await?;
    delete_if_exists::<NetworkPolicy>(c, ns, &name).await?;
    delete_if_exists::<KafkaUser>(c, ns, &name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_crds::conditions::is_true;

    #[test]
    fn ready_pods_make_the_condition_true_and_publish_the_url() {
        let mut status = KafkaClusterStatus::default();
        let url = "http://demo-schema-registry.kafka.svc:8081".to_owned();
        let starting = RegistryOutcome::Applied {
            url: url.clone(),
            replicas: 2,
            ready: 1,
        };
        set_registry_status(&mut status, &starting, Some(1));
        assert!(!is_true(&status.conditions, SCHEMA_REGISTRY));
        assert_eq!(status.conditions[0].reason, "Starting");
        assert_eq!(
            status.schema_registry.as_ref().map(|s| s.url.as_str()),
            Some(url.as_str())
        );
        let ready = RegistryOutcome::Applied {
            url,
            replicas: 2,
            ready: 2,
        };
        set_registry_status(&mut status, &ready, Some(1));
        assert!(is_true(&status.conditions, SCHEMA_REGISTRY));
        assert_eq!(status.schema_registry.map(|s| s.ready_replicas), Some(2));
    }

    #[test]
    fn removing_the_registry_clears_the_url_and_the_condition() {
        let mut status = KafkaClusterStatus::default();
        let applied = RegistryOutcome::Applied {
            url: "http://x".into(),
            replicas: 1,
            ready: 1,
        };
        set_registry_status(&mut status, &applied, Some(1));
        set_registry_status(&mut status, &RegistryOutcome::Disabled, Some(2));
        assert_eq!(status.schema_registry, None);
        assert!(status.conditions.is_empty());
    }

    #[test]
    fn an_unsupported_registry_says_why_without_a_url() {
        let mut status = KafkaClusterStatus::default();
        let outcome = RegistryOutcome::Unsupported("no plaintext listener".into());
        set_registry_status(&mut status, &outcome, Some(3));
        assert_eq!(status.schema_registry, None);
        assert_eq!(status.conditions[0].reason, "Unsupported");
        assert_eq!(status.conditions[0].message, "no plaintext listener");
    }
}
