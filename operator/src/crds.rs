//! Server-side apply of the operator's own CRDs at start-up (`--apply-crds`).
//!
//! Helm installs a chart's `crds/` directory once and never upgrades it, so without this an
//! upgraded operator would run against the old schema. Applying the CRDs compiled into this
//! binary, with the operator's field manager and forced ownership, makes "upgrade the chart"
//! also mean "upgrade the CRDs". It needs `get`, `create` and `patch` on exactly these
//! `customresourcedefinitions`, which the chart grants only when the flag is on.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaSchema, KafkaTopic, KafkaUser};

use crate::{Error, Result, FIELD_MANAGER};

/// The CRDs this operator serves, exactly as `crds/*.yaml` and the chart carry them.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![
        KafkaCluster::crd(),
        KafkaTopic::crd(),
        KafkaPartition::crd(),
        KafkaUser::crd(),
        KafkaSchema::crd(),
    ]
}

/// Applies every CRD in [`definitions`], taking ownership of the fields (Helm's or a previous
/// `kubectl apply`'s) so the schema always matches this binary.
pub async fn apply_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in definitions() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|e| Error::kube(format!("apply CustomResourceDefinition {name}"), e))?;
        tracing::info!(crd = %name, "applied CRD");
    }
    Ok(())
}
