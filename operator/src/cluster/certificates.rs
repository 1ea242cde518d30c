//! Keeps a KafkaCluster's certificate Secrets current: the cluster and clients CAs (always, so
//! KafkaUsers can be issued certificates for any cluster) and, when a listener needs it, the
//! broker certificate. [`crate::certs`] decides; this reads the Secrets and writes what it
//! returns, each write conditional on the Secret's resourceVersion.
//!
//! The brokers mount these Secrets and re-read the files when they change, and nothing of
//! them enters the config hash, so a renewal never restarts a broker.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::ListParams;
use kube::{Api, Resource};
use tributary_crds::registration::{clients_ca_name, cluster_ca_name, HOST_ANNOTATION};
use tributary_crds::update::{ConditionalUpdate, Decision, RetryPolicy};
use tributary_crds::KafkaCluster;

use crate::builders::security::{
    broker_certs_name, broker_common_name, broker_dns_names, needs_broker_certificate,
};
use crate::builders::Names;
use crate::certs::{
    plan_ca, plan_leaf, CaChange, CaState, IssueReason, LeafRequest, LeafState, Lifetimes,
};
use crate::context::Context;
use crate::pki::Usage;
use crate::{Error, Result};

/// Creates or renews the CAs and the broker certificate as due at `now`.
pub async fn ensure_certificates(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    now: SystemTime,
) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let lifetimes = Lifetimes::of(&cluster.spec.certificate_authority);
    let cluster_ca_name = cluster_ca_name(&names.cluster);
    let cluster_ca = ensure_ca(ctx, cluster, names, &api, &cluster_ca_name, lifetimes, now).await?;
    ensure_ca(
        ctx,
        cluster,
        names,
        &api,
        &clients_ca_name(&names.cluster),
        lifetimes,
        now,
    )
    .await?;
    if !needs_broker_certificate(&cluster.spec) {
        return Ok(());
    }
    let name = broker_certs_name(&names.cluster);
    let mut dns_names = broker_dns_names(names);
    dns_names.extend(external_names(ctx, names).await?);
    let common_name = broker_common_name(names);
    let request = LeafRequest {
        common_name: &common_name,
        dns_names: &dns_names,
        usage: Usage::Broker,
        ca: &cluster_ca,
        ca_name: &cluster_ca_name,
    };
    if let Some(reason) = ensure_leaf(&api, names, &name, &request, lifetimes, now).await? {
        let why = match reason {
            IssueReason::Missing => "none existed".to_owned(),
            IssueReason::Unusable(why) => format!("the stored one was unusable: {why}"),
            IssueReason::Due => "it was due for renewal".to_owned(),
            IssueReason::CaChanged => "the cluster CA was renewed".to_owned(),
            IssueReason::NamesChanged => "the brokers' DNS names changed".to_owned(),
        };
        let note = format!("issued the broker certificate in Secret {name}: {why}");
        ctx.event(&cluster.object_ref(&()), "CertificateIssued", note, false)
            .await;
    }
    Ok(())
}

/// Brings the certificate Secret `name` up to date for `request`; why it was (re)issued, if
/// it was written.
pub(super) async fn ensure_leaf(
    api: &Api<Secret>,
    names: &Names,
    name: &str,
    request: &LeafRequest<'_>,
    lifetimes: Lifetimes,
    now: SystemTime,
) -> Result<Option<IssueReason>> {
    let existing = get(api, names, name).await?;
    let (leaf, reason) = plan_leaf(
        LeafState::from_secret(existing.as_ref()),
        request,
        lifetimes,
        now,
    )?;
    let written = write(api, names, existing, leaf.to_secret(names, name)).await?;
    Ok(reason.filter(|_| written))
}

/// Brings the CA Secret `name` up to date and returns the CA as it now is.
async fn ensure_ca(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    api: &Api<Secret>,
    name: &str,
    lifetimes: Lifetimes,
    now: SystemTime,
) -> Result<CaState> {
    let existing = get(api, names, name).await?;
    let (ca, change) = plan_ca(
        CaState::from_secret(existing.as_ref()),
        name,
        lifetimes,
        now,
    )?;
    let Some(change) = change else {
        return Ok(ca);
    };
    write(api, names, existing, ca.to_secret(names, name)).await?;
    let (reason, note, warning) = match change {
        CaChange::Created => ("CaCreated", format!("created CA Secret {name}"), false),
        CaChange::Replaced(why) => (
            "CaReplaced",
            format!("replaced CA Secret {name}, which was unusable ({why}); certificates it signed are issued again"),
            true,
        ),
        CaChange::Renewed => (
            "CaRenewed",
            format!("renewed CA {name}; its previous certificate stays in ca.crt until it expires"),
            false,
        ),
        CaChange::PreviousExpired => (
            "CaPreviousExpired",
            format!("removed the expired previous certificate from CA Secret {name}"),
            false,
        ),
    };
    ctx.event(&cluster.object_ref(&()), reason, note, warning)
        .await;
    Ok(ca)
}

