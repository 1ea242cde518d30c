//! The operator's error type. Each variant says what failed and carries the cause; each has a
//! short metric label so failures are counted by kind.

use crate::builders::BuildError;

/// Anything a reconcile or the operator's plumbing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call {action} failed: {source}")]
    Kube {
        /// What was being done, e.g. `apply StatefulSet demo-broker`.
        action: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// A conditional write lost a race; the reconcile is retried with fresh data.
    #[error("{what} changed while being updated (resourceVersion conflict); retrying")]
    Conflict {
        /// The object.
        what: String,
    },
    /// Rendering child objects failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The CRDs are not installed, so nothing can be watched.
    #[error("the {crd} CRD is not installed ({source}); install it with `kubectl apply -f crds/` or the Helm chart")]
    CrdMissing {
        /// CRD name.
        crd: &'static str,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// This replica was leader and could not renew its Lease in time.
    #[error("lost the operator leader Lease {lease}; exiting so another replica takes over")]
    LostLeadership {
        /// Lease name.
        lease: String,
    },
    /// The metrics/health HTTP server could not start.
    #[error("cannot serve metrics on {addr}: {source}")]
    Serve {
        /// Listen address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An object the API returned lacks a field Kubernetes always sets.
    #[error("{what} has no {field}; the API server should always set it")]
    MissingField {
        /// The object.
        what: String,
        /// The missing field.
        field: &'static str,
    },
    /// A deleted topic's data is still on some brokers; the finalizer stays until they drop it.
    #[error("KafkaTopic {topic} is waiting for brokers {brokers:?} to delete its data")]
    DeletionPending {
        /// Topic.
        topic: String,
        /// Brokers that still hold data.
        brokers: Vec<i32>,
    },
    /// A KafkaPartition this topic needs is named like an existing object of another owner
    /// (usually a deleted topic of the same name whose partitions are still being collected).
    #[error("KafkaPartition {name} exists and belongs to something else (a deleted topic of the same name?); waiting for it to go")]
    PartitionNameTaken {
        /// The object name.
        name: String,
    },
    /// A CA or certificate could not be made (a stored CA key that does not parse).
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// A shared document (the ACLs, the SCRAM credentials) does not parse; it is left alone
    /// rather than overwritten with what could not be read.
    #[error("{object} key {key} is not a readable document ({source}); fix or empty it")]
    SharedDocument {
        /// The ConfigMap or Secret.
        object: String,
        /// The key holding the document.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No password or salt could be generated.
    #[error(transparent)]
    Random(#[from] crate::user::password::RandomError),
    /// A schema registry call failed (unreachable, or it refused what was asked).
    #[error("{what} failed: {source}")]
    Registry {
        /// What was being done, e.g. `soft-delete subject orders-value`.
        what: String,
        /// The cause.
        #[source]
        source: crate::schema::client::RegistryError,
    },
    /// Encoding a patch failed (a bug, not bad input).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was encoded.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Short label for the `reconcile_errors_total{error=...}` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Conflict { .. } => "conflict",
            Error::Build(_) => "build",
            Error::CrdMissing { .. } => "crd_missing",
            Error::LostLeadership { .. } => "lost_leadership",
            Error::Serve { .. } => "serve",
            Error::MissingField { .. } => "missing_field",
            Error::Encode { .. } => "encode",
            Error::Registry { .. } => "schema_registry",
            Error::Pki(_) => "pki",
            Error::SharedDocument { .. } => "shared_document",
            Error::Random(_) => "random",
            Error::DeletionPending { .. } => "deletion_pending",
            Error::PartitionNameTaken { .. } => "partition_name_taken",
        }
    }

    /// Reason of the Warning Event published when a reconcile fails this way; `None` for
    /// failures that are routine and retried at once (conflicts, deletions still waiting).
    pub fn event_reason(&self) -> Option<&'static str> {
        match self {
            Error::Conflict { .. } | Error::DeletionPending { .. } => None,
            Error::Build(_) => Some("BuildFailed"),
            Error::CrdMissing { .. } => Some("CrdMissing"),
            Error::Pki(_) => Some("CertificateFailed"),
            Error::PartitionNameTaken { .. } => Some("PartitionNameTaken"),
            _ => Some("ReconcileFailed"),
        }
    }

    /// The error behind a failed finalizer step (kube's finalizer wrapper) of a `kind`
    /// object: the reconcile's own error, or what adding or removing the finalizer hit.
    pub fn from_finalizer(kind: &str, error: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as Finalizer;
        match error {
            Finalizer::ApplyFailed(inner) | Finalizer::CleanupFailed(inner) => inner,
            Finalizer::AddFinalizer(source) | Finalizer::RemoveFinalizer(source) => {
                Error::kube(format!("update finalizers of {kind}"), source)
            }
            Finalizer::UnnamedObject => Error::MissingField {
                what: kind.to_owned(),
                field: "metadata.name",
            },
            Finalizer::InvalidFinalizer => Error::MissingField {
                what: format!("{kind} finalizer"),
                field: "valid name",
            },
        }
    }

    /// Wraps a kube error, turning HTTP 409 into [`Error::Conflict`].
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        let action = action.into();
        match &source {
            kube::Error::Api(status) if status.code == 409 => Error::Conflict { what: action },
            _ => Error::Kube { action, source },
        }
    }

    /// A failed conditional update of `what` (`KIND ns/name`): the client's errors as
    /// [`Error::kube`], a race lost or an object deleted meanwhile as [`Error::Conflict`]
    /// (the reconcile runs again), the decision's own refusal through `aborted`.
    pub fn from_update<E>(
        what: &str,
        error: tributary_crds::update::UpdateError<E>,
        aborted: impl FnOnce(E) -> Error,
    ) -> Self {
        use tributary_crds::update::UpdateError;
        match error {
            UpdateError::Aborted(reason) => aborted(reason),
            UpdateError::Read { source, .. } => Error::kube(format!("get {what}"), *source),
            UpdateError::Write { source, .. } => Error::kube(format!("write {what}"), *source),
            UpdateError::Exhausted { .. } | UpdateError::Gone { .. } => Error::Conflict {
                what: what.to_owned(),
            },
            UpdateError::Unversioned { .. } => Error::MissingField {
                what: what.to_owned(),
                field: "metadata.resourceVersion",
            },
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
