//! State shared by every reconcile: the client, metrics, the event recorder and settings.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;

use crate::metrics::Metrics;

/// Operator settings (from the command line in production, from the test otherwise).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace to watch; all namespaces when `None`.
    pub watch_namespace: Option<String>,
    /// This replica's identity (the pod name), written into Leases and status.
    pub identity: String,
    /// Namespace of the operator's leader-election Lease.
    pub lease_namespace: String,
    /// Name of the operator's leader-election Lease.
    pub lease_name: String,
    /// How long a leader's Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews (and standbys retry).
    pub renew_interval: Duration,
    /// Server-side apply the CRDs compiled into this binary before starting ([`crate::crds`]).
    pub apply_crds: bool,
}

impl Settings {
    /// Defaults for `identity` in `namespace`.
    pub fn new(identity: impl Into<String>, namespace: impl Into<String>) -> Self {
        Settings {
            watch_namespace: None,
            identity: identity.into(),
            lease_namespace: namespace.into(),
            lease_name: "tributary-operator".to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            apply_crds: false,
        }
    }
}

/// Handed to every reconcile.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Kubernetes Event publisher.
    pub recorder: Recorder,
    /// Settings.
    pub settings: Settings,
}

impl Context {
    /// Builds a context; the event reporter is named after the operator and this replica.
    pub fn new(client: Client, metrics: Arc<Metrics>, settings: Settings) -> Arc<Self> {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.to_owned(),
            instance: Some(settings.identity.clone()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Arc::new(Context {
            client,
            metrics,
            recorder,
            settings,
        })
    }

    /// Publishes an Event about `regarding`. Failing to publish is logged, never fatal: events
    /// are for humans and must not block reconciliation.
    pub async fn event(
        &self,
        regarding: &ObjectReference,
        reason: &str,
        note: String,
        warning: bool,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}
