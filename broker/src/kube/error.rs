//! What can go wrong talking to the Kubernetes API in cluster mode.

/// A failed Kubernetes API call, with what the broker was doing.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The API server refused or could not be reached.
    #[error("{what}: {source}")]
    Api {
        /// What the broker was doing.
        what: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The client could not be configured (no kubeconfig and not in a pod).
    #[error("cannot reach the Kubernetes API: {0}")]
    Config(String),
    /// Another process registered with this broker's id after this one.
    #[error("broker {id} was registered by a newer process (incarnation {theirs} > ours {ours})")]
    Superseded {
        /// Broker id.
        id: i32,
        /// This process's incarnation.
        ours: i64,
        /// The registration's incarnation now.
        theirs: i64,
    },
    /// An object did not have the shape cluster mode needs.
    #[error("{0}")]
    Invalid(String),
}

impl KubeError {
    /// Wraps a client error with what was being done.
    pub fn api(what: impl Into<String>, source: kube::Error) -> KubeError {
        KubeError::Api {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Whether the API server answered 409 Conflict (or AlreadyExists): someone else wrote
    /// first, re-read and decide again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Api { source, .. } if is_conflict(source))
    }
}

/// Whether a client error is a 409 from the API server.
pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Whether a client error is a 404 from the API server.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}
