//! PodDisruptionBudget: at most `maxUnavailable` brokers voluntarily down at once, so a node
//! drain cannot take a partition below its ISR.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tributary_crds::KafkaCluster;

use super::Names;

pub(super) fn pod_disruption_budget(
    cluster: &KafkaCluster,
    names: &Names,
) -> Option<PodDisruptionBudget> {
    let budget = &cluster.spec.disruption_budget;
    budget.enabled.then(|| PodDisruptionBudget {
        metadata: names.meta(names.broker()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(budget.max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector_labels()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}
