//! State shared by every reconcile: the client, metrics, the event recorder and settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;

use crate::controller::LiveBrokers;
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
    /// Requeue delay after a failed reconcile (conflicts retry sooner); also the shortest gap
    /// between two failure Events about the same object.
    pub error_backoff: Duration,
    /// KafkaPartition writes the controller keeps in flight at once after a broker failure:
    /// enough to re-elect thousands of partitions in seconds, few enough not to flood the API
    /// server.
    pub controller_write_concurrency: usize,
    /// Where KafkaSchemas find their cluster's schema registry instead of its Service: a URL
    /// with `{namespace}`, `{cluster}` and `{port}` filled in, for an operator running
    /// outside the Kubernetes network (tests, development clusters). `None`: the URL the
    /// cluster's status reports.
    pub schema_registry_url: Option<String>,
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
            error_backoff: Duration::from_secs(15),
            controller_write_concurrency: 32,
            schema_registry_url: None,
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
    /// Brokers the controller role sees alive (the cluster status reports them).
    pub live_brokers: LiveBrokers,
    /// When a failure Event was last published per object, so a failing object gets at most
    /// one per backoff period.
    failure_events: Mutex<FailureEvents>,
    /// What the operator found it may not do when it started leading (see
    /// [`permissions`](crate::permissions)).
    missing_permissions: Mutex<Vec<String>>,
}

/// Rate limit for failure Events: at most one per object per `period`.
#[derive(Debug, Default)]
pub struct FailureEvents {
    last: HashMap<String, Instant>,
}

impl FailureEvents {
    /// Whether an Event about `key` may be published at `now`; records it if so.
    pub fn allow(&mut self, key: &str, now: Instant, period: Duration) -> bool {
        match self.last.get(key) {
            Some(at) if now.saturating_duration_since(*at) < period => false,
            _ => {
                // Forget objects that have been quiet for a while, so the map stays small.
                self.last
                    .retain(|_, at| now.saturating_duration_since(*at) < period * 4);
                self.last.insert(key.to_owned(), now);
                true
            }
        }
    }
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
            live_brokers: LiveBrokers::default(),
            failure_events: Mutex::new(FailureEvents::default()),
            missing_permissions: Mutex::new(Vec::new()),
        })
    }

    /// Records what the start-up check found missing.
    pub fn set_missing_permissions(&self, missing: Vec<String>) {
        *self
            .missing_permissions
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = missing;
    }

    /// What the start-up check found missing, `verb resource.group` each.
    pub fn missing_permissions(&self) -> Vec<String> {
        self.missing_permissions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        self.event_related(regarding, None, reason, note, warning)
            .await;
    }

    /// [`Context::event`] about `regarding` that also names `related` (e.g. the pod a roll
    /// restarts). Events with the same reason are folded into one series per related object,
    /// so each restarted pod keeps its own Event.
    pub async fn event_related(
        &self,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
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
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }

    /// Publishes a Warning Event for a failed reconcile of `regarding`, in the background
    /// (error policies are synchronous), unless one went out for it within the backoff period
    /// or the error is routine (see [`crate::Error::event_reason`]).
    pub fn report_failure(self: &Arc<Self>, regarding: ObjectReference, error: &crate::Error) {
        let Some(reason) = error.event_reason() else {
            return;
        };
        let key = format!(
            "{}/{}/{}",
            regarding.kind.as_deref().unwrap_or_default(),
            regarding.namespace.as_deref().unwrap_or_default(),
            regarding.name.as_deref().unwrap_or_default()
        );
        let allowed = self
            .failure_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(&key, Instant::now(), self.settings.error_backoff);
        if !allowed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let note = format!(
            "{error} (kind {}; retrying in {:?})",
            error.metric_label(),
            self.settings.error_backoff
        );
        let ctx = Arc::clone(self);
        runtime.spawn(async move { ctx.event(&regarding, reason, note, true).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_events_are_limited_to_one_per_object_per_period() {
        let mut limiter = FailureEvents::default();
        let t0 = Instant::now();
        let period = Duration::from_secs(15);
        assert!(limiter.allow("KafkaCluster/ns/a", t0, period));
        assert!(!limiter.allow("KafkaCluster/ns/a", t0 + Duration::from_secs(14), period));
        assert!(limiter.allow("KafkaCluster/ns/b", t0 + Duration::from_secs(1), period));
        assert!(limiter.allow("KafkaCluster/ns/a", t0 + period, period));
        assert!(!limiter.allow(
            "KafkaCluster/ns/a",
            t0 + period + Duration::from_secs(1),
            period
        ));
    }
}