pub(super) async fn get(api: &Api<Secret>, names: &Names, name: &str) -> Result<Option<Secret>> {
    api.get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("get Secret {}/{name}", names.namespace), e))
}

/// Writes `wanted` unless `existing` already holds its data, annotations and type: a create,
/// or a replace conditional on the resourceVersion read (a conflict retries the reconcile).
/// Returns whether it wrote.
async fn write(
    api: &Api<Secret>,
    names: &Names,
    existing: Option<Secret>,
    wanted: Secret,
) -> Result<bool> {
    let what = || {
        format!(
            "Secret {}/{}",
            names.namespace,
            wanted.metadata.name.clone().unwrap_or_default()
        )
    };
    let name = wanted.metadata.name.clone().unwrap_or_default();
    let mut update = ConditionalUpdate::new(api, &name).policy(RetryPolicy::once());
    if let Some(existing) = existing {
        update = update.starting_from(existing);
    }
    let updated = update
        .run(|current| {
            let Some(existing) = current else {
                return Decision::<_, _>::Replace(wanted.clone(), true);
            };
            let kept = existing.metadata.annotations.clone().unwrap_or_default();
            let ours = wanted.metadata.annotations.clone().unwrap_or_default();
            let same = existing.data == wanted.data
                && existing.type_ == wanted.type_
                && ours.iter().all(|(k, v)| kept.get(k) == Some(v));
            if same {
                return Decision::Keep(false);
            }
            // Annotations others added (backup or replication tools) stay.
            let mut annotations = kept;
            annotations.extend(ours);
            let mut next = wanted.clone();
            next.metadata.annotations = Some(annotations);
            Decision::Replace(next, true)
        })
        .await
        .map_err(|e| Error::from_update(&what(), e, |n| match n {}))?;
    Ok(updated.value)
}

/// The addresses clients of external listeners dial, read from their Services: load
/// balancers' ingress IPs and host names, and the advertised-host overrides. The broker
/// certificate names them too, so those clients can verify host names (a new load-balancer
/// address re-issues it, as any change of its names does). Node addresses of node ports are
/// not known here and are not named.
async fn external_names(ctx: &Context, names: &Names) -> Result<Vec<String>> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let services = api
        .list(&ListParams::default().labels(&names.external_services_selector()))
        .await
        .map_err(|e| Error::kube("list external listener Services", e))?;
    Ok(external_addresses(&services.items))
}

/// The addresses of `services` a certificate should name, sorted and without repeats (so the
/// same Services always ask for the same names).
pub fn external_addresses(services: &[Service]) -> Vec<String> {
    let mut out: Vec<String> = services
        .iter()
        .flat_map(|service| {
            let ingress = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .flat_map(|i| [i.ip.clone(), i.hostname.clone()])
                .flatten();
            let host = service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(HOST_ANNOTATION))
                .cloned();
            ingress.chain(host).collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use std::collections::BTreeMap;

    fn service(ingress: Vec<LoadBalancerIngress>, host: Option<&str>) -> Service {
        let mut s = Service {
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(ingress),
                }),
                ..ServiceStatus::default()
            }),
            ..Service::default()
        };
        s.metadata.annotations =
            host.map(|h| BTreeMap::from([(HOST_ANNOTATION.to_string(), h.to_string())]));
        s
    }

    fn ip(ip: &str) -> LoadBalancerIngress {
        LoadBalancerIngress {
            ip: Some(ip.into()),
            ..LoadBalancerIngress::default()
        }
    }

    #[test]
    fn ingresses_and_overrides_are_named_once_in_order() {
        let services = [
            service(vec![ip("203.0.113.9")], None),
            service(
                vec![LoadBalancerIngress {
                    hostname: Some("lb.example.com".into()),
                    ..LoadBalancerIngress::default()
                }],
                Some("kafka-1.example.com"),
            ),
            service(vec![ip("203.0.113.9")], None),
            Service::default(),
        ];
        assert_eq!(
            external_addresses(&services),
            ["203.0.113.9", "kafka-1.example.com", "lb.example.com"]
        );
        assert!(external_addresses(&[]).is_empty());
    }
}
