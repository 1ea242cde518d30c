//! The built-in resources: those the chart, the operator, the brokers, `kubectl` and `helm`
//! use, each decoded through its k8s-openapi type.

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authentication, authorization::v1 as authorization,
    batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{Conversion, ResourceType, RoundTrip, ScaleSpec, Version};

fn round_trip<T: DeserializeOwned + Serialize>(v: Value) -> Result<Value, serde_json::Error> {
    let typed: T = serde_json::from_value(v)?;
    serde_json::to_value(typed)
}

/// What differs between built-ins; the rest is derived.
struct Spec {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    /// In `kubectl get all`.
    all: bool,
    status: bool,
    scale: bool,
    generation: bool,
    create_only: bool,
    round_trip: RoundTrip,
}

const fn spec(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    round_trip: RoundTrip,
) -> Spec {
    Spec {
        group,
        version,
        plural,
        kind,
        namespaced: true,
        short_names: &[],
        all: false,
        status: false,
        scale: false,
        generation: false,
        create_only: false,
        round_trip,
    }
}

impl Spec {
    const fn cluster(mut self) -> Self {
        self.namespaced = false;
        self
    }
    const fn short(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }
    const fn in_all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    /// Status subresource, scale subresource and generation: the workload controllers' shape.
    const fn workload(mut self) -> Self {
        self.status = true;
        self.generation = true;
        self.all = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }
    /// An access review: answered on creation, never stored.
    const fn review(mut self) -> Self {
        self.create_only = true;
        self
    }
}

fn specs() -> Vec<Spec> {
    vec![
        spec(
            "",
            "v1",
            "namespaces",
            "Namespace",
            round_trip::<core::Namespace>,
        )
        .cluster()
        .short(&["ns"])
        .status(),
        spec("", "v1", "pods", "Pod", round_trip::<core::Pod>)
            .short(&["po"])
            .in_all()
            .status()
            .generation(),
        spec("", "v1", "services", "Service", round_trip::<core::Service>)
            .short(&["svc"])
            .in_all()
            .status(),
        spec(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            round_trip::<core::ConfigMap>,
        )
        .short(&["cm"]),
        spec("", "v1", "secrets", "Secret", round_trip::<core::Secret>),
        spec(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            round_trip::<core::ServiceAccount>,
        )
        .short(&["sa"]),
        spec("", "v1", "events", "Event", round_trip::<core::Event>).short(&["ev"]),
        spec(
            "",
            "v1",
            "endpoints",
            "Endpoints",
            round_trip::<core::Endpoints>,
        )
        .short(&["ep"]),
        spec(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            round_trip::<core::PersistentVolumeClaim>,
        )
        .short(&["pvc"])
        .status(),
        spec(
            "",
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            round_trip::<core::PersistentVolume>,
        )
        .cluster()
        .short(&["pv"])
        .status(),
        spec("", "v1", "nodes", "Node", round_trip::<core::Node>)
            .cluster()
            .short(&["no"])
            .status(),
        spec(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            round_trip::<apps::Deployment>,
        )
        .short(&["deploy"])
        .workload()
        .scale(),
        spec(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            round_trip::<apps::ReplicaSet>,
        )
        .short(&["rs"])
        .workload()
        .scale(),
        spec(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            round_trip::<apps::StatefulSet>,
        )
        .short(&["sts"])
        .workload()
        .scale(),
        spec(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            round_trip::<apps::DaemonSet>,
        )
        .short(&["ds"])
        .workload(),
        spec(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            round_trip::<apps::ControllerRevision>,
        ),
        spec("batch", "v1", "jobs", "Job", round_trip::<batch::Job>).workload(),
        spec(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            round_trip::<batch::CronJob>,
        )
        .short(&["cj"])
        .workload(),
        spec(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            round_trip::<policy::PodDisruptionBudget>,
        )
        .short(&["pdb"])
        .status()
        .generation(),
        spec(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            round_trip::<networking::NetworkPolicy>,
        )
        .short(&["netpol"])
        .generation(),
        spec(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            round_trip::<rbac::Role>,
        ),
        spec(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            round_trip::<rbac::RoleBinding>,
        ),
        spec(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            round_trip::<rbac::ClusterRole>,
        )
        .cluster(),
        spec(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            round_trip::<rbac::ClusterRoleBinding>,
        )
        .cluster(),
        spec(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            round_trip::<authorization::SelfSubjectAccessReview>,
        )
        .cluster()
        .review(),
        spec(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            round_trip::<authorization::SubjectAccessReview>,
        )
        .cluster()
        .review(),
        spec(
            "authorization.k8s.io",
            "v1",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            round_trip::<authorization::LocalSubjectAccessReview>,
        )
        .review(),
        spec(
            "authorization.k8s.io",
            "v1",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            round_trip::<authorization::SelfSubjectRulesReview>,
        )
        .cluster()
        .review(),
        spec(
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "TokenReview",
            round_trip::<authentication::TokenReview>,
        )
        .cluster()
        .review(),
        spec(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "SelfSubjectReview",
            round_trip::<authentication::SelfSubjectReview>,
        )
        .cluster()
        .review(),
        spec(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            round_trip::<coordination::Lease>,
        ),
        spec(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            round_trip::<events::Event>,
        )
        .short(&["ev"]),
        spec(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            round_trip::<discovery::EndpointSlice>,
        ),
        spec(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            round_trip::<storage::StorageClass>,
        )
        .cluster()
        .short(&["sc"]),
        spec(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            round_trip::<apiextensions::CustomResourceDefinition>,
        )
        .cluster()
        .short(&["crd", "crds"])
        .status()
        .generation(),
    ]
}

/// Every built-in resource.
pub(super) fn all() -> Vec<ResourceType> {
    specs().into_iter().map(build).collect()
}

fn build(s: Spec) -> ResourceType {
    let id = format!("{}/{}", s.group, s.plural);
    let (storage, conversion) = if s.group == "events.k8s.io" {
        ("/events".to_owned(), Conversion::EventsV1)
    } else {
        (id, Conversion::ApiVersion)
    };
    let scale = s.scale.then(|| ScaleSpec {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        // A LabelSelector object, rendered as a selector string in the Scale.
        label_selector: Some(".spec.selector".into()),
    });
    ResourceType {
        group: s.group.to_owned(),
        plural: s.plural.to_owned(),
        singular: s.kind.to_lowercase(),
        kind: s.kind.to_owned(),
        short_names: s.short_names.iter().map(|n| (*n).to_owned()).collect(),
        categories: if s.all {
            vec!["all".to_owned()]
        } else {
            Vec::new()
        },
        namespaced: s.namespaced,
        versions: vec![Version {
            name: s.version.to_owned(),
            storage: true,
            schema: None,
            columns: Vec::new(),
            status: s.status,
            scale,
        }],
        storage,
        conversion,
        round_trip: Some(s.round_trip),
        generation: s.generation,
        crd: None,
        create_only: s.create_only,
    }
}
