//! Prometheus metrics of the registry: requests by endpoint template and status, and the
//! numbers of schemas and subjects, served on `/metrics` of the REST listener.

use prometheus::{IntCounterVec, IntGauge};
use tributary_metrics::{Def, Registrar};

use crate::state::Registry;

const REQUESTS: Def = Def {
    name: "tributary_schema_registry_requests_total",
    help: "REST requests by endpoint template, method and HTTP status",
    labels: &["endpoint", "method", "status"],
};
const SCHEMAS: Def = Def {
    name: "tributary_schema_registry_schemas",
    help: "Distinct live schemas (ids)",
    labels: &[],
};
const SUBJECTS: Def = Def {
    name: "tributary_schema_registry_subjects",
    help: "Subjects with a live version",
    labels: &[],
};
const SKIPPED: Def = Def {
    name: "tributary_schema_registry_skipped_records",
    help: "Records of the schemas topic that could not be decoded and were skipped",
    labels: &[],
};

/// The registry's metrics, in their own Prometheus registry.
pub struct Metrics {
    registry: prometheus::Registry,
    requests: IntCounterVec,
    schemas: IntGauge,
    subjects: IntGauge,
    skipped: IntGauge,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = prometheus::Registry::new();
        let r = Registrar(&registry);
        Ok(Metrics {
            requests: r.counter_vec(&REQUESTS)?,
            schemas: r.gauge(&SCHEMAS)?,
            subjects: r.gauge(&SUBJECTS)?,
            skipped: r.gauge(&SKIPPED)?,
            registry,
        })
    }

    /// Counts one request.
    pub fn request(&self, endpoint: &str, method: &str, status: u16) {
        self.requests
            .with_label_values(&[endpoint, method, &status.to_string()])
            .inc();
    }

    /// The text exposition, with the gauges read from the state now.
    pub fn render(&self, state: &Registry) -> String {
        self.schemas
            .set(i64::try_from(state.schema_count()).unwrap_or(i64::MAX));
        self.subjects
            .set(i64::try_from(state.subjects(false).len()).unwrap_or(i64::MAX));
        self.skipped
            .set(i64::try_from(state.skipped()).unwrap_or(i64::MAX));
        tributary_metrics::encode(&self.registry).unwrap_or_default()
    }
}
