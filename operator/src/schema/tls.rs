//! How the operator reaches a registry that serves HTTPS: it trusts the CA of the registry's
//! certificate (the cluster CA when the operator issued it, else the `ca.crt` of the named
//! Secret, as cert-manager writes one), checks the certificate for the Service's name (it
//! calls a pod by IP), and presents a client certificate it issues itself from the cluster CA,
//! which the registry admits whatever its authentication mode
//! ([`crate::builders::registry_security`]).

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tributary_crds::registration::{cluster_ca_name, CA_CERT_KEY};
use tributary_crds::schema_registry::{registry_name, registry_tls_name};
use tributary_crds::KafkaCluster;

use super::client::RegistryTls;
use super::plan::{Blocked, REGISTRY_UNAVAILABLE};
use crate::certs::{CaState, Stored};
use crate::context::Context;
use crate::pki::{issue, Usage};
use crate::{Error, Result};

/// The subject of the operator's client certificate: the registry sees `User:tributary-operator`.
pub const OPERATOR_COMMON_NAME: &str = "tributary-operator";

/// How long the operator's client certificate is valid (a new one is made for every call).
const VALIDITY: Duration = Duration::from_secs(3600);

/// TLS for calling `cluster`'s registry; `None` when it serves plain HTTP; why not yet
/// possible (a Secret missing) as a [`Blocked`].
pub async fn registry_tls(
    ctx: &Context,
    cluster: &KafkaCluster,
) -> Result<std::result::Result<Option<RegistryTls>, Blocked>> {
    let Some(tls) = cluster
        .spec
        .schema_registry
        .as_ref()
        .and_then(|r| r.tls.as_ref())
    else {
        return Ok(Ok(None));
    };
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let blocked = |message: String| {
        Ok(Err(Blocked {
            reason: REGISTRY_UNAVAILABLE,
            message,
        }))
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let get = |secret: String| {
        let secrets = secrets.clone();
        let ns = ns.clone();
        async move {
            secrets
                .get_opt(&secret)
                .await
                .map_err(|e| Error::kube(format!("get Secret {ns}/{secret}"), e))
        }
    };
    let ca_name = cluster_ca_name(&name);
    let Stored::Found(ca) = CaState::from_secret(get(ca_name.clone()).await?.as_ref()) else {
        return blocked(format!(
            "the cluster CA Secret {ns}/{ca_name} is not usable yet; the operator's client \
             certificate for the HTTPS registry is issued from it"
        ));
    };
    let trusted = match &tls.secret_name {
        None => ca.bundle(),
        Some(secret) => {
            let text = get(secret.clone()).await?.and_then(|s| {
                let bytes = s.data?.get(CA_CERT_KEY)?.0.clone();
                String::from_utf8(bytes).ok()
            });
            match text {
                Some(text) => text,
                None => {
                    return blocked(format!(
                        "Secret {ns}/{secret} (schemaRegistry.tls.secretName) has no {CA_CERT_KEY} \
                         to check the registry's certificate with"
                    ))
                }
            }
        }
    };
    let identity = match issue(
        &ca.signer(&ca_name),
        OPERATOR_COMMON_NAME,
        &[],
        Usage::Client,
        VALIDITY,
        SystemTime::now(),
    ) {
        Ok(identity) => identity,
        Err(e) => return blocked(format!("issuing the operator's client certificate: {e}")),
    };
    let server_name = format!("{}.{ns}.svc", registry_name(&name));
    match RegistryTls::new(
        trusted.as_bytes(),
        Some((identity.cert_pem.as_bytes(), identity.key_pem.as_bytes())),
        Some(&server_name),
    ) {
        Ok(tls) => Ok(Ok(Some(tls))),
        Err(e) => blocked(format!(
            "{e} (certificate Secret {})",
            tls.secret_name
                .clone()
                .unwrap_or_else(|| registry_tls_name(&name))
        )),
    }
}
